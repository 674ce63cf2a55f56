"""Host side of RIFT (sans-I/O): many client sessions behind one UDP endpoint.

Handshakes are keyed by handshake id, sessions by alias (never by source address), so a client
can change address mid-session. Abuse limits (per-source handshake rate, pending-handshake cap)
keep established sessions served while the endpoint is flooded.

Clocks: every `now` is the adapter's monotonic clock (seconds). Wall-clock time only stamps
what goes on the wire (`Pong.host_time_us`); it comes from the injected `wall_clock`, or from
`now` itself when none is given (tests on one fake clock).
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum

from wavry.rift import rift_pb2
from wavry.rift.channel import SecureChannel
from wavry.rift.config import PROTOCOL_VERSION, HostConfig
from wavry.rift.events import (
    Address,
    ClientAccepted,
    ClientConnected,
    ClientGone,
    ClientMessage,
    ClientMigrated,
    ClientRejected,
    ClientStalled,
    ClientTransportEvent,
    DevicePaired,
    DisconnectReason,
    HostEvent,
    PairingAttemptFailed,
    PairingCodeIssued,
)
from wavry.rift.framing import FramingError, HandshakeDatagram, TransportDatagram, parse_datagram
from wavry.rift.handshake import HandshakeError, LocalStatic, ResponderHandshake
from wavry.rift.identity import Identity
from wavry.rift.noise import generate_static_key
from wavry.rift.pairing import PairingCodes, PairingVerdict
from wavry.rift.ratelimit import KeyedRateLimiter, source_key
from wavry.rift.transport import HostTransport

_COMPLETED_MEMORY_S = 30.0
MIN_STREAM_SIDE, MAX_STREAM_SIDE = 64, 8192  # pixels


class HostSessionState(Enum):
    AWAITING_HELLO = "awaiting_hello"
    PAIRING = "pairing"
    ACTIVE = "active"


@dataclass(slots=True)
class _Pending:
    hs: ResponderHandshake
    addr: Address
    created: float


@dataclass(slots=True)
class HostSession:
    alias: int
    client_id: str
    client_name: str
    channel: SecureChannel
    transport: HostTransport
    addr: Address
    handshake_hash: bytes
    established_at: float
    last_rx: float
    state: HostSessionState = HostSessionState.AWAITING_HELLO
    hello: rift_pb2.Hello | None = None
    ack: rift_pb2.HelloAck | None = None
    stalled: bool = False
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class HostCounters:
    framing_drops: int = 0
    unknown_alias: int = 0
    handshakes_started: int = 0
    handshakes_completed: int = 0
    handshakes_failed: int = 0
    handshakes_rate_limited: int = 0
    duplicate_msg1: int = 0


class HostEndpoint:
    def __init__(
        self,
        identity: Identity,
        config: HostConfig | None = None,
        trusted: Iterable[str] = (),
        random_bytes: Callable[[int], bytes] = os.urandom,
        static_private: bytes | None = None,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config or HostConfig()
        #: wall-clock seconds (Unix epoch) for timestamps on the wire; None: `now` is used
        self.wall_clock = wall_clock
        self.identity = identity
        self.trusted: set[str] = set(trusted)
        #: trust decided outside the endpoint, asked with a client's proven Wavry ID when it is
        #: not in ``trusted`` (the gateway introduced it as a device of the owner's account, or
        #: of an account the owner shared this host with: docs/spec/CONTROL_PLANE.md §2, §6)
        self.vouch: Callable[[str], bool] | None = None
        self.monitors: list[rift_pb2.MonitorInfo] = []
        self.counters = HostCounters()
        self.pairing = PairingCodes(random_bytes)
        self._random = random_bytes
        self._local = LocalStatic.create(
            identity, static_private or generate_static_key(), self.config.name
        )
        self.sessions: dict[int, HostSession] = {}
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()
        self._completed: OrderedDict[bytes, float] = OrderedDict()
        self._buckets = KeyedRateLimiter(
            self.config.handshake_rate_per_ip,
            self.config.handshake_burst_per_ip,
            self.config.max_tracked_sources,
        )
        # all sources together: bounds key work when sources rotate past the per-source table
        self._global_bucket = KeyedRateLimiter(
            self.config.handshake_rate_total, self.config.handshake_rate_total / 4, 1
        )
        self._events: deque[HostEvent] = deque()
        self._out: list[tuple[bytes, Address]] = []
        self._now = 0.0
        #: the adapter's cap on a new session's maximum datagram size for the address it comes
        #: from (a carrier with smaller datagrams, RIFT.md §11); None: the config's size
        self.datagram_limit: Callable[[Address], int | None] | None = None

    # ---- public API ------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        self._now = now
        try:
            dgram = parse_datagram(data, self.config.max_datagram)
        except FramingError:
            self.counters.framing_drops += 1
            return
        if isinstance(dgram, TransportDatagram):
            self._on_transport(dgram, addr, now)
        else:
            self._on_handshake(dgram, addr, now)

    def datagrams_to_send(self, now: float | None = None) -> list[tuple[bytes, Address]]:
        """Handshake datagrams plus what each session's pacer releases at `now`."""
        if now is not None:
            self._now = now
        out, self._out = self._out, []
        for s in self.sessions.values():
            addr = s.addr
            out.extend((d, addr) for d in s.transport.take_output(self._now))
        return out

    def next_event(self) -> HostEvent | None:
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        t = self.config.timing
        deadlines: list[float] = []
        if self._pending:
            deadlines.append(next(iter(self._pending.values())).created + t.handshake_timeout_s)
        for s in self.sessions.values():
            deadlines.append(s.last_rx + (t.lost_after_s if s.stalled else t.stall_after_s))
            deadlines.append(s.established_at + t.max_session_age_s)
            if (tt := s.transport.next_timer()) is not None:
                deadlines.append(tt)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        t = self.config.timing
        while self._pending:
            hid, p = next(iter(self._pending.items()))
            if now - p.created < t.handshake_timeout_s:
                break
            del self._pending[hid]
        while self._completed:
            hid, at = next(iter(self._completed.items()))
            if now - at < _COMPLETED_MEMORY_S:
                break
            del self._completed[hid]
        for s in list(self.sessions.values()):
            silence = now - s.last_rx
            if silence >= t.lost_after_s:
                self._free(s, DisconnectReason.TIMEOUT, f"no packets for {silence:.0f} s")
            elif now - s.established_at >= t.max_session_age_s:
                self.close_session(
                    s.alias, DisconnectReason.SESSION_LIMIT, "session age limit; reconnecting"
                )
            else:
                if silence >= t.stall_after_s and not s.stalled:
                    s.stalled = True
                    self._events.append(ClientStalled(s.alias, silence))
                s.transport.handle_timer(now)
                self._drain_transport(s)

    def send_message(self, alias: int, message: rift_pb2.Message, now: float | None = None) -> int:
        s = self.sessions.get(alias)
        if s is None:
            raise KeyError(f"no session with alias {alias:#x}")
        if now is not None:
            self._now = now
        return self._send(s, message)

    def send_frame(
        self,
        alias: int,
        data: bytes,
        now: float,
        *,
        keyframe: bool,
        timestamp_us: int,
        capture_us: int = 0,
        encode_us: int = 0,
        on_batch: Callable[[], None] | None = None,
    ) -> int:
        """Send one encoded video frame to an accepted client; returns its frame id.
        ``on_batch``: see `MediaSender.send_frame` (the adapter sends what is ready; it must
        not feed anything back into this endpoint)."""
        s = self.sessions.get(alias)
        if s is None or s.state is not HostSessionState.ACTIVE:
            raise KeyError(f"no accepted session with alias {alias:#x}")
        self._now = now
        return s.transport.send_frame(
            data,
            now,
            keyframe=keyframe,
            timestamp_us=timestamp_us,
            capture_us=capture_us,
            encode_us=encode_us,
            on_batch=on_batch,
        )

    def media_backlog_s(self, alias: int, now: float) -> float:
        """How long the media queued for this client needs to leave (0 if no session)."""
        s = self.sessions.get(alias)
        if s is None or s.state is not HostSessionState.ACTIVE:
            return 0.0
        self._now = now
        return s.transport.media_backlog_s(now)

    def should_skip_frame(self, now: float, aliases: Iterable[int] | None = None) -> bool:
        """Whether the encoder should skip (not encode) the next frame: True while the media
        already queued for any of these accepted sessions (all when None) needs more than
        half a frame interval to leave. Call it once per frame the encoder could encode; each
        backlogged session counts the skip (`stats.frames_skipped_backlog`). Drop, never
        queue: a frame not encoded breaks no reference chain, a frame dropped after encoding
        would."""
        self._now = now
        skip = False
        chosen = (
            self.sessions.values()
            if aliases is None
            else (s for a in aliases if (s := self.sessions.get(a)) is not None)
        )
        for s in chosen:
            if s.state is HostSessionState.ACTIVE and s.transport.should_skip_frame(now):
                skip = True
        return skip

    def issue_pairing_code(self, now: float) -> str | None:
        issued = self.pairing.issue(now)
        if issued is None:
            return None
        self._events.append(PairingCodeIssued(*issued))
        return issued[0]

    def close_session(self, alias: int, reason: DisconnectReason, message: str) -> None:
        s = self.sessions.get(alias)
        if s is None:
            return
        d = rift_pb2.Disconnect(reason=int(reason), message=message[:200])
        msg = rift_pb2.Message(control=rift_pb2.ControlMessage(disconnect=d))
        for _ in range(self.config.timing.disconnect_repeats):
            self._send(s, msg)
        self._free(s, reason, message)

    def close_all(self, reason: DisconnectReason, message: str) -> None:
        for alias in list(self.sessions):
            self.close_session(alias, reason, message)

    @property
    def pending_handshakes(self) -> int:
        return len(self._pending)

    # ---- handshake -------------------------------------------------------------------

    def _on_handshake(self, dgram: HandshakeDatagram, addr: Address, now: float) -> None:
        hid = dgram.handshake_id
        if dgram.message_number == 1:
            pending = self._pending.get(hid)
            if pending is not None:
                # cached: no new key work; only to the original source, so a spoofed duplicate
                # cannot reflect msg2 (4x larger) at somebody else
                if addr == pending.addr:
                    self.counters.duplicate_msg1 += 1
                    self._out.append((pending.hs.msg2, addr))
                return
            if hid in self._completed or hid == b"\x00" * 12:
                return
            if len(dgram.payload) != 32:  # msg1 is the 32-byte ephemeral key, empty payload
                self.counters.handshakes_failed += 1
                return
            # per source first: one flooding source must not empty the global bucket
            if not self._buckets.allow(source_key(addr[0]), now):
                self.counters.handshakes_rate_limited += 1
                return
            if not self._global_bucket.allow(None, now):
                self.counters.handshakes_rate_limited += 1
                return
            if len(self._pending) >= self.config.max_pending_handshakes:
                self.handle_timer(now)
                if len(self._pending) >= self.config.max_pending_handshakes:
                    self.counters.handshakes_rate_limited += 1
                    return
            alias = self._new_alias()
            try:
                hs = ResponderHandshake(self._local, hid, alias, dgram.payload)
            except HandshakeError:
                self.counters.handshakes_failed += 1
                return
            self.counters.handshakes_started += 1
            self._pending[hid] = _Pending(hs, addr, now)
            self._out.append((hs.msg2, addr))
        elif dgram.message_number == 3:
            p = self._pending.get(hid)
            if p is None:
                return  # unknown, or a duplicate msg3 of a completed handshake: ignore
            try:
                peer = p.hs.on_msg3(dgram.payload)
            except HandshakeError:
                self.counters.handshakes_failed += 1
                if p.hs.exhausted:
                    del self._pending[hid]
                return
            del self._pending[hid]
            self._completed[hid] = now
            self._establish(p, peer.wavry_id, peer.name, addr, now)

    def _new_alias(self) -> int:
        reserved = {p.hs.alias for p in self._pending.values()}
        while True:
            alias = int.from_bytes(self._random(4), "big")
            if alias and alias not in self.sessions and alias not in reserved:
                return alias

    def _establish(self, p: _Pending, client_id: str, name: str, addr: Address, now: float) -> None:
        for old in list(self.sessions.values()):
            if old.client_id == client_id:
                self.close_session(
                    old.alias, DisconnectReason.REPLACED, "replaced by a new session"
                )
        client_to_host, host_to_client = p.hs.split()
        tconfig = self.config.transport
        max_datagram = self.config.max_datagram
        limit = self.datagram_limit(addr) if self.datagram_limit is not None else None
        if limit is not None and limit < max(max_datagram, tconfig.max_datagram):
            max_datagram = min(max_datagram, limit)
            tconfig = replace(tconfig, max_datagram=min(tconfig.max_datagram, limit))
        channel = SecureChannel(
            alias=p.hs.alias,
            send_key=host_to_client,
            recv_key=client_to_host,
            max_datagram=max_datagram,
        )
        s = HostSession(
            alias=p.hs.alias,
            client_id=client_id,
            client_name=name,
            channel=channel,
            transport=HostTransport(channel, tconfig, now),
            addr=addr,
            handshake_hash=p.hs.handshake_hash,
            established_at=now,
            last_rx=now,
        )
        self.sessions[s.alias] = s
        self.counters.handshakes_completed += 1
        self._events.append(ClientConnected(s.alias, client_id, name, addr))

    # ---- transport -------------------------------------------------------------------

    def _on_transport(self, dgram: TransportDatagram, addr: Address, now: float) -> None:
        s = self.sessions.get(dgram.alias)
        if s is None:
            self.counters.unknown_alias += 1
            return
        before = s.channel.counters.received
        highest = s.channel.highest_received_id
        messages = s.transport.on_datagram(dgram, now)
        if s.channel.counters.received == before:
            return  # nothing authentic: no state changes, not even the address
        s.last_rx = now
        s.stalled = False
        # Migration (RIFT.md §3, §10) follows the newest datagram only: one sent earlier on the
        # old path (a relay is slower than the direct path it is leaving) must not move it back.
        if addr != s.addr and dgram.packet_id > highest:
            old, s.addr = s.addr, addr
            self._events.append(ClientMigrated(s.alias, old, addr))
        active = s.state is HostSessionState.ACTIVE
        for msg in messages:
            if msg.WhichOneof("content") == "control":
                self._on_control(s, msg, now)
                if s.alias not in self.sessions:
                    return
                active = s.state is HostSessionState.ACTIVE
            elif active:
                self._events.append(ClientMessage(s.alias, msg))
        if s.transport.has_events:
            self._drain_transport(s)

    def _drain_transport(self, s: HostSession) -> None:
        while (e := s.transport.next_event()) is not None:
            if s.state is HostSessionState.ACTIVE:
                self._events.append(ClientTransportEvent(s.alias, e))

    def _on_control(self, s: HostSession, msg: rift_pb2.Message, now: float) -> None:
        ctl = msg.control
        kind = ctl.WhichOneof("content")
        if kind == "ping":
            wall = now if self.wall_clock is None else self.wall_clock()
            pong = rift_pb2.Pong(timestamp_us=ctl.ping.timestamp_us, host_time_us=int(wall * 1e6))
            self._send(s, rift_pb2.Message(control=rift_pb2.ControlMessage(pong=pong)))
        elif kind == "hello":
            self._on_hello(s, ctl.hello, now)
        elif kind == "pair_request":
            self._on_pair_request(s, ctl.pair_request, now)
        elif kind == "disconnect":
            d = ctl.disconnect
            self._free(s, DisconnectReason.USER, d.message or "client disconnected")
        elif s.state is HostSessionState.ACTIVE:
            self._events.append(ClientMessage(s.alias, msg))

    def _on_hello(self, s: HostSession, hello: rift_pb2.Hello, now: float) -> None:
        if s.state is HostSessionState.ACTIVE and s.ack is not None:
            self._send_ack(s, s.ack)  # retransmitted Hello: same answer
            return
        ack = self._decide(s, hello, now)
        s.hello = hello
        self._send_ack(s, ack)
        if ack.accepted:
            s.ack = ack
            s.state = HostSessionState.ACTIVE
            self._events.append(ClientAccepted(s.alias, s.client_id, hello, ack))
            ml = rift_pb2.MonitorList(monitors=self.monitors)
            self._send(s, rift_pb2.Message(control=rift_pb2.ControlMessage(monitor_list=ml)))
        else:
            if ack.reject_reason == rift_pb2.PAIRING_REQUIRED:
                s.state = HostSessionState.PAIRING
            self._events.append(
                ClientRejected(s.alias, s.client_id, ack.reject_reason, ack.message)
            )

    def _decide(self, s: HostSession, hello: rift_pb2.Hello, now: float) -> rift_pb2.HelloAck:
        def reject(reason: rift_pb2.RejectReason.ValueType, message: str) -> rift_pb2.HelloAck:
            return rift_pb2.HelloAck(accepted=False, reject_reason=reason, message=message)

        cfg = self.config
        if hello.protocol_version != PROTOCOL_VERSION:
            return reject(
                rift_pb2.UNSUPPORTED_VERSION,
                f"this host speaks RIFT protocol version {PROTOCOL_VERSION}, "
                f"the client asked for {hello.protocol_version}",
            )
        vouched = self.vouch is not None and self.vouch(s.client_id)
        if not cfg.trust_any and s.client_id not in self.trusted and not vouched:
            issued = self.pairing.ensure(now, source_key(s.addr[0]))
            if issued is not None:
                self._events.append(PairingCodeIssued(*issued))
            return reject(
                rift_pb2.PAIRING_REQUIRED,
                "this host does not know this device yet: enter the 6-digit pairing code "
                "the host shows (or run `wavry host --pair` there)",
            )
        active = sum(1 for x in self.sessions.values() if x.state is HostSessionState.ACTIVE)
        if active >= cfg.max_clients:
            return reject(rift_pb2.BUSY, f"the host already serves {active} clients")
        # An empty list means the client did not say: the host's first choice is used.
        offered: set[int] = set(hello.supported_codecs) or {cfg.codecs[0]}
        codec = next((c for c in cfg.codecs if c in offered), None)
        if codec is None:
            return reject(rift_pb2.NO_COMMON_CODEC, "no video codec both sides support")
        width, height = cfg.width, cfg.height
        wanted = hello.max_resolution
        if cfg.follow_client_size and wanted.width and wanted.height:
            # a display made for this client: its size, within what a display can be
            width = min(max(wanted.width, MIN_STREAM_SIDE), MAX_STREAM_SIDE)
            height = min(max(wanted.height, MIN_STREAM_SIDE), MAX_STREAM_SIDE)
        elif hello.HasField("max_resolution") and hello.max_resolution.width:
            scale = min(
                1.0,
                hello.max_resolution.width / width,
                (hello.max_resolution.height or height) / height,
            )
            width, height = int(width * scale), int(height * scale)
        width, height = max(2, width - width % 2), max(2, height - height % 2)
        fps = min(cfg.fps, hello.max_fps) if hello.max_fps else cfg.fps
        return rift_pb2.HelloAck(
            accepted=True,
            selected_codec=codec,  # type: ignore[arg-type]
            stream_resolution=rift_pb2.Resolution(width=width, height=height),
            fps=fps,
            initial_bitrate_kbps=cfg.initial_bitrate_kbps,
            keyframe_interval_ms=cfg.keyframe_interval_ms,
            session_id=self._random(16),
            session_alias=s.alias,
            message=cfg.software,
            fec_scheme=s.transport.agree_fec_scheme(list(hello.fec_schemes), now),  # type: ignore[arg-type]
        )

    def _send_ack(self, s: HostSession, ack: rift_pb2.HelloAck) -> None:
        self._send(s, rift_pb2.Message(control=rift_pb2.ControlMessage(hello_ack=ack)))

    def _on_pair_request(self, s: HostSession, req: rift_pb2.PairRequest, now: float) -> None:
        if s.state is not HostSessionState.PAIRING:
            return
        verdict, left = self.pairing.verify(req.proof, s.handshake_hash, now, source_key(s.addr[0]))
        if verdict == PairingVerdict.OK:
            self.trusted.add(s.client_id)
            s.state = HostSessionState.AWAITING_HELLO
            self._events.append(DevicePaired(s.client_id, s.client_name))
            result = rift_pb2.PairResult(ok=True, message="paired: this host now trusts you")
        elif verdict == PairingVerdict.WRONG:
            self._events.append(PairingAttemptFailed(s.client_id, left))
            text = (
                f"wrong code; {left} attempts left"
                if left
                else "wrong code; the code is used up, ask the host for a new one"
            )
            result = rift_pb2.PairResult(ok=False, message=text)
        elif verdict == PairingVerdict.LIMITED:
            result = rift_pb2.PairResult(
                ok=False, message="too many wrong codes lately; wait a minute and try again"
            )
        else:
            result = rift_pb2.PairResult(
                ok=False, message="no pairing code is active on the host; ask for a new one"
            )
        self._send(s, rift_pb2.Message(control=rift_pb2.ControlMessage(pair_result=result)))

    # ---- helpers ---------------------------------------------------------------------

    def _send(self, s: HostSession, message: rift_pb2.Message) -> int:
        return s.transport.send_message(message, self._now)

    def _free(self, s: HostSession, reason: DisconnectReason, message: str) -> None:
        if self.sessions.pop(s.alias, None) is not None:
            # flush what is already queued for it (e.g. the Disconnect), then forget it
            self._out.extend((d, s.addr) for d in s.transport.take_output(self._now))
            self._events.append(ClientGone(s.alias, s.client_id, reason, message))
