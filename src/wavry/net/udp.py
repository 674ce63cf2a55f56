"""UDP socket plumbing shared by the host and client adapters."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

DSCP_EF_TOS = 0xB8
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024

DatagramSink = Callable[[bytes, tuple[Any, ...]], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, sink: DatagramSink) -> None:
        self._sink = sink

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._sink(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (e.g. port unreachable after a peer left) must never stop the endpoint.
        pass


def tune_socket(sock: socket.socket, tos: int | None = DSCP_EF_TOS) -> None:
    """Bigger buffers and EF marking, best effort (unprivileged limits apply)."""
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER_BYTES)
    if tos is None:
        return
    with contextlib.suppress(OSError):
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)


async def open_udp(
    sink: DatagramSink,
    local: tuple[str, int] | None = None,
    remote: tuple[str, int] | None = None,
    tos: int | None = DSCP_EF_TOS,
) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(sink), local_addr=local, remote_addr=remote
    )
    sock = transport.get_extra_info("socket")
    if sock is not None:
        tune_socket(sock, tos)
    return transport


class Timer:
    """One loop timer that is moved earlier when the core's next deadline moves earlier."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def schedule(self, wall_deadline: float | None, wall_now: float) -> None:
        if wall_deadline is None:
            self.cancel()
            return
        if self._handle is not None and self._at is not None and self._at <= wall_deadline:
            return
        self.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, wall_deadline - wall_now)
        self._at = wall_deadline
        self._handle = loop.call_at(loop.time() + delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._at = None
        self._callback()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._at = None
