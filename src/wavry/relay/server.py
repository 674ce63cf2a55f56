"""The Wavry UDP relay (docs/spec/CONTROL_PLANE.md §4).

Peers that cannot reach each other directly present a gateway-signed lease for their role of
a session; the relay binds that role to the presenting address and then forwards FORWARD
datagrams, unchanged, between the two bound addresses. It never parses RIFT payloads.

Enforced limits: per-source-IP packet rate and lease rate (before any signature check),
per-identity (lease ``sub``) lease rate, per-session hard bitrate (token bucket on bytes,
excess dropped), session cap (new sessions rejected with code 4 when full), lease expiry and
a 60 s idle timeout. Memory is bounded by the session cap and LRU-bounded limiter tables.

Session lifecycle (the binding rules are in :mod:`wavry.relay.admission`):
- LEASE_PRESENT with a valid lease from an address not yet bound to that role gets a
  LEASE_CHALLENGE; the LEASE_PROOF answering it (cookie signed with the device key the lease
  names) creates the session if needed and (re)binds the role to that address (NAT rebinding
  moves a binding only this way), then LEASE_ACK. The first identity bound to a role is pinned.
- LEASE_PRESENT / LEASE_RENEW from the bound address refresh the binding (LEASE_ACK at once);
  a renewal extends it. For a session the relay no longer has, LEASE_RENEW answers
  LEASE_REJECT 1, telling the peer to present again.
- Each role's binding lives until its lease's ``exp``. The session ends when no binding is
  left, or after ``idle_timeout`` seconds without a packet for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from wavry.controlplane import KeyedRateLimiter, TokenBucket
from wavry.controlplane.lease import LeaseVerifier, RejectReason
from wavry.net import gso
from wavry.relay import wire
from wavry.relay.admission import Binding, LeaseAdmission, RelaySession
from wavry.relay.gro import (
    GRO_CMSG_SPACE,
    INT,
    RECV_SIZE,
    SOL_UDP,
    U16,
    UDP_GRO,
    GroTransport,
    open_gro_socket,
)
from wavry.relay.wire import HEADER_LEN, PacketType, Role, WireError

__all__ = ["RelayConfig", "RelayServer", "RelayStats", "open_gro_socket"]

log = logging.getLogger("wavry.relay")

Addr = tuple[Any, ...]


@dataclass
class RelayConfig:
    relay_id: str
    max_sessions: int = 1000
    max_bitrate_kbps: int | None = None  # caps every lease's hlimit when set
    idle_timeout: float = 60.0
    ip_packet_rate: float = 20000.0  # datagrams per second per source IP
    ip_packet_burst: float = 40000.0
    ip_lease_rate: float = 20.0  # lease datagrams per second per source IP (pre-verify)
    ip_lease_burst: float = 40.0
    identity_lease_rate: float = 2.0  # accepted leases per second per identity (sub)
    identity_lease_burst: float = 20.0
    reject_rate: float = 2.0  # rate-limit rejects answered per second per source IP
    reject_burst: float = 5.0
    bitrate_burst_seconds: float = 0.25  # bucket depth at the hard limit
    min_bitrate_burst_bytes: int = 2 * 65536  # never smaller than two max datagrams
    max_tracked_keys: int = 65536  # per limiter table
    max_send_buffer: int = 4 * 1024 * 1024  # drop instead of queueing beyond this
    sweep_interval: float = 1.0
    # Linux: read the socket with UDP_GRO (many same-size datagrams per recvmsg) and forward
    # such runs with one UDP_SEGMENT sendmsg; every segment is still checked as a datagram.
    gro: bool = True
    read_budget: int = 64  # recvmsg calls per readiness callback before yielding to the loop

    def __post_init__(self) -> None:
        if not self.relay_id:
            raise ValueError("relay_id must not be empty")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if self.max_bitrate_kbps is not None and self.max_bitrate_kbps < 1:
            raise ValueError("max_bitrate_kbps must be >= 1")


@dataclass
class RelayStats:
    packets_received: int = 0
    bytes_received: int = 0
    packets_forwarded: int = 0
    bytes_forwarded: int = 0
    leases_accepted: int = 0
    challenges: int = 0  # LEASE_CHALLENGE sent (a presentation from an unproven address)
    renewals: int = 0
    rebinds: int = 0
    sessions_created: int = 0
    gro_runs: int = 0  # coalesced runs checked and forwarded whole (UDP_GRO in, GSO out)
    gso_sends: int = 0  # UDP_SEGMENT sendmsg calls
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> datagrams
    rejects: Counter[str] = field(default_factory=Counter)  # reject kind -> count
    rejects_by_code: Counter[int] = field(default_factory=Counter)
    sessions_ended: Counter[str] = field(default_factory=Counter)  # "expired" / "idle"


_FORWARD_PREFIX = bytes((wire.MAGIC, wire.VERSION, PacketType.FORWARD, 0))
_MAGIC_VERSION = bytes((wire.MAGIC, wire.VERSION))
_LEASE_TYPES = frozenset((PacketType.LEASE_PRESENT, PacketType.LEASE_RENEW, PacketType.LEASE_PROOF))


class RelayServer(asyncio.DatagramProtocol):
    """Asyncio UDP relay. ``clock`` is wall time (lease claims), ``monotonic`` drives rate
    limiters and idle timeouts; both are injectable for tests."""

    def __init__(
        self,
        config: RelayConfig,
        verifier: LeaseVerifier,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.verifier = verifier
        self.clock = clock
        self.monotonic = monotonic
        self.stats = RelayStats()
        self.banned_identities: set[str] = set()
        self.banned_ips: set[str] = set()
        self.admission = LeaseAdmission(self)
        self._sessions: dict[uuid.UUID, RelaySession] = {}
        cap = config.max_tracked_keys
        self._ip_packets = KeyedRateLimiter(config.ip_packet_rate, config.ip_packet_burst, cap)
        self._ip_leases = KeyedRateLimiter(config.ip_lease_rate, config.ip_lease_burst, cap)
        self._id_leases = KeyedRateLimiter(
            config.identity_lease_rate, config.identity_lease_burst, cap
        )
        self._reject_budget = KeyedRateLimiter(config.reject_rate, config.reject_burst, cap)
        self._transport: asyncio.DatagramTransport | None = None
        # FORWARD hot path: sessions by the raw 16 header bytes (no UUID object per datagram)
        self._by_raw: dict[bytes, RelaySession] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._gro: GroTransport | None = None
        self._gso = False
        self.started_at = monotonic()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> Addr:
        """Bind the UDP socket and start the expiry sweeper; return the bound address."""
        loop = asyncio.get_running_loop()
        sock = open_gro_socket(host, port) if self.config.gro else None
        if sock is not None:
            self._gso = gso.gso_supported()
            self._gro = GroTransport(sock, self)
            self.connection_made(self._gro)
        else:
            await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._sweeper = loop.create_task(self._sweep_loop())
        return self.local_address

    @property
    def local_address(self) -> Addr:
        if self._transport is None:
            raise RuntimeError("relay is not running")
        return tuple(self._transport.get_extra_info("sockname"))

    @property
    def running(self) -> bool:
        return self._transport is not None

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._gro = None

    @property
    def gro_enabled(self) -> bool:
        """True when the socket reads coalesced datagrams (UDP_GRO) itself."""
        return self._gro is not None

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable...) for a previous send; nothing to do.
        self.stats.dropped["icmp_error"] += 1

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval)
            self.sweep()

    # --- state queries --------------------------------------------------------------------

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    @property
    def bound_peers(self) -> int:
        return sum(len(s.bindings) for s in self._sessions.values())

    @property
    def load_pct(self) -> float:
        return 100.0 * len(self._sessions) / self.config.max_sessions

    def session_info(self, sid: uuid.UUID) -> dict[str, Any] | None:
        """Snapshot of a session (for tests and diagnostics)."""
        s = self._sessions.get(sid)
        if s is None:
            return None
        return {
            role.claim: {"addr": b.addr, "sub": b.sub, "expires_at": b.expires_at}
            for role, b in s.bindings.items()
        }

    def sweep(self) -> None:
        """End sessions whose leases all expired or that have been idle too long."""
        wall, mono = self.clock(), self.monotonic()
        for sid in list(self._sessions):
            self._check_alive(self._sessions[sid], wall, mono)

    def _check_alive(self, s: RelaySession, wall: float, mono: float) -> bool:
        # per-datagram fast path: no allocation unless a binding actually expired
        for b in s.bindings.values():
            if wall >= b.expires_at:
                break
        else:
            if s.bindings and mono - s.last_activity < self.config.idle_timeout:
                return True
        expired = [r for r, b in s.bindings.items() if wall >= b.expires_at]
        for role in expired:
            del s.bindings[role]
        if not s.bindings:
            self._end(s, "expired")
            return False
        if mono - s.last_activity >= self.config.idle_timeout:
            self._end(s, "idle")
            return False
        return True

    def _end(self, s: RelaySession, why: str) -> None:
        if self._sessions.pop(s.sid, None) is not None:
            self._by_raw.pop(s.sid.bytes, None)
            self.stats.sessions_ended[why] += 1
            log.debug("session %s ended (%s)", s.sid, why)

    # --- datagrams ------------------------------------------------------------------------

    def _on_readable(self) -> None:
        """GRO socket readable: drain up to ``read_budget`` buffers, each one datagram or a
        run of same-size datagrams (segments) from one source."""
        t = self._gro
        if t is None:
            return
        recvmsg = t.sock.recvmsg
        for _ in range(self.config.read_budget):
            try:
                data, anc, msg_flags, addr = recvmsg(RECV_SIZE, GRO_CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # a pending ICMP error from an earlier send
                self.error_received(exc)
                if self._gro is None:
                    return
                continue
            if msg_flags & socket.MSG_TRUNC:
                self.stats.packets_received += 1
                self.stats.dropped["malformed"] += 1
                continue
            seg = 0
            for level, kind, cdata in anc:
                if level == SOL_UDP and kind == UDP_GRO and len(cdata) >= 4:
                    seg = INT.unpack_from(cdata)[0]
            if 0 < seg < len(data):
                self.segments_received(data, seg, addr)
            else:
                self.datagram_received(data, addr)
            if self._gro is None:
                return

    def _split(self, data: bytes, seg: int, addr: Addr) -> None:
        for off in range(0, len(data), seg):
            self.datagram_received(data[off : off + seg], addr)

    def segments_received(self, data: bytes, seg: int, addr: Addr) -> None:
        """A coalesced run: datagrams of ``seg`` bytes (the last may be shorter) from ``addr``.

        When every segment is a FORWARD of the same session from its bound source and the
        per-IP packet limit admits them all, the run is checked once and forwarded with one
        UDP_SEGMENT sendmsg (exactly what per-datagram forwarding would send). Anything else
        (mixed sessions or types, a limit that admits only part) is split and handled datagram
        by datagram, so the outcome is the same as without GRO."""
        n = len(data)
        count = (n + seg - 1) // seg
        last = n - (count - 1) * seg
        if not (
            last > HEADER_LEN
            and seg <= wire.MAX_DATAGRAM
            and data.startswith(_FORWARD_PREFIX)
            and self._gso
        ):
            self._split(data, seg, addr)
            return
        hdr = data[:HEADER_LEN]
        for off in range(seg, n, seg):
            if not data.startswith(hdr, off):
                self._split(data, seg, addr)
                return
        s = self._by_raw.get(hdr[4:])
        mono = self.monotonic()
        if s is None or not self._ip_packets.allow(str(addr[0]), mono, count):
            self._split(data, seg, addr)  # drops counted per datagram
            return
        stats = self.stats
        stats.packets_received += count
        stats.bytes_received += n
        if not self._check_alive(s, self.clock(), mono):
            stats.dropped["unknown_session"] += count
            return
        dest = self._peer_of(s, addr, count)
        if dest is None:
            return
        bucket = s.bucket
        if bucket is not None and not bucket.take(mono, n):
            # only part fits: per datagram, in order, as sequential forwarding would
            kept = []
            for off in range(0, n, seg):
                d = data[off : off + seg]
                if bucket.take(mono, len(d)):
                    kept.append(d)
                else:
                    stats.dropped["bitrate"] += 1
            if not kept:
                return
            s.last_activity = mono
            for batch in gso.batches(kept):
                self._send_segments(b"".join(batch), len(batch[0]), len(batch), dest.addr)
            return
        s.last_activity = mono
        stats.gro_runs += 1
        self._send_segments(data, seg, count, dest.addr)

    def _send_segments(self, data: bytes, seg: int, count: int, addr: Addr) -> None:
        t = self._gro
        if t is None:
            return
        if count == 1:
            self._send(data, addr, "forward")
            return
        step = seg * gso.MAX_SEGMENTS
        for off in range(0, len(data), step):
            chunk = data[off : off + step] if len(data) > step else data
            k = (len(chunk) + seg - 1) // seg
            try:
                t.sock.sendmsg([chunk], [(SOL_UDP, gso.UDP_SEGMENT, U16.pack(seg))], 0, addr)
            except (BlockingIOError, InterruptedError):
                self.stats.dropped["send_buffer_full"] += k
                continue
            except OSError as exc:
                if isinstance(exc, ConnectionError):
                    self.error_received(exc)
                    continue
                self._gso = False  # e.g. EIO: this route cannot segment; send one by one
                for o in range(0, len(chunk), seg):
                    self._send(chunk[o : o + seg], addr, "forward")
                continue
            self.stats.packets_forwarded += k
            self.stats.bytes_forwarded += len(chunk)
            self.stats.gso_sends += 1

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        """One datagram. Cheapest refusals first (a junk flood costs little per datagram):
        FORWARD for an unknown session and noise before the per-IP limit; lease datagrams over
        their per-IP rate before any decoding."""
        stats = self.stats
        stats.packets_received += 1
        stats.bytes_received += len(data)
        if data[:4] == _FORWARD_PREFIX and HEADER_LEN < len(data) <= wire.MAX_DATAGRAM:
            # hot path: a well-formed FORWARD header, session found by its raw id bytes
            s = self._by_raw.get(data[4:HEADER_LEN])
            if s is None:
                stats.dropped["unknown_session"] += 1
                return
            mono = self.monotonic()
            if not self._ip_packets.allow(str(addr[0]), mono):
                stats.dropped["ip_rate"] += 1
                return
            self._forward_session(data, s, addr, mono)
            return
        if data[:2] != _MAGIC_VERSION:  # noise: refused without building an exception
            stats.dropped["malformed"] += 1
            return
        mono = self.monotonic()
        ip = str(addr[0])
        if not self._ip_packets.allow(ip, mono):
            stats.dropped["ip_rate"] += 1
            return
        lease = len(data) > 2 and data[2] in _LEASE_TYPES
        if lease and not self._ip_leases.allow(ip, mono):
            # before decoding or verifying anything; the reject itself is budgeted
            stats.rejects["ip_lease_rate"] += 1
            if not self._reject_budget.allow(ip, mono) or len(data) < HEADER_LEN:
                stats.dropped["reject_suppressed"] += 1
                return
            sid = uuid.UUID(bytes=bytes(data[4:HEADER_LEN]))
            stats.rejects_by_code[RejectReason.RATE_LIMITED] += 1
            self._send(wire.encode_lease_reject(sid, RejectReason.RATE_LIMITED), addr, "reject")
            return
        try:
            header = wire.decode_header(data)
        except WireError:
            stats.dropped["malformed"] += 1
            return
        if header.type is PacketType.FORWARD:
            self._forward(data, header.session_id, addr, mono)
        elif lease:
            self.admission.admit(data, header, addr, mono)
        else:  # LEASE_ACK / LEASE_REJECT / LEASE_CHALLENGE are relay -> peer only
            stats.dropped["unexpected_type"] += 1

    def _forward(self, data: bytes, sid: uuid.UUID, addr: Addr, mono: float) -> None:
        s = self._sessions.get(sid)
        if s is None:
            self.stats.dropped["unknown_session"] += 1
            return
        self._forward_session(data, s, addr, mono)

    def _forward_session(self, data: bytes, s: RelaySession, addr: Addr, mono: float) -> None:
        stats = self.stats
        if not self._check_alive(s, self.clock(), mono):
            stats.dropped["unknown_session"] += 1
            return
        if len(data) == HEADER_LEN:
            stats.dropped["malformed"] += 1
            return
        dest = self._peer_of(s, addr, 1)
        if dest is None:
            return
        if s.bucket is not None and not s.bucket.take(mono, len(data)):
            stats.dropped["bitrate"] += 1
            return
        s.last_activity = mono
        self._send(data, dest.addr, "forward")

    def _peer_of(self, s: RelaySession, addr: Addr, count: int) -> Binding | None:
        """The binding FORWARD from ``addr`` goes to: the other role's. None (the ``count``
        datagrams counted as dropped) if ``addr`` is bound to neither role or the peer is not
        bound yet."""
        client = s.bindings.get(Role.CLIENT)
        host = s.bindings.get(Role.HOST)
        if client is not None and client.addr == addr:
            dest = host
        elif host is not None and host.addr == addr:
            dest = client
        else:
            self.stats.dropped["unbound_source"] += count
            return None
        if dest is None:
            self.stats.dropped["no_peer"] += count
        return dest

    def _send(self, data: bytes, addr: Addr, what: str) -> None:
        g = self._gro
        if g is not None:  # own socket: no transport buffer to consult
            if g.send(data, addr) and what == "forward":
                self.stats.packets_forwarded += 1
                self.stats.bytes_forwarded += len(data)
            return
        t = self._transport
        if t is None:
            return
        buffered: Callable[[], int] | None = getattr(t, "get_write_buffer_size", None)
        if buffered is not None and buffered() > self.config.max_send_buffer:
            self.stats.dropped["send_buffer_full"] += 1
            return
        t.sendto(data, addr)
        if what == "forward":
            self.stats.packets_forwarded += 1
            self.stats.bytes_forwarded += len(data)

    def _reject(
        self, sid: uuid.UUID, addr: Addr, code: int, kind: str, budgeted: bool = False
    ) -> None:
        """Answer LEASE_REJECT. ``budgeted`` rejects (to a source over its lease rate) are sent
        at most ``reject_rate`` per second per IP: a flood of lease datagrams then costs no
        send per datagram, and a real peer still learns why it is refused."""
        self.stats.rejects[kind] += 1
        if budgeted and not self._reject_budget.allow(str(addr[0]), self.monotonic()):
            self.stats.dropped["reject_suppressed"] += 1
            return
        self.stats.rejects_by_code[code] += 1
        self._send(wire.encode_lease_reject(sid, code), addr, "reject")

    def _configure_bucket(self, s: RelaySession, mono: float) -> None:
        kbps = min(b.hard_kbps for b in s.bindings.values())
        rate = kbps * 1000 / 8  # bytes per second
        burst = max(rate * self.config.bitrate_burst_seconds, self.config.min_bitrate_burst_bytes)
        if s.bucket is None:
            s.bucket = TokenBucket(rate, burst, mono)
        elif s.bucket.rate != rate or s.bucket.burst != burst:
            s.bucket.reconfigure(rate, burst, mono)
