"""Adaptive jitter buffer: 0 ms on a clean path, ≤ 10 ms under jitter, shrinks back."""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pytest

from wavry.rift.jitter import JitterBuffer, JitterBufferConfig

FRAME = 1 / 60
OFFSET = 1234.5  # receiver clock minus sender clock: must not matter


def play(
    buffer: JitterBuffer[float], frames: list[tuple[float, float]]
) -> tuple[dict[float, float], list[float], list[float]]:
    """Feed (sender ts, arrival) in arrival order, popping at every timer.

    Returns {ts: release time}, the release order, and delay_ms after each push.
    """
    pending = sorted(frames, key=lambda f: f[1])
    released: dict[float, float] = {}
    order: list[float] = []
    delays: list[float] = []
    i = 0
    while i < len(pending) or buffer.next_timer() is not None:
        timer = buffer.next_timer()
        arrival = pending[i][1] if i < len(pending) else math.inf
        if timer is not None and timer <= arrival:
            now = timer
        else:
            ts, now = pending[i]
            i += 1
            buffer.push(ts, now, ts)
            delays.append(buffer.delay_ms)
        for ts in buffer.pop_ready(now):
            released[ts] = now
            order.append(ts)
    return released, order, delays


def stream(
    seconds: float,
    jitter_s: float = 0.0,
    seed: int = 7,
    start: float = 0.0,
    frame: float = FRAME,
) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    out = []
    for i in range(round(seconds / frame)):
        ts = start + i * frame
        out.append((ts, ts + OFFSET + 0.030 + rng.uniform(0.0, jitter_s)))
    return out


def test_clean_path_adds_no_delay() -> None:
    buffer: JitterBuffer[float] = JitterBuffer()
    frames = stream(3.0)
    released, order, delays = play(buffer, frames)
    assert max(delays) == 0.0
    assert all(released[ts] == arrival for ts, arrival in frames)
    assert order == sorted(order)


def test_sub_millisecond_noise_counts_as_clean() -> None:
    buffer: JitterBuffer[float] = JitterBuffer()
    frames = stream(3.0, jitter_s=0.0008)
    released, _, delays = play(buffer, frames)
    assert max(delays) == 0.0
    assert all(released[ts] == arrival for ts, arrival in frames)


def test_heavy_jitter_is_capped_at_10ms() -> None:
    buffer: JitterBuffer[float] = JitterBuffer()
    frames = stream(4.0, jitter_s=0.030)  # 0–30 ms: more than the cap can absorb
    released, order, delays = play(buffer, frames)
    assert max(delays) == pytest.approx(10.0)
    arrivals = dict(frames)
    assert all(released[ts] - arrivals[ts] <= 0.010 + 1e-9 for ts in released)
    assert order == sorted(order)  # never an older frame after a newer one
    assert len(released) + buffer.dropped_late == len(frames)


def test_moderate_jitter_sets_the_delay_to_its_90th_percentile() -> None:
    buffer: JitterBuffer[float] = JitterBuffer()
    released, _, delays = play(buffer, stream(4.0, jitter_s=0.008))
    assert 6.6 <= delays[-1] <= 8.0
    assert buffer.dropped_late == 0
    assert len(released) == len(delays)


def test_delay_shrinks_back_when_jitter_disappears() -> None:
    buffer: JitterBuffer[float] = JitterBuffer()
    frames = stream(3.0, jitter_s=0.015) + stream(10.0, start=3.0)
    _, _, delays = play(buffer, frames)
    jittery = round(3.0 / FRAME)
    assert delays[jittery - 1] == pytest.approx(10.0)
    tail = delays[jittery:]
    assert all(b <= a + 1e-12 for a, b in pairwise(tail))  # only shrinks
    assert tail[-1] == 0.0
    # clean for 2 s (window) then 2 ms/s: back at 0 by about 7 s
    assert tail[round(7.5 / FRAME)] == 0.0


def test_frames_are_held_until_playout_then_released() -> None:
    buffer: JitterBuffer[str] = JitterBuffer(JitterBufferConfig(clean_threshold_ms=0.0))
    # two frames establish base transit 30 ms and a 5 ms late one makes the target > 0
    for i, extra in enumerate([0.0] * 10 + [0.005] * 10):
        ts = i * FRAME
        buffer.push(f"f{i}", ts + 0.030 + extra, ts)
        buffer.pop_ready(ts + 0.030 + extra)
    assert buffer.delay_ms == pytest.approx(5.0)
    ts = 20 * FRAME
    buffer.push("on-time", ts + 0.030, ts)  # lateness 0 < target: waits 5 ms
    assert buffer.pop_ready(ts + 0.030) == []
    timer = buffer.next_timer()
    assert timer is not None and timer == pytest.approx(ts + 0.035)
    assert buffer.pop_ready(timer) == ["on-time"]


def test_older_frame_after_a_newer_release_is_dropped() -> None:
    buffer: JitterBuffer[str] = JitterBuffer()
    assert buffer.push("b", 1.040, 0.010)
    assert buffer.pop_ready(1.040) == ["b"]
    assert not buffer.push("a", 1.045, 0.000)
    assert buffer.dropped_late == 1
    assert buffer.next_timer() is None


def test_ready_newer_frame_releases_older_queued_ones_in_order() -> None:
    buffer: JitterBuffer[str] = JitterBuffer(JitterBufferConfig(clean_threshold_ms=0.0))
    for i in range(10):
        buffer.push(f"w{i}", i * FRAME + 0.030 + (0.004 if i % 2 else 0.0), i * FRAME)
        buffer.pop_ready(i * FRAME + 0.034)
    ts = 10 * FRAME
    buffer.push("x", ts + 0.030, ts)  # held for the target delay
    buffer.push("y", ts + FRAME + 0.060, ts + FRAME)  # very late: ready at once
    assert buffer.pop_ready(ts + FRAME + 0.060) == ["x", "y"]


def test_in_order_mode_never_drops_or_reorders() -> None:
    """Encode-time variation can invert send timestamps of neighbouring frames (a slow encode
    then a fast one); with frames delivered in decode order nothing may be dropped."""
    buffer: JitterBuffer[int] = JitterBuffer(in_order=True)
    out: list[int] = []
    t = 100.0
    sent = [t, t + 0.045, t + 0.040, t + 0.050, t + 0.066]  # frame 1 took 28 ms, frame 2 8 ms
    for i, ts in enumerate(sent):
        buffer.push(i, ts + 0.001, ts)
        out += buffer.pop_ready(ts + 0.001)
    out += buffer.pop_ready(t + 1.0)
    assert out == [0, 1, 2, 3, 4]
    assert buffer.dropped_late == 0


def test_jitter_under_a_quarter_frame_interval_is_clean() -> None:
    """3 ms of jitter is invisible at 60 fps (a quarter frame is 4.2 ms): no delay. At 240 fps
    the same jitter is most of a frame interval, and the buffer absorbs it."""
    at_60: JitterBuffer[float] = JitterBuffer()
    _, _, delays = play(at_60, stream(3.0, jitter_s=0.003))
    assert at_60.frame_interval_s == pytest.approx(FRAME)
    assert max(delays) == 0.0
    at_240: JitterBuffer[float] = JitterBuffer()
    _, _, delays_240 = play(at_240, stream(3.0, jitter_s=0.003, frame=1 / 240))
    assert at_240.frame_interval_s == pytest.approx(1 / 240)
    assert 2.5 <= delays_240[-1] <= 3.0


def test_clean_threshold_never_falls_below_the_configured_floor() -> None:
    buffer: JitterBuffer[float] = JitterBuffer(JitterBufferConfig(clean_interval_fraction=0.0))
    assert buffer.frame_interval_s is None
    assert buffer.clean_threshold_s == pytest.approx(0.0025)
    with pytest.raises(ValueError):
        JitterBufferConfig(clean_interval_fraction=1.5)


def test_the_lateness_percentile_is_read_from_the_current_window_only() -> None:
    """The sorted lateness list (read once per frame) always holds exactly the window's values."""
    buffer: JitterBuffer[float] = JitterBuffer()
    frames = stream(2.5, jitter_s=0.012, seed=3) + stream(3.0, jitter_s=0.002, start=2.5, seed=4)
    for ts, arrival in sorted(frames, key=lambda f: f[1]):
        buffer.push(ts, arrival, ts)
        buffer.pop_ready(arrival)
        assert buffer._lateness_sorted == sorted(late for _, late in buffer._lateness)
    assert len(buffer._lateness) < len(frames)  # the window did slide
