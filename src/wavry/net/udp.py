"""UDP socket plumbing shared by the host and client adapters."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
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


ArrivalSink = Callable[[bytes, tuple[Any, ...], "float | None"], None]

#: Linux's SO_TIMESTAMPNS (Python exposes the constant only on some builds)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
#: linux/udp.h: deliver a run of same-size datagrams from one sender in one read; a control
#: message carries the segment size (the relay reads its socket the same way)
SOL_UDP = 17
UDP_GRO = 104
_GRO_SIZE = struct.Struct("=i")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(_GRO_SIZE.size)
#: a coalesced read holds up to 64 segments of up to 64 KiB in all
_RECV_SIZE = 65535


def read_ancillary(ancdata: list[tuple[int, int, bytes]]) -> tuple[float | None, int]:
    """(kernel receive time, GRO segment size or 0) from one `recvmsg`'s control messages."""
    arrival = None
    segment = 0
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = _TIMESPEC.unpack_from(payload)
            arrival = sec + nsec * 1e-9
        elif level == SOL_UDP and kind == UDP_GRO:
            segment = _GRO_SIZE.unpack_from(payload)[0]
    return arrival, segment


def enable_gro(sock: socket.socket) -> bool:
    """Turn UDP_GRO on (Linux); False where the kernel refuses it."""
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except OSError:
        return False
    return True


#: control-message room for a timestamp and a GRO segment size (`read_ancillary`)
ANCILLARY_SPACE = _ANCILLARY
RECV_SIZE = _RECV_SIZE


class TimestampedUdp:
    """A UDP socket the event loop reads with the kernel's receive timestamp of every datagram.

    Written by hand because asyncio's datagram endpoints (uvloop's too) hand the protocol
    `(data, addr)` only: the time the kernel queued a datagram is lost, and a process that was
    busy (decoding a frame) or slow to be scheduled when it arrived reads it late by that much.
    A media receiver reports arrival times to the sender's congestion control, which would take
    that as network queueing. Here each readiness callback drains up to `MAX_BATCH` reads
    with `recvmsg` + SO_TIMESTAMPNS (CLOCK_REALTIME, the clock of `time.time()`), calls `sink`
    for each datagram with its arrival time (None when the kernel gave none), then `on_batch`.

    With UDP_GRO (Linux) one read returns a whole run of same-size datagrams that the sender
    sent together (a frame's chunks, sent with GSO): one system call and one timestamp for up
    to 64 datagrams, split here at the segment size the kernel reports. `gro` is False where
    the kernel refuses it; datagrams are then read one by one.

    Sending never queues in user space: a full socket buffer raises (BlockingIOError), and the
    caller drops the datagram, as a latency-first sender should.
    """

    MAX_BATCH = 64

    def __init__(
        self,
        sock: socket.socket,
        sink: ArrivalSink,
        on_batch: Callable[[], None] | None = None,
        gro: bool = True,
    ) -> None:
        self._sock = sock
        self._sink = sink
        self._on_batch = on_batch
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self.timestamps = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            self.timestamps = False
        self.gro = gro and enable_gro(sock)
        self.reads = 0  # recvmsg calls that returned data
        self.datagrams = 0
        sock.setblocking(False)
        self.receive_errors = 0
        self._loop.add_reader(sock.fileno(), self._ready)

    def _ready(self) -> None:
        sock = self._sock
        failed = False
        sink = self._sink
        for _ in range(self.MAX_BATCH):
            try:
                data, ancdata, flags, addr = sock.recvmsg(_RECV_SIZE, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # ICMP errors (port unreachable after the peer left) must never stop the reader
                self.receive_errors += 1
                failed = True
                continue
            self.reads += 1
            if flags & socket.MSG_TRUNC:
                self.receive_errors += 1
                continue
            arrival, segment = read_ancillary(ancdata)
            if 0 < segment < len(data):
                for offset in range(0, len(data), segment):
                    sink(data[offset : offset + segment], addr, arrival)
                    self.datagrams += 1
                    if self._closed:
                        return
            else:
                sink(data, addr, arrival)
                self.datagrams += 1
            if self._closed:
                return
        if failed:
            # uvloop (libuv) stops polling a descriptor that reported an error: watch it again
            self._loop.remove_reader(sock.fileno())
            self._loop.add_reader(sock.fileno(), self._ready)
        if self._on_batch is not None:
            self._on_batch()

    def sendto(self, data: bytes, addr: tuple[Any, ...] | None = None) -> None:
        if self._closed:
            raise OSError("socket is closed")
        if addr is None:
            self._sock.send(data)
        else:
            self._sock.sendto(data, addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name == "sockname":
            return self._sock.getsockname()
        return default

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


async def open_udp_timestamped(
    sink: ArrivalSink,
    remote: tuple[str, int],
    on_batch: Callable[[], None] | None = None,
    tos: int | None = DSCP_EF_TOS,
    gro: bool = True,
) -> TimestampedUdp:
    """A UDP socket connected to `remote`, read with kernel receive timestamps (and UDP_GRO
    where the kernel has it)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(remote[0], remote[1], type=socket.SOCK_DGRAM)
    family = infos[0][0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        tune_socket(sock, tos)
        sock.setblocking(False)
        await loop.sock_connect(sock, infos[0][4])
        return TimestampedUdp(sock, sink, on_batch, gro=gro)
    except BaseException:
        sock.close()
        raise


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
