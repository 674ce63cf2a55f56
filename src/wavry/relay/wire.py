"""Relay datagram codec (docs/spec/CONTROL_PLANE.md §4).

Every datagram to or from a relay starts with a 20-byte header::

    magic 0x57 | version 0x01 | type | flags (0) | session id (16 bytes, RFC 4122 order)

followed by a type-specific payload (big-endian):

- LEASE_PRESENT / LEASE_RENEW: ``role u8`` (0 client, 1 host) ``token_len u16`` token
- LEASE_ACK: ``expires_unix_ms u64`` ``soft_limit_kbps u32`` ``hard_limit_kbps u32``
- LEASE_REJECT: ``reason u16``
- LEASE_CHALLENGE: ``role u8`` ``cookie (32 bytes)``
- LEASE_PROOF: ``role u8`` ``cookie (32)`` ``signature (64)`` ``token_len u16`` token
- FORWARD: one opaque RIFT datagram (never parsed here)

A binding moves to a new address only with a LEASE_PROOF from that address: the relay's cookie
(proves the address receives) signed with the Ed25519 key named by the lease's ``sub`` (proves
the peer is the lease's holder, not someone who saw the cleartext lease).

Decoding is strict: wrong magic, version, unknown type, non-zero flags, wrong payload length,
bad role, over-long or non-UTF-8 token all raise :class:`WireError`.
"""

from __future__ import annotations

import enum
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from wavry.controlplane.lease import MAX_TOKEN_LEN, RejectReason

__all__ = [
    "HEADER_LEN",
    "MAGIC",
    "MAX_DATAGRAM",
    "MAX_TOKEN_LEN",
    "PROOF_CONTEXT",
    "VERSION",
    "Header",
    "LeaseAck",
    "LeaseChallenge",
    "LeasePresent",
    "LeaseProof",
    "LeaseReject",
    "PacketType",
    "RejectReason",
    "Role",
    "WireError",
    "answer_challenge",
    "decode_header",
    "decode_lease_ack",
    "decode_lease_challenge",
    "decode_lease_present",
    "decode_lease_proof",
    "decode_lease_reject",
    "encode_forward",
    "encode_header",
    "encode_lease_ack",
    "encode_lease_challenge",
    "encode_lease_present",
    "encode_lease_proof",
    "encode_lease_reject",
    "forward_payload",
    "proof_message",
]

MAGIC = 0x57
VERSION = 0x01
HEADER_LEN = 20
MAX_DATAGRAM = 65507  # largest UDP payload over IPv4

_HEADER = struct.Struct("!BBBB16s")
_PRESENT = struct.Struct("!BH")
_ACK = struct.Struct("!QII")
_REJECT = struct.Struct("!H")
COOKIE_LEN = 32
SIGNATURE_LEN = 64
PROOF_CONTEXT = b"wavry-relay-proof:"
_CHALLENGE = struct.Struct(f"!B{COOKIE_LEN}s")
_PROOF = struct.Struct(f"!B{COOKIE_LEN}s{SIGNATURE_LEN}sH")


class WireError(ValueError):
    """A relay datagram is malformed."""


class PacketType(enum.IntEnum):
    LEASE_PRESENT = 0x01
    LEASE_ACK = 0x02
    LEASE_REJECT = 0x03
    LEASE_RENEW = 0x04
    LEASE_CHALLENGE = 0x05
    LEASE_PROOF = 0x06
    FORWARD = 0x10


class Role(enum.IntEnum):
    CLIENT = 0
    HOST = 1

    @property
    def claim(self) -> str:
        """The lease ``role`` claim for this role."""
        return "client" if self is Role.CLIENT else "host"

    @property
    def other(self) -> Role:
        return Role.HOST if self is Role.CLIENT else Role.CLIENT


@dataclass(frozen=True, slots=True)
class Header:
    type: PacketType
    session_id: uuid.UUID
    flags: int = 0


@dataclass(frozen=True, slots=True)
class LeasePresent:
    role: Role
    token: str


@dataclass(frozen=True, slots=True)
class LeaseChallenge:
    role: Role
    cookie: bytes


@dataclass(frozen=True, slots=True)
class LeaseProof:
    role: Role
    cookie: bytes
    signature: bytes
    token: str


@dataclass(frozen=True, slots=True)
class LeaseAck:
    expires_unix_ms: int
    soft_limit_kbps: int
    hard_limit_kbps: int


@dataclass(frozen=True, slots=True)
class LeaseReject:
    reason: int

    @property
    def known_reason(self) -> RejectReason | None:
        try:
            return RejectReason(self.reason)
        except ValueError:
            return None


def _sid_bytes(session_id: uuid.UUID | bytes) -> bytes:
    raw = session_id.bytes if isinstance(session_id, uuid.UUID) else bytes(session_id)
    if len(raw) != 16:
        raise WireError("session id must be 16 bytes")
    return raw


def encode_header(ptype: PacketType, session_id: uuid.UUID | bytes) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, PacketType(ptype), 0, _sid_bytes(session_id))


def decode_header(data: bytes) -> Header:
    if len(data) < HEADER_LEN:
        raise WireError(f"datagram shorter than the {HEADER_LEN}-byte relay header")
    if len(data) > MAX_DATAGRAM:
        raise WireError("datagram too large")
    magic, version, ptype, flags, sid = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireError(f"bad magic 0x{magic:02x}")
    if version != VERSION:
        raise WireError(f"unsupported version {version}")
    try:
        kind = PacketType(ptype)
    except ValueError:
        raise WireError(f"unknown packet type 0x{ptype:02x}") from None
    if flags != 0:
        raise WireError(f"non-zero flags 0x{flags:02x}")
    return Header(kind, uuid.UUID(bytes=sid), flags)


def encode_lease_present(
    session_id: uuid.UUID | bytes, role: Role, token: str, *, renew: bool = False
) -> bytes:
    raw = token.encode("utf-8")
    if not raw or len(raw) > MAX_TOKEN_LEN:
        raise WireError(f"token must be 1..{MAX_TOKEN_LEN} bytes")
    ptype = PacketType.LEASE_RENEW if renew else PacketType.LEASE_PRESENT
    return encode_header(ptype, session_id) + _PRESENT.pack(Role(role), len(raw)) + raw


def decode_lease_present(data: bytes) -> tuple[Header, LeasePresent]:
    """Decode a LEASE_PRESENT or LEASE_RENEW datagram."""
    header = decode_header(data)
    if header.type not in (PacketType.LEASE_PRESENT, PacketType.LEASE_RENEW):
        raise WireError(f"expected LEASE_PRESENT/LEASE_RENEW, got {header.type.name}")
    body = memoryview(data)[HEADER_LEN:]
    if len(body) < _PRESENT.size:
        raise WireError("lease payload truncated")
    role_raw, token_len = _PRESENT.unpack_from(body)
    try:
        role = Role(role_raw)
    except ValueError:
        raise WireError(f"bad role {role_raw}") from None
    if token_len == 0 or token_len > MAX_TOKEN_LEN:
        raise WireError(f"token length {token_len} out of range 1..{MAX_TOKEN_LEN}")
    if len(body) != _PRESENT.size + token_len:
        raise WireError("token length does not match the datagram")
    try:
        token = bytes(body[_PRESENT.size :]).decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("token is not UTF-8") from None
    return header, LeasePresent(role, token)


def encode_lease_ack(
    session_id: uuid.UUID | bytes, expires_unix_ms: int, soft_limit_kbps: int, hard_limit_kbps: int
) -> bytes:
    try:
        body = _ACK.pack(expires_unix_ms, soft_limit_kbps, hard_limit_kbps)
    except struct.error as exc:
        raise WireError(f"LEASE_ACK field out of range: {exc}") from None
    return encode_header(PacketType.LEASE_ACK, session_id) + body


def decode_lease_ack(data: bytes) -> tuple[Header, LeaseAck]:
    header = decode_header(data)
    if header.type is not PacketType.LEASE_ACK:
        raise WireError(f"expected LEASE_ACK, got {header.type.name}")
    if len(data) != HEADER_LEN + _ACK.size:
        raise WireError(f"LEASE_ACK payload must be {_ACK.size} bytes")
    return header, LeaseAck(*_ACK.unpack_from(data, HEADER_LEN))


def encode_lease_reject(session_id: uuid.UUID | bytes, reason: int) -> bytes:
    if not 0 <= reason <= 0xFFFF:
        raise WireError("reason out of range")
    return encode_header(PacketType.LEASE_REJECT, session_id) + _REJECT.pack(reason)


def decode_lease_reject(data: bytes) -> tuple[Header, LeaseReject]:
    """Decode a LEASE_REJECT. Unknown reason codes are kept (as ints), not refused."""
    header = decode_header(data)
    if header.type is not PacketType.LEASE_REJECT:
        raise WireError(f"expected LEASE_REJECT, got {header.type.name}")
    if len(data) != HEADER_LEN + _REJECT.size:
        raise WireError(f"LEASE_REJECT payload must be {_REJECT.size} bytes")
    return header, LeaseReject(_REJECT.unpack_from(data, HEADER_LEN)[0])


def encode_forward(session_id: uuid.UUID | bytes, datagram: bytes) -> bytes:
    """Wrap one RIFT datagram for the relay."""
    if not datagram:
        raise WireError("FORWARD needs a non-empty datagram")
    if HEADER_LEN + len(datagram) > MAX_DATAGRAM:
        raise WireError("datagram too large to relay")
    return encode_header(PacketType.FORWARD, session_id) + datagram


def forward_payload(data: bytes) -> tuple[Header, bytes]:
    """Split a FORWARD datagram into its header and the opaque RIFT datagram."""
    header = decode_header(data)
    if header.type is not PacketType.FORWARD:
        raise WireError(f"expected FORWARD, got {header.type.name}")
    if len(data) == HEADER_LEN:
        raise WireError("empty FORWARD")
    return header, bytes(data[HEADER_LEN:])


def encode_lease_challenge(session_id: uuid.UUID | bytes, role: Role, cookie: bytes) -> bytes:
    if len(cookie) != COOKIE_LEN:
        raise WireError(f"cookie must be {COOKIE_LEN} bytes")
    return encode_header(PacketType.LEASE_CHALLENGE, session_id) + _CHALLENGE.pack(role, cookie)


def decode_lease_challenge(data: bytes) -> tuple[Header, LeaseChallenge]:
    header = decode_header(data)
    if header.type is not PacketType.LEASE_CHALLENGE:
        raise WireError(f"expected LEASE_CHALLENGE, got {header.type.name}")
    if len(data) != HEADER_LEN + _CHALLENGE.size:
        raise WireError(f"LEASE_CHALLENGE payload must be {_CHALLENGE.size} bytes")
    role_raw, cookie = _CHALLENGE.unpack_from(data, HEADER_LEN)
    try:
        role = Role(role_raw)
    except ValueError:
        raise WireError(f"bad role {role_raw}") from None
    return header, LeaseChallenge(role, cookie)


def proof_message(session_id: uuid.UUID | bytes, role: Role, cookie: bytes) -> bytes:
    """What a peer signs with its device key to answer a challenge."""
    return PROOF_CONTEXT + _sid_bytes(session_id) + bytes((Role(role),)) + cookie


def encode_lease_proof(
    session_id: uuid.UUID | bytes, role: Role, cookie: bytes, signature: bytes, token: str
) -> bytes:
    raw = token.encode("utf-8")
    if not raw or len(raw) > MAX_TOKEN_LEN:
        raise WireError(f"token must be 1..{MAX_TOKEN_LEN} bytes")
    if len(cookie) != COOKIE_LEN or len(signature) != SIGNATURE_LEN:
        raise WireError("cookie must be 32 bytes and signature 64")
    body = _PROOF.pack(Role(role), cookie, signature, len(raw))
    return encode_header(PacketType.LEASE_PROOF, session_id) + body + raw


def decode_lease_proof(data: bytes) -> tuple[Header, LeaseProof]:
    header = decode_header(data)
    if header.type is not PacketType.LEASE_PROOF:
        raise WireError(f"expected LEASE_PROOF, got {header.type.name}")
    body = memoryview(data)[HEADER_LEN:]
    if len(body) < _PROOF.size:
        raise WireError("LEASE_PROOF payload truncated")
    role_raw, cookie, signature, token_len = _PROOF.unpack_from(body)
    try:
        role = Role(role_raw)
    except ValueError:
        raise WireError(f"bad role {role_raw}") from None
    if token_len == 0 or token_len > MAX_TOKEN_LEN:
        raise WireError(f"token length {token_len} out of range 1..{MAX_TOKEN_LEN}")
    if len(body) != _PROOF.size + token_len:
        raise WireError("token length does not match the datagram")
    try:
        token = bytes(body[_PROOF.size :]).decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("token is not UTF-8") from None
    return header, LeaseProof(role, cookie, signature, token)


def answer_challenge(data: bytes, token: str, sign: Callable[[bytes], bytes]) -> bytes:
    """The LEASE_PROOF answering the LEASE_CHALLENGE ``data`` for the lease ``token``;
    ``sign`` is the device key's Ed25519 signing function (``Identity.sign``)."""
    header, challenge = decode_lease_challenge(data)
    signature = sign(proof_message(header.session_id, challenge.role, challenge.cookie))
    return encode_lease_proof(header.session_id, challenge.role, challenge.cookie, signature, token)
