"""How much FEC a sender adds: the one redundancy policy (sans-I/O, sender side).

Fed with the receiver's feedback (after the congestion controller saw it) and with the frames
sent, it answers the FEC group shape `(k, m)` for the next datagrams. See docs/rate-control.md,
"FEC redundancy".

- The redundancy *ratio* (parity bytes per media byte) starts at `base_ratio`, grows
  ×`growth` (at most every `increase_interval_s`, up to `max_ratio`) when losses coincide with
  congestion beyond what the path's random loss explains, decays toward the base while the
  path is STABLE, and never falls below `loss_multiplier` × the random loss.
- The *parity count* per group follows the loss bursts: runs of consecutive lost ids seen
  outside congestion over `burst_window_s`, their `burst_quantile` length once `burst_min_runs`
  were seen (at least `expected_burst`, at most `max_burst_fraction` of an ordinary frame). A
  clean path that loses nothing gets one parity per group.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from wavry.rift.chunking import MAX_GROUP_SHARDS
from wavry.rift.congestion import CongestionDecision, CongestionState, FeedbackArrivals

__all__ = ["FecParams", "RedundancyPolicy", "RedundancyTunables", "fec_params_for_ratio"]

_MAX_LOSS_RUNS = 1024


@dataclass(frozen=True, slots=True)
class RedundancyTunables:
    base_ratio: float = 0.05
    max_ratio: float = 0.5
    growth: float = 1.5
    increase_interval_s: float = 0.5
    decay_tau_s: float = 3.0
    #: the ratio never falls below this × the smoothed *random* loss; 0 disables
    loss_multiplier: float = 2.0
    #: a batch's losses count as congestion loss only above what the random loss explains:
    #: lost > expected + sigmas × sqrt(expected) + 1, expected = random loss × batch size
    loss_sigmas: float = 3.0
    max_update_dt_s: float = 0.2
    burst_window_s: float = 10.0
    burst_quantile: float = 0.9
    burst_min_runs: int = 8
    #: parities a group carries at least on a lossy path (any burst this long is repaired)
    expected_burst: int = 2
    #: ... and at most this fraction of an ordinary frame's datagrams (RIFT §8: at most 50 %)
    max_burst_fraction: float = 0.5
    max_group_shards: int = 32
    #: a smoothed loss below this on a clean path: one parity per group
    loss_free: float = 0.001
    #: smoothing of the datagrams per ordinary frame
    frame_size_alpha: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.base_ratio <= self.max_ratio <= 1 or self.growth < 1:
            raise ValueError("need 0 < base_ratio <= max_ratio <= 1 and growth >= 1")
        if not 0 < self.burst_quantile <= 1 or self.burst_window_s <= 0 or self.burst_min_runs < 1:
            raise ValueError(
                "need 0 < burst_quantile <= 1, burst_window_s > 0, burst_min_runs >= 1"
            )
        if not 1 <= self.max_group_shards <= MAX_GROUP_SHARDS or self.expected_burst < 1:
            raise ValueError(f"need 1 <= max_group_shards <= {MAX_GROUP_SHARDS}, burst >= 1")


@dataclass(frozen=True)
class FecParams:
    k: int
    m: int

    @property
    def redundancy(self) -> float:
        return self.m / self.k


def fec_params_for_ratio(
    ratio: float, expected_burst: int = 1, max_group_shards: int = 32
) -> FecParams:
    """``(k, m)`` for a redundancy ``ratio`` (parities per data datagram): ``m`` covers the
    expected loss burst, ``k = round(m / ratio)`` bounded to ``m .. max_group_shards``."""
    if ratio <= 0:
        raise ValueError(f"ratio must be positive, got {ratio}")
    max_group_shards = max(1, min(max_group_shards, MAX_GROUP_SHARDS))
    m = max(1, min(expected_burst, max_group_shards))
    k = max(m, min(max_group_shards, round(m / ratio)))
    return FecParams(k=k, m=m)


class RedundancyPolicy:
    def __init__(self, tunables: RedundancyTunables | None = None) -> None:
        self.tunables = t = tunables if tunables is not None else RedundancyTunables()
        self._ratio = t.base_ratio
        self._last_increase = -math.inf
        self._last_update: float | None = None
        # (when, length) of closed loss runs; bounded, so heavy loss on a fast link does not
        # make loss_burst() sort tens of thousands of runs
        self._runs: deque[tuple[float, int]] = deque(maxlen=_MAX_LOSS_RUNS)
        self._open_run = 0  # lost ids in a row at the end of the last report
        self._prev_id: int | None = None
        self._burst: int | None = None  # loss_burst() of the current runs
        self._frame_datagrams = 0.0  # smoothed datagrams per ordinary (non-key) frame

    @property
    def ratio(self) -> float:
        """Parity bytes per media byte the policy aims at now."""
        return self._ratio

    @property
    def frame_datagrams(self) -> float:
        return self._frame_datagrams

    def on_frame(self, datagrams: int, keyframe: bool) -> None:
        """A frame of `datagrams` data datagrams is being sent."""
        if not keyframe:
            alpha = self.tunables.frame_size_alpha
            self._frame_datagrams += alpha * (datagrams - self._frame_datagrams)

    def on_feedback(
        self, arrivals: FeedbackArrivals, decision: CongestionDecision, now: float
    ) -> None:
        """One feedback report, with the congestion controller's decision after it."""
        t = self.tunables
        lost = received = 0
        runs: list[int] = []
        run = self._open_run
        prev = self._prev_id
        for packet_id, arrival in arrivals:
            if prev is None or packet_id != prev + 1:
                run = 0  # a hole in what we can judge: a run across it is unknown
            prev = packet_id
            if arrival is None:
                lost += 1
                run += 1
            else:
                received += 1
                if run:
                    runs.append(run)
                    run = 0
        self._prev_id = prev
        self._open_run = run
        if not lost and not received:
            return
        if decision.state is CongestionState.STABLE and runs:
            # bursts of a lossy link; a full bottleneck queue's drops are congestion's business
            self._runs.extend((now, n) for n in runs)
            self._burst = None
        expected = decision.random_loss_fraction * (lost + received)
        congestion_loss = lost > expected + t.loss_sigmas * math.sqrt(expected) + 1
        ratio = self._ratio
        last = self._last_update
        self._last_update = now
        if decision.state is CongestionState.CONGESTED and congestion_loss:
            if now - self._last_increase >= t.increase_interval_s:
                ratio = min(t.max_ratio, max(ratio, t.base_ratio, 0.01) * t.growth)
                self._last_increase = now
        elif decision.state is CongestionState.STABLE and last is not None:
            dt = min(max(now - last, 0.0), t.max_update_dt_s)
            ratio = t.base_ratio + (ratio - t.base_ratio) * math.exp(-dt / t.decay_tau_s)
        floor = min(t.max_ratio, t.loss_multiplier * decision.random_loss_fraction)
        self._ratio = max(ratio, floor)

    def loss_burst(self, now: float) -> int:
        """The run length of lost consecutive packets that covers `burst_quantile` of the loss
        bursts seen outside congestion in the last `burst_window_s` (1 until `burst_min_runs`
        were seen)."""
        t = self.tunables
        runs = self._runs
        while runs and now - runs[0][0] > t.burst_window_s:
            runs.popleft()
            self._burst = None
        if self._burst is None:  # asked on every decision: sort only on change
            if len(runs) < t.burst_min_runs:
                self._burst = 1
            else:
                lengths = sorted(n for _, n in runs)
                self._burst = lengths[max(0, math.ceil(t.burst_quantile * len(lengths)) - 1)]
        return self._burst

    def params(self, now: float, decision: CongestionDecision, *, clean: bool) -> FecParams:
        """The group shape for what is sent next. `clean`: the sender judges the path clean.

        Interleaved XOR with `m` parities repairs any run of up to `m` consecutive losses, so on
        a link that drops runs of 3–6 datagrams `m = 2` loses the frame (burst-3pct: 0.90 of
        frames on time with m = 2, see docs/rate-control.md)."""
        t = self.tunables
        if clean and decision.loss_fraction < t.loss_free:
            # one parity per group on a clean path that loses nothing (any single loss is still
            # repaired): 8 % less bandwidth on a 12-datagram frame; losses bring bursts back
            burst = 1
        else:
            cap = max(t.expected_burst, int(t.max_burst_fraction * self._frame_datagrams))
            burst = max(t.expected_burst, min(self.loss_burst(now), cap))
        return fec_params_for_ratio(self._ratio, burst, t.max_group_shards)
