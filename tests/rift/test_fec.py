"""Interleaved XOR FEC (docs/spec/RIFT.md §7.1): encoder, decoder, validation."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wavry.rift import rift_pb2
from wavry.rift.chunking import MAX_GROUP_SHARDS, fec_message, fec_message_size, varint_size
from wavry.rift.fec import REED_SOLOMON, FecEncoder, _OpenGroup
from wavry.rift.fec_decoder import FecDecoder

# --- known answer -------------------------------------------------------------------------------

KAT_SHARDS = [
    bytes(range(0x00, 0x14)),  # 20 bytes
    bytes(range(0xA0, 0xB0)),  # 16 bytes
    bytes([0xFF] * 18),  # 18 bytes
    bytes(range(0x30, 0x41)),  # 17 bytes
]
KAT_PARITY_0 = "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efee1213"
KAT_PARITY_1 = "9090909090909090909090909090909040000000"
KAT_WIRE_0 = "0807106418042a14fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efee12133204141012113802"
KAT_WIRE_1 = "08071064180420012a1490909090909090909090909090909090400000003204141012113802"


def _plain_xor_parity(shards: list[bytes], parity_index: int, parity_count: int) -> bytes:
    longest = max(len(s) for s in shards)
    out = [0] * longest
    for i, shard in enumerate(shards):
        if i % parity_count == parity_index:
            for pos, byte in enumerate(shard):
                out[pos] ^= byte
    return bytes(out)


def test_known_answer_group_k4_m2() -> None:
    assert _plain_xor_parity(KAT_SHARDS, 0, 2).hex() == KAT_PARITY_0
    assert _plain_xor_parity(KAT_SHARDS, 1, 2).hex() == KAT_PARITY_1
    encoder = FecEncoder(4, 2, first_group_id=7)
    parities = []
    for i, shard in enumerate(KAT_SHARDS):
        parities += encoder.add(100 + i, shard, now=0.0)
    assert len(parities) == 2
    for j, fec in enumerate(parities):
        assert fec.group_id == 7
        assert fec.first_packet_id == 100
        assert fec.shard_count == 4
        assert fec.parity_index == j
        assert fec.parity_count == 2
        assert list(fec.shard_lengths) == [20, 16, 18, 17]
    assert parities[0].payload.hex() == KAT_PARITY_0
    assert parities[1].payload.hex() == KAT_PARITY_1
    assert parities[0].SerializeToString().hex() == KAT_WIRE_0
    assert parities[1].SerializeToString().hex() == KAT_WIRE_1


def test_known_answer_recovery_cuts_to_shard_length() -> None:
    decoder = FecDecoder()
    wire = rift_pb2.FecPacket.FromString(bytes.fromhex(KAT_WIRE_1))
    assert decoder.on_datagram(101, KAT_SHARDS[1], 0.0) == []
    assert decoder.on_parity(wire, 0.0) == [(103, KAT_SHARDS[3])]  # 17 bytes, not 20


# --- encoder ------------------------------------------------------------------------------------


def _encode_group(shards: list[bytes], k: int, m: int, first: int) -> list[rift_pb2.FecPacket]:
    encoder = FecEncoder(k, m, max_datagram_size=65507)
    parities: list[rift_pb2.FecPacket] = []
    for i, shard in enumerate(shards):
        parities += encoder.add(first + i, shard, now=0.0)
    parities += encoder.flush()
    return parities


def test_encoder_rejects_bad_params() -> None:
    for k, m in [(0, 0), (2, 3), (65, 1), (3, -1)]:
        with pytest.raises(ValueError):
            FecEncoder(k, m)
    # Reed-Solomon may carry more parities than data (k + m <= 255), XOR may not
    assert FecEncoder(2, 3, scheme=REED_SOLOMON).m == 3
    with pytest.raises(ValueError):
        FecEncoder(64, 192, scheme=REED_SOLOMON)


def test_m_zero_protects_nothing_and_keeps_no_shards() -> None:
    encoder = FecEncoder(4, 0)
    assert [encoder.add(i, b"x" * 30, 0.0) for i in range(1, 9)] == [[]] * 8
    assert encoder.pending_shards == 0 and encoder.next_timer() is None
    assert encoder.flush() == []
    encoder.set_params(4, 1)  # losses showed up: protection resumes with the next id
    assert encoder.add(9, b"y" * 30, 0.0) == [] and encoder.pending_shards == 1


def test_non_consecutive_id_closes_group_early() -> None:
    encoder = FecEncoder(4, 2)
    assert encoder.add(10, b"a" * 20, 0.0) == []
    assert encoder.add(11, b"b" * 20, 0.0) == []
    assert encoder.add(12, b"c" * 20, 0.0) == []
    closed = encoder.add(20, b"d" * 20, 0.0)  # gap: 10..12 closed as a 3-shard group
    assert [f.shard_count for f in closed] == [3, 3]
    assert [f.first_packet_id for f in closed] == [10, 10]
    assert encoder.pending_shards == 1
    assert encoder.stats.groups_closed_early == 1


def test_partial_group_has_parity_count_at_most_shard_count() -> None:
    encoder = FecEncoder(8, 4)
    encoder.add(1, b"x" * 30, 0.0)
    encoder.add(2, b"y" * 30, 0.0)
    parities = encoder.flush()
    assert [(f.shard_count, f.parity_count, f.parity_index) for f in parities] == [
        (2, 2, 0),
        (2, 2, 1),
    ]
    assert encoder.flush() == []


def test_old_ids_are_ignored_and_group_ids_increase() -> None:
    encoder = FecEncoder(2, 1)
    first = encoder.add(5, b"a" * 16, 0.0)
    assert first == []
    assert encoder.add(5, b"a" * 16, 0.0) == []  # retransmission
    assert encoder.add(3, b"z" * 16, 0.0) == []
    group_a = encoder.add(6, b"b" * 16, 0.0)
    group_b = encoder.add(7, b"c" * 16, 0.0) + encoder.add(8, b"d" * 16, 0.0)
    assert group_a[0].group_id < group_b[0].group_id
    assert encoder.stats.ignored_old_ids == 2


def test_set_params_takes_effect_at_next_group() -> None:
    encoder = FecEncoder(4, 1)
    encoder.add(1, b"a" * 16, 0.0)
    encoder.set_params(2, 2)
    assert (encoder.k, encoder.m) == (4, 1)
    out = []
    for pid in range(2, 5):
        out += encoder.add(pid, b"b" * 16, 0.0)
    assert [(f.shard_count, f.parity_count) for f in out] == [(4, 1)]
    assert (encoder.k, encoder.m) == (2, 2)
    out = encoder.add(5, b"c" * 16, 0.0) + encoder.add(6, b"d" * 16, 0.0)
    assert [(f.shard_count, f.parity_count) for f in out] == [(2, 2), (2, 2)]


def test_poll_closes_stale_group() -> None:
    encoder = FecEncoder(10, 1, max_group_delay=0.005)
    assert encoder.next_timer() is None
    encoder.add(1, b"a" * 16, now=1.0)
    assert encoder.next_timer() == pytest.approx(1.005)
    assert encoder.poll(1.004) == []
    assert len(encoder.poll(1.005)) == 1
    assert encoder.next_timer() is None


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(16, 1400 - 18), min_size=1, max_size=80),
    k=st.integers(1, MAX_GROUP_SHARDS),
    data=st.data(),
)
def test_parity_datagrams_always_fit(lengths: list[int], k: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(1, k))
    encoder = FecEncoder(k, m, max_datagram_size=1400, first_group_id=2**64 - 100)
    first = 2**63 - 200
    parities: list[rift_pb2.FecPacket] = []
    for i, length in enumerate(lengths):
        parities += encoder.add(first + i, bytes(length), now=0.0)
    parities += encoder.flush()
    for fec in parities:
        message = rift_pb2.Message(media=rift_pb2.MediaMessage(fec=fec))
        assert 18 + message.ByteSize() + 16 <= 1400
    covered = sum(f.shard_count for f in parities if f.parity_index == 0)
    assert covered + encoder.stats.unprotected_datagrams == len(lengths)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 3000), min_size=0, max_size=70),
    extra=st.integers(0, 70_000),
    m=st.integers(1, MAX_GROUP_SHARDS),
    ids=st.sampled_from([(1, 1), (200, 16_500), (2**64 - 100, 2**63 - 200)]),
    max_datagram=st.sampled_from([1200, 1400, 9000, 65_507]),
)
def test_group_size_check_matches_the_exact_parity_size(
    lengths: list[int], extra: int, m: int, ids: tuple[int, int], max_datagram: int
) -> None:
    """The encoder's inline size sum agrees with `fec_message_size` in every state."""
    encoder = FecEncoder(MAX_GROUP_SHARDS, m, max_datagram_size=max_datagram, first_group_id=ids[0])
    group = _OpenGroup(first_packet_id=ids[1], started_at=0.0)
    for length in lengths:
        group.shards.append(bytes(length))
        group.lengths_varint_bytes += varint_size(length)
        group.longest = max(group.longest, length)
    count = len(lengths) + 1
    size = fec_message_size(
        group_id=ids[0],
        first_packet_id=ids[1],
        shard_lengths_varint_bytes=group.lengths_varint_bytes + varint_size(extra),
        shard_count=count,
        parity_count=min(m, count),
        parity_len=max([*lengths, extra]),
    )
    assert encoder._parity_message_size(group, extra) == size
    assert encoder._fits(group, extra) == (18 + size + 16 <= max_datagram)


def test_too_large_shard_is_left_unprotected() -> None:
    encoder = FecEncoder(4, 1, max_datagram_size=1200)
    encoder.add(1, bytes(100), 0.0)
    out = encoder.add(2, bytes(1200 - 18), 0.0)
    assert [f.shard_count for f in out] == [1]
    assert encoder.stats.unprotected_datagrams == 1
    assert encoder.pending_shards == 0


# --- decoder: recovery --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    k=st.integers(1, MAX_GROUP_SHARDS),
    data=st.data(),
    order=st.sampled_from(["parities_last", "parities_first", "shuffled"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_burst_up_to_m_is_recovered_byte_exact(
    k: int, data: st.DataObject, order: str, seed: int
) -> None:
    m = data.draw(st.integers(1, k), label="m")
    lengths = data.draw(st.lists(st.integers(16, 300), min_size=k, max_size=k), label="lengths")
    burst = data.draw(st.integers(1, m), label="burst")
    start = data.draw(st.integers(0, k - burst), label="start")
    rng = random.Random(seed)
    shards = [rng.randbytes(n) for n in lengths]
    first = 1000
    parities = _encode_group(shards, k, m, first)
    assert len(parities) == m
    lost = set(range(start, start + burst))

    decoder = FecDecoder()
    events: list[tuple[str, int]] = [("shard", i) for i in range(k) if i not in lost]
    events += [("parity", j) for j in range(m)]
    rng.shuffle(events)
    if order != "shuffled":
        events.sort(key=lambda e: (e[0] == "parity") == (order == "parities_last"))
    recovered: dict[int, bytes] = {}
    for kind, index in events:
        if kind == "shard":
            out = decoder.on_datagram(first + index, shards[index], 0.0)
        else:
            out = decoder.on_parity(parities[index], 0.0, carrier_packet_id=first + k + index)
        for pid, payload in out:
            assert pid not in recovered
            recovered[pid] = payload
    # A shard still in flight behind its parity may be rebuilt too (the replay window then
    # drops the late original); every rebuilt payload must be byte-exact.
    assert set(recovered) >= {first + i for i in lost}
    assert recovered == {pid: shards[pid - first] for pid in recovered}
    if order == "parities_last":
        assert set(recovered) == {first + i for i in lost}
        assert decoder.stats.recovered == burst


def test_bursts_across_the_data_parity_boundary_are_recovered() -> None:
    """In send order (shards, then parities as the encoder emits them) every window of m
    datagrams holds m distinct classes, so a burst of up to m losses anywhere in the group,
    lost parities included, leaves every shard rebuildable; and the receiver marks the lost
    parity ids as parities (not to be NACKed) from one sibling that arrived."""
    rng = random.Random(7)
    first = 500
    for k in range(1, 21):
        shards = [rng.randbytes(rng.randint(20, 60)) for _ in range(k)]
        for m in range(1, min(k, 8) + 1):
            parities = _encode_group(shards, k, m, first)
            # the classes go on cycling after the last shard
            assert [f.parity_index for f in parities] == [(k + i) % m for i in range(m)]
            sequence = [("shard", i) for i in range(k)] + [("parity", j) for j in range(m)]
            for burst in range(1, m + 1):
                for start in range(0, k + m - burst + 1):
                    lost = set(range(start, start + burst))
                    decoder = FecDecoder()
                    recovered: dict[int, bytes] = {}
                    for pos, (kind, index) in enumerate(sequence):
                        if pos in lost:
                            continue
                        if kind == "shard":
                            out = decoder.on_datagram(first + index, shards[index], 0.0)
                        else:
                            out = decoder.on_parity(parities[index], 0.0, first + pos)
                        recovered.update(out)
                    lost_shards = {first + p for p in lost if p < k}
                    assert set(recovered) == lost_shards, (k, m, burst, start)
                    assert all(recovered[pid] == shards[pid - first] for pid in lost_shards)
                    if any(p < k for p in lost) or len(lost) == m:
                        continue
                    for p in lost:  # only parities lost, at least one arrived
                        assert decoder.likely_parity(first + p), (k, m, burst, start)


def test_parity_before_last_shards_recovers_when_a_shard_arrives() -> None:
    shards = [bytes([i + 1]) * (20 + i) for i in range(4)]
    parities = _encode_group(shards, 4, 1, first=50)
    decoder = FecDecoder()
    decoder.on_datagram(50, shards[0], 0.0)
    decoder.on_datagram(51, shards[1], 0.0)
    assert decoder.on_parity(parities[0], 0.0) == []  # 52 and 53 both missing
    assert decoder.will_repair(52) is False
    assert decoder.on_datagram(53, shards[3], 0.01) == [(52, shards[2])]
    # the caller passes the recovered datagram back once it passed AEAD: no second recovery
    assert decoder.on_datagram(52, shards[2], 0.01) == []


def test_two_losses_in_one_class_are_not_recovered() -> None:
    shards = [bytes([i]) * 16 for i in range(6)]
    parities = _encode_group(shards, 6, 2, first=1)
    decoder = FecDecoder()
    for i in (1, 3, 4, 5):  # class 0 = {0, 2, 4} lost 0 and 2; class 1 complete
        decoder.on_datagram(1 + i, shards[i], 0.0)
    assert decoder.on_parity(parities[0], 0.0) == []
    assert decoder.on_parity(parities[1], 0.0) == []
    assert decoder.stats.recovered == 0


def test_inconsistent_stored_shard_is_detected() -> None:
    shards = [bytes(16), bytes(16), bytes(16)]
    parities = _encode_group(shards, 3, 1, first=1)
    decoder = FecDecoder()
    decoder.on_datagram(1, bytes(17), 0.0)  # not the length the sender used
    decoder.on_datagram(2, bytes(16), 0.0)
    assert decoder.on_parity(parities[0], 0.0) == []
    assert decoder.stats.recovery_inconsistent == 1


# --- decoder: validation ------------------------------------------------------------------------


def _good_parity() -> rift_pb2.FecPacket:
    return rift_pb2.FecPacket.FromString(bytes.fromhex(KAT_WIRE_0))


CORRUPTIONS: dict[str, Callable[[rift_pb2.FecPacket], object]] = {
    "shard_count_zero": lambda f: setattr(f, "shard_count", 0),
    "shard_count_65": lambda f: setattr(f, "shard_count", 65),
    "shard_count_mismatch": lambda f: setattr(f, "shard_count", 3),
    "parity_count_zero": lambda f: setattr(f, "parity_count", 0),
    "parity_count_above_k": lambda f: setattr(f, "parity_count", 5),
    "parity_index_out_of_range": lambda f: setattr(f, "parity_index", 2),
    "payload_too_short": lambda f: setattr(f, "payload", f.payload[:-1]),
    "payload_too_long": lambda f: setattr(f, "payload", f.payload + b"\0"),
    "shard_length_below_tag": lambda f: f.shard_lengths.__setitem__(1, 15),
    "shard_length_huge": lambda f: f.shard_lengths.__setitem__(1, 70000),
    "shard_lengths_extra": lambda f: f.shard_lengths.append(16),
    "first_packet_id_zero": lambda f: setattr(f, "first_packet_id", 0),
    "first_packet_id_overflow": lambda f: setattr(f, "first_packet_id", 2**63 - 2),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_parity_is_ignored(corruption: str) -> None:
    decoder = FecDecoder()
    decoder.on_datagram(101, KAT_SHARDS[1], 0.0)
    decoder.on_datagram(102, KAT_SHARDS[2], 0.0)
    decoder.on_datagram(103, KAT_SHARDS[3], 0.0)
    bad = _good_parity()
    CORRUPTIONS[corruption](bad)
    assert decoder.on_parity(bad, 0.0) == []
    assert decoder.stats.parities_invalid == 1
    assert decoder.on_parity(_good_parity(), 0.0) == [(100, KAT_SHARDS[0])]


@settings(max_examples=200, deadline=None)
@given(
    group_id=st.integers(0, 2**64 - 1),
    first=st.integers(0, 2**64 - 1),
    shard_count=st.integers(0, 2**32 - 1),
    parity_index=st.integers(0, 2**32 - 1),
    parity_count=st.integers(0, 2**32 - 1),
    lengths=st.lists(st.integers(0, 2**32 - 1), max_size=70),
    payload=st.binary(max_size=300),
    carrier=st.none() | st.integers(1, 2**63),
)
def test_arbitrary_parity_never_raises(
    group_id: int,
    first: int,
    shard_count: int,
    parity_index: int,
    parity_count: int,
    lengths: list[int],
    payload: bytes,
    carrier: int | None,
) -> None:
    decoder = FecDecoder()
    for pid in range(1, 5):
        decoder.on_datagram(pid, bytes(20), 0.0)
    fec = rift_pb2.FecPacket(
        group_id=group_id,
        first_packet_id=first,
        shard_count=shard_count,
        parity_index=parity_index,
        parity_count=parity_count,
        payload=payload,
        shard_lengths=lengths,
    )
    for _, payload_out in decoder.on_parity(fec, 0.0, carrier_packet_id=carrier):
        assert 16 <= len(payload_out) <= len(payload)
    decoder.will_repair(2)


def test_conflicting_and_duplicate_parities_are_ignored() -> None:
    decoder = FecDecoder()
    assert decoder.on_parity(_good_parity(), 0.0) == []
    assert decoder.on_parity(_good_parity(), 0.0) == []
    assert decoder.stats.parities_duplicate == 1
    other = rift_pb2.FecPacket.FromString(bytes.fromhex(KAT_WIRE_1))
    other.shard_lengths[1] = 19  # still internally valid, but not this group's shape
    assert decoder.on_parity(other, 0.0) == []
    assert decoder.stats.parities_conflicting == 1
    overlapping = _good_parity()
    overlapping.group_id = 8
    overlapping.first_packet_id = 102
    assert decoder.on_parity(overlapping, 0.0) == []
    assert decoder.stats.parities_conflicting == 2


def test_parity_carried_by_an_id_inside_its_group_is_ignored() -> None:
    decoder = FecDecoder()
    assert decoder.on_parity(_good_parity(), 0.0, carrier_packet_id=103) == []
    assert decoder.stats.parities_invalid == 1


# --- decoder: memory bounds and will_repair -----------------------------------------------------


def test_memory_is_bounded() -> None:
    decoder = FecDecoder(max_stored_shards=500, max_groups=20, max_age=1.0)
    encoder = FecEncoder(4, 1)
    now = 0.0
    for pid in range(1, 5001):
        now += 0.0001
        payload = pid.to_bytes(4, "big") * 5
        decoder.on_datagram(pid, payload, now)
        for fec in encoder.add(pid, payload, now):
            decoder.on_parity(fec, now)
    assert len(decoder._shards) <= 500
    assert len(decoder._groups) <= 20
    decoder.on_datagram(5001, bytes(20), now + 2.0)  # everything older than 1 s expires
    assert len(decoder._shards) == 1
    assert len(decoder._groups) == 0


def _feed_group(decoder: FecDecoder, first: int, k: int, m: int, lost: set[int]) -> list[bytes]:
    shards = [bytes([first + i]) * 20 for i in range(k)]
    for i, shard in enumerate(shards):
        if i not in lost:
            decoder.on_datagram(first + i, shard, 0.0)
    return shards


def test_will_repair_known_group_waiting_for_its_parity() -> None:
    decoder = FecDecoder()
    shards = _feed_group(decoder, 1, 4, 2, lost={1})
    parities = _encode_group(shards, 4, 2, first=1)
    decoder.on_parity(parities[0], 0.0, carrier_packet_id=5)  # class 0 complete
    assert decoder.will_repair(2) is True  # parity 1 still expected right behind
    assert decoder.on_parity(parities[1], 0.0, carrier_packet_id=6) == [(2, shards[1])]
    assert decoder.will_repair(2) is False  # rebuilt; if AEAD rejected it, NACK it


def test_will_repair_false_when_parity_overdue() -> None:
    decoder = FecDecoder()
    shards = _feed_group(decoder, 1, 4, 2, lost={1})
    decoder.on_parity(_encode_group(shards, 4, 2, first=1)[0], 0.0, carrier_packet_id=5)
    for pid in range(7, 20):
        decoder.on_datagram(pid, bytes(20), 0.0)
    assert decoder.will_repair(2) is False


def test_will_repair_predicts_the_group_in_flight() -> None:
    decoder = FecDecoder()
    assert decoder.will_repair(3) is False  # no FEC seen yet
    shards = _feed_group(decoder, 1, 4, 1, lost=set())
    decoder.on_parity(_encode_group(shards, 4, 1, first=1)[0], 0.0, carrier_packet_id=5)
    decoder.on_datagram(6, bytes(20), 0.0)
    decoder.on_datagram(8, bytes(20), 0.0)  # 7 missing, its group's parity not yet here
    assert decoder.will_repair(7) is True
    decoder.on_datagram(10, bytes(20), 0.0)  # 9 missing too: same class (m = 1)
    assert decoder.will_repair(7) is False


@pytest.mark.parametrize("payload_len", [0, 1, 120, 1_300, 20_000])
def test_a_parity_message_is_written_as_protobuf_would(payload_len: int) -> None:
    fec = rift_pb2.FecPacket(
        group_id=2**40 + 3,
        first_packet_id=2**33 + 7,
        shard_count=12,
        parity_index=1,
        parity_count=3,
        payload=os.urandom(payload_len),
        shard_lengths=[1_262, 300, 1, 16_384] * 3,
        scheme=REED_SOLOMON,  # type: ignore[arg-type]
    )
    want = rift_pb2.Message(media=rift_pb2.MediaMessage(fec=fec)).SerializeToString()
    assert fec_message(fec) == want
    assert rift_pb2.Message.FromString(fec_message(fec)).media.fec == fec
