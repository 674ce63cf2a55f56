"""RIFT over WebTransport (RIFT.md §11): HTTP/3 on the web endpoint's UDP port, session at
``/rift``, one RIFT datagram per WebTransport datagram. aioquic does QUIC and HTTP/3.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DatagramReceived, DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, ProtocolNegotiated, QuicEvent, StreamReset

from wavry.net.carrier import CarrierAddress
from wavry.net.host import HostServer

log = logging.getLogger(__name__)

NAME = "webtransport"
PATH = "/rift"
#: RIFT datagrams on this carriage (RIFT.md §11): 1200 bytes, so that with QUIC's own headers
#: (≤ 32 bytes here) every packet fits IPv6's minimum MTU and any browser's QUIC packets.
MAX_RIFT_DATAGRAM = 1200
#: QUIC packets the host sends (UDP payload): a 1200-byte RIFT datagram plus QUIC overhead
QUIC_PACKET_SIZE = 1252
#: datagrams aioquic may hold while its congestion window is full; more are dropped, not queued
MAX_PENDING_DATAGRAMS = 64


class _Unpaced:
    """Stands in for aioquic's packet pacer on WebTransport connections (aioquic has no option
    to turn it off). RIFT paces its own datagrams (DELTA: a whole frame at once on a clean
    path, spread where a queue shows): aioquic's pacer, at the huge rate its window grows to on
    loopback, held the rest of each burst back for an event-loop timer (millisecond resolution),
    adding ~1 ms per stall to a frame's last datagram in the browser."""

    def next_send_time(self, now: float) -> float | None:
        del now
        return None

    def update_after_send(self, now: float) -> None:
        del now

    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        del congestion_window, smoothed_rtt


class _Connection(QuicConnectionProtocol):
    """One QUIC connection; at most one WebTransport session (one RIFT session) on it."""

    carrier: WebTransportCarrier

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        loss = getattr(self._quic, "_loss", None)
        if loss is not None and hasattr(loss, "_pacer"):  # aioquic internals (pinned version)
            loss._pacer = _Unpaced()
        self._h3: H3Connection | None = None
        self.session_stream: int | None = None
        self.addr: CarrierAddress | None = None
        self._peer: tuple[str, int] = ("?", 0)

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        if self._peer[0] == "?":
            self._peer = (str(addr[0]), int(addr[1]))
        super().datagram_received(data, addr)

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._h3 = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, ConnectionTerminated):
            self._gone("the browser closed the connection")
            return
        elif isinstance(event, StreamReset) and event.stream_id == self.session_stream:
            self._gone("the browser closed the WebTransport session")
            return
        if self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        h3 = self._h3
        assert h3 is not None
        if isinstance(event, HeadersReceived):
            headers = dict(event.headers)
            method, protocol = headers.get(b":method"), headers.get(b":protocol")
            path = headers.get(b":path", b"").split(b"?", 1)[0]
            if method == b"CONNECT" and protocol == b"webtransport" and path == PATH.encode():
                if self.session_stream is not None:
                    h3.send_headers(event.stream_id, [(b":status", b"409")], end_stream=True)
                else:
                    self.session_stream = event.stream_id
                    self.addr = self.carrier.register(self, self._peer)
                    h3.send_headers(
                        event.stream_id,
                        [(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")],
                    )
            else:
                h3.send_headers(event.stream_id, [(b":status", b"404")], end_stream=True)
            self.transmit()
        elif (
            isinstance(event, DatagramReceived)
            and event.stream_id == self.session_stream
            and self.addr is not None
        ):
            self.carrier.received(event.data, self.addr)
        elif (
            isinstance(event, DataReceived)
            and event.stream_id == self.session_stream
            and event.stream_ended
        ):
            # the browser closed the session: its CONNECT stream ends (after a
            # CLOSE_WEBTRANSPORT_SESSION capsule, which says nothing RIFT needs)
            self._gone("the browser closed the WebTransport session")

    def send_run(self, datagrams: list[bytes]) -> int:
        """Queue datagrams on the session and send; returns how many were dropped."""
        h3, stream = self._h3, self.session_stream
        if h3 is None or stream is None:
            return len(datagrams)
        # aioquic keeps datagrams it cannot send yet (congestion window) in an unbounded queue;
        # a datagram that waits there is late video: drop it instead (RIFT repairs or skips)
        pending = getattr(self._quic, "_datagrams_pending", ())
        dropped = 0
        for d in datagrams:
            if len(d) > MAX_RIFT_DATAGRAM or len(pending) >= MAX_PENDING_DATAGRAMS:
                dropped += 1
                continue
            h3.send_datagram(stream, d)
        self.transmit()
        return dropped

    def _gone(self, why: str) -> None:
        if self.addr is not None:
            addr, self.addr = self.addr, None
            self.carrier.closed(addr, why)


class WebTransportCarrier:
    """Every WebTransport session of the web endpoint, as one carrier of the HostServer."""

    name = NAME

    def __init__(self, server: HostServer) -> None:
        self.server = server
        self._numbers = itertools.count(1)
        self._connections: dict[int, _Connection] = {}
        self._quic: QuicServer | None = None
        self.configuration: QuicConfiguration | None = None
        self.dropped = 0
        self.sessions_opened = 0

    async def start(self, host: str, port: int, certfile: str, keyfile: str) -> None:
        config = QuicConfiguration(
            alpn_protocols=H3_ALPN,
            is_client=False,
            max_datagram_frame_size=65536,
            max_datagram_size=QUIC_PACKET_SIZE,
            idle_timeout=30.0,
        )
        config.load_cert_chain(certfile, keyfile)
        self.configuration = config
        carrier = self

        class Connection(_Connection):
            pass

        Connection.carrier = carrier
        self._quic = await serve(host, port, configuration=config, create_protocol=Connection)

    def reload_certificate(self, certfile: str, keyfile: str) -> None:
        """New connections present the new certificate (the server shares its configuration)."""
        if self.configuration is not None:
            self.configuration.load_cert_chain(certfile, keyfile)

    def register(self, conn: _Connection, peer: tuple[str, int]) -> CarrierAddress:
        n = next(self._numbers)
        self._connections[n] = conn
        self.sessions_opened += 1
        return CarrierAddress(peer[0], peer[1], NAME, n)

    def received(self, data: bytes, addr: CarrierAddress) -> None:
        self.server.receive_from_carrier(data, addr)

    def closed(self, addr: CarrierAddress, why: str) -> None:
        if self._connections.pop(addr.connection, None) is not None:
            self.server.carrier_closed(addr, why)

    # ---- Carrier ---------------------------------------------------------------------------

    def send_run(self, addr: CarrierAddress, datagrams: list[bytes]) -> None:
        conn = self._connections.get(addr.connection)
        if conn is None:
            self.dropped += len(datagrams)
            return
        self.dropped += conn.send_run(datagrams)

    def max_datagram(self, addr: CarrierAddress) -> int | None:
        return MAX_RIFT_DATAGRAM

    async def close(self) -> None:
        for conn in list(self._connections.values()):
            conn.close()
        self._connections.clear()
        if self._quic is not None:
            self._quic.close()
            self._quic = None
        await asyncio.sleep(0)
