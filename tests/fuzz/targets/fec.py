"""FEC repair (docs/spec/RIFT.md §7): the receiver's decoder fed parities (``FecPacket``s with
any scheme, sizes and indices) and shards, in any order. Input: a sequence of records, each a
kind byte, a packet id byte and a length byte, then that many bytes (a shard, or a FecPacket)."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from wavry.rift import rift_pb2
from wavry.rift.fec import FecEncoder
from wavry.rift.fec_decoder import FecDecoder


def seeds() -> list[bytes]:
    enc = FecEncoder(4, 2)
    shards = [bytes([i]) * (40 + i) for i in range(4)]
    parities: list[rift_pb2.FecPacket] = []
    for i, sh in enumerate(shards):
        parities += enc.add(10 + i, sh, 0.0)
    parities += enc.flush()
    out = b""
    for i, sh in enumerate(shards[1:], start=1):
        out += bytes([0, 10 + i, len(sh)]) + sh
    for j, p in enumerate(parities):
        raw = p.SerializeToString()
        out += bytes([1, 14 + j, len(raw) % 256]) + raw[:255]
    return [out, out[: len(out) // 2]]


def test_one_input(data: bytes) -> None:
    dec = FecDecoder(max_stored_shards=256, max_groups=32)
    i, now = 0, 0.0
    while i + 3 <= len(data):
        kind, pid, n = data[i], data[i + 1], data[i + 2]
        body = data[i + 3 : i + 3 + n]
        i += 3 + n
        now += 0.001 * (kind >> 4)
        if kind & 1:
            fec = rift_pb2.FecPacket()
            try:
                fec.ParseFromString(body)
            except DecodeError:
                continue
            repaired = dec.on_parity(fec, now, carrier_packet_id=pid or None)
        else:
            repaired = dec.on_datagram(pid, body, now)
        for packet_id, payload in repaired:
            assert isinstance(packet_id, int) and isinstance(payload, bytes)
        dec.will_repair(pid)
        dec.likely_parity(pid)
