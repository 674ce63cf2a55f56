"""Capture on change: when the next picture is due (ChangePacer, RateCap, on a fake clock)."""

from __future__ import annotations

import itertools
import random

import pytest

from wavry.media.pacing import EARLY_FRACTION, REFRESH_DELAYS_S, ChangePacer, RateCap


def test_nothing_is_due_without_a_change_or_request() -> None:
    p = ChangePacer(60)
    assert p.next_due() is None and p.wait_s(5.0) is None


def test_first_change_is_taken_at_once_then_capped_at_the_frame_rate() -> None:
    p = ChangePacer(50)  # 20 ms interval
    p.changed()
    assert p.wait_s(10.0) == 0.0
    p.taken(10.0)
    p.changed()
    p.changed()  # two changes within one interval fold into one picture
    assert p.next_due() == pytest.approx(10.02 - EARLY_FRACTION * 0.02)  # may come early
    assert p.wait_s(10.005) == pytest.approx(10.02 - EARLY_FRACTION * 0.02 - 10.005)
    p.taken(10.02)
    assert p.counts.changes == 3 and p.counts.pictures == 2


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
    assert p.next_due() == pytest.approx((1 - EARLY_FRACTION) / 30)  # still capped


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
    p.changed()
    p.taken(0.0)
    p.changed()
    assert p.next_due() == pytest.approx(0.1 * (1 - EARLY_FRACTION))
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


def test_a_faster_source_is_capped_on_average() -> None:
    ticks = jittery_ticks(144, 10, 0.001)
    taken = capture(RateCap(60), ticks)
    assert len(taken) / 10 == pytest.approx(60, abs=1.0)
    gaps = [b - a for a, b in itertools.pairwise(taken)]
    assert min(gaps) >= (1 - EARLY_FRACTION) / 60 - 1e-9  # never more than half early


def test_a_pause_earns_no_burst() -> None:
    cap = RateCap(10)  # 100 ms
    cap.taken(0.0)
    assert cap.allowed_at() == pytest.approx(0.05)
    cap.taken(5.0)  # long after: the schedule restarts from now, no credit for the pause
    assert cap.allowed_at() == pytest.approx(5.05)
    assert not cap.allows(5.04) and cap.allows(5.05)


def test_set_fps_changes_the_interval() -> None:
    cap = RateCap(60)
    assert cap.allows(0.0) and cap.allowed_at() is None
    cap.set_fps(10)
    cap.taken(1.0)
    assert cap.allowed_at() == pytest.approx(1.0 + 0.1 * (1 - EARLY_FRACTION))
    taken = capture(cap, [1.0 + i / 60 for i in range(1, 601)])
    assert len(taken) == pytest.approx(100, abs=2)  # 10 s at 10 fps
    with pytest.raises(ValueError):
        cap.set_fps(0)
    with pytest.raises(ValueError):
        RateCap(60, early=1.0)
