"""docs/spec/RIFT.md §1: CRC-16/KERMIT, golden headers, classification and drop reasons."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.rift.framing import (
    DropReason,
    FramingError,
    HandshakeDatagram,
    TransportDatagram,
    crc16_kermit,
    encode_handshake_header,
    encode_transport_header,
    parse_datagram,
    transport_header_encoder,
)


def crc_reference(data: bytes) -> int:
    """Bitwise CRC-16/KERMIT straight from its definition (independent of the table trick)."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def test_crc_check_value() -> None:
    assert crc16_kermit(b"123456789") == 0x2189


@given(st.binary(max_size=64))
def test_crc_matches_bitwise_definition(data: bytes) -> None:
    assert crc16_kermit(data) == crc_reference(data)


def test_golden_transport_header() -> None:
    assert encode_transport_header(0x12345678, 999).hex() == (
        "524900011234567800000000000003e73d23"
    )


def test_golden_handshake_header() -> None:
    hid = bytes.fromhex("0102030405060708090a0b0c")
    assert encode_handshake_header(hid, 1).hex() == (
        "52490001000000000102030405060708090a0b0c0000000000000001c1e0"
    )


def test_parse_transport_and_handshake() -> None:
    t = parse_datagram(encode_transport_header(7, 42) + b"payload")
    assert isinstance(t, TransportDatagram)
    assert (t.alias, t.packet_id, t.payload) == (7, 42, b"payload")
    h = parse_datagram(encode_handshake_header(b"\x01" * 12, 3) + b"noise")
    assert isinstance(h, HandshakeDatagram)
    assert (h.handshake_id, h.message_number, h.payload) == (b"\x01" * 12, 3, b"noise")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"RI\x00\x01" + b"\x00" * 10, DropReason.TOO_SHORT),
        (encode_transport_header(1, 1) + b"x" * 1400, DropReason.TOO_LONG),
        (b"XX" + encode_transport_header(1, 1)[2:], DropReason.BAD_MAGIC),
        (b"RI\x00\x02" + encode_transport_header(1, 1)[4:], DropReason.BAD_VERSION),
        (encode_transport_header(1, 1)[:-1] + b"\x00", DropReason.BAD_CRC),
        (encode_handshake_header(b"\x01" * 12, 1)[:-2] + b"\x00\x00", DropReason.BAD_CRC),
        # zero alias but shorter than a handshake header
        (encode_handshake_header(b"\x01" * 12, 1)[:20], DropReason.TOO_SHORT),
        (encode_handshake_header(b"\x01" * 12, 5), DropReason.BAD_HANDSHAKE_MESSAGE),
    ],
)
def test_drop_reasons(data: bytes, reason: DropReason) -> None:
    with pytest.raises(FramingError) as info:
        parse_datagram(data)
    assert info.value.reason is reason


def test_max_size_is_configurable() -> None:
    d = encode_transport_header(1, 1) + b"x" * 1300
    with pytest.raises(FramingError):
        parse_datagram(d, max_size=1200)
    assert isinstance(parse_datagram(d, max_size=1400), TransportDatagram)


def test_header_encoders_validate() -> None:
    with pytest.raises(ValueError):
        encode_transport_header(0, 1)
    with pytest.raises(ValueError):
        encode_handshake_header(b"short", 1)


@given(st.binary(max_size=1500))
def test_parse_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(FramingError):
        parse_datagram(data)


@given(
    alias=st.integers(1, 0xFFFFFFFF),
    packet_ids=st.lists(st.integers(0, 2**64 - 1) | st.sampled_from([1, 2**63 - 1]), max_size=20),
)
def test_the_per_alias_header_encoder_writes_the_same_bytes(
    alias: int, packet_ids: list[int]
) -> None:
    """The sender's per-datagram header (prefix and CRC state worked out once per alias)."""
    encode = transport_header_encoder(alias)
    for pid in packet_ids:
        assert encode(pid) == encode_transport_header(alias, pid)


def test_the_per_alias_header_encoder_refuses_a_bad_alias() -> None:
    for alias in (0, 2**32):
        with pytest.raises(ValueError, match="alias"):
            transport_header_encoder(alias)
