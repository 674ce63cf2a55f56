"""The parties of ``wavry bench relay`` that run in child processes: the forwarders under
test (the wavry relay, a bare asyncio forwarder), the sink and the paced/GSO generator, and the
process helpers they share (CPU pinning, scheduler slice, timer slack)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import struct
import sys
import time
from array import array
from multiprocessing.connection import Connection
from typing import Any

RELAY_ID = "bench-relay"
SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
SPIN_NS = 20_000  # busy-wait this long before each paced send (sleep before that)
_STAMP = struct.Struct("!BQQ")  # phase, seq, send time (perf_counter_ns)
_HDR = 20
PHASE_WARM, PHASE_PACED, PHASE_BLAST = 0, 1, 2
# --- process helpers ----------------------------------------------------------------------


def _pin(core: int | None, nice: int = 0) -> None:
    if core is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {core})
    if nice:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    if SLICE_NS:
        set_fair_slice(SLICE_NS, nice)


SLICE_NS = 100_000


def set_fair_slice(slice_ns: int, nice: int = 0) -> bool:
    """Linux ≥ 6.12 (EEVDF): ask for a short scheduler slice (``sched_attr.sched_runtime`` with
    SCHED_OTHER) so that on wakeup this thread preempts CPU-bound tasks instead of waiting up
    to their whole slice (milliseconds). Returns whether the kernel took it."""
    if not sys.platform.startswith("linux"):
        return False
    import platform

    nr = {"x86_64": 314, "aarch64": 274}.get(platform.machine())
    if nr is None:
        return False
    # struct sched_attr (VER1, 56 bytes): size, policy, flags, nice, priority, runtime,
    # deadline, period, util_min, util_max
    attr = struct.pack("=IIQiIQQQII", 56, 0, 0, nice, 0, slice_ns, 0, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(nr, 0, buf, 0)) == 0
    except (OSError, AttributeError):
        return False


def _in_child(probe: Any) -> bool:
    """Run ``probe()`` in a forked child (so this process is left as it is); its truth."""
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid == 0:
        code = 1
        try:
            code = 0 if probe() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _effective_nice(want: int) -> int:
    """``want`` if this process may take it (negative needs CAP_SYS_NICE), else 0."""
    if want >= 0:
        return want
    try:
        pid = os.fork()
    except OSError:
        return 0
    if pid == 0:  # child: try it and report by exit status
        try:
            os.setpriority(os.PRIO_PROCESS, 0, want)
            os._exit(0)
        except OSError:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return want if os.waitstatus_to_exitcode(status) == 0 else 0


def _fine_timer_slack() -> None:
    """PR_SET_TIMERSLACK = 1 ns: short sleeps end when asked, not up to 50 µs later."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(29, 1, 0, 0, 0)


def _cpu_seconds() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _uvloop_run(coro: Any) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


# --- forwarders (child process) ------------------------------------------------------------


class _Forwarder(asyncio.DatagramProtocol):
    """The baseline: learn two peers from their first datagram, forward between them."""

    def __init__(self) -> None:
        self.peers: list[Any] = []
        self.transport: Any = None
        self.forwarded = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        peers = self.peers
        if addr not in peers:
            if len(peers) < 2:
                peers.append(addr)
            return
        other = peers[1] if addr == peers[0] else peers[0] if len(peers) == 2 else None
        if other is not None:
            self.transport.sendto(data, other)
            self.forwarded += 1


async def _serve(kind: str, pub: bytes, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    if kind in ("relay", "relay_plain"):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        from wavry.controlplane.lease import LeaseVerifier, key_id
        from wavry.relay.server import RelayConfig, RelayServer

        key = Ed25519PublicKey.from_public_bytes(pub)
        config = RelayConfig(
            relay_id=RELAY_ID,
            ip_packet_rate=1e9,
            ip_packet_burst=1e9,
            max_bitrate_kbps=10**8,
            gro=kind == "relay",
        )
        server = RelayServer(config, LeaseVerifier({key_id(key): key}, RELAY_ID))
        addr = await server.start("127.0.0.1", 0)
        gro = server.gro_enabled

        def forwarded() -> int:
            return server.stats.packets_forwarded
    else:
        transport, proto = await loop.create_datagram_endpoint(
            _Forwarder, local_addr=("127.0.0.1", 0)
        )
        sock = transport.get_extra_info("socket")
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
        addr = transport.get_extra_info("sockname")
        gro = False

        def forwarded() -> int:
            return proto.forwarded

    done = loop.create_future()

    def on_command() -> None:
        try:
            cmd = conn.recv()
        except EOFError:
            cmd = "stop"
        if cmd == "usage":
            conn.send((time.perf_counter(), forwarded(), _cpu_seconds()))
        elif not done.done():
            done.set_result(None)

    loop.add_reader(conn.fileno(), on_command)
    conn.send((addr[0], addr[1], gro))
    await done


def _forwarder_main(kind: str, pub: bytes, core: int | None, nice: int, conn: Connection) -> None:
    _pin(core, nice)
    _uvloop_run(_serve(kind, pub, conn))


# --- sink and generator (child processes, blocking sockets) --------------------------------


def _udp(core: int | None, nice: int) -> socket.socket:
    _pin(core, nice)
    _fine_timer_slack()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    return sock


Lease = tuple[bytes, str, bytes]  # LEASE_PRESENT datagram, its token, the device key (raw)


def _register(sock: socket.socket, dest: Any, present: Lease | None) -> None:
    """Bind this socket's address at the forwarder: a lease, proving the address with the
    device key as every peer does (relay), or a hello (baseline)."""
    if dest is None:
        return
    if present is None:
        sock.sendto(b"hello", dest)
        return
    from wavry.relay import wire
    from wavry.rift.identity import Identity

    datagram, token, key = present
    sock.settimeout(3)
    sock.sendto(datagram, dest)
    challenge, _ = sock.recvfrom(2048)
    sock.sendto(
        wire.answer_challenge(challenge, token, Identity.from_private_bytes(key).sign), dest
    )
    reply, _ = sock.recvfrom(2048)
    wire.decode_lease_ack(reply)  # raises on a reject
    sock.settimeout(None)


def _sink_main(
    dest: Any, present: Lease | None, core: int | None, nice: int, conn: Connection
) -> None:
    sock = _udp(core, nice)
    gro = True
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except OSError:
        gro = False
    _register(sock, dest, present)
    conn.send(sock.getsockname())
    lat = array("q")
    paced = blast = 0
    sock.settimeout(0.05)
    space = socket.CMSG_SPACE(4) if gro else 0
    unpack = _STAMP.unpack_from
    now_ns = time.perf_counter_ns
    i = 0
    while True:
        i += 1
        if (i & 1023) == 0 and conn.poll():
            break
        try:
            data, anc, _, _ = sock.recvmsg(65535, space)
        except TimeoutError:
            if conn.poll():
                break
            continue
        now = now_ns()
        if len(data) < _HDR + _STAMP.size:
            continue
        phase, _, sent = unpack(data, _HDR)
        if phase == PHASE_PACED:
            paced += 1
            lat.append(now - sent)
        elif phase == PHASE_BLAST:
            seg = 0
            for level, kind, cdata in anc:
                if level == SOL_UDP and kind == UDP_GRO:
                    seg = struct.unpack("=i", cdata[:4])[0]
            blast += (len(data) + seg - 1) // seg if 0 < seg < len(data) else 1
    conn.send({"latencies_ns": lat.tobytes(), "paced": paced, "blast": blast})
    sock.close()


def _gen_main(
    dest: Any,
    sink: Any,
    prefix: bytes,
    present: Lease | None,
    rate: int,
    duration: float,
    size: int,
    core: int | None,
    nice: int,
    conn: Connection,
) -> None:
    sock = _udp(core, nice)
    _register(sock, dest, present)
    to = dest if dest is not None else sink
    pad = bytes(max(0, size - _HDR - _STAMP.size))
    interval = 1e9 / rate
    now_ns = time.perf_counter_ns
    pack = _STAMP.pack
    sendto = sock.sendto
    sent = {PHASE_WARM: 0, PHASE_PACED: 0}
    late = 0
    for phase, seconds in ((PHASE_WARM, 0.3), (PHASE_PACED, duration)):
        if phase == PHASE_PACED:
            conn.send("paced")
        start = now_ns()
        end = start + int(seconds * 1e9)
        due = float(start)
        seq = 0
        while due < end:
            while (wait := due - now_ns()) > 0:
                if wait > SPIN_NS:
                    time.sleep((wait - SPIN_NS) / 1e9)
            if -wait > 10 * interval:  # fell far behind (preempted): do not burst to catch up
                late += 1
                due = float(now_ns())
            sendto(prefix + pack(phase, seq, now_ns()) + pad, to)
            seq += 1
            due += interval
        sent[phase] = seq
    time.sleep(0.2)
    conn.send("paced-end")
    # blast: equal datagrams, many per sendmsg with UDP_SEGMENT (plain sendto without GSO)
    one = prefix + pack(PHASE_BLAST, 0, 0) + pad
    k = max(1, min(64, 65000 // len(one)))
    buf = one * k
    cmsg = [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", len(one)))]
    blast = 0
    use_gso = True
    conn.send("blast")
    end = now_ns() + int((duration + 0.4) * 1e9)
    while now_ns() < end:
        for _ in range(16):
            if use_gso:
                try:
                    sock.sendmsg([buf], cmsg, 0, to)
                    blast += k
                    continue
                except OSError:
                    use_gso = False
            sendto(one, to)
            blast += 1
    conn.send("blast-end")
    conn.send({"sent": sent[PHASE_PACED], "late": late, "blast_sent": blast, "gso": use_gso})
    sock.close()
