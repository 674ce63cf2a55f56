"""Which address a request comes from, and the key limits are counted under.

``X-Forwarded-For`` is honoured only when the TCP peer is one of the configured trusted proxies
(``--trusted-proxies``, default none): then the header is read from the right, skipping
trusted hops, and the first untrusted address is the client. Anyone else's header is ignored,
so a client cannot pick the address its rate limits and lockouts are counted under.

Limits are keyed by the address, except IPv6, which is keyed by its /64: one subscriber usually
holds a whole /64 and could otherwise rotate through 2^64 addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection

__all__ = ["ClientAddresses", "limit_key", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """``"10.0.0.1, 192.168.0.0/16, ::1"`` → networks. Raises ``ValueError`` on a bad entry."""
    out: list[Network] = []
    for item in text.split(","):
        item = item.strip()
        if item:
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or network: {item!r}") from None
    return out


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def limit_key(address: str) -> str:
    """The key a rate limit or lockout counts ``address`` under (IPv6: its /64)."""
    ip = _ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class ClientAddresses:
    """Resolves the client address of a request (HTTP or WebSocket)."""

    def __init__(self, trusted: Iterable[Network] = ()) -> None:
        self.trusted = list(trusted)

    def _trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in net for net in self.trusted)

    def resolve(self, peer: str, forwarded_for: list[str]) -> str:
        """The client address given the TCP peer and the ``X-Forwarded-For`` header values."""
        peer_ip = _ip(peer)
        if peer_ip is None or not self.trusted or not self._trusted(peer_ip):
            return str(peer_ip) if peer_ip is not None else peer
        client = peer_ip
        hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                break  # garbage: trust nothing further left
            client = ip
            if not self._trusted(ip):
                break
        return str(client)

    def of(self, conn: HTTPConnection) -> str:
        peer = conn.client.host if conn.client else "unknown"
        return self.resolve(peer, conn.headers.getlist("x-forwarded-for"))
