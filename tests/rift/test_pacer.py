"""Pacer: spacing, burst, rate rules, charged bytes and stale-frame dropping (fake clock)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from wavry.rift.pacer import Pacer, PacerConfig


def frame(count: int, size: int = 1200, tag: int = 0) -> list[bytes]:
    return [bytes([tag, i % 256]) + bytes(size - 2) for i in range(count)]


def run_until_empty(pacer: Pacer, limit: float = 10.0) -> list[tuple[float, bytes]]:
    sent: list[tuple[float, bytes]] = []
    while (when := pacer.next_send_time()) is not None and when <= limit:
        sent.extend((when, d) for d, _, _ in pacer.pop_ready(when))
    return sent


def test_empty_pacer() -> None:
    pacer = Pacer()
    assert pacer.next_send_time() is None
    assert pacer.pop_ready(1.0) == []
    assert pacer.next_send_time() is None


def test_small_frame_on_idle_path_leaves_at_once() -> None:
    pacer = Pacer(bitrate_kbps=8000, fps=60)
    pacer.enqueue(frame(3), 5.0)
    assert len(pacer.pop_ready(5.0)) == 3
    assert pacer.next_send_time() is None


def test_spacing_follows_the_pacing_rate() -> None:
    pacer = Pacer(bitrate_kbps=8000, fps=60)  # base rate 2.5 × 8 Mbit/s = 2.5 MB/s
    pacer.enqueue(frame(10), 1.0)  # 12 kB: draining in half an interval needs only 1.44 MB/s
    assert pacer.pacing_rate_kbps == pytest.approx(20_000)
    sent = run_until_empty(pacer)
    times = [t for t, _ in sent]
    assert times[:4] == [1.0] * 4  # the burst: 4 × 1400 B bucket holds 4 datagrams
    gaps = [b - a for a, b in pairwise(times[4:])]
    assert all(g == pytest.approx(1200 / 2_500_000) for g in gaps)
    assert times[4] - 1.0 == pytest.approx((1200 - 800) / 2_500_000)  # 800 B left after burst


def test_big_frame_drains_within_half_a_frame_interval() -> None:
    pacer = Pacer(bitrate_kbps=2000, fps=60)  # base 5 Mbit/s would take 77 ms for this frame
    pacer.enqueue(frame(40), 0.0)  # 48 kB keyframe
    expected = 48_000 / (0.5 / 60)  # bytes/s
    assert pacer.pacing_rate_kbps == pytest.approx(expected * 8 / 1000)
    sent = run_until_empty(pacer)
    assert len(sent) == 40
    assert sent[-1][0] <= 0.5 / 60 + 1e-9


def test_pacing_rate_never_exceeds_the_cap() -> None:
    pacer = Pacer(PacerConfig(max_rate_kbps=10_000), bitrate_kbps=8000, fps=60)
    assert pacer.pacing_rate_kbps == 10_000
    pacer.enqueue(frame(40), 0.0)
    assert pacer.pacing_rate_kbps == 10_000
    sent = run_until_empty(pacer)
    gaps = [b[0] - a[0] for a, b in pairwise(sent[4:])]
    assert min(gaps) == pytest.approx(1200 * 8 / 10_000_000)


def test_bytes_sent_outside_are_charged_but_never_starve_media() -> None:
    pacer = Pacer(PacerConfig(max_rate_kbps=5000), bitrate_kbps=4000, fps=60)
    pacer.enqueue(frame(30), 0.0)
    pacer.pop_ready(0.0)  # burst gone, bucket empty
    media_next = pacer.next_send_time()
    assert media_next is not None and media_next > 0.0005
    pacer.charge(500, 0.0005)  # input that went out at once
    later = pacer.next_send_time()
    assert later is not None and later == pytest.approx(media_next + 500 / 625_000)
    for _ in range(100):
        pacer.charge(1400, later)  # however much: at most one bucket of debt
    last = pacer.next_send_time()
    assert last is not None and last - later <= (1200 + 4 * 1400) / 625_000 + 1e-9


def test_payload_tags_and_frame_ends() -> None:
    pacer = Pacer(PacerConfig(datagram_overhead=34), bitrate_kbps=8000, fps=60)
    pacer.enqueue(frame(2, size=100), 0.0, tag="a")
    pacer.enqueue(frame(1, size=100), 0.0, tag="b")
    assert pacer.queued_bytes == 3 * 134  # as the sealed datagrams will be
    out = pacer.pop_ready(0.0, limit=2)
    assert [(t, last) for _, t, last in out] == [("a", False), ("a", True)]
    assert [(t, last) for _, t, last in pacer.pop_ready(0.0)] == [("b", True)]
    assert pacer.queued_bytes == 0


def test_time_going_backwards_never_freezes_the_refill() -> None:
    """A backwards step (a caller on a wall clock) restarts the refill from the new time
    instead of waiting until the old time comes again."""
    pacer = Pacer(bitrate_kbps=8000, fps=60)
    pacer.enqueue(frame(30), 100.0)
    pacer.pop_ready(100.0)
    pacer.enqueue(frame(30, tag=1), 40.0)  # 60 s back
    sent = run_until_empty(pacer, limit=41.0)
    assert len(sent) == 26 + 30  # the rest of the first frame, then the second
    assert sent[-1][0] < 40.1


def test_stale_frame_is_dropped_whole_when_a_newer_one_arrives() -> None:
    pacer = Pacer(PacerConfig(max_rate_kbps=2000), bitrate_kbps=500, fps=60)
    old = frame(20, tag=1)
    pacer.enqueue(old, 0.0)
    sent_old = pacer.pop_ready(0.010)
    assert 0 < len(sent_old) < 20
    new = frame(3, tag=2)
    assert pacer.enqueue(new, 0.020) == 1  # the old frame is 20 ms old > 16.7 ms: dropped
    assert pacer.dropped_frames == 1
    assert pacer.dropped_datagrams == 20 - len(sent_old)
    sent = [d for _, d in run_until_empty(pacer)]
    assert sent == new


def test_recent_frame_is_kept_and_order_preserved() -> None:
    pacer = Pacer(PacerConfig(max_rate_kbps=2000), bitrate_kbps=500, fps=60)
    first, second = frame(6, tag=1), frame(6, tag=2)
    pacer.enqueue(first, 0.0)
    pacer.enqueue(second, 0.016)  # 16 ms < one interval: nothing dropped
    assert pacer.dropped_frames == 0
    assert [d for _, d in run_until_empty(pacer)] == first + second


def test_non_droppable_frame_is_kept() -> None:
    pacer = Pacer(PacerConfig(max_rate_kbps=2000), bitrate_kbps=500, fps=60)
    keyframe = frame(20, tag=1)
    pacer.enqueue(keyframe, 0.0, droppable=False)
    pacer.enqueue(frame(2, tag=2), 0.050)
    assert pacer.dropped_frames == 0
    assert len(run_until_empty(pacer)) == 22


def test_queued_bytes_and_datagrams() -> None:
    pacer = Pacer(bitrate_kbps=1000, fps=30)
    pacer.enqueue(frame(8, size=1000), 0.0)
    pacer.charge(50, 0.0)
    assert pacer.queued_datagrams == 8
    assert pacer.queued_bytes == 8000
    pacer.pop_ready(0.0)
    assert pacer.queued_bytes == 8000 - 5000  # 4 × 1400 bucket minus the 50 charged bytes


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        PacerConfig(frame_drain_fraction=0)
    with pytest.raises(ValueError):
        Pacer().set_target(1000, 0)


def test_rate_cap_paces_keyframes_at_the_capacity_and_frames_at_their_own_cap() -> None:
    pacer = Pacer(bitrate_kbps=8000, fps=60)
    pacer.set_rate_cap(8000, 12_000)  # 1 MB/s for keyframes, 1.5 MB/s for ordinary frames
    key = frame(100)  # 120 kB keyframe
    pacer.enqueue(key, 0.0, droppable=False)
    assert pacer.backlog_s() == pytest.approx((120_000 - 4 * 1400) / 1_000_000, rel=0.05)
    sent = run_until_empty(pacer)
    assert len(sent) == 100
    # 120 kB at 1 MB/s (less the initial bucket): ~114 ms instead of half a frame interval
    assert sent[-1][0] == pytest.approx(0.1144, abs=0.003)
    pacer.enqueue(frame(10), 1.0)  # an ordinary 12 kB frame: capped at 1.5 MB/s, not 1 MB/s
    sent = run_until_empty(pacer)
    assert sent[-1][0] - 1.0 == pytest.approx((12_000 - 4 * 1400) / 1_500_000, abs=0.001)
    pacer.set_rate_cap(None)
    pacer.enqueue(frame(10), 2.0)
    sent = run_until_empty(pacer)
    assert sent[-1][0] - 2.0 < 0.005  # uncapped: drains within half an interval


def test_backlog_is_zero_when_idle_and_rejects_bad_caps() -> None:
    pacer = Pacer()
    assert pacer.backlog_s() == 0.0
    with pytest.raises(ValueError):
        pacer.set_rate_cap(0)
    with pytest.raises(ValueError):
        pacer.set_rate_cap(1000, -1)


def test_clean_path_sends_a_whole_frame_at_once() -> None:
    """On a clean path the bucket holds a whole ordinary frame (one GSO batch, no timer waits);
    leaving the clean path restores the 4-datagram burst at once."""
    pacer = Pacer(bitrate_kbps=8000, fps=60)
    pacer.set_clean_path(0.03)
    pacer.pop_ready(0.0)
    pacer.enqueue(frame(20), 0.02)  # 24 kB after 20 ms idle: 2.5 MB/s refilled 50 kB
    assert len(pacer.pop_ready(0.02)) == 20
    pacer.enqueue(frame(20, tag=1), 0.04)
    assert len(pacer.pop_ready(0.04)) == 20
    pacer.set_clean_path(None)
    pacer.enqueue(frame(20, tag=2), 0.06)
    assert len(pacer.pop_ready(0.06)) == 4  # normal pacing spreads the rest
    rest = run_until_empty(pacer)
    assert len(rest) == 16
    assert rest[-1][0] <= 0.06 + 0.5 / 60 + 1e-9


def test_clean_burst_is_still_bounded_by_the_refill() -> None:
    pacer = Pacer(PacerConfig(clean_burst_bytes=6000), bitrate_kbps=8000, fps=60)
    pacer.set_clean_path(0.03)
    pacer.pop_ready(0.0)
    pacer.enqueue(frame(20), 1.0)  # after a long idle the bucket is full: 6000 B
    assert len(pacer.pop_ready(1.0)) == 5
    with pytest.raises(ValueError):
        PacerConfig(clean_burst_bytes=-1)


def test_clean_path_without_burst_keeps_the_small_bucket() -> None:
    """Next to a known bottleneck the transport asks for clean-path pacing without the burst."""
    pacer = Pacer(bitrate_kbps=8000, fps=60)
    pacer.set_clean_path(0.03, burst=False)
    assert pacer.clean_path
    pacer.pop_ready(0.0)
    pacer.enqueue(frame(20), 0.02)
    assert len(pacer.pop_ready(0.02)) == 4
    sent = run_until_empty(pacer)
    assert len(sent) == 16
    assert sent[-1][0] <= 0.02 + 0.03 / 60 + 1e-9  # still drained within 3 % of an interval


def test_times_a_little_out_of_order_are_not_credited_twice() -> None:
    """Callers read the clock a moment apart; an older time must not move the reference back
    (the interval would be refilled twice and leave as a burst)."""
    pacer = Pacer(bitrate_kbps=8000, fps=60)
    pacer.enqueue(frame(40), 1.0)
    pacer.pop_ready(1.0)
    first = len(pacer.pop_ready(1.002))
    pacer.charge(0, 1.001)  # a caller with a slightly older time
    again = len(pacer.pop_ready(1.002))
    assert first > 0 and again == 0
