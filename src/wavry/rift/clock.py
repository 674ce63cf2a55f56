"""Clock-offset and RTT estimation from Ping/Pong (docs/spec/RIFT.md §6 "Clock offset")."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from wavry.rift.rtt import CLOCK_STEP_S


@dataclass(frozen=True)
class PingSample:
    rtt_s: float
    offset_s: float


class ClockOffsetEstimator:
    """Host-minus-client offset: `host_time` against the midpoint of the round trip, the median
    of the lowest-RTT samples of a recent window that are about as quick as the quickest
    (queueing inflates RTT asymmetrically, so the quickest round trips bound the offset best).
    A sample more than `CLOCK_STEP_S` away from the estimate means one of the wall clocks
    stepped (NTP): the older samples are dropped."""

    #: a sample counts only while its RTT is within this much of the quickest one's (× and +)
    RTT_SLACK = (1.5, 0.001)

    def __init__(self, window: int = 32, best: int = 3) -> None:
        self._samples: deque[PingSample] = deque(maxlen=window)
        self._best = best
        self.srtt_s: float | None = None
        self.min_rtt_s: float | None = None

    def add(self, sent_s: float, received_s: float, host_time_s: float) -> PingSample:
        rtt = max(0.0, received_s - sent_s)
        sample = PingSample(rtt, host_time_s - (sent_s + received_s) / 2.0)
        current = self.offset_s
        if current is not None and abs(sample.offset_s - current) > CLOCK_STEP_S:
            self._samples.clear()
        self._samples.append(sample)
        self.srtt_s = rtt if self.srtt_s is None else 0.875 * self.srtt_s + 0.125 * rtt
        self.min_rtt_s = rtt if self.min_rtt_s is None else min(self.min_rtt_s, rtt)
        return sample

    @property
    def offset_s(self) -> float | None:
        if not self._samples:
            return None
        best = sorted(self._samples, key=lambda s: s.rtt_s)[: self._best]
        # a slow round trip bounds the offset only to ± half of it: the first Ping of a session
        # can wait 200 ms in a host busy starting its stream, 100 ms off, and the median of two
        # samples is the worse one; it counts only next to samples about as quick as the best
        factor, extra = self.RTT_SLACK
        bound = best[0].rtt_s * factor + extra
        offsets = sorted(s.offset_s for s in best if s.rtt_s <= bound)
        return offsets[len(offsets) // 2]

    @property
    def samples(self) -> int:
        return len(self._samples)
