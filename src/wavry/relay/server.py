"""The Wavry UDP relay (CONTROL_PLANE.md §4).

Peers that cannot reach each other directly present a gateway-signed lease for their role of
a session; the relay binds that role to the presenting address and then forwards FORWARD
datagrams, unchanged, between the two bound addresses. It never parses RIFT payloads.

Enforced limits: per-source-IP packet rate and lease rate (before any signature check),
per-identity (lease ``sub``) lease rate, per-session hard bitrate (token bucket on bytes,
excess dropped), session cap (new sessions rejected with code 4 when full), lease expiry and
a 60 s idle timeout. Memory is bounded by the session cap and LRU-bounded limiter tables.

Session lifecycle:
- LEASE_PRESENT with a valid lease creates the session if needed and (re)binds that role to
  the source address (NAT rebinding: the newest valid presentation wins), then LEASE_ACK.
- LEASE_RENEW carries a fresh lease; it extends that role's binding (and rebinds like a
  presentation). For a session the relay no longer has it answers LEASE_REJECT 1, telling the
  peer to present again.
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
from wavry.controlplane.lease import LeaseError, LeaseVerifier, RejectReason
from wavry.relay import wire
from wavry.relay.wire import HEADER_LEN, PacketType, Role, WireError

__all__ = ["RelayConfig", "RelayServer", "RelayStats"]

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
    bitrate_burst_seconds: float = 0.25  # bucket depth at the hard limit
    min_bitrate_burst_bytes: int = 2 * 65536  # never smaller than two max datagrams
    max_tracked_keys: int = 65536  # per limiter table
    max_send_buffer: int = 4 * 1024 * 1024  # drop instead of queueing beyond this
    sweep_interval: float = 1.0

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
    renewals: int = 0
    rebinds: int = 0
    sessions_created: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> datagrams
    rejects: Counter[str] = field(default_factory=Counter)  # reject kind -> count
    rejects_by_code: Counter[int] = field(default_factory=Counter)
    sessions_ended: Counter[str] = field(default_factory=Counter)  # "expired" / "idle"


class _Binding:
    __slots__ = ("addr", "expires_at", "hard_kbps", "soft_kbps", "sub")

    def __init__(self, addr: Addr, sub: str, expires_at: float, soft: int, hard: int) -> None:
        self.addr = addr
        self.sub = sub
        self.expires_at = expires_at
        self.soft_kbps = soft
        self.hard_kbps = hard


class _Session:
    __slots__ = ("bindings", "bucket", "last_activity", "sid")

    def __init__(self, sid: uuid.UUID, now: float) -> None:
        self.sid = sid
        self.bindings: dict[Role, _Binding] = {}
        self.last_activity = now
        self.bucket: TokenBucket | None = None


_FORWARD_PREFIX = bytes((wire.MAGIC, wire.VERSION, PacketType.FORWARD, 0))


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
        self._sessions: dict[uuid.UUID, _Session] = {}
        cap = config.max_tracked_keys
        self._ip_packets = KeyedRateLimiter(config.ip_packet_rate, config.ip_packet_burst, cap)
        self._ip_leases = KeyedRateLimiter(config.ip_lease_rate, config.ip_lease_burst, cap)
        self._id_leases = KeyedRateLimiter(
            config.identity_lease_rate, config.identity_lease_burst, cap
        )
        self._transport: asyncio.DatagramTransport | None = None
        # FORWARD hot path: sessions by the raw 16 header bytes (no UUID object per datagram)
        self._by_raw: dict[bytes, _Session] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.started_at = monotonic()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> Addr:
        """Bind the UDP socket and start the expiry sweeper; return the bound address."""
        loop = asyncio.get_running_loop()
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

    def _check_alive(self, s: _Session, wall: float, mono: float) -> bool:
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

    def _end(self, s: _Session, why: str) -> None:
        if self._sessions.pop(s.sid, None) is not None:
            self._by_raw.pop(s.sid.bytes, None)
            self.stats.sessions_ended[why] += 1
            log.debug("session %s ended (%s)", s.sid, why)

    # --- datagrams ------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        stats = self.stats
        stats.packets_received += 1
        stats.bytes_received += len(data)
        mono = self.monotonic()
        ip = str(addr[0])
        if not self._ip_packets.allow(ip, mono):
            stats.dropped["ip_rate"] += 1
            return
        if data[:4] == _FORWARD_PREFIX and HEADER_LEN < len(data) <= wire.MAX_DATAGRAM:
            # hot path: a well-formed FORWARD header, session found by its raw id bytes
            s = self._by_raw.get(data[4:HEADER_LEN])
            if s is None:
                stats.dropped["unknown_session"] += 1
            else:
                self._forward_session(data, s, addr, mono)
            return
        try:
            header = wire.decode_header(data)
        except WireError:
            stats.dropped["malformed"] += 1
            return
        if header.type is PacketType.FORWARD:
            self._forward(data, header.session_id, addr, mono)
        elif header.type in (PacketType.LEASE_PRESENT, PacketType.LEASE_RENEW):
            self._lease(data, header, addr, ip, mono)
        else:  # LEASE_ACK / LEASE_REJECT are relay -> peer only
            stats.dropped["unexpected_type"] += 1

    def _forward(self, data: bytes, sid: uuid.UUID, addr: Addr, mono: float) -> None:
        s = self._sessions.get(sid)
        if s is None:
            self.stats.dropped["unknown_session"] += 1
            return
        self._forward_session(data, s, addr, mono)

    def _forward_session(self, data: bytes, s: _Session, addr: Addr, mono: float) -> None:
        stats = self.stats
        if not self._check_alive(s, self.clock(), mono):
            stats.dropped["unknown_session"] += 1
            return
        if len(data) == HEADER_LEN:
            stats.dropped["malformed"] += 1
            return
        client = s.bindings.get(Role.CLIENT)
        host = s.bindings.get(Role.HOST)
        if client is not None and client.addr == addr:
            dest = host
        elif host is not None and host.addr == addr:
            dest = client
        else:
            stats.dropped["unbound_source"] += 1
            return
        if dest is None:
            stats.dropped["no_peer"] += 1
            return
        if s.bucket is not None and not s.bucket.take(mono, len(data)):
            stats.dropped["bitrate"] += 1
            return
        s.last_activity = mono
        self._send(data, dest.addr, "forward")

    def _send(self, data: bytes, addr: Addr, what: str) -> None:
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

    def _reject(self, sid: uuid.UUID, addr: Addr, code: int, kind: str) -> None:
        self.stats.rejects[kind] += 1
        self.stats.rejects_by_code[code] += 1
        self._send(wire.encode_lease_reject(sid, code), addr, "reject")

    def _lease(self, data: bytes, header: wire.Header, addr: Addr, ip: str, mono: float) -> None:
        sid = header.session_id
        try:
            _, present = wire.decode_lease_present(data)
        except WireError:
            self.stats.dropped["malformed"] += 1
            return
        # Checked before the (costly) signature verification. Every reply is smaller than
        # the smallest valid request (24 bytes), so the relay cannot amplify.
        if not self._ip_leases.allow(ip, mono):
            self._reject(sid, addr, RejectReason.RATE_LIMITED, "ip_lease_rate")
            return
        if ip in self.banned_ips:
            self._reject(sid, addr, RejectReason.BANNED, "banned_ip")
            return
        wall = self.clock()
        try:
            claims = self.verifier.verify(present.token, wall, sid, present.role.claim)
        except LeaseError as exc:
            log.debug("lease from %s refused: %s", addr, exc.message)
            self._reject(sid, addr, exc.reason_code, exc.kind)
            return
        if claims.sub in self.banned_identities:
            self._reject(sid, addr, RejectReason.BANNED, "banned_identity")
            return
        if not self._id_leases.allow(claims.sub, mono):
            self._reject(sid, addr, RejectReason.RATE_LIMITED, "identity_lease_rate")
            return
        renew = header.type is PacketType.LEASE_RENEW
        s = self._sessions.get(sid)
        if s is not None and not self._check_alive(s, wall, mono):
            s = None
        if s is None:
            if renew:
                self._reject(sid, addr, RejectReason.EXPIRED, "session_gone")
                return
            if len(self._sessions) >= self.config.max_sessions:
                self.sweep()
            if len(self._sessions) >= self.config.max_sessions:
                self._reject(sid, addr, RejectReason.SESSION_FULL, "session_full")
                return
            s = _Session(sid, mono)
            self._sessions[sid] = s
            self._by_raw[sid.bytes] = s
            self.stats.sessions_created += 1

        hard = claims.hlimit
        if self.config.max_bitrate_kbps is not None:
            hard = min(hard, self.config.max_bitrate_kbps)
        soft = min(claims.slimit, hard)
        expires_at = claims.exp.timestamp()
        role = present.role
        b = s.bindings.get(role)
        if b is None:
            b = _Binding(addr, claims.sub, expires_at, soft, hard)
            s.bindings[role] = b
        else:
            if b.addr != addr:
                self.stats.rebinds += 1
                log.debug("session %s %s moved %s -> %s", sid, role.claim, b.addr, addr)
            b.addr = addr
            b.sub = claims.sub
            b.expires_at = max(b.expires_at, expires_at)
            b.soft_kbps, b.hard_kbps = soft, hard
        if renew:
            self.stats.renewals += 1
        self.stats.leases_accepted += 1
        s.last_activity = mono
        self._configure_bucket(s, mono)
        ack = wire.encode_lease_ack(sid, int(b.expires_at * 1000), b.soft_kbps, b.hard_kbps)
        self._send(ack, addr, "ack")

    def _configure_bucket(self, s: _Session, mono: float) -> None:
        kbps = min(b.hard_kbps for b in s.bindings.values())
        rate = kbps * 1000 / 8  # bytes per second
        burst = max(rate * self.config.bitrate_burst_seconds, self.config.min_bitrate_burst_bytes)
        if s.bucket is None:
            s.bucket = TokenBucket(rate, burst, mono)
        elif s.bucket.rate != rate or s.bucket.burst != burst:
            s.bucket.reconfigure(rate, burst, mono)
