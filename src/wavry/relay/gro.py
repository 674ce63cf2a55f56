"""The relay's own UDP socket on Linux: reads with UDP_GRO (many same-size datagrams per
``recvmsg``, the segment size in a control message) and writes directly.

asyncio's datagram transports read with ``recvfrom`` and would hand over coalesced buffers
without their segment size, so the relay owns reading (``loop.add_reader``) when GRO is on.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wavry.relay.server import RelayServer

__all__ = [
    "GRO_CMSG_SPACE",
    "INT",
    "RECV_SIZE",
    "SOL_UDP",
    "U16",
    "UDP_GRO",
    "GroTransport",
    "open_gro_socket",
]

Addr = tuple[Any, ...]

SOL_UDP = 17
UDP_GRO = 104  # linux/udp.h: receive coalesced same-size datagrams, cmsg carries the size
GRO_CMSG_SPACE = socket.CMSG_SPACE(4) if hasattr(socket, "CMSG_SPACE") else 0
RECV_SIZE = 65535
INT = struct.Struct("=i")
U16 = struct.Struct("=H")


def open_gro_socket(host: str, port: int) -> socket.socket | None:
    """A bound, non-blocking UDP socket with UDP_GRO on, or None where GRO is unavailable
    (not Linux, old kernel). Bind errors (``OSError``) propagate like asyncio's would."""
    if not sys.platform.startswith("linux") or not GRO_CMSG_SPACE:
        return None
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, stype, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, stype, proto)
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except OSError:
        sock.close()
        return None
    try:
        sock.setblocking(False)
        sock.bind(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock


class GroTransport(asyncio.DatagramTransport):
    """The relay's own socket when it reads with UDP_GRO: asyncio's transports read with
    ``recvfrom`` and would hand over coalesced buffers without their segment size, so the relay
    owns reading (``loop.add_reader``) and writes directly; a full send buffer drops (UDP)."""

    def __init__(self, sock: socket.socket, server: RelayServer) -> None:
        super().__init__()
        self.sock = sock
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._loop.add_reader(sock.fileno(), server._on_readable)

    def sendto(self, data: Any, addr: Any = None) -> None:
        self.send(data, addr)

    def send(self, data: bytes, addr: Addr) -> bool:
        """Send one datagram now; a full socket buffer drops it (counted). True if sent."""
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._server.stats.dropped["send_buffer_full"] += 1
            return False
        except OSError as exc:
            self._server.error_received(exc)
            return False
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self.sock
        if name == "sockname":
            return self.sock.getsockname()
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self._server.connection_lost(None)

    def abort(self) -> None:
        self.close()
