"""How much FEC a sender adds: the one redundancy policy (sans-I/O, sender side).

Parities are sized **per frame from the measured loss process** (docs/rate-control.md, "FEC
redundancy"):

- The receiver's `TransportFeedback` says which packet ids arrived. Over the last
  `window_s` the policy counts packets, losses and loss runs in every report that the congestion
  controller did not judge congested (drops at a full bottleneck queue are congestion's
  business: the rate falls, parity would only lengthen the queue) and fits a two-state Gilbert
  model: a good state that loses nothing, a bad state that loses everything, `r = 1 / mean run`,
  `p = loss · r / (1 − loss)`. Random loss is the special case of runs of ≈ 1.
- For a group of `n` data datagrams it picks the smallest `m` such that the chance of more than
  `m` losses among the `n + m` datagrams (a Reed–Solomon group survives any `m`) stays under
  the frame's target: `frame_target` for ordinary frames, the stricter `keyframe_target` for
  keyframes (every later frame depends on them), within `max_ratio · n` parities.
- An ordinary frame is depended on too: every later frame references it until the next
  keyframe, so a frame FEC cannot repair costs the frames shown until the keyframe it asks for
  arrives — about `2 + RTT / frame interval` of them (the rest of its own interval, the request's
  trip, the next frame's encoding, the keyframe's trip back; `failure_cost`). Its share of the
  budget is `frame_target / failure_cost`, so that frames lost *in all* stay under
  `frame_target` (the sender tells the cost with :meth:`RedundancyPolicy.set_failure_cost`;
  measured effect in docs/rate-control.md). The prior alone (no loss seen in the window) is not
  multiplied: a clean path pays nothing more.
- Before any report, a prior of `prior_loss` protects the first frames; on a path that loses
  nothing the estimate falls towards zero and ordinary frames carry no parity at all (a clean
  path pays almost nothing; a rare loss is NACKed).
- Parity is carved out of the media budget: the sender tells the congestion controller the
  overhead it sends, and the encoder's target is the send rate less that overhead.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from wavry.rift.chunking import MAX_GROUP_SHARDS
from wavry.rift.congestion import CongestionDecision, CongestionState, FeedbackArrivals
from wavry.rift.reed_solomon import MAX_TOTAL_SHARDS

__all__ = [
    "CREDIT_FRAMES",
    "MAX_FAILURE_COST",
    "FecParams",
    "GilbertFit",
    "GroupPlan",
    "RedundancyPolicy",
    "RedundancyTunables",
    "fec_params_for_ratio",
    "loss_tails",
    "unrepaired_frame_cost",
]


#: an unrepaired frame is never counted as costing more than this many (a long RTT at a high
#: frame rate would otherwise ask for parity no loss process needs)
MAX_FAILURE_COST = 8.0
#: the fit never assumes runs longer than 1 / this on average
MIN_RUN_END = 0.05
#: an ordinary frame may spend at most this many frames' worth of unspent target (frame_plan)
CREDIT_FRAMES = 2.0


@dataclass(frozen=True)
class RedundancyTunables:
    #: chance of losing an ordinary frame (more losses than parities) the policy allows
    frame_target: float = 0.005
    #: ... and a keyframe
    keyframe_target: float = 0.0005
    #: parities of a group at most this × its data datagrams
    max_ratio: float = 1.0
    #: the loss process is fitted over this many seconds of feedback
    window_s: float = 5.0
    #: assumed before (and weighed against) what the feedback shows: this loss rate over
    #: `prior_packets` packets, in runs of one
    prior_loss: float = 0.002
    prior_packets: float = 200.0
    #: standard errors the fit is moved towards more loss (see RedundancyPolicy._raw_fit)
    fit_margin: float = 1.0
    #: the fit is recomputed when p or r moved this much (relative), at most every `refit_s`
    refit_change: float = 0.1
    refit_s: float = 0.2
    max_group_shards: int = 32
    #: smoothing of the datagrams per ordinary frame
    frame_size_alpha: float = 0.1

    def __post_init__(self) -> None:
        for name in ("frame_target", "keyframe_target", "prior_loss"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1)")
        if self.max_ratio <= 0 or self.window_s <= 0 or self.prior_packets <= 0:
            raise ValueError("need max_ratio > 0, window_s > 0, prior_packets > 0")
        if not 1 <= self.max_group_shards <= MAX_GROUP_SHARDS:
            raise ValueError(f"need 1 <= max_group_shards <= {MAX_GROUP_SHARDS}")


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
    expected loss burst, ``k = round(m / ratio)`` bounded to ``m .. max_group_shards`` (the
    static shape of a sender without a loss model, e.g. the client's uplink)."""
    if ratio <= 0:
        raise ValueError(f"ratio must be positive, got {ratio}")
    max_group_shards = max(1, min(max_group_shards, MAX_GROUP_SHARDS))
    m = max(1, min(expected_burst, max_group_shards))
    k = max(m, min(max_group_shards, round(m / ratio)))
    return FecParams(k=k, m=m)


@dataclass(frozen=True)
class GilbertFit:
    """The fitted loss process: per packet, good → bad with `p`, bad → good with `r`; the bad
    state loses every packet."""

    p: float
    r: float

    @property
    def loss(self) -> float:
        return self.p / (self.p + self.r) if self.p + self.r > 0 else 0.0

    @property
    def mean_burst(self) -> float:
        return 1.0 / self.r if self.r > 0 else math.inf


@dataclass(frozen=True)
class GroupPlan:
    """FEC for one frame: groups of `k` data datagrams; `parities[n]` for a group of `n`."""

    k: int
    parities: tuple[int, ...]

    @property
    def m(self) -> int:
        return self.parities[self.k]

    def groups(self, datagrams: int) -> list[tuple[int, int]]:
        """(data datagrams, parities) of each group of a frame of `datagrams`."""
        out = []
        while datagrams > 0:
            n = min(self.k, datagrams)
            out.append((n, self.parities[n]))
            datagrams -= n
        return out


def loss_tails(fit: GilbertFit, n_max: int) -> np.ndarray:
    """`tails[N, l]` = the chance of at least `l` losses among `N` consecutive packets
    (N = 0..n_max), the chain starting in its stationary state."""
    p, r = fit.p, fit.r
    bad = fit.loss
    tails = np.zeros((n_max + 1, n_max + 2))
    tails[:, 0] = 1.0
    g = np.zeros(n_max + 2)
    b = np.zeros(n_max + 2)
    g[0], b[1] = 1.0 - bad, bad
    for n in range(1, n_max + 1):
        if n > 1:
            to_g = g * (1.0 - p) + b * r
            to_b = g * p + b * (1.0 - r)
            g = to_g
            b = np.zeros(n_max + 2)
            b[1:] = to_b[:-1]
        dist = g + b
        tails[n, : n_max + 2] = np.cumsum(dist[::-1])[::-1]
    return tails


def unrepaired_frame_cost(rtt_s: float, interval_s: float, repair_loss: float) -> float:
    """How many frames an ordinary frame that FEC cannot repair costs, expected.

    Its missing datagrams are NACKed and arrive about one round trip later. A frame is late
    when it is shown more than one frame interval after it would have been (the previous
    picture stays up for two intervals: a visible hitch), so the repaired frame is late when
    the round trip exceeds an interval, and so is each later frame still waiting for it then:
    ``RTT / interval − 1`` of them, at least the one. Only when the repair is lost too
    (``repair_loss``, the path's loss rate is the chance) does the decoder need a keyframe:
    the rest of the frame's interval, the request's trip, the keyframe's encoding and trip
    back, ``2 + RTT / interval`` frames."""
    interval = max(interval_s, 1e-3)
    nack = max(1.0, rtt_s / interval - 1.0)
    keyframe = 2.0 + rtt_s / interval
    return nack + min(1.0, max(0.0, repair_loss)) * keyframe


class RedundancyPolicy:
    def __init__(self, tunables: RedundancyTunables | None = None, *, rs: bool = True) -> None:
        self.tunables = tunables if tunables is not None else RedundancyTunables()
        self._rs = rs
        # (when, packets, losses, runs) per feedback report outside congestion
        self._reports: deque[tuple[float, int, int, int]] = deque()
        self._sums = [0, 0, 0]
        self._open_run = 0  # lost ids in a row at the end of the last report
        self._prev_id: int | None = None
        self._fit = self._raw_fit()
        self._fit_at = -math.inf
        self._tails = loss_tails(self._fit, self._n_max())
        self._cache: dict[tuple[int, float], int] = {}
        self._plans: dict[tuple[int, bool, float], GroupPlan] = {}  # until the next refit
        self._frame_datagrams = 0.0  # smoothed datagrams per ordinary (non-key) frame
        self._ratio = 0.0
        self._planned = False  # an ordinary frame was planned (`_ratio` holds its share)
        self._cost = 1.0  # frames lost when an ordinary frame cannot be repaired
        self._credit = 0.0  # unspent frame-loss chance of the last ordinary frames

    # ---- what the sender reads ------------------------------------------------------------

    @property
    def rs(self) -> bool:
        """Reed-Solomon (any m of a group) or interleaved XOR (at most one parity per data
        datagram); the same sizes either way, XOR just repairs fewer patterns with them."""
        return self._rs

    @rs.setter
    def rs(self, value: bool) -> None:
        if value != self._rs:
            self._rs = value
            self._cache.clear()
            self._plans.clear()

    @property
    def fit(self) -> GilbertFit:
        return self._fit

    @property
    def ratio(self) -> float:
        """Parity datagrams per data datagram of the ordinary frames planned lately (smoothed
        like their size: what `frame_plan` really gives them, credit included)."""
        return self._ratio

    @property
    def frame_datagrams(self) -> float:
        return self._frame_datagrams

    @property
    def failure_cost(self) -> float:
        return self._cost

    @property
    def ordinary_target(self) -> float:
        """The loss chance an ordinary frame is allowed: its share of `frame_target`. While
        the window has seen no loss at all, the fit is the prior's guess alone (it protects the
        first frames): the guess is not multiplied by the cost, or a clean path would keep
        paying for it."""
        cost = self._cost if self._sums[1] > 0 else 1.0
        return self.tunables.frame_target / cost

    def set_failure_cost(self, frames: float) -> None:
        """How many frames an unrepaired ordinary frame costs now (from the path's RTT and
        the frame rate). Quantised to quarter frames so that the plans are reused."""
        cost = min(MAX_FAILURE_COST, max(1.0, round(frames * 4) / 4))
        if cost != self._cost:
            self._cost = cost
            self._plans.clear()

    def parities_for(self, n: int, target: float) -> int:
        """The smallest m such that more than m losses among n + m packets are rarer than
        `target` (at most `max_ratio · n`; XOR: at most n)."""
        key = (n, target)
        m = self._cache.get(key)
        if m is not None:
            return m
        t = self.tunables
        cap = min(int(t.max_ratio * n), MAX_TOTAL_SHARDS - n, self._tails.shape[0] - 1 - n)
        if not self._rs:
            cap = min(cap, n)
        tails = self._tails
        m = 0
        while m < cap and tails[n + m, m + 1] > target:
            m += 1
        self._cache[key] = m
        return m

    def plan(self, datagrams: int, keyframe: bool, target: float | None = None) -> GroupPlan:
        """FEC for a frame of `datagrams` data datagrams: balanced groups of at most
        `max_group_shards`, each with the parities its share of the frame's target (default:
        the keyframe or the ordinary target) needs."""
        t = self.tunables
        if target is None:
            target = t.keyframe_target if keyframe else self.ordinary_target
        key = (datagrams, keyframe, target)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        groups = max(1, math.ceil(datagrams / t.max_group_shards))
        k = max(1, math.ceil(datagrams / groups))
        share = target / groups
        parities = (0, *(self.parities_for(n, share) for n in range(1, k + 1)))
        plan = self._plans[key] = GroupPlan(k, parities)
        return plan

    def failure_chance(self, plan: GroupPlan, datagrams: int) -> float:
        """The chance, under the fitted process, that some group of a frame of `datagrams`
        data datagrams planned with `plan` loses more datagrams than it has parities."""
        tails = self._tails
        chance = 0.0
        for n, m in plan.groups(datagrams):
            chance += float(tails[n + m, m + 1]) if n + m < tails.shape[0] else 0.0
        return min(1.0, chance)

    def frame_plan(self, datagrams: int, keyframe: bool) -> GroupPlan:
        """The plan for the frame the sender is sending now. The ordinary frames' target holds
        *on average*: a frame that needs fewer parities than the target allows leaves the rest
        of its share as credit (at most `CREDIT_FRAMES` frames' worth), and a larger frame may
        spend it rather than take one more parity. Frames vary in size (±20 % on a steady
        stream), and one parity is 7–10 % of a frame: a flat per-frame target buys the largest
        frames a parity the average does not need. Keyframes keep their own strict target."""
        if keyframe:
            return self.plan(datagrams, True)
        base = self.ordinary_target
        # quarter steps of the target, so that the plans are reused
        allowed = base * math.floor((base + self._credit) / base * 4 + 1e-9) / 4
        plan = self.plan(datagrams, False, allowed)
        spent = self.failure_chance(plan, datagrams)
        self._credit = min(CREDIT_FRAMES * base, max(0.0, self._credit + base - spent))
        share = sum(m for _, m in plan.groups(datagrams)) / max(1, datagrams)
        if self._planned:
            self._ratio += self.tunables.frame_size_alpha * (share - self._ratio)
        else:
            self._ratio, self._planned = share, True
        return plan

    # ---- what the sender tells ------------------------------------------------------------

    def on_frame(self, datagrams: int, keyframe: bool) -> None:
        """A frame of `datagrams` data datagrams is being sent."""
        if not keyframe:
            alpha = self.tunables.frame_size_alpha
            self._frame_datagrams += alpha * (datagrams - self._frame_datagrams)

    def on_feedback(
        self, arrivals: FeedbackArrivals, decision: CongestionDecision, now: float
    ) -> None:
        """One feedback report, with the congestion controller's decision after it."""
        lost = received = runs = 0
        run = self._open_run
        prev = self._prev_id
        for packet_id, arrival in arrivals:
            if prev is None or packet_id != prev + 1:
                run = 0  # a hole in what we can judge: a run across it is unknown
            prev = packet_id
            if arrival is None:
                lost += 1
                if not run:
                    runs += 1
                run += 1
            else:
                received += 1
                run = 0
        self._prev_id = prev
        self._open_run = run
        if decision.state is not CongestionState.CONGESTED and (lost or received):
            self._reports.append((now, lost + received, lost, runs))
            sums = self._sums
            sums[0] += lost + received
            sums[1] += lost
            sums[2] += runs
        self._expire(now)
        self._maybe_refit(now)

    # ---- internals -------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        reports, sums = self._reports, self._sums
        horizon = now - self.tunables.window_s
        while reports and reports[0][0] < horizon:
            _, packets, lost, runs = reports.popleft()
            sums[0] -= packets
            sums[1] -= lost
            sums[2] -= runs

    def _raw_fit(self) -> GilbertFit:
        """The fit to size parities with: the window's estimate, with the run length moved
        `fit_margin` standard errors towards longer runs once losses were seen.

        A frame is lost when a group loses more than its `m` parities. Under bursts that chance
        is about `(1 − r)^m` for `m` near 10, so it hangs on `r` (the fraction of lost packets
        that end a run, estimated from a few dozen runs in the window): an `r` 10 % high makes
        the model promise 1.7× fewer lost frames than the path delivers. Fake-clock
        `burst-3pct` runs lost twice as many frames as the point estimate predicted (random
        loss: as many). So `r` is taken one binomial standard error low, over the lost packets;
        with more evidence it closes on the estimate. (Random loss, `r` ≈ 1, barely moves:
        its tail hangs on `p`, which the window estimates well.)"""
        t = self.tunables
        packets, lost, runs = self._sums
        prior_lost = t.prior_loss * t.prior_packets
        loss = min(0.5, (lost + prior_lost) / (packets + t.prior_packets))
        burst = max(1.0, (lost + prior_lost) / (runs + prior_lost))
        r = 1.0 / burst
        p = loss * r / (1.0 - loss)
        z = t.fit_margin
        if runs > 0 and z > 0:
            r = max(MIN_RUN_END, r - z * math.sqrt(r * (1.0 - r) / (lost + prior_lost)))
            p = loss * r / (1.0 - loss)  # the same loss rate, in longer runs
        return GilbertFit(p=min(1.0, p), r=r)

    def _maybe_refit(self, now: float) -> None:
        t = self.tunables
        if now < self._fit_at + t.refit_s:
            return
        fit = self._raw_fit()
        old = self._fit
        if abs(fit.p - old.p) <= t.refit_change * old.p and abs(fit.r - old.r) <= (
            t.refit_change * old.r
        ):
            return
        self._fit, self._fit_at = fit, now
        self._tails = loss_tails(fit, self._n_max())
        self._cache.clear()
        self._plans.clear()

    def _n_max(self) -> int:
        k = self.tunables.max_group_shards
        return min(MAX_TOTAL_SHARDS, k + max(1, int(self.tunables.max_ratio * k)))
