"""The gateway's STUN responder (RFC 5389 Binding): any datagram from any address."""

from __future__ import annotations

import struct

from wavry.controlplane.stun import StunResponder

_RESPONDER = StunResponder(rate=1e9, burst=1e9)


def seeds() -> list[bytes]:
    tid = bytes(range(12))
    binding = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid
    software = struct.pack("!HH", 0x8022, 4) + b"test"
    with_attr = struct.pack("!HHI", 0x0001, len(software), 0x2112A442) + tid + software
    unknown = struct.pack("!HH", 0x0777, 4) + b"abcd"
    with_unknown = struct.pack("!HHI", 0x0001, len(unknown), 0x2112A442) + tid + unknown
    return [binding, with_attr, with_unknown]


def test_one_input(data: bytes) -> None:
    addr = ("198.51.100.4", 3478) if not data or data[-1] & 1 else ("2001:db8::1", 9, 0, 0)
    out = _RESPONDER.handle(data, addr)
    if out is not None:  # an answer never amplifies by more than 3x (like RIFT's rule)
        assert isinstance(out, bytes) and len(out) <= 3 * len(data), (len(data), len(out))
