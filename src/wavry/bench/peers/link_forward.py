"""The wire of `wavry bench peers`' bottleneck: a process joining two network namespaces through
two tun devices, delaying every IP packet by a fixed time in each direction.

This kernel has no netem, and the systems under test speak TCP (VNC, RDP, WebSockets) as well
as UDP, so the delay has to act on IP packets, below every transport: each packet the kernel
routes into one namespace's tun device is read here and written into the other namespace's tun
device ``--delay-ms`` later, in order. The rate limit is not done here: tbf on each tun device's
egress (set up by :mod:`wavry.bench.peers.link`) queues and paces packets before they reach
this process, like a router's bottleneck queue before the wire.

    python -m wavry.bench.peers.link_forward --server-ns NS1 --viewer-ns NS2 --device DEV \
        --delay-ms 10

Prints ``ready`` once both devices exist; on SIGTERM prints one JSON line of counters.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import selectors
import signal
import struct
import sys
import time
from collections import deque

_CLONE_NEWNET = 0x40000000
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000


def _setns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tun(netns: str, device: str) -> int:
    """Create tun ``device`` inside ``netns`` and return its file descriptor (the device lives
    as long as the descriptor is open)."""
    _setns(netns)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", device.encode(), _IFF_TUN | _IFF_NO_PI))
    return fd


def forward(fd_server: int, fd_viewer: int, delay_s: float) -> dict[str, int]:
    """Move packets both ways with ``delay_s`` added, until SIGTERM; returns counters."""
    stop = False

    def on_term(signum: int, frame: object) -> None:
        del signum, frame
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    sel = selectors.DefaultSelector()
    # packets read from a device wait here (FIFO: one fixed delay keeps them in order)
    pending: dict[int, deque[tuple[float, bytes]]] = {fd_server: deque(), fd_viewer: deque()}
    peer = {fd_server: fd_viewer, fd_viewer: fd_server}
    sel.register(fd_server, selectors.EVENT_READ)
    sel.register(fd_viewer, selectors.EVENT_READ)
    counts = {"to_viewer": 0, "to_server": 0, "write_errors": 0}
    names = {fd_server: "to_viewer", fd_viewer: "to_server"}
    while not stop:
        now = time.monotonic()
        due = min((q[0][0] for q in pending.values() if q), default=None)
        timeout = None if due is None else max(0.0, due - now)
        try:
            events = sel.select(timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for key, _ in events:
            fd = int(key.fd)
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                pending[fd].append((now + delay_s, data))
        now = time.monotonic()
        for src, queue in pending.items():
            while queue and queue[0][0] <= now:
                _, data = queue.popleft()
                try:
                    os.write(peer[src], data)
                    counts[names[src]] += 1
                except OSError:
                    counts["write_errors"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server-ns", required=True)
    p.add_argument("--viewer-ns", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--delay-ms", type=float, default=10.0)
    a = p.parse_args(argv)
    try:
        fd_server = open_tun(a.server_ns, a.device)
        fd_viewer = open_tun(a.viewer_ns, a.device)
    except OSError as exc:
        print(f"error: cannot create the tun devices: {exc}", flush=True)
        return 1
    print("ready", flush=True)
    counts = forward(fd_server, fd_viewer, a.delay_ms / 1000)
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
