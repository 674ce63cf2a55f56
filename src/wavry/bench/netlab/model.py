"""Userspace UDP impairment: the deterministic link model (no I/O; see proxy.py for sockets).

`ImpairmentModel` decides, without any I/O, what a link does to each datagram (loss, burst loss,
delay, jitter, reordering, duplication, rate limit with a drop-tail queue). `ImpairmentProxy`
applies one model per direction to real UDP traffic between one client and one upstream.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Literal, NamedTuple

Direction = Literal["up", "down"]
DirectionArg = Literal["up", "down", "both"]
Address = tuple[Any, ...]

DEFAULT_QUEUE_PACKETS = 1000
"""Queue limit used when a rate is set but neither queue_packets nor queue_bytes is."""
_SLACK = 0.0002  # deliver datagrams due within this many seconds when a timer fires
_SOCK_BUF = 4 * 1024 * 1024


class DropCause(StrEnum):
    LOSS = "loss"
    BURST = "burst"
    QUEUE = "queue"


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Two-state Markov burst loss, stepped once per datagram.

    p: good→bad probability, r: bad→good probability; loss_bad / loss_good are the loss
    probabilities in each state.
    """

    p: float
    r: float
    loss_bad: float = 1.0
    loss_good: float = 0.0

    def __post_init__(self) -> None:
        for name in ("p", "r", "loss_bad", "loss_good"):
            _check_prob(name, getattr(self, name))

    @property
    def loss_rate(self) -> float:
        """Long-run loss probability."""
        if self.p + self.r == 0.0:
            return self.loss_good
        bad = self.p / (self.p + self.r)
        return bad * self.loss_bad + (1.0 - bad) * self.loss_good

    @property
    def mean_burst(self) -> float:
        """Mean number of consecutive datagrams spent in the bad state (1/r)."""
        return math.inf if self.r == 0.0 else 1.0 / self.r


def gilbert_elliott(loss_rate: float, mean_burst: float) -> GilbertElliott:
    """Chain with the given long-run loss rate and mean burst length (bad state loses all)."""
    if not 0.0 <= loss_rate < 1.0:
        raise ValueError(f"loss_rate must be in [0, 1), got {loss_rate!r}")
    if not mean_burst >= 1.0:
        raise ValueError(f"mean_burst must be >= 1, got {mean_burst!r}")
    r = 1.0 / mean_burst
    p = loss_rate * r / (1.0 - loss_rate)
    if p > 1.0:
        raise ValueError(f"loss rate {loss_rate} is unreachable with mean burst {mean_burst}")
    return GilbertElliott(p=p, r=r)


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Impairments of one direction. Probabilities are in [0, 1]; times in milliseconds.

    Order on the link: burst/random loss, then the rate limiter and its drop-tail queue
    (`queue_packets` / `queue_bytes` count datagrams waiting, not the one being sent), then
    propagation delay with jitter, explicit reordering (hold-back) and duplication. Jitter keeps
    FIFO order unless allow_reorder (so jitter above the datagram spacing raises mean delay).
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    jitter_dist: Literal["uniform", "normal"] = "uniform"
    allow_reorder: bool = False
    loss: float = 0.0
    burst: GilbertElliott | None = None
    reorder: float = 0.0
    reorder_ms: float = 0.0
    duplicate: float = 0.0
    rate_kbps: float | None = None
    queue_packets: int | None = None
    queue_bytes: int | None = None
    overhead_bytes: int = 0

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "duplicate"):
            _check_prob(name, getattr(self, name))
        for name in ("delay_ms", "jitter_ms", "reorder_ms", "overhead_bytes"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if self.jitter_dist not in ("uniform", "normal"):
            raise ValueError(f"jitter_dist must be 'uniform' or 'normal', got {self.jitter_dist!r}")
        if self.rate_kbps is not None and not (
            self.rate_kbps > 0 and math.isfinite(self.rate_kbps)
        ):
            raise ValueError(f"rate_kbps must be > 0 or None, got {self.rate_kbps!r}")
        for name in ("queue_packets", "queue_bytes"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value!r}")

    @property
    def transparent(self) -> bool:
        """True when the link forwards everything immediately and unchanged."""
        return (
            self.delay_ms == 0.0
            and self.jitter_ms == 0.0
            and self.loss == 0.0
            and (self.burst is None or self.burst.loss_rate == 0.0)
            and (self.reorder == 0.0 or self.reorder_ms == 0.0)
            and self.duplicate == 0.0
            and self.rate_kbps is None
        )


@dataclass(slots=True)
class LinkStats:
    """Counters of one direction (times in seconds)."""

    received: int = 0
    forwarded: int = 0
    dropped_loss: int = 0
    dropped_burst: int = 0
    dropped_queue: int = 0
    duplicated: int = 0
    held: int = 0
    reordered: int = 0
    bytes_received: int = 0
    bytes_forwarded: int = 0
    queue_delay_max: float = 0.0
    queue_delay_total: float = 0.0

    @property
    def dropped(self) -> int:
        return self.dropped_loss + self.dropped_burst + self.dropped_queue

    @property
    def queue_delay_avg(self) -> float:
        return self.queue_delay_total / self.forwarded if self.forwarded else 0.0

    def copy(self) -> LinkStats:
        return replace(self)

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = asdict(self)
        out["dropped"] = self.dropped
        out["queue_delay_avg"] = self.queue_delay_avg
        return out

    def summary(self) -> str:
        return (
            f"rx={self.received} fwd={self.forwarded} drop loss/burst/queue="
            f"{self.dropped_loss}/{self.dropped_burst}/{self.dropped_queue} "
            f"dup={self.duplicated} held={self.held} reord={self.reordered} "
            f"qdelay avg/max={self.queue_delay_avg * 1e3:.1f}/{self.queue_delay_max * 1e3:.1f}ms"
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """Fate of one datagram: `drop` is set, or `deliveries` holds 1 (or 2 if duplicated) times."""

    seq: int
    deliveries: tuple[float, ...]
    drop: DropCause | None = None
    queue_delay: float = 0.0

    @property
    def dropped(self) -> bool:
        return self.drop is not None


class Retime(NamedTuple):
    """New delivery time of copy `copy` of datagram `seq` after a rate change."""

    seq: int
    copy: int
    when: float


@dataclass(slots=True)
class _Queued:
    seq: int
    wire: int
    start: float
    departure: float
    offsets: tuple[float, ...]
    holds: tuple[float, ...]
    chain_before: float


class ImpairmentModel:
    """I/O-free, deterministic link model; feed it datagram sizes and non-decreasing times."""

    def __init__(self, config: LinkConfig | None = None, seed: int | str = 0) -> None:
        self._cfg = config if config is not None else LinkConfig()
        base = str(seed)
        self._rng_loss = random.Random(f"{base}/loss")
        self._rng_burst = random.Random(f"{base}/burst")
        self._rng_jitter = random.Random(f"{base}/jitter")
        self._rng_reorder = random.Random(f"{base}/reorder")
        self._rng_dup = random.Random(f"{base}/duplicate")
        self._bad = False
        self._now = -math.inf
        self._seq = 0
        self._link_free = -math.inf
        self._backlog: deque[_Queued] = deque()
        self._backlog_bytes = 0
        self._chain = -math.inf  # latest in-order delivery time (FIFO mode)
        self._latest = -math.inf  # latest delivery time handed out
        self._stats = LinkStats()

    @property
    def config(self) -> LinkConfig:
        return self._cfg

    @property
    def stats(self) -> LinkStats:
        """Live counters."""
        return self._stats

    def process(self, size: int, now: float) -> Decision:
        """Decide the fate of a datagram of `size` bytes arriving at `now` (seconds)."""
        now = self._advance(now)
        cfg, st = self._cfg, self._stats
        seq = self._seq
        self._seq += 1
        st.received += 1
        st.bytes_received += size
        cause: DropCause | None = None
        if cfg.burst is not None and self._burst_lost(cfg.burst):
            cause = DropCause.BURST
        random_lost = cfg.loss > 0.0 and self._rng_loss.random() < cfg.loss
        if cause is None and random_lost:
            cause = DropCause.LOSS
        wire = size + cfg.overhead_bytes
        start = departure = now
        if cause is None and cfg.rate_kbps is not None:
            self._prune(now)
            start = max(now, self._link_free)
            if start > now and not self._has_room(cfg, wire, now):
                cause = DropCause.QUEUE
            departure = start + wire * 8.0 / (cfg.rate_kbps * 1000.0)
        if cause is not None:
            if cause is DropCause.BURST:
                st.dropped_burst += 1
            elif cause is DropCause.LOSS:
                st.dropped_loss += 1
            else:
                st.dropped_queue += 1
            return Decision(seq, (), cause)
        offsets, holds = self._draw_copies(cfg)
        deliveries, chain = self._times(departure, offsets, holds, self._chain)
        if cfg.rate_kbps is not None:
            self._link_free = departure
            self._backlog.append(_Queued(seq, wire, start, departure, offsets, holds, self._chain))
            self._backlog_bytes += wire
        self._chain = chain
        queue_delay = start - now
        st.forwarded += 1
        st.bytes_forwarded += size
        st.duplicated += len(deliveries) - 1
        st.held += holds[0] > 0.0
        st.reordered += deliveries[0] < self._latest
        st.queue_delay_total += queue_delay
        st.queue_delay_max = max(st.queue_delay_max, queue_delay)
        self._latest = max(self._latest, *deliveries)
        return Decision(seq, deliveries, None, queue_delay)

    def set_rate(self, kbps: float | None, now: float | None = None) -> list[Retime]:
        """Change the bottleneck rate (None = unlimited) at `now`.

        Datagrams still queued are re-timed as a real link would send them (the one being sent
        finishes its remaining bits at the new rate); their new delivery times are returned.
        """
        old = self._cfg.rate_kbps
        self._cfg = replace(self._cfg, rate_kbps=kbps)
        return self._retime(old, now)

    def update(self, now: float | None = None, **changes: Any) -> list[Retime]:
        """Replace config fields (LinkConfig names); a rate change re-times the queue."""
        old = self._cfg.rate_kbps
        self._cfg = replace(self._cfg, **changes)
        if self._cfg.burst is None:
            self._bad = False
        return self._retime(old, now) if "rate_kbps" in changes else []

    def _advance(self, now: float) -> float:
        if now > self._now:  # also ignores NaN
            self._now = now
        return self._now

    def _burst_lost(self, ge: GilbertElliott) -> bool:
        rng = self._rng_burst
        lost = rng.random() < (ge.loss_bad if self._bad else ge.loss_good)
        if self._bad:
            self._bad = not rng.random() < ge.r
        else:
            self._bad = rng.random() < ge.p
        return lost

    def _prune(self, now: float) -> None:
        q = self._backlog
        while q and q[0].departure <= now:
            self._backlog_bytes -= q.popleft().wire

    def _has_room(self, cfg: LinkConfig, wire: int, now: float) -> bool:
        q = self._backlog
        sending = q[0] if q and q[0].start <= now else None
        waiting = len(q) - (sending is not None)
        waiting_bytes = self._backlog_bytes - (sending.wire if sending is not None else 0)
        limit_p, limit_b = cfg.queue_packets, cfg.queue_bytes
        if limit_p is None and limit_b is None:
            limit_p = DEFAULT_QUEUE_PACKETS
        if limit_p is not None and waiting >= limit_p:
            return False
        return limit_b is None or waiting_bytes + wire <= limit_b

    def _one_way(self, cfg: LinkConfig) -> float:
        delay = cfg.delay_ms / 1000.0
        if cfg.jitter_ms > 0.0:
            j = cfg.jitter_ms / 1000.0
            if cfg.jitter_dist == "normal":
                delay += self._rng_jitter.gauss(0.0, j)
            else:
                delay += self._rng_jitter.uniform(-j, j)
        return max(0.0, delay)

    def _draw_copies(self, cfg: LinkConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
        copies = 2 if cfg.duplicate > 0.0 and self._rng_dup.random() < cfg.duplicate else 1
        held = cfg.reorder > 0.0 and self._rng_reorder.random() < cfg.reorder
        hold = cfg.reorder_ms / 1000.0 if held else 0.0
        offsets = tuple(self._one_way(cfg) for _ in range(copies))
        return offsets, (hold,) + (0.0,) * (copies - 1)

    def _times(
        self, departure: float, offsets: Iterable[float], holds: Iterable[float], chain: float
    ) -> tuple[tuple[float, ...], float]:
        fifo = not self._cfg.allow_reorder
        out = []
        for offset, hold in zip(offsets, holds, strict=True):
            t = departure + offset
            if fifo:
                t = max(t, chain)
                if hold == 0.0:
                    chain = t
            out.append(t + hold)
        return tuple(out), chain

    def _retime(self, old: float | None, now: float | None) -> list[Retime]:
        new = self._cfg.rate_kbps
        t = self._now if now is None else self._advance(now)
        self._prune(t)
        q = self._backlog
        if old is None or old == new or not q:
            if new is None:
                q.clear()
                self._backlog_bytes = 0
                self._link_free = -math.inf
            return []
        free = t
        for e in q:
            if e.start <= t:  # being sent: remaining bits go out at the new rate
                e.departure = t + ((e.departure - t) * old / new if new is not None else 0.0)
            else:
                e.start = free
                e.departure = free + (e.wire * 8.0 / (new * 1000.0) if new is not None else 0.0)
            free = e.departure
        out: list[Retime] = []
        chain = q[0].chain_before
        for e in q:
            e.chain_before = chain
            times, chain = self._times(e.departure, e.offsets, e.holds, chain)
            out.extend(Retime(e.seq, i, when) for i, when in enumerate(times))
        self._chain = chain
        if new is None:
            q.clear()
            self._backlog_bytes = 0
            self._link_free = -math.inf
        else:
            self._link_free = free
        return out
