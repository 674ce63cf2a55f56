"""RIFT/1 datagram framing (docs/spec/RIFT.md §1): headers, CRC-16/KERMIT, datagram classification.

All checks here run before any cryptography, in the order the spec gives: length, magic,
version, CRC.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

MAGIC = b"RI"
VERSION = 1
HANDSHAKE_HEADER_LEN = 30
TRANSPORT_HEADER_LEN = 18
HANDSHAKE_ID_LEN = 12
AEAD_TAG_LEN = 16
DEFAULT_MAX_DATAGRAM = 1400
MIN_MAX_DATAGRAM = 1200
#: handshake header packet ids: msg1..msg3 of the Noise handshake, and the host's cookie reply
#: (+, docs/spec/RIFT.md §2: "Cookie reply"), which asks a client to prove its address
MSG1, MSG2, MSG3, COOKIE_REPLY = 1, 2, 3, 4

_PREFIX = MAGIC + VERSION.to_bytes(2, "big")
_TR_STRUCT = struct.Struct(">2sHIQH")
_TR_BODY = struct.Struct(">2sHIQ")
_PACKET_ID = struct.Struct(">Q")

# Bit-reversal table for one byte. CRC-16/KERMIT is the reflected form of CRC-16/XMODEM
# (poly 0x1021), which binascii.crc_hqx computes in C. Reflecting the input bytes and the
# 16-bit result turns one into the other, so no per-bit Python loop runs on the hot path.
_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_crc_hqx = binascii.crc_hqx


def crc16_kermit(data: bytes) -> int:
    """CRC-16/KERMIT (poly 0x1021 reflected, init 0, no final XOR). Check: "123456789" → 0x2189."""
    c = _crc_hqx(data.translate(_REV8), 0)
    return (_REV8[c & 0xFF] << 8) | _REV8[c >> 8]


class DropReason(Enum):
    """Why a datagram was dropped before reaching the cryptographic layer."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BAD_MAGIC = "bad_magic"
    BAD_VERSION = "bad_version"
    BAD_CRC = "bad_crc"
    BAD_HANDSHAKE_MESSAGE = "bad_handshake_message"
    BAD_ALIAS = "bad_alias"


class FramingError(ValueError):
    """A datagram that fails the framing checks; `reason` says which."""

    def __init__(self, reason: DropReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class HandshakeDatagram:
    handshake_id: bytes
    message_number: int
    header: bytes
    payload: bytes


class TransportDatagram:
    """A transport datagram whose header checked out. A plain class, not a dataclass: one is
    made per datagram received, and a dataclass's `__init__` stays interpreted when the core is
    compiled (wavry/native.py)."""

    __slots__ = ("alias", "header", "packet_id", "payload")

    def __init__(self, alias: int, packet_id: int, header: bytes, payload: bytes) -> None:
        self.alias = alias
        self.packet_id = packet_id
        self.header = header
        self.payload = payload

    def __repr__(self) -> str:
        return f"TransportDatagram(alias={self.alias:#x}, packet_id={self.packet_id}, " + (
            f"{len(self.payload)} payload bytes)"
        )


def encode_handshake_header(handshake_id: bytes, message_number: int) -> bytes:
    if len(handshake_id) != HANDSHAKE_ID_LEN:
        raise ValueError("handshake id must be 12 bytes")
    body = _PREFIX + b"\x00\x00\x00\x00" + handshake_id + message_number.to_bytes(8, "big")
    return body + crc16_kermit(body).to_bytes(2, "big")


def encode_transport_header(alias: int, packet_id: int) -> bytes:
    if not 0 < alias <= 0xFFFFFFFF:
        raise ValueError("session alias must be a non-zero u32")
    body = _TR_BODY.pack(MAGIC, VERSION, alias, packet_id)
    return body + crc16_kermit(body).to_bytes(2, "big")


def transport_header_encoder(alias: int) -> Callable[[int], bytes]:
    """`encode_transport_header` for one alias, as a function of the packet id: the bytes before
    the id and their CRC state are worked out once (a sender runs it for every datagram; CRC-16
    continues over the id with `crc_hqx`'s running value)."""
    prefix = encode_transport_header(alias, 0)[:8]  # checks the alias
    state = _crc_hqx(prefix.translate(_REV8), 0)
    pack_id = _PACKET_ID.pack
    rev, crc = _REV8, _crc_hqx

    def encode(packet_id: int) -> bytes:
        pid = pack_id(packet_id)
        c = crc(pid.translate(rev), state)
        return prefix + pid + bytes((rev[c & 0xFF], rev[c >> 8]))

    return encode


def parse_datagram(
    data: bytes, max_size: int = DEFAULT_MAX_DATAGRAM
) -> HandshakeDatagram | TransportDatagram:
    """Classify and check one datagram; raises FramingError with the reason on any failure."""
    n = len(data)
    if TRANSPORT_HEADER_LEN <= n <= max_size:
        # the common case first (a transport datagram that passes): one unpack, then the CRC
        magic, version, alias, packet_id, crc = _TR_STRUCT.unpack_from(data)
        if magic == MAGIC and version == VERSION and alias:
            c = _crc_hqx(data[:16].translate(_REV8), 0)  # crc16_kermit, inlined
            if (_REV8[c & 0xFF] << 8) | _REV8[c >> 8] != crc:
                raise FramingError(DropReason.BAD_CRC)
            return TransportDatagram(alias, packet_id, data[:TRANSPORT_HEADER_LEN], data[18:])
    if n < TRANSPORT_HEADER_LEN:
        raise FramingError(DropReason.TOO_SHORT)
    if n > max_size:
        raise FramingError(DropReason.TOO_LONG)
    if data[0:2] != MAGIC:
        raise FramingError(DropReason.BAD_MAGIC)
    if data[2:4] != b"\x00\x01":
        raise FramingError(DropReason.BAD_VERSION)
    if data[4:8] == b"\x00\x00\x00\x00":
        if n < HANDSHAKE_HEADER_LEN:
            # Zero alias is never valid for transport and too short for a handshake.
            raise FramingError(DropReason.TOO_SHORT)
        header = data[:HANDSHAKE_HEADER_LEN]
        if crc16_kermit(header[:28]) != int.from_bytes(header[28:30], "big"):
            raise FramingError(DropReason.BAD_CRC)
        msg_no = int.from_bytes(header[20:28], "big")
        if msg_no not in (MSG1, MSG2, MSG3, COOKIE_REPLY):
            raise FramingError(DropReason.BAD_HANDSHAKE_MESSAGE)
        return HandshakeDatagram(
            handshake_id=header[8:20],
            message_number=msg_no,
            header=header,
            payload=data[HANDSHAKE_HEADER_LEN:],
        )
    header = data[:TRANSPORT_HEADER_LEN]
    _, _, alias, packet_id, crc = _TR_STRUCT.unpack(header)
    if crc16_kermit(header[:16]) != crc:
        raise FramingError(DropReason.BAD_CRC)
    return TransportDatagram(
        alias=alias, packet_id=packet_id, header=header, payload=data[TRANSPORT_HEADER_LEN:]
    )
