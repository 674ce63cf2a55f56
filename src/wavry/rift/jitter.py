"""Adaptive playout delay for complete video frames (receiver side).

Sans-I/O: times are seconds, `arrival_now`/`now` on the receiver clock and `sender_timestamp`
on the sender clock; only differences of transit times are used, so the clock offset cancels.

Policy: each frame's *lateness* is its transit time (arrival - sender timestamp) minus the
smallest transit time seen over `base_window_s`. The target delay is the `percentile` of the
lateness over the last `jitter_window_s`, 0 when that is below the clean threshold (a clean path
adds no delay at all) and never above `max_delay_ms`. The clean threshold is the larger of
`clean_threshold_ms` and `clean_interval_fraction` of the frame interval (the median gap between
sender timestamps): jitter of a quarter frame is invisible — a display shows frames on its own
refresh grid anyway — while holding every frame for it costs latency on every frame, and on a
busy host or client (two processes sharing two cores) scheduling alone reaches a few ms.
The target rises at once and falls back by `shrink_ms_per_s`. A frame is released at
`sender_timestamp + base transit + target` or on arrival if that moment has passed; frames are
released in sender-timestamp order and a frame older than one already released is dropped
(never presented after a newer one).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from wavry.rift.rtt import CLOCK_STEP_S, WindowedMin

__all__ = ["JitterBuffer", "JitterBufferConfig"]

FrameT = TypeVar("FrameT")

# the frame interval is the median of this many recent sender-timestamp gaps; longer gaps (a
# paused stream) are not frame intervals
_GAP_SAMPLES = 31
_MAX_GAP_S = 0.5


@dataclass(frozen=True)
class JitterBufferConfig:
    max_delay_ms: float = 10.0
    clean_threshold_ms: float = 2.5
    clean_interval_fraction: float = 0.25
    jitter_window_s: float = 2.0
    percentile: float = 0.9
    shrink_ms_per_s: float = 2.0
    base_window_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_delay_ms < 0 or self.clean_threshold_ms < 0 or self.shrink_ms_per_s <= 0:
            raise ValueError("delays must be >= 0 and shrink_ms_per_s > 0")
        if not 0 < self.percentile <= 1 or self.jitter_window_s <= 0 or self.base_window_s <= 0:
            raise ValueError("need 0 < percentile <= 1 and positive windows")
        if not 0 <= self.clean_interval_fraction <= 1:
            raise ValueError("need 0 <= clean_interval_fraction <= 1")


class _Entry(Generic[FrameT]):
    """A held frame, ordered by (sender timestamp, arrival sequence). A plain class: mypyc
    (wavry/native.py) cannot compile a generic dataclass with `order=True`."""

    __slots__ = ("frame", "ready_at", "sender_timestamp", "seq")

    def __init__(self, sender_timestamp: float, seq: int, ready_at: float, frame: FrameT) -> None:
        self.sender_timestamp = sender_timestamp
        self.seq = seq
        self.ready_at = ready_at
        self.frame = frame

    def __lt__(self, other: _Entry[FrameT]) -> bool:
        if self.sender_timestamp != other.sender_timestamp:
            return self.sender_timestamp < other.sender_timestamp
        return self.seq < other.seq


class JitterBuffer(Generic[FrameT]):
    """Holds complete frames for the adaptive playout delay (0 ms on a clean path, ≤ cap)."""

    def __init__(self, config: JitterBufferConfig | None = None, *, in_order: bool = False) -> None:
        """`in_order`: the caller pushes frames in decode order and every frame must be released
        (never reordered or dropped); only the playout delay adapts."""
        self.config = config if config is not None else JitterBufferConfig()
        self._in_order = in_order
        self._base = WindowedMin(self.config.base_window_s)
        self._lateness: deque[tuple[float, float]] = deque()  # (arrival, lateness s)
        #: the same lateness values, kept sorted (the percentile is read once per frame)
        self._lateness_sorted: list[float] = []
        self._target_s = 0.0
        self._last_target_update: float | None = None
        self._queue: list[_Entry[FrameT]] = []
        self._seq = 0
        self._last_released: float | None = None
        self._last_sender_ts: float | None = None
        self._gaps: deque[float] = deque(maxlen=_GAP_SAMPLES)
        self.dropped_late = 0

    @property
    def delay_ms(self) -> float:
        """Current target playout delay."""
        return self._target_s * 1000

    @property
    def frame_interval_s(self) -> float | None:
        """Median gap between consecutive sender timestamps (None before two frames)."""
        if not self._gaps:
            return None
        ordered = sorted(self._gaps)
        return ordered[len(ordered) // 2]

    @property
    def clean_threshold_s(self) -> float:
        """Lateness below this counts as a clean path (no delay)."""
        cfg = self.config
        interval = self.frame_interval_s or 0.0
        return max(cfg.clean_threshold_ms / 1000, cfg.clean_interval_fraction * interval)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def push(
        self, frame: FrameT, arrival_now: float, sender_timestamp: float, spread_s: float = 0.0
    ) -> bool:
        """Add a complete frame; False if it was dropped (older than a released frame).

        `sender_timestamp` is best the time the frame left the encoder (capture timestamp plus
        capture and encode durations), so encoder time variations do not count as jitter.
        `spread_s` is how long after its first chunk the frame became ready (the transport
        passes `now - first chunk arrival`): pacing out a big frame, a chunk repaired by NACK
        and waiting for the predecessor are not network jitter, so the spread is taken out of
        the lateness (frames are still ordered by `sender_timestamp`).
        """
        transit = arrival_now - sender_timestamp - max(0.0, spread_s)
        base = self._base.get(arrival_now)
        if base is not None and transit - base > CLOCK_STEP_S:
            # the sender's wall clock stepped back (its timestamps are wall clock): what was
            # measured against the old clock means nothing now
            self._base.reset()
            self._lateness.clear()
            self._lateness_sorted.clear()
            self._last_sender_ts = self._last_released = None
        last = self._last_sender_ts
        if last is not None and 0 < sender_timestamp - last < _MAX_GAP_S:
            self._gaps.append(sender_timestamp - last)
        if last is None or sender_timestamp > last:
            self._last_sender_ts = sender_timestamp
        self._base.update(transit, arrival_now)
        base = self._base.get(arrival_now)
        if base is None:  # unreachable: the sample was just recorded
            base = transit
        self._update_target(arrival_now, transit - base)
        ready_at = max(arrival_now, sender_timestamp + max(0.0, spread_s) + base + self._target_s)
        self._seq += 1
        if self._in_order:
            # The caller delivers frames in decode order (the frame assembler does). Sender
            # timestamps that include encode time may invert between neighbours (a slow encode
            # then a fast one); reordering or dropping then would break the reference chain.
            self._queue.append(_Entry(sender_timestamp, self._seq, ready_at, frame))
            return True
        if self._last_released is not None and sender_timestamp <= self._last_released:
            self.dropped_late += 1
            return False
        insort(self._queue, _Entry(sender_timestamp, self._seq, ready_at, frame))
        return True

    def pop_ready(self, now: float) -> list[FrameT]:
        """Frames to present (decode) at `now`, oldest first.

        A ready frame also releases every older queued frame, so the order never inverts.
        """
        last_ready = -1
        for index, entry in enumerate(self._queue):
            if entry.ready_at <= now + 1e-9:
                last_ready = index
        if last_ready < 0:
            return []
        released = self._queue[: last_ready + 1]
        del self._queue[: last_ready + 1]
        self._last_released = released[-1].sender_timestamp
        return [entry.frame for entry in released]

    def next_timer(self) -> float | None:
        """When `pop_ready` will next release a frame; None when the buffer is empty."""
        if not self._queue:
            return None
        return min(entry.ready_at for entry in self._queue)

    def _update_target(self, now: float, lateness_s: float) -> None:
        cfg = self.config
        window = self._lateness
        ordered = self._lateness_sorted
        window.append((now, lateness_s))
        insort(ordered, lateness_s)
        while window and window[0][0] < now - cfg.jitter_window_s:
            del ordered[bisect_left(ordered, window.popleft()[1])]
        index = min(len(ordered) - 1, max(0, round(cfg.percentile * len(ordered)) - 1))
        measured = ordered[index]
        if measured < self.clean_threshold_s:
            measured = 0.0
        measured = min(measured, cfg.max_delay_ms / 1000)
        last = self._last_target_update
        self._last_target_update = now
        if measured >= self._target_s:
            self._target_s = measured
        else:
            dt = 0.0 if last is None else max(0.0, now - last)
            shrunk = self._target_s - cfg.shrink_ms_per_s / 1000 * dt
            self._target_s = max(measured, shrunk)
