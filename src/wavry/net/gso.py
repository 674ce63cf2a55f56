"""UDP generic segmentation offload (`UDP_SEGMENT`) for runs of datagrams to one address.

With GSO one `sendmsg` hands the kernel a buffer of equal-sized datagrams plus a control message
carrying the segment size; the kernel splits it into datagrams (the last one may be shorter).
That is one system call for up to `MAX_SEGMENTS` datagrams instead of one each. Support is
probed once per process; where the kernel (or the socket) refuses, plain `sendto` is used.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

SOL_UDP = 17
UDP_SEGMENT = 103
MAX_SEGMENTS = 64
MAX_GSO_BYTES = 65000  # below the 65507-byte UDP payload limit

Address = tuple[Any, ...]

_probed: bool | None = None


def gso_supported() -> bool:
    """True when the kernel splits a UDP_SEGMENT buffer (probed once, on loopback)."""
    global _probed
    if _probed is None:
        _probed = _probe()
    return _probed


def _probe() -> bool:
    rx = tx = None
    try:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(0.5)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        seg = struct.pack("=H", 100)
        tx.sendmsg([b"a" * 100 + b"b" * 60], [(SOL_UDP, UDP_SEGMENT, seg)], 0, rx.getsockname())
        first, second = rx.recv(2048), rx.recv(2048)
        return first == b"a" * 100 and second == b"b" * 60
    except OSError:
        return False
    finally:
        for s in (rx, tx):
            if s is not None:
                s.close()


def batches(datagrams: Sequence[bytes]) -> list[list[bytes]]:
    """Split a run (one destination) into GSO batches: equal sizes, the last one may be shorter."""
    out: list[list[bytes]] = []
    cur: list[bytes] = []
    size = 0
    total = 0
    for d in datagrams:
        n = len(d)
        if cur and (n > size or len(cur) >= MAX_SEGMENTS or total + n > MAX_GSO_BYTES):
            out.append(cur)
            cur = []
        if not cur:
            size, total = n, 0
        cur.append(d)
        total += n
        if n < size:  # a shorter segment can only end a batch
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


class GsoSender:
    """Sends runs of datagrams to one address with UDP_SEGMENT, else with `fallback`.

    `sock` is a non-blocking socket object for the same socket the fallback writes to (e.g. a
    dup of an asyncio transport's socket). `can_bypass()` must say whether writing directly is
    safe (no bytes buffered in the fallback path, so order is kept).
    """

    def __init__(
        self,
        sock: socket.socket | None,
        fallback: Callable[[bytes, Address], None],
        can_bypass: Callable[[], bool] = lambda: True,
        enabled: bool = True,
    ) -> None:
        self._sock = sock
        self._fallback = fallback
        self._can_bypass = can_bypass
        self.enabled = enabled and sock is not None and gso_supported()
        self.gso_calls = 0
        self.gso_datagrams = 0
        self.plain_datagrams = 0

    def send_run(self, datagrams: Sequence[bytes], addr: Address) -> None:
        if not self.enabled or len(datagrams) < 2 or self._sock is None:
            self._send_plain(datagrams, addr)
            return
        for batch in batches(datagrams):
            if len(batch) < 2 or not self._can_bypass():
                self._send_plain(batch, addr)
                continue
            seg = struct.pack("=H", len(batch[0]))
            try:
                self._sock.sendmsg([b"".join(batch)], [(SOL_UDP, UDP_SEGMENT, seg)], 0, addr)
            except (BlockingIOError, ConnectionError):
                self._send_plain(batch, addr)  # the fallback buffers it / reports it
                continue
            except OSError:
                self.enabled = False  # e.g. EIO: no checksum offload on this route
                self._send_plain(batch, addr)
                continue
            self.gso_calls += 1
            self.gso_datagrams += len(batch)

    def _send_plain(self, datagrams: Sequence[bytes], addr: Address) -> None:
        for d in datagrams:
            self._fallback(d, addr)
            self.plain_datagrams += 1

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        self.enabled = False


def dup_socket(sock: Any) -> socket.socket | None:
    """A non-blocking socket object sharing `sock`'s file (asyncio hands out wrappers)."""
    try:
        fd = sock.fileno()
        s = socket.socket(sock.family, sock.type, sock.proto, fileno=socket.dup(fd))
    except (OSError, AttributeError):
        return None
    s.setblocking(False)
    return s


__all__ = ["MAX_SEGMENTS", "GsoSender", "batches", "dup_socket", "gso_supported"]
