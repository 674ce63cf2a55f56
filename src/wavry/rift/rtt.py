"""Round-trip and one-way-delay helpers shared by the sender and the receiver (sans-I/O).

`WindowedMin` keeps the minimum of a signal over a time window (DELTA's base delay, the
receiver's base transit); `RttSpikeDetector` is the client's request to skip frames on a sudden
RTT spike (`EncoderControl`, RIFT §8).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from wavry.rift import rift_pb2

__all__ = ["CLOCK_STEP_S", "RttSpikeDetector", "RttSpikeTunables", "WindowedMin"]

#: a one-way transit (receiver clock minus a sender wall-clock timestamp) that moves by more
#: than this between media units is a step of the sender's wall clock, not network delay:
#: receivers restart what they measured against the old clock
CLOCK_STEP_S = 1.0


class WindowedMin:
    """Minimum of the samples of the last `window_s` seconds, kept in `buckets` time buckets.

    Memory is bounded by the bucket count; a sample leaves the window between `window_s` and
    `window_s + window_s / buckets` after it was recorded. The minimum is kept up to date as
    samples come and buckets leave (read several times per video frame).
    """

    def __init__(self, window_s: float, buckets: int = 10) -> None:
        if window_s <= 0 or buckets < 1:
            raise ValueError("window_s must be > 0 and buckets >= 1")
        self._window_s = window_s
        self._bucket_s = window_s / buckets
        self._buckets: deque[tuple[float, float]] = deque()  # (bucket start, minimum)
        self._min: float | None = None
        #: when the oldest bucket leaves the window
        self._expires_at = math.inf

    def update(self, value: float, now: float) -> None:
        if now >= self._expires_at:
            self._expire(now)
        buckets = self._buckets
        if buckets and now < buckets[-1][0] + self._bucket_s:
            start, minimum = buckets[-1]
            if value < minimum:
                buckets[-1] = (start, value)
        else:
            buckets.append((now, value))
            if len(buckets) == 1:
                self._expires_at = now + self._bucket_s + self._window_s
        current = self._min
        if current is None or value < current:
            self._min = value

    def reset(self) -> None:
        """Forget every sample (e.g. after a clock step made them meaningless)."""
        self._buckets.clear()
        self._min = None
        self._expires_at = math.inf

    def get(self, now: float) -> float | None:
        if now >= self._expires_at:
            self._expire(now)
        return self._min

    def _expire(self, now: float) -> None:
        buckets = self._buckets
        bucket_s, window_s = self._bucket_s, self._window_s
        while buckets and buckets[0][0] + bucket_s + window_s <= now:
            buckets.popleft()
        if buckets:
            self._expires_at = buckets[0][0] + bucket_s + window_s
            self._min = min(minimum for _, minimum in buckets)
        else:
            self._expires_at = math.inf
            self._min = None


@dataclass(frozen=True)
class RttSpikeTunables:
    window_s: float = 10.0
    #: a spike is an RTT above ratio × the windowed minimum AND above it by min_excess_ms
    ratio: float = 2.0
    min_excess_ms: float = 20.0
    #: excess at or above which two frames are skipped instead of one
    severe_excess_ms: float = 50.0
    cooldown_s: float = 1.0


class RttSpikeDetector:
    """Client side: asks the host to skip 1–2 frames (`EncoderControl`) on a sudden RTT spike."""

    def __init__(self, tunables: RttSpikeTunables | None = None) -> None:
        self.tunables = tunables if tunables is not None else RttSpikeTunables()
        self._min = WindowedMin(self.tunables.window_s)
        self._last_spike = -math.inf
        self.spikes = 0

    def base_rtt_s(self, now: float) -> float | None:
        return self._min.get(now)

    def on_rtt(self, rtt_s: float, now: float) -> int:
        """Frames to skip (0, 1 or 2) for this RTT sample."""
        t = self.tunables
        base = self._min.get(now)
        self._min.update(rtt_s, now)
        if base is None or now < self._last_spike + t.cooldown_s:
            return 0
        excess_ms = (rtt_s - base) * 1000
        if rtt_s <= t.ratio * base or excess_ms <= t.min_excess_ms:
            return 0
        self._last_spike = now
        self.spikes += 1
        return 2 if excess_ms >= t.severe_excess_ms else 1

    def encoder_control(self, rtt_s: float, now: float) -> rift_pb2.EncoderControl | None:
        """`on_rtt` as the message to send (None when no frames should be skipped)."""
        skip = self.on_rtt(rtt_s, now)
        return rift_pb2.EncoderControl(skip_frames=skip) if skip else None
