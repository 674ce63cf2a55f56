"""RetransmitHistory and NackTracker on a fake clock (docs/spec/RIFT.md §7.3)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift import rift_pb2
from wavry.rift.fec import FecEncoder
from wavry.rift.fec_decoder import FecDecoder
from wavry.rift.retransmit import NackTracker, RetransmitHistory, nack_messages

# --- sender history -----------------------------------------------------------------------------


def test_history_keeps_one_second_or_4096_datagrams() -> None:
    history = RetransmitHistory()
    for pid in range(1, 10_001):  # 10k datagrams within 0.5 s: all younger than 1 s
        history.store(pid, pid.to_bytes(8, "big"), now=pid * 0.00005)
    assert len(history) == 10_000
    assert history.get(1) == (1).to_bytes(8, "big")
    history.store(10_001, b"late", now=2.0)  # older than 1 s: keep only the last 4096
    assert len(history) == 4096
    assert history.get(10_001 - 4095) is not None
    assert history.get(10_001 - 4096) is None
    for pid in range(10_002, 10_010):  # slow sender: 4096 old datagrams are still kept
        history.store(pid, b"x", now=60.0 + pid)
    assert len(history) == 4096


def test_history_hard_cap() -> None:
    history = RetransmitHistory(min_count=100, max_count=1000)
    for pid in range(1, 5000):
        history.store(pid, b"x", now=0.0)
    assert len(history) == 1000
    assert 4999 in history and 3999 not in history


def test_resend_returns_identical_bytes_with_limits() -> None:
    history = RetransmitHistory(max_resends_per_packet=2)
    history.store(7, b"datagram-7", now=0.0)
    history.store(8, b"datagram-8", now=0.0)
    history.store(7, b"other", now=0.0)  # a retransmission is not stored again
    assert history.resend([7, 8, 7, 99], now=0.1) == [b"datagram-7", b"datagram-8"]
    assert history.resend([7], now=0.2) == [b"datagram-7", b"datagram-7"]  # asked again: 2 copies
    assert history.resend([7], now=0.3) == []
    assert (history.stats.unknown, history.stats.resend_limited) == (1, 1)


def test_a_rerequested_datagram_goes_out_twice_with_its_copy_after_the_batch() -> None:
    history = RetransmitHistory()
    for pid in (1, 2, 3):
        history.store(pid, b"d%d" % pid, now=0.0)
    assert history.resend([1, 2], now=0.01) == [b"d1", b"d2"]  # first request: once each
    # 1 and 2 are asked again (their resends were lost), 3 for the first time
    assert history.resend([1, 2, 3], now=0.04) == [b"d1", b"d2", b"d3", b"d1", b"d2"]
    assert (history.stats.resent, history.stats.duplicated) == (5, 2)


def test_a_repeated_nack_is_answered_once() -> None:
    history = RetransmitHistory(min_resend_interval=0.001)
    history.store(1, b"d1", now=0.0)
    assert history.resend([1], now=0.01) == [b"d1"]
    # the receiver re-requests 1 in two messages that arrive together: one answer (two copies)
    assert history.resend([1], now=0.04) == [b"d1", b"d1"]
    assert history.resend([1], now=0.0402) == []
    assert history.stats.repeated == 1
    assert history.resend([1], now=0.07) == [b"d1", b"d1"]  # a later re-request is answered


def test_a_nack_younger_than_the_datagram_could_be_missed_is_not_answered() -> None:
    """A real loss is asked for a round trip after the datagram left at the earliest: a request
    within `min_age` was made before the datagram existed (it is still on its way)."""
    history = RetransmitHistory()
    history.store(5, b"d5", now=1.0)
    assert history.resend([5], now=1.004, min_age=0.005) == []
    assert history.stats.premature == 1
    assert history.resend([5], now=1.006, min_age=0.005) == [b"d5"]


# --- receiver tracker ---------------------------------------------------------------------------


def test_an_expected_tail_is_requested_at_once_and_again_only_once_it_surely_exists() -> None:
    nack = NackTracker(rtt=0.02, max_attempts=3, max_age=1.0)
    for pid in range(1, 5):
        nack.on_packet(pid, 0.0)
    # the frame's chunk count says ids up to 7 follow; the lane went quiet
    assert nack.expect_through(7, 0.01) == [[5, 6, 7]]
    assert nack.expect_through(7, 0.011) == [] and nack.highest_packet_id == 7
    assert nack.stats.tail_ids == 3
    # unanswered, and nothing later arrived: maybe the sender cut the frame and never sent
    # them, so no re-request (the ids may go to its next datagrams)
    assert nack.poll(0.04) == []
    assert nack.missing_ids == [5, 6, 7]
    # 6 arrives (it existed after all), then 9: 5 and 7 are real losses now, 8 a plain gap
    assert nack.on_packet(6, 0.045) == []
    assert nack.on_packet(9, 0.046) == [[8]]
    assert nack.poll(0.08) == [[5, 7, 8], [5, 7, 8]]  # (8 is due again too)
    # a jump past max_gap is not expected
    assert NackTracker(max_gap=10).expect_through(50, 0.0) == []


def test_gap_is_requested_immediately_and_late_arrival_clears_it() -> None:
    nack = NackTracker(rtt=0.04)
    assert nack.on_packet(1, 0.0) == []
    assert nack.on_packet(4, 0.001) == [[2, 3]]
    assert nack.on_packet(3, 0.002) == []
    assert nack.missing_ids == [2]
    assert nack.stats.arrived_after_request == 1
    assert nack.on_packet(3, 0.003) == []  # duplicate


def test_missing_first_ids_are_requested() -> None:
    nack = NackTracker()
    assert nack.on_packet(3, 0.0) == [[1, 2]]


def test_rerequest_after_about_one_rtt_at_most_n_times() -> None:
    nack = NackTracker(rtt=0.02, max_attempts=3, max_age=1.0)
    nack.on_packet(1, 0.0)
    assert nack.on_packet(3, 0.0) == [[2]]
    assert nack.next_timer() == 0.025
    assert nack.poll(0.024) == []
    assert nack.poll(0.025) == [[2], [2]]  # a re-request goes out in two messages
    nack.set_rtt(0.04)
    assert nack.poll(0.05) == []
    assert nack.poll(0.076) == [[2], [2]]
    assert nack.poll(0.2) == []  # three attempts made: give up
    assert nack.missing_ids == []
    assert (nack.stats.ids_requested, nack.stats.ids_rerequested, nack.stats.gave_up) == (1, 2, 1)
    assert nack.stats.repeated_ids == 2


def test_no_rerequest_when_too_late_to_be_useful() -> None:
    nack = NackTracker(rtt=0.1, max_age=0.15, max_attempts=5)
    nack.on_packet(1, 0.0)
    assert nack.on_packet(3, 0.0) == [[2]]
    assert nack.poll(0.125) == []  # a resend would arrive after 0.225 > 0.15
    assert nack.missing_ids == []


def test_batches_of_at_most_64_ids() -> None:
    nack = NackTracker()
    nack.on_packet(1, 0.0)
    batches = nack.on_packet(202, 0.0)
    assert [len(b) for b in batches] == [64, 64, 64, 8]
    assert [pid for b in batches for pid in b] == list(range(2, 202))
    messages = nack_messages(batches)
    assert list(messages[3].packet_ids) == list(range(194, 202))


def test_huge_jump_is_a_reset() -> None:
    nack = NackTracker(max_gap=1024)
    nack.on_packet(1, 0.0)
    assert nack.on_packet(1_000_000_000, 0.0) == []
    assert nack.missing_ids == []
    assert nack.stats.resets == 1
    assert nack.on_packet(1_000_000_002, 0.0) == [[1_000_000_001]]


def test_ids_fec_will_repair_are_held_then_requested_if_not_repaired() -> None:
    repairable = {5}
    nack = NackTracker(rtt=0.05, fec_hold=0.02, will_repair=lambda pid: pid in repairable)
    nack.on_packet(4, 0.0)  # 1..3 requested
    assert nack.on_packet(6, 0.001) == []  # 5 held for FEC
    assert nack.stats.held_for_fec == 1
    assert nack.next_timer() == 0.021
    assert nack.poll(0.01) == []
    assert nack.poll(0.021) == [[5]]  # parity never came


def test_held_id_is_requested_as_soon_as_fec_gives_up() -> None:
    repairable = {5}
    nack = NackTracker(
        fec_hold=0.02, will_repair=lambda pid: pid in repairable, first_expected_id=4
    )
    nack.on_packet(4, 0.0)
    assert nack.on_packet(6, 0.0) == []
    repairable.clear()  # a parity arrived: the class has two holes
    assert nack.poll(0.005) == [[5]]


def test_held_id_repaired_by_fec_is_never_requested() -> None:
    nack = NackTracker(fec_hold=0.02, will_repair=lambda pid: True, first_expected_id=4)
    nack.on_packet(4, 0.0)
    nack.on_packet(6, 0.0)
    nack.on_packet(5, 0.003)  # rebuilt from parity and authenticated
    assert nack.poll(0.1) == []
    assert nack.stats.arrived_unrequested == 1


def test_fec_and_nack_together() -> None:
    """One loss per parity class is left to FEC; two losses in a class are NACKed."""
    encoder, decoder = FecEncoder(4, 1), FecDecoder()
    nack = NackTracker(will_repair=decoder.will_repair, fec_hold=0.02)
    requested: list[int] = []
    recovered: list[int] = []
    # Groups: data 1..4 (parity in 5), 6..9 (10), 11..14 (15), 16..19 (20).
    lost = {7, 11, 13}  # group 6..9: one loss; group 11..14: two losses in its only class
    pid, now = 0, 0.0

    def receive(packet_id: int, payload: bytes, parity: bool = False) -> None:
        if parity:
            fec = rift_pb2.FecPacket.FromString(payload)
            out = decoder.on_parity(fec, now, carrier_packet_id=packet_id)
        else:
            out = decoder.on_datagram(packet_id, payload, now)
        for got_id, got_payload in out:
            recovered.append(got_id)
            decoder.on_datagram(got_id, got_payload, now)
            requested.extend(i for b in nack.on_packet(got_id, now) for i in b)
        requested.extend(i for b in nack.on_packet(packet_id, now) for i in b)
        requested.extend(i for b in nack.poll(now) for i in b)

    for _ in range(16):
        pid += 1
        now += 0.001
        payload = bytes([pid]) * 40
        parities = encoder.add(pid, payload, now)
        if pid not in lost:
            receive(pid, payload)
        for fec in parities:
            pid += 1
            receive(pid, fec.SerializeToString(), parity=True)
    assert recovered == [7]
    assert sorted(requested) == [11, 13]  # 13 at once (its class already has a hole), 11
    assert nack.stats.held_for_fec == 2  # 7 and 11 waited for their parity


@settings(max_examples=100, deadline=None)
@given(
    count=st.integers(10, 400),
    loss=st.floats(0.0, 0.3),
    reorder=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_arrivals_invariants(count: int, loss: float, reorder: float, seed: int) -> None:
    rng = random.Random(seed)
    nack = NackTracker(rtt=0.01, max_attempts=3, max_age=0.2)
    arrivals = []
    for pid in range(1, count + 1):
        if rng.random() < loss:
            continue
        delay = rng.random() * 0.02 if rng.random() < reorder else 0.0
        arrivals.append((pid * 0.001 + delay, pid))
    arrivals.sort()
    received: set[int] = set()
    attempts: Counter[int] = Counter()
    for now, pid in arrivals:
        calls = []
        timer = nack.next_timer()
        if timer is not None and timer <= now:
            calls.append(nack.poll(timer))
        calls.append(nack.on_packet(pid, now))
        for batches in calls:
            in_call: Counter[int] = Counter()
            for batch in batches:
                assert 1 <= len(batch) <= 64 and batch == sorted(batch)
                in_call.update(batch)
            for requested, times in in_call.items():
                assert requested not in received
                # a first request goes out once, a re-request twice (its own second message)
                assert times == (2 if attempts[requested] else 1)
                attempts[requested] += 1
        received.add(pid)
        assert pid not in nack.missing_ids
        assert len(nack.missing_ids) <= count
    assert all(n <= 3 for n in attempts.values())
    highest = max(received, default=0)
    never_arrived = set(range(1, highest)) - received
    assert never_arrived <= set(attempts)  # every real loss below the top was requested


def test_a_held_id_waits_while_the_media_lane_delivers_and_goes_when_it_idles() -> None:
    """On a slow link a group's parity arrives well after the gap showed: the FEC hold lasts
    while datagrams keep coming, and ends `fec_hold` after the lane went quiet."""
    repairable = {5}
    nack = NackTracker(rtt=0.02, fec_hold=0.005, will_repair=lambda pid: pid in repairable)
    for pid in range(1, 5):
        nack.on_packet(pid, pid * 0.001)
    assert nack.on_packet(6, 0.006) == []  # 5 is missing: held for its parity
    for i, pid in enumerate(range(7, 20)):  # 13 ms of datagrams, one a ms: still held
        assert nack.on_packet(pid, 0.007 + i * 0.001) == []
    assert nack.next_timer() == pytest.approx(0.019 + 0.005)
    assert nack.poll(0.0235) == []
    assert nack.poll(0.0245) == [[5]]  # the lane idled 5 ms: the parity was lost


def test_a_held_id_is_requested_once_the_lane_passes_its_parity() -> None:
    repairable = {5}
    nack = NackTracker(rtt=0.02, fec_hold=0.005, will_repair=lambda pid: pid in repairable)
    for pid in range(1, 5):
        nack.on_packet(pid, 0.0)
    assert nack.on_packet(6, 0.001) == []
    repairable.clear()  # e.g. ids beyond the group's parities arrived: no parity is coming
    assert nack.on_packet(7, 0.002) == [[5]]


def test_no_copies_when_the_sender_asks_for_none() -> None:
    history = RetransmitHistory()
    history.store(1, b"d1", now=0.0)
    assert history.resend([1], now=0.01, copies=False) == [b"d1"]
    assert history.resend([1], now=0.04, copies=False) == [b"d1"]  # congested: no copy
    assert history.stats.duplicated == 0


def test_a_poll_exactly_at_the_deadline_acts_on_it() -> None:
    """`missed_at + max_age` is the deadline the tracker hands out; at that `now`, `now -
    missed_at` rounds below `max_age` (1001.0 + 0.3 - 1001.0 < 0.3). The expiry must use the
    deadline's own form, or the timer stays due and fires again at once."""
    missed_at, max_age = 1001.0, 0.3
    assert (missed_at + max_age) - missed_at < max_age  # the rounding this is about
    nack = NackTracker(rtt=1.0, max_age=max_age, max_attempts=5, first_expected_id=1)
    nack.on_packet(1, missed_at - 0.01)
    assert nack.on_packet(3, missed_at) == [[2]]
    while (due := nack.next_timer()) is not None:
        nack.poll(due)
        after = nack.next_timer()
        assert after is None or after > due, (due, after)
    assert nack.missing_ids == []
