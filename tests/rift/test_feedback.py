"""TransportFeedback building/parsing and StatsReport accumulation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift import rift_pb2
from wavry.rift.feedback import (
    MAX_FEEDBACK_PACKETS,
    FeedbackBuilder,
    FeedbackConfig,
    FeedbackError,
    StatsAccumulator,
    parse_feedback,
)


def drain(builder: FeedbackBuilder, now: float) -> list[rift_pb2.TransportFeedback]:
    messages = []
    while (msg := builder.build(now)) is not None:
        messages.append(msg)
    return messages


# --------------------------------------------------------------------------- known answer
def test_known_answer_bytes_and_bit_order() -> None:
    builder = FeedbackBuilder()
    builder.on_packet(109, 0.9997)  # reordered: arrives first
    builder.on_packet(100, 1.0)
    builder.on_packet(102, 1.0015)
    builder.on_packet(103, 1.002)
    msg = builder.build(1.01)
    assert msg is not None
    assert msg.base_packet_id == 100
    assert msg.packet_count == 10
    # bit i LSB-first in byte i // 8: ids 100, 102, 103 → 0b00001101; id 109 → byte 1, bit 1
    assert msg.received_bitmap == bytes([0x0D, 0x02])
    assert msg.reference_time_us == 1_000_000  # the first received id *in id order* (100)
    assert list(msg.arrival_delta_us) == [0, 1500, 2000, -300]
    expected = "0864 100a 1a020d02 20c0843d 2a0700b817a01fd704".replace(" ", "")
    assert msg.SerializeToString().hex() == expected
    assert parse_feedback(msg) == [
        (100, 1.0),
        (101, None),
        (102, 1.0015),
        (103, 1.002),
        (104, None),
        (105, None),
        (106, None),
        (107, None),
        (108, None),
        (109, 0.9997),
    ]


def test_parse_hand_built_message() -> None:
    msg = rift_pb2.TransportFeedback.FromString(
        bytes.fromhex("0864100a1a020d0220c0843d2a0700b817a01fd704")
    )
    received = [(pid, t) for pid, t in parse_feedback(msg) if t is not None]
    assert received == [(100, 1.0), (102, 1.0015), (103, 1.002), (109, 0.9997)]


# --------------------------------------------------------------------------- builder behaviour
def test_interval_and_next_timer() -> None:
    builder = FeedbackBuilder()
    assert builder.next_timer() is None and builder.build(0.0) is None
    builder.on_packet(1, 2.0)
    assert builder.next_timer() == 2.0
    first = builder.build(2.0)
    assert first is not None and first.packet_count == 1
    builder.on_packet(2, 2.01)
    assert builder.next_timer() == pytest.approx(2.05)
    assert builder.build(2.04) is None
    second = builder.build(2.05)
    assert second is not None and second.base_packet_id == 2


def test_late_packets_are_ignored_and_counted() -> None:
    builder = FeedbackBuilder()
    for pid in (1, 2, 4):
        builder.on_packet(pid, 1.0 + pid / 1000)
    msg = builder.build(1.01)
    assert msg is not None and [t is None for _, t in parse_feedback(msg)] == [
        False,
        False,
        True,
        False,
    ]
    builder.on_packet(3, 1.02)  # already reported lost
    builder.on_packet(5, 1.03)
    assert builder.late_ignored == 1
    msg = builder.build(1.07)
    assert msg is not None and (msg.base_packet_id, msg.packet_count) == (5, 1)


def test_reordering_inside_one_window_is_reported_exactly() -> None:
    builder = FeedbackBuilder()
    for pid, t in ((3, 1.003), (1, 1.004), (2, 1.001)):
        builder.on_packet(pid, t)
    msg = builder.build(1.05)
    assert msg is not None
    assert parse_feedback(msg) == [(1, 1.004), (2, 1.001), (3, 1.003)]


def test_large_window_is_split_under_the_size_budget() -> None:
    builder = FeedbackBuilder()
    for pid in range(1, 5001):
        if pid % 7:
            builder.on_packet(pid, 10.0 + pid * 1e-5)
    messages = drain(builder, 10.1)
    assert len(messages) > 1
    assert all(len(m.SerializeToString()) <= 1000 for m in messages)
    covered = [pid for m in messages for pid, _ in parse_feedback(m)]
    assert covered == list(range(1, 5001))
    assert builder.next_timer() is None


def test_huge_gap_is_skipped_not_spread_over_many_messages() -> None:
    builder = FeedbackBuilder()
    builder.on_packet(1, 1.0)
    drain(builder, 1.0)
    builder.on_packet(1_000_000, 1.1)
    messages = drain(builder, 1.1)
    assert len(messages) == 1
    assert messages[0].base_packet_id == 1_000_000
    assert builder.skipped_ids == 1_000_000 - 2


def test_on_packet_rejects_bad_inputs() -> None:
    builder = FeedbackBuilder()
    with pytest.raises(ValueError):
        builder.on_packet(0, 1.0)
    with pytest.raises(ValueError):
        builder.on_packet(1, -0.5)
    builder.on_packet(1, 1.0)
    builder.on_packet(1, 1.1)
    assert builder.duplicates_ignored == 1


# --------------------------------------------------------------------------- round trip
arrival_sets = st.dictionaries(
    keys=st.integers(min_value=0, max_value=3000),
    values=st.integers(min_value=0, max_value=200_000),  # µs after the window start
    min_size=1,
    max_size=400,
)


@settings(max_examples=150, deadline=None)
@given(
    offsets=arrival_sets,
    base=st.integers(min_value=1, max_value=2**63),
    budget=st.sampled_from([64, 120, 1000]),
    start_us=st.integers(min_value=0, max_value=10**12),
    order_seed=st.randoms(use_true_random=False),
)
def test_round_trip(
    offsets: dict[int, int], base: int, budget: int, start_us: int, order_seed: object
) -> None:
    builder = FeedbackBuilder(FeedbackConfig(max_message_bytes=budget))
    arrivals = {base + off: start_us + delta for off, delta in offsets.items()}
    ids = list(arrivals)
    order_seed.shuffle(ids)  # type: ignore[attr-defined]
    for pid in ids:
        builder.on_packet(pid, arrivals[pid] / 1_000_000)
    messages = drain(builder, 10**7)
    assert all(len(m.SerializeToString()) <= budget for m in messages)
    reported = [entry for m in messages for entry in parse_feedback(m)]
    reported_ids = [pid for pid, _ in reported]
    assert reported_ids == list(range(min(ids), max(ids) + 1))  # every id once, in order
    for pid, arrival in reported:
        expected = arrivals.get(pid)
        assert arrival == (None if expected is None else expected / 1_000_000)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "fields",
    [
        {"base_packet_id": 1, "packet_count": 9, "received_bitmap": b"\x01"},  # too short
        {"base_packet_id": 1, "packet_count": 8, "received_bitmap": b"\x00\x00"},  # too long
        {"base_packet_id": 1, "packet_count": 3, "received_bitmap": b"\x08"},  # bit past count
        {"base_packet_id": 1, "packet_count": 3, "received_bitmap": b"\x03"},  # 2 bits, 0 deltas
        {
            "base_packet_id": 1,
            "packet_count": 3,
            "received_bitmap": b"\x01",
            "arrival_delta_us": [0, 5],
        },
        {"base_packet_id": 1, "packet_count": MAX_FEEDBACK_PACKETS + 1},
        {"base_packet_id": 1, "packet_count": 2**32 - 1},
        {"base_packet_id": 0, "packet_count": 1, "received_bitmap": b"\x00"},
        {"base_packet_id": 2**64 - 1, "packet_count": 2, "received_bitmap": b"\x00"},
        {
            "base_packet_id": 1,
            "packet_count": 1,
            "received_bitmap": b"\x01",
            "reference_time_us": 5,
            "arrival_delta_us": [-6],
        },
    ],
)
def test_parse_rejects_malformed(fields: dict[str, object]) -> None:
    msg = rift_pb2.TransportFeedback(**fields)  # type: ignore[arg-type]
    with pytest.raises(FeedbackError):
        parse_feedback(msg)


def test_empty_feedback_is_valid() -> None:
    assert parse_feedback(rift_pb2.TransportFeedback()) == []


@settings(max_examples=300, deadline=None)
@given(
    base=st.integers(min_value=0, max_value=2**64 - 1),
    count=st.one_of(st.integers(0, 80), st.integers(0, 2**32 - 1)),
    bitmap=st.binary(max_size=12),
    ref=st.integers(min_value=0, max_value=2**64 - 1),
    deltas=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=20),
)
def test_parse_never_crashes(
    base: int, count: int, bitmap: bytes, ref: int, deltas: list[int]
) -> None:
    msg = rift_pb2.TransportFeedback(
        base_packet_id=base,
        packet_count=count,
        received_bitmap=bitmap,
        reference_time_us=ref,
        arrival_delta_us=deltas,
    )
    try:
        parsed = parse_feedback(msg)
    except FeedbackError:
        return
    assert len(parsed) == count
    assert sum(1 for _, t in parsed if t is not None) == len(deltas)


# --------------------------------------------------------------------------- stats
def test_stats_report_loss_rtt_and_period() -> None:
    stats = StatsAccumulator()
    assert stats.build(0.0) is None  # starts the period
    for pid in range(1, 101):
        if pid % 10:  # 10, 20, … 90 lost; 100 lost too but not yet detectable
            stats.on_packet(pid, pid / 200)
    stats.set_rtt(0.0325)
    assert stats.build(0.9) is None
    report = stats.build(1.0)
    assert report == rift_pb2.StatsReport(
        period_ms=1000, received_packets=90, lost_packets=9, rtt_us=32500, jitter_us=0
    )
    stats.on_packet(90, 1.1)  # a late one does not make loss negative
    for pid in range(101, 111):
        stats.on_packet(pid, 1.2)
    report = stats.build(2.0)
    assert report is not None
    assert (report.received_packets, report.lost_packets) == (11, 0)


def test_stats_jitter_rfc3550() -> None:
    stats = StatsAccumulator()
    for i in range(200):  # frames every 16 ms, arrival alternating +0 / +2 ms
        stats.on_media_timestamp(i * 0.016, 100 + i * 0.016 + (0.002 if i % 2 else 0.0))
    # |D| = 2 ms every frame: J converges to 2000 µs
    assert stats.jitter_us == pytest.approx(2000, abs=5)
    clean = StatsAccumulator()
    for i in range(50):
        clean.on_media_timestamp(i * 0.016, 7 + i * 0.016)
        clean.on_media_timestamp(i * 0.016, 7 + i * 0.016 + 0.001)  # same frame: ignored
    assert clean.jitter_us == 0
