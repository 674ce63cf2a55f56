"""The FEC redundancy policy, fed like the media sender feeds it: DELTA first, then the policy
with DELTA's decision, and the policy's ratio back to DELTA as the sender's overhead."""

from __future__ import annotations

import pytest

from wavry.rift.congestion import CongestionDecision, CongestionState
from wavry.rift.delta import DeltaController
from wavry.rift.redundancy import (
    FecParams,
    RedundancyPolicy,
    RedundancyTunables,
    fec_params_for_ratio,
)

PACKET = 1200
OWD = 0.02


class Sender:
    """Sends at DELTA's rate and reports every 50 ms with a chosen queueing delay and loss."""

    def __init__(self, tunables: RedundancyTunables | None = None) -> None:
        self.ctrl = DeltaController(4000)
        self.policy = RedundancyPolicy(tunables)
        self.now = 0.0
        self.next_id = 1

    def step(self, queue_ms: float = 0.0, loss_every: int = 0, dt: float = 0.05) -> float:
        rate = self.ctrl.decision.send_rate_kbps
        count = max(4, round(rate * 1000 / 8 / PACKET * dt))
        report: list[tuple[int, float | None]] = []
        for i in range(count):
            sent = self.now + i * dt / count
            self.ctrl.on_packet_sent(self.next_id, PACKET, sent)
            lost = loss_every > 0 and i % loss_every == 0
            report.append((self.next_id, None if lost else sent + OWD + queue_ms / 1000))
            self.next_id += 1
        self.now += dt
        decision = self.ctrl.on_feedback(report, self.now)
        self.policy.on_feedback(report, decision, self.now)
        self.ctrl.set_send_overhead(self.policy.ratio)
        return self.policy.ratio

    def run(self, seconds: float, queue_ms: float = 0.0, loss_every: int = 0) -> float:
        ratio = self.policy.ratio
        for _ in range(round(seconds / 0.05)):
            ratio = self.step(queue_ms, loss_every)
        return ratio


def test_fec_grows_with_loss_during_congestion_and_decays_while_stable() -> None:
    s = Sender(RedundancyTunables(loss_multiplier=0.0))
    assert s.run(1.0) == pytest.approx(0.05)
    total = s.ctrl.decision.send_rate_kbps
    assert s.step(queue_ms=40.0, loss_every=3) == pytest.approx(0.075)
    decision = s.ctrl.decision
    # FEC only changes the split: media = total / (1 + fec)
    assert decision.target_bitrate_kbps == pytest.approx(decision.send_rate_kbps / 1.075, abs=1)
    assert decision.send_rate_kbps < total
    assert s.step(queue_ms=40.0, loss_every=3) == pytest.approx(0.075)  # limited
    ratios = [s.run(0.5, queue_ms=40.0, loss_every=3) for _ in range(8)]
    assert ratios[0] == pytest.approx(0.1125)
    assert ratios[-1] == pytest.approx(0.5)  # capped
    assert 0.05 <= s.run(12.0) < 0.06


def test_random_loss_during_a_probing_blip_is_not_congestion_loss() -> None:
    s = Sender(RedundancyTunables(loss_multiplier=0.0))
    s.run(3.0, loss_every=20)  # learn ~5 % random loss
    ratio = s.step(queue_ms=30.0, loss_every=20)
    assert s.ctrl.decision.state is CongestionState.CONGESTED
    assert ratio == pytest.approx(0.05)


def test_loss_without_congestion_does_not_multiply_fec() -> None:
    s = Sender(RedundancyTunables(loss_multiplier=0.0))
    assert s.run(3.0, loss_every=20) == pytest.approx(0.05)
    assert s.ctrl.decision.state is CongestionState.STABLE


def test_random_loss_sets_a_fec_floor() -> None:
    s = Sender()  # loss_multiplier 2: 10 % loss → ≥ ~20 % FEC
    ratio = s.run(5.0, loss_every=10)
    assert s.ctrl.decision.state is CongestionState.STABLE
    assert 0.17 <= ratio <= 0.21


# --------------------------------------------------------------------------- loss bursts
STABLE = CongestionDecision(4000, 60, 4200, CongestionState.STABLE)
CONGESTED = CongestionDecision(4000, 60, 4200, CongestionState.CONGESTED, queue_delay_ms=40.0)


def _report(
    policy: RedundancyPolicy,
    now: float,
    pattern: str,
    first_id: int,
    decision: CongestionDecision = STABLE,
) -> None:
    """Feedback for len(pattern) packets: '.' arrived, 'x' lost."""
    report = [(first_id + i, None if c == "x" else now) for i, c in enumerate(pattern)]
    policy.on_feedback(report, decision, now)


def test_loss_burst_is_the_90th_percentile_run_outside_congestion() -> None:
    policy = RedundancyPolicy()
    pid, now = 1, 0.0
    # 9 runs of 4 and one of 1, a report each: the 90th percentile run is 4
    for i in range(10):
        now += 0.05
        pattern = "." * 30 + ("x" if i == 0 else "xxxx") + "." * 30
        _report(policy, now, pattern, pid)
        pid += len(pattern)
        if i < 7:  # fewer than burst_min_runs (8) runs seen: no estimate
            assert policy.loss_burst(now) == 1
    assert policy.loss_burst(now) == 4
    # runs are forgotten after burst_window_s
    assert policy.loss_burst(now + policy.tunables.burst_window_s + 0.1) == 1


def test_a_loss_run_across_two_reports_counts_once() -> None:
    policy = RedundancyPolicy(RedundancyTunables(burst_min_runs=1))
    _report(policy, 0.05, "." * 40 + "xxx", 1)
    assert policy.loss_burst(0.05) == 1  # still open: its length is not known yet
    _report(policy, 0.10, "xxx" + "." * 40, 44)
    assert policy.loss_burst(0.10) == 6
    # a hole in the ids (not reported) splits what would look like one run
    policy2 = RedundancyPolicy(RedundancyTunables(burst_min_runs=1, burst_quantile=1.0))
    _report(policy2, 0.05, "." * 40 + "xxx", 1)
    _report(policy2, 0.10, "xxx" + "." * 40, 50)
    assert policy2.loss_burst(0.10) == 3


def test_drops_at_a_full_queue_are_not_loss_bursts() -> None:
    policy = RedundancyPolicy(RedundancyTunables(burst_min_runs=1))
    pid, now = 1, 0.0
    for _ in range(10):
        now += 0.05
        _report(policy, now, "." * 30 + "xxxxxx" + "." * 30, pid, CONGESTED)
        pid += 66
    assert policy.loss_burst(now) == 1


@pytest.mark.parametrize(
    "bad", [{"burst_quantile": 0.0}, {"burst_window_s": 0.0}, {"burst_min_runs": 0}]
)
def test_bad_burst_tunables_are_rejected(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="burst"):
        RedundancyTunables(**bad)  # type: ignore[arg-type]


def test_parities_follow_the_bursts_capped_to_half_an_ordinary_frame() -> None:
    policy = RedundancyPolicy()
    for _ in range(50):
        policy.on_frame(7, keyframe=False)
    lossy = CongestionDecision(4000, 60, 4200, CongestionState.STABLE, loss_fraction=0.02)
    pid, now = 1, 0.0
    for _ in range(20):  # what lossy feedback leaves: runs of 10
        now += 0.05
        _report(policy, now, "." * 20 + "x" * 10 + "." * 20, pid)
        pid += 50
    assert policy.params(now, lossy, clean=False).m == 3  # half of ~7 datagrams
    for _ in range(100):
        policy.on_frame(40, keyframe=False)
    assert policy.params(now, lossy, clean=False).m == 10
    later = now + policy.tunables.burst_window_s + 1
    assert policy.params(later, lossy, clean=False).m == 2  # no bursts: the expected burst


def test_a_clean_loss_free_path_gets_one_parity() -> None:
    policy = RedundancyPolicy()
    assert policy.params(0.0, STABLE, clean=False).m == 2  # not yet proven clean
    assert policy.params(0.0, STABLE, clean=True).m == 1
    lossy = CongestionDecision(4000, 60, 4200, CongestionState.STABLE, loss_fraction=0.01)
    assert policy.params(0.0, lossy, clean=True).m == 2


def test_fec_params_for_ratio() -> None:
    assert fec_params_for_ratio(0.05, 1) == FecParams(k=20, m=1)
    assert fec_params_for_ratio(0.5, 1) == FecParams(k=2, m=1)
    assert fec_params_for_ratio(0.5, 4) == FecParams(k=8, m=4)
    assert fec_params_for_ratio(0.05, 3) == FecParams(k=32, m=3)  # bounded by group size
    assert fec_params_for_ratio(0.05, 3, max_group_shards=64) == FecParams(k=60, m=3)
    assert fec_params_for_ratio(0.1, 100, max_group_shards=64) == FecParams(k=64, m=64)
    with pytest.raises(ValueError):
        fec_params_for_ratio(0.0)
