"""RIFT datagram framing (docs/spec/RIFT.md §1): classification and header checks."""

from __future__ import annotations

from wavry.rift.framing import (
    HANDSHAKE_HEADER_LEN,
    TRANSPORT_HEADER_LEN,
    FramingError,
    HandshakeDatagram,
    encode_handshake_header,
    encode_transport_header,
    parse_datagram,
)


def seeds() -> list[bytes]:
    hid = bytes(range(1, 13))
    return [
        encode_transport_header(0x12345678, 999) + b"payload",
        encode_handshake_header(hid, 1) + bytes(32),
        encode_handshake_header(hid, 2) + bytes(200),
        encode_handshake_header(hid, 4) + bytes(16),
        encode_handshake_header(hid, 0) + b"probe",
        b"RI\x00\x01" + bytes(14),
    ]


def test_one_input(data: bytes) -> None:
    try:
        d = parse_datagram(data)
    except FramingError:
        return
    # what parsed re-encodes to the same header
    if isinstance(d, HandshakeDatagram):
        assert d.header == encode_handshake_header(d.handshake_id, d.message_number)
        assert d.payload == data[HANDSHAKE_HEADER_LEN:]
    else:
        assert d.header == encode_transport_header(d.alias, d.packet_id)
        assert d.payload == data[TRANSPORT_HEADER_LEN:]
