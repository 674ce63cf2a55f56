"""STUN Binding responder (RFC 5389) on aioice's message codec.

Answers Binding requests with a success response carrying XOR-MAPPED-ADDRESS (the request's
source address, IPv4-mapped IPv6 sources reported as IPv4) and SOFTWARE, plus FINGERPRINT
when the request had one. Requests with unknown comprehension-required attributes get a 420
error listing them (RFC 5389 §7.3.1). Everything else — non-STUN datagrams, bad magic cookie,
length mismatch, broken attributes, bad FINGERPRINT, indications, responses, other methods —
is dropped and counted, never raised. Sources are rate limited per IP. No authentication:
USERNAME / MESSAGE-INTEGRITY in requests (ICE checks) are ignored, as RFC 5389 §10 allows for
a server that does not use credentials.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aioice import stun

from wavry.controlplane import KeyedRateLimiter

__all__ = ["DEFAULT_SOFTWARE", "StunResponder", "StunStats", "start_stun_server"]

DEFAULT_SOFTWARE = "wavry"
_COOKIE = 0x2112A442
_HEADER = 20
_UNKNOWN_ATTRIBUTES = 0x000A


@dataclass
class StunStats:
    received: int = 0
    responses: int = 0
    errors_420: int = 0
    malformed: int = 0
    ignored: int = 0
    rate_limited: int = 0


def _mapped_host(host: str) -> str:
    host = host.split("%", 1)[0]
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _attribute_types(data: bytes) -> list[int] | None:
    """Attribute types in order, or ``None`` when the TLVs do not exactly fill the body."""
    types = []
    pos = _HEADER
    while pos < len(data):
        if pos + 4 > len(data):
            return None
        attr_type, attr_len = struct.unpack_from("!HH", data, pos)
        pos += 4 + attr_len + (-attr_len % 4)
        if pos > len(data):
            return None
        types.append(attr_type)
    return types


class StunResponder(asyncio.DatagramProtocol):
    """Asyncio datagram protocol answering STUN Binding requests."""

    def __init__(
        self,
        *,
        software: str | None = DEFAULT_SOFTWARE,
        rate: float = 20.0,
        burst: float = 40.0,
        max_tracked_ips: int = 16384,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.software = software
        self.stats = StunStats()
        self._limiter = KeyedRateLimiter(rate, burst, max_tracked_ips)
        self._clock = clock
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors for earlier responses: nothing to do

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        response = self.handle(data, addr)
        if response is not None and self._transport is not None:
            self._transport.sendto(response, addr)

    def handle(self, data: bytes, addr: tuple[Any, ...]) -> bytes | None:
        """Return the response to send for ``data`` from ``addr``, or ``None``."""
        self.stats.received += 1
        if (
            len(data) < _HEADER
            or data[0] & 0xC0
            or len(data) % 4
            or struct.unpack_from("!H", data, 2)[0] != len(data) - _HEADER
            or struct.unpack_from("!I", data, 4)[0] != _COOKIE
        ):
            self.stats.malformed += 1
            return None
        types = _attribute_types(data)
        if types is None:
            self.stats.malformed += 1
            return None
        try:
            host = _mapped_host(str(addr[0]))
            port = int(addr[1])
        except (ValueError, IndexError):
            self.stats.malformed += 1
            return None
        try:
            request = stun.parse_message(data)
        except Exception:  # ValueError, struct.error, UnicodeDecodeError on broken attributes
            self.stats.malformed += 1
            return None
        if (
            request.message_method != stun.Method.BINDING
            or request.message_class != stun.Class.REQUEST
        ):
            self.stats.ignored += 1
            return None
        if not self._limiter.allow(host, self._clock()):
            self.stats.rate_limited += 1
            return None
        unknown = [t for t in types if t < 0x8000 and t not in stun.ATTRIBUTES_BY_TYPE]
        if unknown:
            self.stats.errors_420 += 1
            return self._unknown_attributes(request.transaction_id, unknown)
        attributes: dict[str, Any] = {"XOR-MAPPED-ADDRESS": (host, port)}
        if self.software:
            attributes["SOFTWARE"] = self.software
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=request.transaction_id,
            attributes=attributes,
        )
        if "FINGERPRINT" in request.attributes:
            response.add_fingerprint()
        self.stats.responses += 1
        return bytes(response)

    def _unknown_attributes(self, transaction_id: bytes, unknown: list[int]) -> bytes:
        attributes: dict[str, Any] = {"ERROR-CODE": (420, "Unknown Attribute")}
        if self.software:
            attributes["SOFTWARE"] = self.software
        message = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.ERROR,
            transaction_id=transaction_id,
            attributes=attributes,
        )
        # aioice has no UNKNOWN-ATTRIBUTES codec: append the TLV by hand and fix the length.
        value = b"".join(struct.pack("!H", t) for t in unknown[:16])
        tlv = struct.pack("!HH", _UNKNOWN_ATTRIBUTES, len(value)) + value + bytes(-len(value) % 4)
        raw = bytes(message) + tlv
        return raw[:2] + struct.pack("!H", len(raw) - _HEADER) + raw[4:]


async def start_stun_server(
    host: str = "0.0.0.0", port: int = 3478, **kwargs: Any
) -> tuple[asyncio.DatagramTransport, StunResponder]:
    """Bind a UDP socket and serve STUN Binding on it."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: StunResponder(**kwargs), local_addr=(host, port)
    )
    return transport, protocol
