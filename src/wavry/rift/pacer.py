"""Datagram pacing (sender side): spread each frame's datagrams instead of bursting them.

Sans-I/O token bucket: time is a `now` argument in seconds. Latency first: a frame that is
still queued a frame interval after it was enqueued is dropped as a whole when a newer frame
arrives (never queued behind it). What the pacer queues are the frame's *unsealed* payloads:
the sender seals each one (spending its packet id) only when the pacer releases it, so a
dropped frame spends no ids. Datagrams that go out at once (control, input, NACK resends, FEC
parities) never wait here; the sender `charge`s their bytes to the bucket so queued media
after them is spaced accordingly.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Pacer", "PacerConfig"]

_EPS_BYTES = 1e-6
_CLOCK_STEP_S = 1.0


@dataclass(frozen=True)
class PacerConfig:
    """Pacing tunables."""

    #: base pacing rate = target bitrate × this
    pacing_factor: float = 2.5
    #: ... raised so that the queued media drains within this fraction of a frame interval
    frame_drain_fraction: float = 0.5
    #: hard cap on the pacing rate (kbit/s)
    max_rate_kbps: float = 300_000.0
    #: bucket depth: this many full datagrams may leave back to back after an idle period
    burst_datagrams: int = 4
    #: ... and this many bytes while the path is clean (`set_clean_path`): a whole ordinary
    #: frame then leaves in one batch (one GSO send) instead of being spread by timers
    clean_burst_bytes: int = 64_000
    max_datagram_bytes: int = 1400
    #: bytes a queued payload gains on the wire when it is sealed (header and AEAD tag)
    datagram_overhead: int = 0
    #: a queued frame older than this many frame intervals is dropped when a newer one arrives
    stale_after_intervals: float = 1.0

    def __post_init__(self) -> None:
        if self.pacing_factor <= 0 or not 0 < self.frame_drain_fraction <= 1:
            raise ValueError("need pacing_factor > 0 and 0 < frame_drain_fraction <= 1")
        if self.max_rate_kbps <= 0 or self.burst_datagrams < 1 or self.max_datagram_bytes < 1:
            raise ValueError("max_rate_kbps, burst_datagrams, max_datagram_bytes must be > 0")
        if self.clean_burst_bytes < 0 or self.datagram_overhead < 0:
            raise ValueError("clean_burst_bytes and datagram_overhead must be >= 0")


@dataclass
class _Frame:
    enqueued_at: float
    droppable: bool
    datagrams: deque[bytes] = field(default_factory=deque)
    #: the caller's note about the frame, handed back with each of its payloads (Any, not
    #: object: mypyc's dataclass support cannot resolve a field annotated `object`)
    tag: Any = None


class Pacer:
    """Token-bucket pacer for media frames.

    The pacing rate is `min(max_rate, max(target × pacing_factor, queued media bytes /
    (frame_drain_fraction × frame interval)))`, recomputed whenever a frame is enqueued or the
    target changes. The bucket holds `burst_datagrams` full datagrams, so the start of a frame on
    an idle path leaves at once. Bytes sent outside the pacer are `charge`d to the bucket (down
    to minus one bucket).
    """

    def __init__(
        self, config: PacerConfig | None = None, bitrate_kbps: float = 10_000.0, fps: float = 60.0
    ) -> None:
        self.config = config if config is not None else PacerConfig()
        self._capacity = float(self.config.burst_datagrams * self.config.max_datagram_bytes)
        self._tokens = self._capacity
        self._target_kbps = 0.0
        self._fps = 60.0
        self._rate_bps = 0.0  # bytes per second
        self._now: float | None = None
        self._frames: deque[_Frame] = deque()
        self._queued_bytes = 0
        self._overhead = self.config.datagram_overhead
        self._clean_drain: float | None = None
        self._clean_burst = False
        self._cap_bps: float | None = None
        self._frame_cap_bps: float | None = None
        self.dropped_frames = 0
        self.dropped_datagrams = 0
        self.set_target(bitrate_kbps, fps)

    # ----------------------------------------------------------------- state
    @property
    def pacing_rate_kbps(self) -> float:
        return self._rate_bps * 8 / 1000

    @property
    def frame_interval_s(self) -> float:
        return 1 / self._fps

    @property
    def queued_datagrams(self) -> int:
        return sum(len(frame.datagrams) for frame in self._frames)

    @property
    def queued_bytes(self) -> int:
        """Media bytes waiting (as they will be on the wire)."""
        return self._queued_bytes

    # ----------------------------------------------------------------- inputs
    def set_target(self, bitrate_kbps: float, fps: float) -> None:
        """Follow a new encoder target (e.g. a `DeltaDecision`)."""
        if bitrate_kbps < 0 or fps <= 0:
            raise ValueError("need bitrate_kbps >= 0 and fps > 0")
        self._target_kbps = bitrate_kbps
        self._fps = fps
        self._recompute_rate()

    def set_clean_path(self, drain_fraction: float | None, *, burst: bool = True) -> None:
        """While the path shows no queueing (DELTA says so), drain each frame within this
        fraction of a frame interval instead of `frame_drain_fraction`, and let the bucket hold
        `clean_burst_bytes` (an ordinary frame leaves at once; ``burst=False``: not, e.g. on a
        path with a known bottleneck): pacing only protects a bottleneck queue, and spreading a
        frame on a clean path is pure added latency. None restores the normal pacing (and
        bucket depth)."""
        if drain_fraction is not None and not 0 < drain_fraction <= 1:
            raise ValueError("need 0 < drain_fraction <= 1")
        self._clean_drain = drain_fraction
        self._clean_burst = burst and drain_fraction is not None
        if not self._clean_burst:
            self._tokens = min(self._tokens, self._capacity)
        self._recompute_rate()

    def set_rate_cap(self, kbps: float | None, frame_kbps: float | None = None) -> None:
        """Never pace non-droppable media (keyframes, bulk data) faster than this — the path's
        estimated capacity: a keyframe on a known bottleneck then leaves at the link's rate
        instead of overflowing its queue (the sender skips encoding frames meanwhile, see
        `backlog_s`). Ordinary frames keep the normal rate: at the cap, a frame of the target
        bitrate would take a whole frame interval to leave; ``frame_kbps`` (if given, e.g. 1.5×
        the capacity) caps them, so a frame's burst never queues more than a fraction of its own
        duration at the bottleneck. None removes the caps."""
        if (kbps is not None and kbps <= 0) or (frame_kbps is not None and frame_kbps <= 0):
            raise ValueError("need kbps > 0")
        self._cap_bps = None if kbps is None else kbps * 1000 / 8
        self._frame_cap_bps = None if frame_kbps is None else frame_kbps * 1000 / 8
        self._recompute_rate()

    @property
    def clean_path(self) -> bool:
        """Whether clean-path pacing (`set_clean_path`) is on."""
        return self._clean_drain is not None

    @property
    def rate_cap_kbps(self) -> float | None:
        return None if self._cap_bps is None else self._cap_bps * 8 / 1000

    def backlog_s(self) -> float:
        """Time the queued media needs to leave at the current pacing rate."""
        if self._queued_bytes <= 0:
            return 0.0
        rate = self._effective_rate()
        if rate <= 0:
            return math.inf
        return max(0.0, self._queued_bytes - max(self._tokens, 0.0)) / rate

    def _effective_rate(self) -> float:
        if not self._frames:
            return self._rate_bps
        cap = self._frame_cap_bps if self._frames[0].droppable else self._cap_bps
        return self._rate_bps if cap is None else min(self._rate_bps, cap)

    def enqueue(
        self,
        payloads: Iterable[bytes],
        now: float,
        *,
        droppable: bool = True,
        tag: object = None,
    ) -> int:
        """Queue the payloads of one frame; returns how many queued frames were dropped.

        Queued frames older than `stale_after_intervals` frame intervals are dropped first
        (whole frames, even if partly sent), unless they were enqueued with `droppable=False`
        (e.g. a keyframe the session must not lose).
        """
        self._advance(now)
        stale_age = self.config.stale_after_intervals / self._fps
        dropped = 0
        if self._frames:
            kept: deque[_Frame] = deque()
            for frame in self._frames:
                if frame.droppable and now > frame.enqueued_at + stale_age:
                    dropped += 1
                    self.dropped_datagrams += len(frame.datagrams)
                    self._queued_bytes -= sum(len(d) for d in frame.datagrams) + (
                        self._overhead * len(frame.datagrams)
                    )
                else:
                    kept.append(frame)
            self._frames = kept
            self.dropped_frames += dropped
        frame = _Frame(now, droppable, deque(payloads), tag)
        if frame.datagrams:
            self._frames.append(frame)
            self._queued_bytes += sum(len(d) for d in frame.datagrams) + (
                self._overhead * len(frame.datagrams)
            )
        self._recompute_rate()
        return dropped

    def charge(self, nbytes: int, now: float) -> None:
        """Bytes that went out without waiting here (control, resends, parities)."""
        self._advance(now)
        self._tokens = max(self._tokens - nbytes, -self._capacity)

    # ----------------------------------------------------------------- outputs
    def pop_ready(self, now: float, limit: int | None = None) -> list[tuple[bytes, object, bool]]:
        """The queued payloads that may leave at `now` (at most `limit`), in order, each with
        its frame's tag and whether it is the last of its frame."""
        self._advance(now)
        out: list[tuple[bytes, object, bool]] = []
        frames = self._frames
        overhead = self._overhead
        capacity = self._capacity
        tokens = self._tokens
        while frames:
            frame = frames[0]
            queue = frame.datagrams
            if not queue:
                frames.popleft()
                continue
            size = len(queue[0]) + overhead
            if tokens + _EPS_BYTES < min(size, capacity):
                break
            if limit is not None and len(out) >= limit:
                break
            head = queue.popleft()
            tokens -= size
            self._queued_bytes -= size
            out.append((head, frame.tag, not queue))
        self._tokens = tokens
        while frames and not frames[0].datagrams:
            frames.popleft()
        return out

    def next_send_time(self) -> float | None:
        """When `pop_ready` will next return something; None when nothing is queued."""
        if self._now is None or not self._frames:
            return None
        head = self._frames[0].datagrams[0]
        deficit = min(len(head) + self._overhead, self._capacity) - self._tokens
        if deficit <= _EPS_BYTES:
            return self._now
        rate = self._effective_rate()
        if rate <= 0:
            return math.inf
        return self._now + deficit / rate

    # ----------------------------------------------------------------- internals
    def _advance(self, now: float) -> None:
        last = self._now
        if last is None or now <= last:
            # Callers pass times read a moment apart, not always in order: a time a little
            # older than the last one refills nothing (crediting it again later would burst).
            # A step back of more than _CLOCK_STEP_S is a clock that stepped (should a caller
            # use one): the reference moves to it, so refills resume from here instead of
            # freezing until the old time comes again.
            if last is None or last - now > _CLOCK_STEP_S:
                self._now = now
            return
        self._now = now
        limit = self._capacity
        if self._clean_burst:
            limit = max(limit, float(self.config.clean_burst_bytes))
        if self._frames:
            # backlogged: a late wake-up (a busy event loop) catches up on the schedule
            # instead of losing the sending time (and then dropping the frame as stale)
            limit = max(limit, float(self._queued_bytes))
        self._tokens = min(limit, self._tokens + (now - last) * self._effective_rate())

    def _recompute_rate(self) -> None:
        cfg = self.config
        base = self._target_kbps * 1000 / 8 * cfg.pacing_factor
        fraction = self._clean_drain if self._clean_drain is not None else cfg.frame_drain_fraction
        drain = self._queued_bytes / (fraction / self._fps)
        self._rate_bps = min(cfg.max_rate_kbps * 1000 / 8, max(base, drain))
