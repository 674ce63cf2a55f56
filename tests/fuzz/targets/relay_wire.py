"""The relay's datagram codec (docs/spec/CONTROL_PLANE.md §4): every decoder, strictly."""

from __future__ import annotations

import contextlib
import uuid

from wavry.relay import wire

SID = uuid.UUID(int=7)
DECODERS = (
    wire.decode_header,
    wire.decode_lease_present,
    wire.decode_lease_ack,
    wire.decode_lease_reject,
    wire.decode_lease_challenge,
    wire.decode_lease_proof,
    wire.forward_payload,
)


def seeds() -> list[bytes]:
    return [
        wire.encode_lease_present(SID, wire.Role.HOST, "v4.public.abc"),
        wire.encode_lease_ack(SID, 1_700_000_000_000, 1000, 2000),
        wire.encode_lease_reject(SID, 1),
        wire.encode_lease_challenge(SID, wire.Role.CLIENT, bytes(32)),
        wire.encode_lease_proof(SID, wire.Role.CLIENT, bytes(32), bytes(64), "v4.public.x"),
        wire.encode_forward(SID, b"RI\x00\x01" + bytes(20)),
    ]


def test_one_input(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(wire.WireError):
            decode(data)
