"""The FEC redundancy policy (docs/rate-control.md, "FEC redundancy"): a Gilbert fit of the loss
process from the receiver's feedback, parities per frame from a loss target, congestion loss
left out, the overhead carved out of DELTA's rate."""

from __future__ import annotations

import random

import pytest

from wavry.rift.congestion import CongestionDecision, CongestionState
from wavry.rift.delta import DeltaController
from wavry.rift.redundancy import (
    CREDIT_FRAMES,
    FecParams,
    GilbertFit,
    RedundancyPolicy,
    RedundancyTunables,
    fec_params_for_ratio,
    loss_tails,
    unrepaired_frame_cost,
)

PACKET = 1200
OWD = 0.02


def _decision(state: CongestionState = CongestionState.STABLE) -> CongestionDecision:
    return CongestionDecision(8000, 60, 8400, state, 0.0, 0.0, 0.0, None, 0.02)


def _feed(
    policy: RedundancyPolicy,
    seconds: float,
    lost: object,
    state: CongestionState = CongestionState.STABLE,
    start_id: int = 1,
    t0: float = 0.0,
    per_report: int = 40,
) -> int:
    """Reports every 50 ms of `per_report` ids; `lost(i)` says whether id i was lost."""
    pid = start_id
    now = t0
    for _ in range(round(seconds / 0.05)):
        report: list[tuple[int, float | None]] = []
        for _ in range(per_report):
            report.append((pid, None if lost(pid) else now))  # type: ignore[operator]
            pid += 1
        now += 0.05
        policy.on_feedback(report, _decision(state), now)
    return pid


def test_tails_match_the_binomial_for_random_loss() -> None:
    # runs of one: the chain is memoryless and the count of losses binomial
    tails = loss_tails(GilbertFit(p=0.02, r=0.98), 20)
    p_two_of_14 = 1 - 0.98**14 - 14 * 0.02 * 0.98**13
    assert tails[14, 2] == pytest.approx(p_two_of_14, rel=1e-9)
    assert tails[5, 0] == pytest.approx(1.0) and tails[0, 1] == 0.0


def test_random_loss_fits_runs_of_one_and_sizes_parities_from_the_target() -> None:
    rng = random.Random(3)
    policy = RedundancyPolicy()
    _feed(policy, 5.0, lambda i: rng.random() < 0.02)
    fit = policy.fit
    assert 0.012 < fit.loss < 0.03 and fit.mean_burst < 1.2
    # 13 data datagrams at 2 %: one parity loses 3 % of frames, two 0.3 %
    assert policy.plan(13, keyframe=False).m == 2
    # a keyframe (4 groups of 25) is held to a stricter target
    key = policy.plan(100, keyframe=True)
    assert key.k == 25 and key.m >= 4


def test_bursty_loss_needs_more_parities_than_random_loss_of_the_same_rate() -> None:
    rng = random.Random(5)
    state = [False]

    def gilbert(_: int) -> bool:  # 3 % loss in runs of mean 3
        state[0] = rng.random() < (2 / 3 if state[0] else 0.0103)
        return state[0]

    bursty = RedundancyPolicy()
    _feed(bursty, 5.0, gilbert)
    assert 2.0 < bursty.fit.mean_burst < 4.5
    rng2 = random.Random(6)
    scattered = RedundancyPolicy()
    _feed(scattered, 5.0, lambda i: rng2.random() < bursty.fit.loss)
    assert bursty.plan(13, False).m >= scattered.plan(13, False).m + 4


def test_an_unrepaired_frame_costs_the_frames_its_repair_makes_late() -> None:
    """Repaired by a NACK one RTT later: late itself when the RTT exceeds a frame interval, and
    so is each later frame still waiting for it; a keyframe's round only when the repair is lost
    too (the loss rate is that chance)."""
    assert unrepaired_frame_cost(0.001, 1 / 60, 0.0) == 1.0  # a LAN: never below one frame
    assert unrepaired_frame_cost(0.020, 1 / 60, 0.0) == 1.0  # 20 ms at 60 fps: the frame itself
    assert unrepaired_frame_cost(0.100, 1 / 60, 0.0) == pytest.approx(5.0)  # 6 intervals
    # 2 % of repairs lost as well: those cost the keyframe's 2 + RTT / interval frames
    assert unrepaired_frame_cost(0.020, 1 / 60, 0.02) == pytest.approx(1 + 0.02 * 3.2)
    assert unrepaired_frame_cost(0.020, 1 / 60, 5.0) == pytest.approx(1 + 3.2)  # a chance <= 1


def test_an_ordinary_frame_gets_the_share_of_the_target_its_loss_costs() -> None:
    rng = random.Random(3)
    policy = RedundancyPolicy()
    _feed(policy, 5.0, lambda i: rng.random() < 0.02)
    tails = loss_tails(policy.fit, 40)
    alone = policy.plan(13, keyframe=False).m
    key_alone = policy.plan(100, keyframe=True)
    policy.set_failure_cost(3.25)
    assert policy.failure_cost == 3.25 and policy.ordinary_target == pytest.approx(0.005 / 3.25)
    costed = policy.plan(13, keyframe=False).m
    assert costed == alone + 1  # the plan cache was dropped with the change
    assert tails[13 + costed, costed + 1] <= 0.005 / 3.25 < tails[13 + alone, alone + 1]
    assert policy.plan(100, keyframe=True) == key_alone  # keyframes keep their own target
    # the prior alone (nothing seen yet, or a clean window) is not multiplied by the cost
    fresh = RedundancyPolicy()
    before = fresh.plan(13, keyframe=False).m
    fresh.set_failure_cost(3.25)
    assert fresh.plan(13, keyframe=False).m == before
    _feed(fresh, 5.0, lambda i: False)
    assert fresh.plan(13, keyframe=False).m == 0
    # the bound, both ways
    policy.set_failure_cost(1000.0)
    assert policy.failure_cost == 8.0
    policy.set_failure_cost(0.1)
    assert policy.failure_cost == 1.0


def test_the_target_holds_on_average_over_frames_of_different_sizes() -> None:
    """At 2 % random loss a 16-datagram frame needs a third parity to stay under 0.5 % on its
    own, but frames of 11 left most of their share unspent: with that credit it keeps two, and
    the frames' loss chance still averages under the target."""
    rng = random.Random(3)
    policy = RedundancyPolicy()
    _feed(policy, 5.0, lambda i: rng.random() < 0.02)
    assert policy.plan(16, False).m == 3 and policy.plan(11, False).m == 2
    spent = []
    for n in range(200):
        size = 11 if n % 2 == 0 else 16
        plan = policy.frame_plan(size, keyframe=False)
        spent.append(policy.failure_chance(plan, size))
        if n > 2 and size == 16:
            assert plan.m == 2, n
    assert sum(spent) / len(spent) <= policy.ordinary_target
    # the credit is bounded: a frame never draws more than CREDIT_FRAMES frames' worth
    assert max(spent) <= (1 + CREDIT_FRAMES) * policy.ordinary_target
    # ... and the overhead the policy reports is what it planned
    assert policy.ratio == pytest.approx(2 / 11 * 0.5 + 2 / 16 * 0.5, rel=0.1)
    # keyframes spend no credit and keep their strict target
    assert policy.frame_plan(100, keyframe=True) == policy.plan(100, keyframe=True)


def test_the_fit_allows_for_runs_longer_than_the_window_saw() -> None:
    """The chance that a burst outlasts m parities hangs on the run length; the fit takes it one
    standard error long, which shrinks as the window holds more runs, and leaves the loss rate
    and random loss alone."""

    def bursty(seed: int, seconds: float, margin: float) -> RedundancyPolicy:
        rng = random.Random(seed)
        state = [False]

        def gilbert(_: int) -> bool:  # 3 % loss in runs of mean 3
            state[0] = rng.random() < (2 / 3 if state[0] else 0.0103)
            return state[0]

        policy = RedundancyPolicy(RedundancyTunables(fit_margin=margin, window_s=seconds))
        _feed(policy, seconds, gilbert)
        return policy

    point, margin = bursty(5, 5.0, 0.0).fit, bursty(5, 5.0, 1.0).fit
    assert margin.mean_burst > point.mean_burst * 1.05
    assert margin.loss == pytest.approx(point.loss, rel=0.1)  # (refitted at other moments)
    assert bursty(5, 5.0, 1.0).plan(13, False).m > bursty(5, 5.0, 0.0).plan(13, False).m
    # more runs seen, a smaller allowance
    long_point, long_margin = bursty(7, 40.0, 0.0).fit, bursty(7, 40.0, 1.0).fit
    assert (long_margin.mean_burst / long_point.mean_burst) < (margin.mean_burst / point.mean_burst)
    rng = random.Random(3)
    scattered = RedundancyPolicy()
    _feed(scattered, 5.0, lambda i: rng.random() < 0.02)
    assert scattered.fit.mean_burst < 1.2 and scattered.plan(13, False).m == 2


def test_a_clean_path_pays_nothing_and_a_loss_brings_parities_back() -> None:
    policy = RedundancyPolicy()
    assert policy.plan(13, False).m >= 1  # the prior protects the first frames
    pid = _feed(policy, 5.0, lambda i: False)
    assert policy.plan(13, False).m == 0
    assert policy.plan(1, False).m == 0
    _feed(policy, 1.0, lambda i: i % 25 == 0, start_id=pid, t0=5.0)
    assert policy.plan(13, False).m >= 1


def test_congestion_loss_is_not_fitted() -> None:
    policy = RedundancyPolicy()
    pid = _feed(policy, 5.0, lambda i: False)
    before = policy.plan(13, False).m
    _feed(policy, 1.0, lambda i: i % 3 == 0, CongestionState.CONGESTED, start_id=pid, t0=5.0)
    assert policy.plan(13, False).m == before == 0


def test_xor_never_carries_more_parities_than_data() -> None:
    rng = random.Random(9)
    policy = RedundancyPolicy(rs=False)
    state = [False]

    def gilbert(_: int) -> bool:
        state[0] = rng.random() < (2 / 3 if state[0] else 0.0103)
        return state[0]

    _feed(policy, 5.0, gilbert)
    plan = policy.plan(3, keyframe=False)
    assert all(m <= n for n, m in enumerate(plan.parities))


def test_overhead_is_carved_out_of_deltas_rate() -> None:
    ctrl = DeltaController(4000)
    policy = RedundancyPolicy()
    rng = random.Random(1)
    now, pid = 0.0, 1
    for _ in range(100):
        report: list[tuple[int, float | None]] = []
        for i in range(30):
            ctrl.on_packet_sent(pid, PACKET, now + i * 0.05 / 30)
            report.append((pid, None if rng.random() < 0.02 else now + OWD))
            pid += 1
        now += 0.05
        decision = ctrl.on_feedback(report, now)
        policy.on_feedback(report, decision, now)
        policy.on_frame(13, keyframe=False)
        policy.frame_plan(13, keyframe=False)
        ctrl.set_send_overhead(policy.ratio)
    d = ctrl.decision
    ratio = policy.ratio
    assert 2 / 13 <= ratio <= 3 / 13  # what the frames were planned with lately
    # FEC only changes the split: media = total / (1 + overhead)
    assert d.target_bitrate_kbps == pytest.approx(d.send_rate_kbps / (1 + ratio), abs=1)


def test_params_for_ratio() -> None:
    assert fec_params_for_ratio(0.05, 2) == FecParams(k=32, m=2)
    assert fec_params_for_ratio(0.5, 2) == FecParams(k=4, m=2)
    with pytest.raises(ValueError):
        fec_params_for_ratio(0.0)
    with pytest.raises(ValueError):
        RedundancyTunables(frame_target=0.0)
