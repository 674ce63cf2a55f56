"""Capture on change: when the next picture is due (ChangePacer, RateCap, on a fake clock)."""

from __future__ import annotations

import random

import pytest

from wavry.media.pacing import (
    BURST_PICTURES,
    CAPTURE_HEADROOM,
    REFRESH_DELAYS_S,
    ChangePacer,
    RateCap,
)


def test_nothing_is_due_without_a_change_or_request() -> None:
    p = ChangePacer(60)
    assert p.next_due() is None and p.wait_s(5.0) is None


def test_first_change_is_taken_at_once_then_capped_at_the_frame_rate() -> None:
    p = ChangePacer(50)  # 20 ms interval: the capture's cap refills every 20 ms / headroom
    iv = 0.02 / CAPTURE_HEADROOM
    for t in (10.0, 10.001):  # a burst of two (a frame drawn in two requests) goes at once
        p.changed()
        assert p.wait_s(t) == 0.0
        p.taken(t)
    p.changed()
    p.changed()  # two changes while the cap holds fold into one picture
    # the bucket regains one picture per iv: the third one is due one iv after the first
    assert p.next_due() == pytest.approx(10.0 + iv)
    assert p.wait_s(10.005) == pytest.approx(10.0 + iv - 10.005)
    p.taken(10.0 + iv)
    assert p.counts.changes == 4 and p.counts.pictures == 3


def test_a_late_change_waits_for_nothing() -> None:
    p = ChangePacer(60)
    p.changed()
    p.taken(1.0)
    p.changed()
    assert p.wait_s(1.5) == 0.0  # long after the cap: at once


def test_refreshes_after_the_last_change_then_silence() -> None:
    p = ChangePacer(60)
    p.changed()
    p.taken(100.0)
    seen = []
    now = 100.0
    while (due := p.next_due()) is not None:
        assert due > now
        now = due
        seen.append(round(now - 100.0, 6))
        p.taken(now)
    assert seen == list(REFRESH_DELAYS_S)
    assert p.counts.refreshes == len(REFRESH_DELAYS_S)
    p.changed()  # a new change restarts the refresh schedule
    p.taken(200.0)
    assert p.next_due() == pytest.approx(200.0 + REFRESH_DELAYS_S[0])


def test_a_change_during_refreshes_restarts_them() -> None:
    p = ChangePacer(60)
    p.changed()
    p.taken(0.0)
    p.taken(REFRESH_DELAYS_S[0])  # first refresh
    p.changed()
    p.taken(0.2)
    assert p.next_due() == pytest.approx(0.2 + REFRESH_DELAYS_S[0])


def test_a_late_refresh_counts_for_every_delay_it_covers() -> None:
    p = ChangePacer(60)
    p.changed()
    p.taken(0.0)
    p.taken(1.5)  # the capture thread was late: covers 0.1, 0.3 and 1.0
    assert p.next_due() == pytest.approx(3.0)


def test_a_request_is_taken_without_a_change_and_keeps_the_schedule() -> None:
    p = ChangePacer(30)
    p.request()
    assert p.wait_s(0.0) == 0.0
    p.taken(0.0)
    assert p.next_due() is None  # a request starts no refreshes
    assert p.counts.requested == 1
    p.request()
    p.taken(0.0)
    p.request()
    assert p.next_due() == pytest.approx(1 / 30 / CAPTURE_HEADROOM)  # still capped


def test_refresh_never_comes_sooner_than_the_cap() -> None:
    p = ChangePacer(5, refresh_delays_s=(0.05,))  # 200 ms interval
    p.changed()
    p.taken(0.0)
    assert p.next_due() == pytest.approx(0.2)


def test_fps_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ChangePacer(0)


def test_the_cap_follows_the_streams_rate() -> None:
    p = ChangePacer(60)
    p.set_fps(10)
    for _ in range(int(BURST_PICTURES)):
        p.changed()
        p.taken(0.0)
    p.changed()
    assert p.next_due() == pytest.approx(0.1 / CAPTURE_HEADROOM)
    with pytest.raises(ValueError):
        p.set_fps(-1)


def capture(cap: RateCap, ticks: list[float]) -> list[float]:
    """Each tick is a change the capture sees when it comes (or when the cap lets it, if that
    is before the next tick: a later change supersedes a waiting one); returns when pictures
    were taken."""
    taken = []
    for i, t in enumerate(ticks):
        at = cap.allowed_at()
        when = t if at is None else max(t, at)
        if i + 1 < len(ticks) and when >= ticks[i + 1]:
            continue  # superseded by the next change before the cap allowed it
        cap.taken(when)
        taken.append(when)
    return taken


def jittery_ticks(hz: float, seconds: float, jitter_s: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [i / hz + rng.uniform(-jitter_s, jitter_s) for i in range(int(hz * seconds))]


def test_a_jittery_source_at_the_caps_own_rate_keeps_its_rate() -> None:
    # 60 Hz changes with ±2 ms of jitter, captured at 60 fps: every frame is taken, at once.
    # (A rule of "a whole interval since the previous picture" loses a frame whenever one
    # comes a little early: about a quarter of them here.)
    ticks = jittery_ticks(60, 10, 0.002)
    taken = capture(RateCap(60), ticks)
    assert len(taken) >= 0.98 * len(ticks)
    waits = [w - t for w, t in zip(taken, ticks, strict=False) if w >= t]
    assert sum(waits) / len(waits) < 0.001


def test_one_late_change_does_not_delay_the_ones_after_it() -> None:
    # 60 Hz with ±1 ms of jitter, one change 12 ms late (a busy scheduler, a slow grab). A
    # virtual schedule (next picture one interval after the previous one's due time, never
    # before the clock) moves later for good at that change and every later change waits
    # ~4 ms for it; the bucket takes them all at once again.
    ticks = jittery_ticks(60, 5, 0.001)
    ticks[60] += 0.012
    taken = capture(RateCap(60), ticks)
    assert len(taken) >= len(ticks) - 2
    after = [w - t for w, t in zip(taken, ticks, strict=False) if t > ticks[60] + 0.05]
    assert max(after) < 0.0005


def test_a_faster_source_is_capped_on_average() -> None:
    ticks = jittery_ticks(144, 10, 0.001)
    taken = capture(RateCap(60), ticks)
    assert len(taken) / 10 == pytest.approx(60, abs=1.0)
    # never more than the burst above the average rate, in any window
    for i, t0 in enumerate(taken):
        for j in range(i + 1, min(len(taken), i + 40)):
            assert j - i + 1 <= BURST_PICTURES + (taken[j] - t0) * 60 + 1e-6


def test_a_pause_earns_at_most_the_burst() -> None:
    cap = RateCap(10)  # 100 ms
    cap.taken(0.0)
    assert cap.allowed_at() is None  # one more at once (a burst of two)
    cap.taken(0.0)
    assert cap.allowed_at() == pytest.approx(0.1)
    for k in range(int(BURST_PICTURES)):  # long after: the burst, no more
        assert cap.allows(5.0 + k * 1e-3)
        cap.taken(5.0 + k * 1e-3)
    assert not cap.allows(5.05) and cap.allows(5.1 + 1e-3)


def test_set_fps_changes_the_interval() -> None:
    cap = RateCap(60)
    assert cap.allows(0.0) and cap.allowed_at() is None
    cap.set_fps(10)
    cap.taken(1.0)
    cap.taken(1.0)
    assert cap.allowed_at() == pytest.approx(1.1)
    taken = capture(cap, [1.0 + i / 60 for i in range(1, 601)])
    assert len(taken) == pytest.approx(100, abs=2)  # 10 s at 10 fps
    with pytest.raises(ValueError):
        cap.set_fps(0)
    with pytest.raises(ValueError):
        RateCap(60, burst=0.5)
