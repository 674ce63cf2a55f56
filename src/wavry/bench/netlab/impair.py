"""Userspace UDP impairment: a deterministic link model and an asyncio proxy.

`ImpairmentModel` decides, without any I/O, what a link does to each datagram (loss, burst loss,
delay, jitter, reordering, duplication, rate limit with a drop-tail queue). `ImpairmentProxy`
applies one model per direction to real UDP traffic between one client and one upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import random
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
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


@dataclass(slots=True)
class ProxyStats:
    """Snapshot of an ImpairmentProxy: per-direction link counters plus proxy counters."""

    up: LinkStats
    down: LinkStats
    sent_up: int = 0
    sent_down: int = 0
    overflow: int = 0  # dropped because the pending-delivery cap was reached
    send_errors: int = 0  # socket errors on send or reported by the kernel (e.g. ICMP)
    ignored: int = 0  # not forwarded: looped-back source, or reply with no client known
    client_changes: int = 0
    pending: int = 0

    def summary(self) -> str:
        return (
            f"up: {self.up.summary()} sent={self.sent_up} | "
            f"down: {self.down.summary()} sent={self.sent_down} | "
            f"pending={self.pending} overflow={self.overflow} errors={self.send_errors} "
            f"ignored={self.ignored} client_changes={self.client_changes}"
        )


@dataclass(slots=True, eq=False)
class _Pending:
    key: tuple[Direction, int, int]
    data: bytes
    dead: bool = False


class _Side(asyncio.DatagramProtocol):
    def __init__(
        self, on_data: Callable[[bytes, Address], None], on_error: Callable[[Exception], None]
    ) -> None:
        self._on_data = on_data
        self._on_error = on_error

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._on_data(data, addr)

    def error_received(self, exc: Exception) -> None:
        self._on_error(exc)


def _tune(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, opt, _SOCK_BUF)


def _directions(direction: DirectionArg) -> tuple[Direction, ...]:
    if direction == "both":
        return ("up", "down")
    if direction in ("up", "down"):
        return (direction,)
    raise ValueError(f"direction must be 'up', 'down' or 'both', got {direction!r}")


class ImpairmentProxy:
    """UDP proxy: client ↔ `listen` ↔ (impairments) ↔ `upstream`.

    Replies go to the most recent client source address. Only the upstream and that client are
    ever sent to. The direction models are seeded with f"{seed}/up" and f"{seed}/down".
    Works with the default asyncio loop and uvloop; timers have ~1 ms precision, and datagrams
    that a link does not delay are forwarded at once.
    """

    def __init__(
        self,
        listen: tuple[str, int],
        upstream: tuple[str, int],
        up: LinkConfig | None = None,
        down: LinkConfig | None = None,
        *,
        seed: int = 0,
        max_pending: int = 65536,
        max_pending_bytes: int = 64 * 1024 * 1024,
        max_send_buffer: int = 4 * 1024 * 1024,
    ) -> None:
        self._listen = (listen[0], int(listen[1]))
        self._upstream = (upstream[0], int(upstream[1]))
        self._models: dict[Direction, ImpairmentModel] = {
            "up": ImpairmentModel(up, f"{seed}/up"),
            "down": ImpairmentModel(down, f"{seed}/down"),
        }
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._max_send_buffer = max_send_buffer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client_tr: asyncio.DatagramTransport | None = None
        self._up_tr: asyncio.DatagramTransport | None = None
        self._own: set[Address] = set()
        self._client: Address | None = None
        self._heap: list[tuple[float, int, int, int, _Pending]] = []
        self._live: dict[tuple[Direction, int, int], _Pending] = {}
        self._live_dir: dict[Direction, int] = {"up": 0, "down": 0}
        self._pending_bytes = 0
        self._tick = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._closed = False
        self._c = ProxyStats(LinkStats(), LinkStats())

    async def __aenter__(self) -> ImpairmentProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind the listen socket and connect the upstream socket."""
        if self._loop is not None:
            raise RuntimeError("proxy already started")
        self._loop = asyncio.get_running_loop()
        try:
            await self._open_upstream()
            tr, _ = await self._loop.create_datagram_endpoint(
                lambda: _Side(self._from_client, self._on_error), local_addr=self._listen
            )
            self._client_tr = tr
            _tune(tr)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop forwarding, drop pending datagrams and close the sockets (idempotent)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        self._live.clear()
        self._pending_bytes = 0
        self._live_dir = {"up": 0, "down": 0}
        for tr in (self._client_tr, self._up_tr):
            if tr is not None:
                tr.close()
        if self._loop is not None:
            await asyncio.sleep(0)

    async def rebind(self) -> Address:
        """Open a new upstream socket (new source port, like a NAT rebinding); return it."""
        if self._loop is None or self._closed:
            raise RuntimeError("proxy not running")
        old = self._up_tr
        await self._open_upstream()
        if old is not None:
            old.close()
        return self.upstream_local

    @property
    def address(self) -> tuple[str, int]:
        """Bound listen address (host, port)."""
        if self._client_tr is None:
            raise RuntimeError("proxy not started")
        name = self._client_tr.get_extra_info("sockname")
        return (name[0], name[1])

    @property
    def upstream_local(self) -> tuple[str, int]:
        """Local address of the upstream-facing socket (what the upstream sees)."""
        if self._up_tr is None:
            raise RuntimeError("proxy not started")
        name = self._up_tr.get_extra_info("sockname")
        return (name[0], name[1])

    @property
    def client(self) -> Address | None:
        """Most recent client source address."""
        return self._client

    @property
    def stats(self) -> ProxyStats:
        return replace(
            self._c,
            up=self._models["up"].stats.copy(),
            down=self._models["down"].stats.copy(),
            pending=len(self._live),
        )

    def model(self, direction: Direction) -> ImpairmentModel:
        return self._models[direction]

    def set_rate(self, direction: DirectionArg, kbps: float | None) -> None:
        """Change the rate limit now (None = unlimited); queued datagrams are re-timed."""
        for d in _directions(direction):
            self._apply(d, self._models[d].set_rate(kbps, time.monotonic()))

    def update(self, direction: DirectionArg, **changes: Any) -> None:
        """Change LinkConfig fields of one or both directions now."""
        for d in _directions(direction):
            self._apply(d, self._models[d].update(time.monotonic(), **changes))

    async def _open_upstream(self) -> None:
        assert self._loop is not None
        tr, _ = await self._loop.create_datagram_endpoint(
            lambda: _Side(self._from_upstream, self._on_error), remote_addr=self._upstream
        )
        _tune(tr)
        self._up_tr = tr
        for key in ("peername", "sockname"):
            name = tr.get_extra_info(key)
            if name:
                self._own.add(tuple(name[:2]))

    def _from_client(self, data: bytes, addr: Address) -> None:
        if self._closed:
            return
        if not isinstance(addr, tuple) or tuple(addr[:2]) in self._own:
            self._c.ignored += 1
            return
        if addr != self._client:
            self._c.client_changes += self._client is not None
            self._client = addr
        self._admit("up", data)

    def _from_upstream(self, data: bytes, addr: Address) -> None:
        if self._closed:
            return
        if self._client is None:
            self._c.ignored += 1
            return
        self._admit("down", data)

    def _on_error(self, exc: Exception) -> None:
        self._c.send_errors += 1

    def _admit(self, direction: Direction, data: bytes) -> None:
        now = time.monotonic()
        decision = self._models[direction].process(len(data), now)
        for copy, when in enumerate(decision.deliveries):
            if when <= now and self._live_dir[direction] == 0:
                self._send(direction, data)
            else:
                self._enqueue((direction, decision.seq, copy), when, data)
        if self._heap and self._heap[0][0] <= now:
            self._run_due()

    def _enqueue(self, key: tuple[Direction, int, int], when: float, data: bytes) -> None:
        if (
            len(self._live) >= self._max_pending
            or self._pending_bytes + len(data) > self._max_pending_bytes
        ):
            self._c.overflow += 1
            return
        self._live_dir[key[0]] += 1
        self._pending_bytes += len(data)
        self._push(_Pending(key, data), when)

    def _push(self, p: _Pending, when: float) -> None:
        self._live[p.key] = p
        heapq.heappush(self._heap, (when, p.key[1], p.key[2], next(self._tick), p))
        self._arm(when)

    def _apply(self, direction: Direction, retimes: list[Retime]) -> None:
        for seq, copy, when in retimes:
            old = self._live.get((direction, seq, copy))
            if old is not None:
                old.dead = True
                self._push(_Pending(old.key, old.data), when)

    def _arm(self, when: float) -> None:
        if self._loop is None or self._closed or when >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, when - time.monotonic())
        self._timer = self._loop.call_at(self._loop.time() + delay, self._on_timer)
        self._timer_at = when

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._run_due()

    def _run_due(self) -> None:
        heap = self._heap
        limit = time.monotonic() + _SLACK
        while heap and (heap[0][4].dead or heap[0][0] <= limit):
            p = heapq.heappop(heap)[4]
            if p.dead:
                continue
            del self._live[p.key]
            self._live_dir[p.key[0]] -= 1
            self._pending_bytes -= len(p.data)
            self._send(p.key[0], p.data)
        if heap:
            self._arm(heap[0][0])

    def _send(self, direction: Direction, data: bytes) -> None:
        if self._closed:
            return
        if direction == "up":
            tr, dest = self._up_tr, None
        else:
            tr, dest = self._client_tr, self._client
            if dest is None:
                self._c.ignored += 1
                return
        if tr is None or tr.is_closing():
            self._c.send_errors += 1
            return
        try:
            backlog = getattr(tr, "get_write_buffer_size", lambda: 0)()
            if backlog > self._max_send_buffer:
                self._c.overflow += 1
                return
            tr.sendto(data, dest)
        except (OSError, RuntimeError, ValueError, TypeError):
            self._c.send_errors += 1
            return
        if direction == "up":
            self._c.sent_up += 1
        else:
            self._c.sent_down += 1
