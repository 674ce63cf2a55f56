"""DELTA congestion controller: scripted state transitions and a simulated bottleneck."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.rift import rift_pb2
from wavry.rift.delta import DeltaController, DeltaDecision, DeltaState, DeltaTunables
from wavry.rift.feedback import FeedbackBuilder, FeedbackError
from wavry.rift.rtt import RttSpikeDetector, WindowedMin
from wavry.rift.testing.linksim import LinkSpec, SenderMode, SimResult, simulate

PACKET = 1200
OWD = 0.02
RX_OFFSET = 4321.0  # receiver clock = sender clock + this; DELTA must never notice


class Scripted:
    """Sends at the controller's rate and reports every 50 ms with a chosen queueing delay."""

    def __init__(self, controller: DeltaController, start: float = 0.0) -> None:
        self.ctrl = controller
        self.now = start
        self.next_id = 1

    def step(self, queue_ms: float = 0.0, loss_every: int = 0, dt: float = 0.05) -> DeltaDecision:
        rate = self.ctrl.decision.send_rate_kbps
        count = max(4, round(rate * 1000 / 8 / PACKET * dt))
        report: list[tuple[int, float | None]] = []
        for i in range(count):
            sent = self.now + i * dt / count
            packet_id = self.next_id
            self.next_id += 1
            self.ctrl.on_packet_sent(packet_id, PACKET, sent)
            lost = loss_every > 0 and i % loss_every == 0
            report.append((packet_id, None if lost else sent + OWD + queue_ms / 1000 + RX_OFFSET))
        self.now += dt
        return self.ctrl.on_feedback(report, self.now)

    def run(self, seconds: float, queue_ms: float = 0.0, loss_every: int = 0) -> DeltaDecision:
        decision = self.ctrl.decision
        for _ in range(round(seconds / 0.05)):
            decision = self.step(queue_ms, loss_every)
        return decision


# --------------------------------------------------------------------------- state machine
def test_clean_path_increases_in_stable() -> None:
    ctrl = DeltaController(4000)
    script = Scripted(ctrl)
    first = script.run(0.5)
    assert first.state is DeltaState.STABLE
    later = script.run(1.0)
    assert later.target_bitrate_kbps > first.target_bitrate_kbps * 1.2
    assert later.target_fps == 60


def test_over_budget_jumps_to_congested_in_one_sample_and_decreases() -> None:
    ctrl = DeltaController(4000)
    script = Scripted(ctrl)
    before = script.run(1.0)
    after = script.step(queue_ms=40.0)
    assert after.state is DeltaState.CONGESTED
    # ×0.85 of min(rate, delivery rate); the scripted delivery rate equals the sending rate
    assert after.send_rate_kbps == pytest.approx(0.85 * before.send_rate_kbps, rel=0.05)


def test_decrease_is_based_on_the_delivery_rate() -> None:
    ctrl = DeltaController(8000)
    script = Scripted(ctrl)
    script.run(0.5)
    # The bottleneck only delivers 3 Mbit/s: report arrivals spaced at that rate.
    t0 = script.now
    report: list[tuple[int, float | None]] = []
    for i in range(20):
        sent = t0 + i * 0.0025
        ctrl.on_packet_sent(1000 + i, PACKET, sent)
        arrival = t0 + OWD + 0.030 + i * PACKET * 8 / 3_000_000
        report.append((1000 + i, arrival + RX_OFFSET))
    decision = ctrl.on_feedback(report, t0 + 0.1)
    assert decision.state is DeltaState.CONGESTED
    assert decision.send_rate_kbps == pytest.approx(0.85 * 3000, rel=0.02)


def test_rising_needs_several_samples_and_holds_the_rate() -> None:
    ctrl = DeltaController(4000)
    script = Scripted(ctrl)
    script.run(1.0)
    # queue grows 0.5 ms per sample (10 ms/s): above the slope threshold, under the budget
    queue = 2.0
    states = []
    for _ in range(4):
        queue += 0.5
        states.append(script.step(queue_ms=queue).state)
    assert states[0] is DeltaState.STABLE  # one rising sample is not enough
    assert DeltaState.RISING in states
    held = ctrl.decision.send_rate_kbps
    queue += 0.5
    assert script.step(queue_ms=queue).send_rate_kbps == held  # RISING holds


def test_persistent_rising_becomes_congested() -> None:
    ctrl = DeltaController(4000)
    script = Scripted(ctrl)
    script.run(1.0)
    queue = 2.0
    seen = []
    for _ in range(8):
        queue += 0.5  # stays under the 10 ms budget
        seen.append(script.step(queue_ms=queue).state)
    assert queue < ctrl.tunables.queue_delay_budget_ms
    assert seen[-1] is DeltaState.CONGESTED
    assert seen.index(DeltaState.CONGESTED) > seen.index(DeltaState.RISING) + 1


def test_congested_returns_to_stable_after_several_calm_samples() -> None:
    ctrl = DeltaController(4000)
    script = Scripted(ctrl)
    script.run(1.0)
    script.step(queue_ms=40.0)
    assert script.step().state is DeltaState.CONGESTED  # one calm sample is not enough
    states = [script.step().state for _ in range(3)]
    assert states[-1] is DeltaState.STABLE


def test_clock_offset_cancels() -> None:
    """A huge constant offset between the clocks changes nothing."""
    ctrl = DeltaController(4000)
    script = Scripted(ctrl, start=1_000_000.0)
    assert script.run(2.0).state is DeltaState.STABLE
    assert ctrl.queue_delay_ms == pytest.approx(0.0, abs=0.01)
    script.step(queue_ms=25.0)
    assert ctrl.queue_delay_ms == pytest.approx(25.0, abs=0.01)


def test_bitrate_bounds() -> None:
    tunables = DeltaTunables(min_bitrate_kbps=1000, max_bitrate_kbps=6000)
    ctrl = DeltaController(3000, tunables=tunables)
    script = Scripted(ctrl)
    assert script.run(6.0).target_bitrate_kbps == 6000
    ctrl.set_send_overhead(0.3)  # the bounds are on the media target, whatever the overhead
    assert script.run(1.0).target_bitrate_kbps == 6000
    assert script.run(3.0, queue_ms=60.0).target_bitrate_kbps == 1000


def test_feedback_timeout_counts_as_congestion_but_idle_does_not() -> None:
    ctrl = DeltaController(4000)
    script = Scripted(ctrl)
    script.run(1.0)
    assert ctrl.tick(script.now + 5.0).state is DeltaState.STABLE  # idle: nothing outstanding
    rate = ctrl.decision.send_rate_kbps
    ctrl.on_packet_sent(10_000, PACKET, script.now + 5.0)
    assert ctrl.tick(script.now + 5.2).state is DeltaState.STABLE
    decision = ctrl.tick(script.now + 5.6)
    assert decision.state is DeltaState.CONGESTED
    assert decision.send_rate_kbps < rate


def test_malformed_feedback_raises_and_changes_nothing() -> None:
    ctrl = DeltaController(4000)
    before = ctrl.decision
    bad = rift_pb2.TransportFeedback(base_packet_id=1, packet_count=9, received_bitmap=b"\x01")
    with pytest.raises(FeedbackError):
        ctrl.on_transport_feedback(bad, 1.0)
    assert ctrl.decision == before


def test_congestion_control_message_only_on_change() -> None:
    ctrl = DeltaController(4000)
    first = ctrl.poll_congestion_control()
    assert first == rift_pb2.CongestionControl(target_bitrate_kbps=4000, target_fps=60)
    assert ctrl.poll_congestion_control() is None
    script = Scripted(ctrl)
    script.step()
    assert ctrl.poll_congestion_control() is None  # a 50 ms increase is below 5 %
    script.run(1.0, queue_ms=50.0)
    msg = ctrl.poll_congestion_control()
    assert msg is not None and msg.target_bitrate_kbps < 4000 * 0.9


# --------------------------------------------------------------------------- fps and FEC
def test_fps_steps_down_after_1s_of_congestion_and_up_after_5s_stable() -> None:
    ctrl = DeltaController(4000)
    script = Scripted(ctrl)
    script.run(1.0)
    fps = []
    for _ in range(60):  # 3 s over budget
        fps.append(script.step(queue_ms=50.0).target_fps)
    assert fps[:18] == [60] * 18  # < 1 s of congestion
    first_45 = fps.index(45)
    first_30 = fps.index(30)
    assert 19 <= first_45 <= 21  # 1 s
    assert 39 <= first_30 <= 41  # 2 s
    up = []
    for _ in range(220):  # 11 s clean
        up.append(script.step().target_fps)
    assert 95 <= up.index(45) <= 105  # ~5 s after STABLE returns (a few samples)
    assert 195 <= up.index(60) <= 205


def test_short_probing_blips_do_not_step_fps() -> None:
    ctrl = DeltaController(4000)
    script = Scripted(ctrl)
    for _ in range(10):  # 0.2 s over budget every 1.5 s
        script.run(0.2, queue_ms=30.0)
        script.run(1.3)
    assert ctrl.decision.target_fps == 60


# --------------------------------------------------------------------------- RTT spikes
def test_rtt_spike_detector() -> None:
    det = RttSpikeDetector()
    for i in range(10):
        assert det.on_rtt(0.030, i * 0.5) == 0
    assert det.on_rtt(0.055, 5.0) == 0  # < 2× the minimum
    assert det.encoder_control(0.065, 5.5) == rift_pb2.EncoderControl(skip_frames=1)
    assert det.on_rtt(0.200, 5.9) == 0  # rate limited (1 s)
    assert det.on_rtt(0.200, 6.6) == 2  # ≥ +50 ms: two frames
    assert det.encoder_control(0.031, 7.0) is None
    low = RttSpikeDetector()
    low.on_rtt(0.004, 0.0)
    assert low.on_rtt(0.020, 0.5) == 0  # 5× the minimum but only +16 ms
    assert low.on_rtt(0.026, 1.0) == 1


def test_windowed_min_forgets_old_samples() -> None:
    wmin = WindowedMin(10.0)
    wmin.update(5.0, 0.0)
    wmin.update(9.0, 3.0)
    assert wmin.get(9.0) == 5.0
    assert wmin.get(12.0) == 9.0
    assert wmin.get(30.0) is None


@given(
    st.lists(
        st.tuples(st.floats(0.0, 3.0), st.floats(-5.0, 5.0), st.booleans(), st.booleans()),
        max_size=200,
    )
)
def test_windowed_min_keeps_the_minimum_of_its_buckets(
    steps: list[tuple[float, float, bool, bool]],
) -> None:
    """The minimum kept up to date equals the minimum over the buckets still in the window
    (the definition), whatever the sequence of samples, reads, expiries and resets."""
    window_s, buckets = 4.0, 4
    bucket_s = window_s / buckets
    wmin = WindowedMin(window_s, buckets)
    model: list[tuple[float, float]] = []  # (bucket start, minimum)
    now = 0.0
    for dt, value, read_only, reset in steps:
        now += dt
        model = [b for b in model if not b[0] + bucket_s + window_s <= now]
        if reset:
            wmin.reset()
            model = []
        elif read_only:
            assert wmin.get(now) == (min(m for _, m in model) if model else None)
        else:
            wmin.update(value, now)
            if model and now < model[-1][0] + bucket_s:
                model[-1] = (model[-1][0], min(model[-1][1], value))
            else:
                model.append((now, value))
        assert wmin.get(now) == (min(m for _, m in model) if model else None)


# --------------------------------------------------------------------------- bottleneck simulation
STEP_LINK = LinkSpec(((0.0, 8000.0), (10.0, 4000.0), (20.0, 12000.0)), one_way_delay_s=OWD)


@pytest.fixture(scope="module")
def stepped_run() -> SimResult:
    return simulate(STEP_LINK, 30.0, DeltaController(3000))


@pytest.mark.parametrize("phase_start", [0.0, 10.0, 20.0])
def test_converges_within_3s_of_each_capacity_step(
    stepped_run: SimResult, phase_start: float
) -> None:
    t0, t1 = phase_start + 3.0, phase_start + 10.0
    assert stepped_run.utilisation(t0, t1) >= 0.8
    assert stepped_run.queue_delay_ms(t0, t1) <= 20.0
    assert stepped_run.drops(t0, t1) == 0


def test_step_down_transient_is_drained(stepped_run: SimResult) -> None:
    assert stepped_run.queue_delay_ms(10.0, 11.0) > 20.0  # the step itself does hurt ...
    assert stepped_run.queue_delay_ms(11.5, 13.0) <= 20.0  # ... for well under 3 s
    assert stepped_run.max_feedback_bytes <= 1000


def test_without_the_controller_the_queue_fills() -> None:
    link = LinkSpec.constant(8000.0, one_way_delay_s=OWD)
    result = simulate(link, 3.0, None, fixed_rate_kbps=20_000.0)
    full_ms = link.queue_limit_bytes * 8 / 8000.0  # 150 ms of queue
    assert result.queue_delay_ms(1.0, 3.0, percentile=0.5) >= 0.9 * full_ms
    assert result.drops(0.0, 3.0) > 1000


def test_paced_frames_through_the_real_pacer() -> None:
    link = LinkSpec.constant(8000.0, one_way_delay_s=OWD)
    result = simulate(link, 10.0, DeltaController(3000), mode=SenderMode.PACED_FRAMES)
    assert result.utilisation(3.0, 10.0) >= 0.8
    # waits include the pacer's intra-frame bursts (≤ ~10 ms at 60 fps) over the standing queue
    assert result.queue_delay_ms(3.0, 10.0, percentile=0.95) <= 20.0


def test_tunables_validation() -> None:
    with pytest.raises(ValueError):
        DeltaTunables(decrease_factor=1.2)
    with pytest.raises(ValueError):
        dataclasses.replace(DeltaTunables(), min_bitrate_kbps=0)


def test_feedback_builder_is_what_the_simulation_uses() -> None:
    # guard against the simulation silently bypassing the real feedback path
    link = LinkSpec.constant(4000.0, one_way_delay_s=OWD)
    result = simulate(link, 1.0, DeltaController(2000))
    assert 15 <= result.feedback_messages <= 25
    assert isinstance(FeedbackBuilder().config.interval_s, float)


def test_capacity_estimate_is_the_delivery_rate_at_congestion_and_is_forgotten() -> None:
    link = LinkSpec.constant(8000.0, one_way_delay_s=OWD)
    ctl = DeltaController(20_000)
    result = simulate(link, 3.0, ctl)
    assert result.decisions[-1].state is not None
    now = result.decisions[-1].time
    cap = ctl.capacity_kbps(now)
    assert cap is not None and 6000 <= cap <= 9000
    assert ctl.capacity_kbps(now + ctl.tunables.capacity_memory_s + 1) is None


def test_heavy_loss_without_a_queue_is_not_congestion() -> None:
    ctl = DeltaController(8000)
    t = 0.0
    pid = 0
    for _ in range(20):  # a clean path: 10 packets per 50 ms, constant delay
        batch = []
        for _ in range(10):
            pid += 1
            ctl.on_packet_sent(pid, 1200, t)
            batch.append((pid, t + 0.01))
        t += 0.05
        ctl.on_feedback(batch, t)
    assert ctl.state is DeltaState.STABLE
    batch2: list[tuple[int, float | None]] = []
    for i in range(10):  # then half of a batch vanishes (a flushed queue), delay unchanged
        pid += 1
        ctl.on_packet_sent(pid, 1200, t)
        batch2.append((pid, None if i % 2 else t + 0.01))
    ctl.on_feedback(batch2, t + 0.05)
    assert ctl.state is DeltaState.STABLE


def test_the_media_target_leaves_room_for_what_the_sender_really_adds() -> None:
    """Media plus the measured overhead (parities at real group sizes, headers) is the rate."""
    ctrl = DeltaController(4000)
    rate = ctrl.decision.send_rate_kbps
    # until the sender reports, the assumed overhead (a 5 % FEC ratio) is left room for
    assert ctrl.decision.target_bitrate_kbps == round(rate / 1.05)
    ctrl.set_send_overhead(0.4)  # e.g. 2 parities on 5-datagram frames
    assert ctrl.decision.send_rate_kbps == rate
    assert ctrl.decision.target_bitrate_kbps == round(rate / 1.4)
    ctrl.set_send_overhead(0.01)
    assert ctrl.decision.target_bitrate_kbps == round(rate / 1.01)


def _busy_batch(ctrl: DeltaController, t0: float, first_id: int, kbps: float) -> float:
    """20 datagrams that left a standing 40 ms queue at `kbps` (the link's rate); returns the
    time the feedback arrived."""
    report: list[tuple[int, float | None]] = []
    for i in range(20):
        ctrl.on_packet_sent(first_id + i, PACKET, t0 + i * 0.001)
        report.append((first_id + i, t0 + OWD + 0.040 + i * PACKET * 8 / kbps / 1000 + RX_OFFSET))
    now = t0 + 0.1
    ctrl.on_feedback(report, now)
    return now


def test_the_first_congestion_keeps_its_highest_capacity_later_ones_believe_a_drop() -> None:
    ctrl = DeltaController(20_000)
    script = Scripted(ctrl)
    script.run(0.5)
    t = _busy_batch(ctrl, script.now, 10_000, 8000)
    assert ctrl.state is DeltaState.CONGESTED
    assert ctrl.capacity_kbps(t) == pytest.approx(8000, rel=0.06)
    t = _busy_batch(ctrl, t, 10_100, 5000)  # a short, noisy batch at start-up
    assert ctrl.capacity_kbps(t) == pytest.approx(8000, rel=0.06)
    script.now = t
    script.run(3.0)  # calm: the episode ends
    assert ctrl.state is DeltaState.STABLE
    t = _busy_batch(ctrl, script.now, script.next_id + 1000, 8000)
    t = _busy_batch(ctrl, t, script.next_id + 1100, 4000)  # the capacity dropped
    assert ctrl.capacity_kbps(t) == pytest.approx(4000, rel=0.06)
