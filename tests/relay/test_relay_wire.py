"""Relay header and payload codecs (docs/spec/CONTROL_PLANE.md §4)."""

from __future__ import annotations

import struct
import uuid

import pytest

from wavry.relay import wire
from wavry.relay.wire import PacketType, RejectReason, Role, WireError

SID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
SID_BYTES = bytes.fromhex("00112233445566778899aabbccddeeff")  # RFC 4122 byte order


def test_header_layout() -> None:
    assert wire.encode_header(PacketType.FORWARD, SID) == b"\x57\x01\x10\x00" + SID_BYTES
    assert wire.encode_header(PacketType.LEASE_PRESENT, SID_BYTES)[:4] == b"W\x01\x01\x00"
    header = wire.decode_header(b"W\x01\x04\x00" + SID_BYTES)
    assert header == wire.Header(PacketType.LEASE_RENEW, SID, 0)
    assert wire.HEADER_LEN == 20
    assert [int(t) for t in PacketType] == [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10]
    assert [int(r) for r in RejectReason] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_lease_present_golden_and_roundtrip() -> None:
    token = "v4.public.abc"
    data = wire.encode_lease_present(SID, Role.HOST, token)
    assert data == b"W\x01\x01\x00" + SID_BYTES + b"\x01\x00\x0d" + token.encode()
    header, present = wire.decode_lease_present(data)
    assert header.type is PacketType.LEASE_PRESENT and header.session_id == SID
    assert present == wire.LeasePresent(Role.HOST, token)
    renew = wire.encode_lease_present(SID, Role.CLIENT, token, renew=True)
    assert renew[2] == 0x04 and renew[20] == 0
    assert wire.decode_lease_present(renew)[1].role is Role.CLIENT
    assert Role.CLIENT.claim == "client" and Role.HOST.claim == "host"
    assert Role.CLIENT.other is Role.HOST


def test_ack_reject_forward_golden() -> None:
    ack = wire.encode_lease_ack(SID, 1_700_000_300_000, 20000, 30000)
    assert ack[20:] == struct.pack("!QII", 1_700_000_300_000, 20000, 30000)
    assert len(ack) == 36
    assert wire.decode_lease_ack(ack)[1] == wire.LeaseAck(1_700_000_300_000, 20000, 30000)
    rej = wire.encode_lease_reject(SID, RejectReason.SESSION_FULL)
    assert rej == b"W\x01\x03\x00" + SID_BYTES + b"\x00\x04"
    decoded = wire.decode_lease_reject(rej)[1]
    assert decoded.reason == 4 and decoded.known_reason is RejectReason.SESSION_FULL
    assert wire.decode_lease_reject(rej[:-2] + b"\x01\x00")[1].known_reason is None
    fwd = wire.encode_forward(SID, b"\x00riftdatagram")
    assert fwd == b"W\x01\x10\x00" + SID_BYTES + b"\x00riftdatagram"
    assert wire.forward_payload(fwd) == (wire.Header(PacketType.FORWARD, SID), b"\x00riftdatagram")


def test_challenge_and_proof_golden_and_roundtrip() -> None:
    """The address proof of §4, byte for byte (an independent peer must produce these)."""
    from wavry.rift.identity import Identity, verify_signature

    cookie = bytes(range(32))
    challenge = wire.encode_lease_challenge(SID, Role.CLIENT, cookie)
    assert challenge == b"W\x01\x05\x00" + SID_BYTES + b"\x00" + cookie and len(challenge) == 53
    assert wire.decode_lease_challenge(challenge)[1] == wire.LeaseChallenge(Role.CLIENT, cookie)
    message = wire.proof_message(SID, Role.CLIENT, cookie)
    assert message == b"wavry-relay-proof:" + SID_BYTES + b"\x00" + cookie
    key = Identity.from_private_bytes(bytes(32))
    token = "v4.public.abc"
    proof = wire.answer_challenge(challenge, token, key.sign)
    signature = key.sign(message)  # Ed25519 is deterministic
    assert proof == (
        b"W\x01\x06\x00" + SID_BYTES + b"\x00" + cookie + signature + b"\x00\x0d" + token.encode()
    )
    header, decoded = wire.decode_lease_proof(proof)
    assert header.type is PacketType.LEASE_PROOF
    assert decoded == wire.LeaseProof(Role.CLIENT, cookie, signature, token)
    assert verify_signature(key.public_key, decoded.signature, message)
    for bad in (challenge[:-1], challenge + b"x", challenge[:20] + b"\x02" + cookie):
        with pytest.raises(WireError):
            wire.decode_lease_challenge(bad)
    for bad in (proof[:-1], proof + b"x", proof[:20] + b"\x07" + proof[21:], proof[:118]):
        with pytest.raises(WireError):
            wire.decode_lease_proof(bad)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "shorter"),
        (b"W\x01\x10\x00" + SID_BYTES[:15], "shorter"),
        (b"X\x01\x10\x00" + SID_BYTES, "magic"),
        (b"W\x02\x10\x00" + SID_BYTES, "version"),
        (b"W\x01\x07\x00" + SID_BYTES, "type"),
        (b"W\x01\x00\x00" + SID_BYTES, "type"),
        (b"W\x01\x10\x01" + SID_BYTES, "flags"),
        (b"W\x01\x10\x00" + SID_BYTES + b"x" * 65500, "too large"),
    ],
)
def test_bad_headers(data: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match):
        wire.decode_header(data)


def _present(body: bytes, ptype: int = 1) -> bytes:
    return bytes([0x57, 1, ptype, 0]) + SID_BYTES + body


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_present(b""), "truncated"),
        (_present(b"\x00\x00"), "truncated"),
        (_present(b"\x02\x00\x01a"), "role"),
        (_present(b"\x00\x00\x00"), "out of range"),
        (_present(b"\x00\x20\x01" + b"a" * 8193), "out of range"),
        (_present(b"\x00\x00\x05abcd"), "does not match"),
        (_present(b"\x00\x00\x03abcd"), "does not match"),
        (_present(b"\x00\x00\x02\xff\xfe"), "UTF-8"),
        (_present(b"\x00\x00\x01a", ptype=0x10), "expected"),
    ],
)
def test_bad_lease_present(data: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match):
        wire.decode_lease_present(data)


def test_max_token_length() -> None:
    token = "t" * 8192
    assert wire.decode_lease_present(wire.encode_lease_present(SID, Role.HOST, token))[1].token
    with pytest.raises(WireError):
        wire.encode_lease_present(SID, Role.HOST, token + "t")
    with pytest.raises(WireError):
        wire.encode_lease_present(SID, Role.HOST, "")


def test_bad_fixed_payloads() -> None:
    ack = wire.encode_lease_ack(SID, 1, 2, 3)
    for data in (ack[:-1], ack + b"\x00"):
        with pytest.raises(WireError, match="LEASE_ACK"):
            wire.decode_lease_ack(data)
    rej = wire.encode_lease_reject(SID, 1)
    for data in (rej[:-1], rej + b"\x00"):
        with pytest.raises(WireError, match="LEASE_REJECT"):
            wire.decode_lease_reject(data)
    with pytest.raises(WireError, match="expected LEASE_ACK"):
        wire.decode_lease_ack(rej)
    with pytest.raises(WireError, match="expected LEASE_REJECT"):
        wire.decode_lease_reject(ack)
    with pytest.raises(WireError, match="empty"):
        wire.forward_payload(wire.encode_header(PacketType.FORWARD, SID))
    with pytest.raises(WireError):
        wire.encode_forward(SID, b"")
    with pytest.raises(WireError):
        wire.encode_lease_ack(SID, -1, 0, 0)
    with pytest.raises(WireError):
        wire.encode_lease_ack(SID, 0, 2**32, 0)
    with pytest.raises(WireError):
        wire.encode_lease_reject(SID, 70000)
    with pytest.raises(WireError):
        wire.encode_header(PacketType.FORWARD, b"short")
