"""Reed–Solomon FEC (docs/spec/RIFT.md §7.2): zfec against the spec's vectors, and repair from
any k of the k+m datagrams of a group through the encoder and decoder."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from wavry.rift import rift_pb2
from wavry.rift.fec import REED_SOLOMON, XOR, FecEncoder
from wavry.rift.fec_decoder import FecDecoder
from wavry.rift.reed_solomon import rs_parities, rs_recover

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "fec" / "reed_solomon_gf256.json"
CASES = json.loads(VECTORS.read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"k{c['k']}m{c['m']}")
def test_parities_reproduce_the_spec_vectors(case: dict[str, object]) -> None:
    k, m = int(case["k"]), int(case["m"])  # type: ignore[call-overload]
    shards = [bytes.fromhex(h) for h in case["shards_hex"]]  # type: ignore[attr-defined]
    assert [len(s) for s in shards] == case["shard_lengths"] and len(shards) == k
    parities = rs_parities(shards, m)
    assert [p.hex() for p in parities] == case["parities_hex"]
    # the coefficient rows G[k..k+m-1]: parity j of the unit shard e_i is G[k+j][i]
    if case.get("parity_coefficients") is not None:
        rows = [[0] * k for _ in range(m)]
        for i in range(k):
            unit = [bytes([1 if c == i else 0]) for c in range(k)]
            for j, p in enumerate(rs_parities(unit, m)):
                rows[j][i] = p[0]
        assert rows == case["parity_coefficients"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"k{c['k']}m{c['m']}")
def test_any_k_of_k_plus_m_rebuild_the_vectors(case: dict[str, object]) -> None:
    k, m = int(case["k"]), int(case["m"])  # type: ignore[call-overload]
    shards = [bytes.fromhex(h) for h in case["shards_hex"]]  # type: ignore[attr-defined]
    parities = [bytes.fromhex(h) for h in case["parities_hex"]]  # type: ignore[attr-defined]
    longest = max(len(s) for s in shards)
    rng = random.Random(k * 100 + m)
    for _ in range(20):
        lost = set(rng.sample(range(k + m), m))  # data and parities alike
        present = {i: s for i, s in enumerate(shards) if i not in lost}
        have = {j: p for j, p in enumerate(parities) if k + j not in lost}
        data = rs_recover(k, m, present, have, longest)
        assert [d[: len(s)] for d, s in zip(data, shards, strict=True)] == shards


def _group(rng: random.Random, k: int) -> list[bytes]:
    # AEAD payloads are at least 16 bytes; the last chunk of a frame is usually shorter
    return [rng.randbytes(rng.choice([16, 40, 300, 1200])) for _ in range(k)]


@pytest.mark.parametrize(("k", "m"), [(1, 2), (3, 2), (5, 3), (8, 4)])
def test_decoder_repairs_every_pattern_of_up_to_m_losses(k: int, m: int) -> None:
    """Any m of the k+m datagrams lost, parities included, whatever the order of arrival."""
    rng = random.Random(k + 10 * m)
    shards = _group(rng, k)
    first = 100
    encoder = FecEncoder(k, m, scheme=REED_SOLOMON)
    parities: list[rift_pb2.FecPacket] = []
    for i, s in enumerate(shards):
        parities += encoder.add(first + i, s, 0.0)
    assert [p.scheme for p in parities] == [REED_SOLOMON] * m
    assert [p.parity_index for p in parities] == list(range(m))
    for lost in itertools.combinations(range(k + m), m):
        dec = FecDecoder()
        items = [(i, s) for i, s in enumerate(shards) if i not in lost]
        items += [(k + j, p) for j, p in enumerate(parities) if k + j not in lost]
        rng.shuffle(items)
        got: dict[int, bytes] = {}
        for index, item in items:
            if index < k:
                assert isinstance(item, bytes)
                rebuilt = dec.on_datagram(first + index, item, 0.0)
            else:
                assert isinstance(item, rift_pb2.FecPacket)
                rebuilt = dec.on_parity(item, 0.0, carrier_packet_id=first + index)
            got.update(rebuilt)
        expected = {first + i: shards[i] for i in lost if i < k}
        assert got == expected, lost


def test_more_losses_than_parities_are_not_guessed_and_resends_complete_the_group() -> None:
    rng = random.Random(7)
    k, m, first = 6, 2, 1
    shards = _group(rng, k)
    encoder = FecEncoder(k, m, scheme=REED_SOLOMON)
    parities: list[rift_pb2.FecPacket] = []
    for i, s in enumerate(shards):
        parities += encoder.add(first + i, s, 0.0)
    dec = FecDecoder()
    for i in (0, 4, 5):  # 1, 2, 3 lost: one more than the parities repair
        assert dec.on_datagram(first + i, shards[i], 0.0) == []
    for j, p in enumerate(parities):
        assert dec.on_parity(p, 0.0, carrier_packet_id=first + k + j) == []
    # NACK asks for the excess only: the first m missing are the parities' business
    assert [dec.will_repair(first + i) for i in (1, 2, 3)] == [True, True, False]
    # one resend arrives: the parities rebuild the other two
    assert dict(dec.on_datagram(first + 3, shards[3], 0.0)) == {
        first + 1: shards[1],
        first + 2: shards[2],
    }


def test_decoder_ignores_impossible_or_unoffered_groups() -> None:
    base = dict(group_id=1, first_packet_id=1, parity_index=0, payload=bytes(20))
    rs = rift_pb2.FEC_REED_SOLOMON
    bad = [
        rift_pb2.FecPacket(shard_count=200, parity_count=56, shard_lengths=[20] * 200, scheme=rs),
        rift_pb2.FecPacket(shard_count=2, parity_count=0, shard_lengths=[20] * 2, scheme=rs),
        rift_pb2.FecPacket(shard_count=2, parity_count=3, shard_lengths=[20] * 2),  # XOR m > k
        rift_pb2.FecPacket(shard_count=2, parity_count=1, shard_lengths=[20] * 2, scheme=7),  # type: ignore[arg-type]
    ]
    dec = FecDecoder()
    for fec in bad:
        fec.MergeFrom(rift_pb2.FecPacket(**base))  # type: ignore[arg-type]
        assert dec.on_parity(fec, 0.0, carrier_packet_id=300) == []
    assert dec.stats.parities_invalid == len(bad)
    # a decoder that offers XOR only takes no Reed-Solomon parity
    xor_only = FecDecoder(schemes=(XOR,))
    fec = rift_pb2.FecPacket(shard_count=2, parity_count=3, shard_lengths=[20] * 2, scheme=rs)
    fec.MergeFrom(rift_pb2.FecPacket(**base))  # type: ignore[arg-type]
    assert xor_only.on_parity(fec, 0.0, carrier_packet_id=300) == []
    assert xor_only.stats.parities_invalid == 1
    assert FecDecoder().on_parity(fec, 0.0, carrier_packet_id=300) == []  # valid, nothing lost
