"""Wall-clock steps seen by the core's pieces (fake clocks): the sender's frame timestamps and
the peers' Ping/Pong stamps are wall clock; nothing measured against them may break when one
steps by a minute. (tests/net/test_clock_step.py does the same with a real session.)"""

from __future__ import annotations

from wavry.rift.clock import ClockOffsetEstimator
from wavry.rift.feedback import StatsAccumulator
from wavry.rift.jitter import JitterBuffer


def test_the_jitter_buffer_restarts_when_the_senders_clock_steps_back() -> None:
    jb: JitterBuffer[int] = JitterBuffer(in_order=True)
    now, wall = 100.0, 1_700_000_000.0
    for i in range(60):
        jb.push(i, now, wall)
        assert jb.pop_ready(now) == [i]
        now += 1 / 60
        wall += 1 / 60
    wall -= 60.0  # NTP steps the host's clock back a minute
    for i in range(60, 120):
        jb.push(i, now, wall)
        assert jb.pop_ready(now) == [i]  # still released on arrival
        now += 1 / 60
        wall += 1 / 60
    assert jb.delay_ms == 0.0  # a minute of "lateness" is not jitter


def test_rfc3550_jitter_ignores_a_clock_step() -> None:
    acc = StatsAccumulator()
    now, wall = 10.0, 1000.0
    for _ in range(30):
        acc.on_media_timestamp(wall, now)
        now += 1 / 60
        wall += 1 / 60
    acc.on_media_timestamp(wall - 60.0, now)
    acc.on_media_timestamp(wall - 60.0 + 1 / 60, now + 1 / 60)
    assert acc.jitter_us < 1000


def test_the_clock_offset_follows_a_step_at_once() -> None:
    est = ClockOffsetEstimator()
    for i in range(20):
        est.add(10.0 + i, 10.001 + i, 110.0005 + i)  # host 100 s ahead, 1 ms round trips
    assert est.offset_s is not None and abs(est.offset_s - 100.0) < 1e-6
    est.add(40.0, 40.002, 80.001)  # the host stepped back 60 s (a slower sample, even)
    assert est.offset_s is not None and abs(est.offset_s - 40.0) < 1e-6
