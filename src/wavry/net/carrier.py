"""Carriers other than the host's UDP socket (RIFT.md §11: WebTransport, WebSocket).

A carrier connection is named by a :class:`CarrierAddress`: an ordinary ``(host, port, …)``
tuple for everything that prints or rate-limits addresses (``addr[0]`` is the peer's IP), plus
the carrier's name and a connection number, so the host core keys nothing on it but the
adapter can route datagrams the core sends to that address back through the carrier.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class CarrierAddress(NamedTuple):
    host: str
    port: int
    carrier: str  # "webtransport" | "websocket"
    connection: int


class Carrier(Protocol):
    """One kind of carrier (all its connections)."""

    name: str

    def send_run(self, addr: CarrierAddress, datagrams: list[bytes]) -> None:
        """Send datagrams to one connection, in order; drops (and counts) what cannot go."""

    def max_datagram(self, addr: CarrierAddress) -> int | None:
        """The largest RIFT datagram this connection carries (None: no limit of its own)."""
