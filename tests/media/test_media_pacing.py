"""Capture on change: when the next picture is due (ChangePacer, on a fake clock)."""

from __future__ import annotations

import pytest

from wavry.media.pacing import REFRESH_DELAYS_S, ChangePacer


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
    assert p.next_due() == pytest.approx(10.02)
    assert p.wait_s(10.005) == pytest.approx(0.015)
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
    assert p.next_due() == pytest.approx(1 / 30)  # still capped


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
    assert p.next_due() == pytest.approx(0.1)
    with pytest.raises(ValueError):
        p.set_fps(-1)
