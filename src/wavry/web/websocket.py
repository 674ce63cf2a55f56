"""The web endpoint's TCP side: HTTPS for the page and its assets, and RIFT over a WebSocket at
``/rift-ws`` (RIFT.md §11), one RIFT datagram per binary message. `websockets` does HTTP/1.1
and the WebSocket protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from wavry.net.carrier import CarrierAddress
from wavry.net.host import HostServer
from wavry.web.assets import content_security_policy, read_asset

log = logging.getLogger(__name__)

NAME = "websocket"
PATH = "/rift-ws"
#: a RIFT datagram is small; a message this large is not one
MAX_MESSAGE = 65536
#: bytes waiting in user space for the socket: above this a datagram is dropped, not queued
#: (drop, never queue: RIFT's NACK repairs what matters, the next frame replaces the rest)
MAX_BUFFERED = 256 * 1024
#: unsent bytes the kernel keeps per socket; the rest waits where it can still be dropped
NOTSENT_LOWAT = 64 * 1024
_TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)


class WebSocketCarrier:
    """HTTPS (the page) and every RIFT-over-WebSocket connection, one carrier of a HostServer."""

    name = NAME

    def __init__(self, server: HostServer, info: Callable[[], bytes]) -> None:
        self.server = server
        self._info = info  # /rift-info.json body (certificate hash, Wavry ID)
        self._numbers = itertools.count(1)
        self._connections: dict[int, ServerConnection] = {}
        self._server: Server | None = None
        self.ssl: ssl.SSLContext | None = None
        self.dropped = 0
        self.sessions_opened = 0

    async def start(self, host: str, port: int, certfile: str, keyfile: str) -> tuple[str, int]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(certfile, keyfile)
        self.ssl = ctx
        self._server = await serve(
            self._handle,
            host,
            port,
            ssl=ctx,
            process_request=self._process_request,
            compression=None,
            max_size=MAX_MESSAGE,
            max_queue=64,
            server_header=None,
        )
        sock = next(iter(self._server.sockets))
        name = sock.getsockname()
        return str(name[0]), int(name[1])

    def reload_certificate(self, certfile: str, keyfile: str) -> None:
        if self.ssl is not None:
            self.ssl.load_cert_chain(certfile, keyfile)  # new TLS handshakes use it

    # ---- HTTP ------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == PATH:
            return None  # the WebSocket handshake
        headers = Headers()
        headers["Content-Security-Policy"] = content_security_policy()
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Connection"] = "close"
        if path == "/rift-info.json":
            headers["Content-Type"] = "application/json"
            headers["Cache-Control"] = "no-store"
            return Response(200, "OK", headers, self._info())
        asset = read_asset(path)
        if asset is None:
            headers["Content-Type"] = "text/plain; charset=utf-8"
            return Response(404, "Not Found", headers, b"not found\n")
        headers["Content-Type"] = asset.content_type
        headers["Cache-Control"] = asset.cache
        return Response(200, "OK", headers, asset.body)

    # ---- RIFT over WebSocket -----------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        sock = conn.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = conn.remote_address or ("?", 0)
        n = next(self._numbers)
        addr = CarrierAddress(str(peer[0]), int(peer[1]), NAME, n)
        self._connections[n] = conn
        self.sessions_opened += 1
        why = "the browser closed the WebSocket"
        try:
            async for message in conn:
                if isinstance(message, bytes):
                    self.server.receive_from_carrier(message, addr)
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bad datagram must never end the host: say it once
            log.exception("websocket carrier: %s", exc)
            why = f"websocket carrier error: {exc}"
        finally:
            if self._connections.pop(n, None) is not None:
                self.server.carrier_closed(addr, why)

    def send_run(self, addr: CarrierAddress, datagrams: list[bytes]) -> None:
        conn = self._connections.get(addr.connection)
        if conn is None or conn.protocol.state is not State.OPEN:
            self.dropped += len(datagrams)
            return
        transport: Any = conn.transport
        for d in datagrams:
            if transport.get_write_buffer_size() > MAX_BUFFERED:
                self.dropped += 1
                continue
            # websockets' sans-I/O protocol object, written without an await: a datagram never
            # waits behind the event loop (`send()` would schedule and drain)
            conn.protocol.send_binary(d)
        conn.send_data()

    def max_datagram(self, addr: CarrierAddress) -> int | None:
        return None  # a byte stream: the session keeps the host's size

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        self._connections.clear()
