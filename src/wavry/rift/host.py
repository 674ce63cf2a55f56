"""Host side of RIFT (sans-I/O): many client sessions behind one UDP endpoint.

Handshakes are keyed by handshake id, sessions by alias, so a client can change address (after
the new path answered a challenge, §3). Admission (admission.py) and bounds on sessions not
accepted yet keep established sessions served under floods (docs/security.md). Deadlines live
in a heap and only sessions with work are asked for output: O(log n) per datagram.

Clocks: every `now` is the adapter's monotonic clock (seconds). Wall-clock time only stamps
what goes on the wire (`Pong.host_time_us`): the injected `wall_clock`, else `now` (tests).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Hashable, Iterable

from wavry.rift import rift_pb2
from wavry.rift.admission import HandshakeAdmission, PendingHandshake
from wavry.rift.channel import SecureChannel
from wavry.rift.config import PROTOCOL_VERSION, HostConfig
from wavry.rift.deadlines import DeadlineQueue
from wavry.rift.events import (
    Address,
    ClientAccepted,
    ClientConnected,
    ClientGone,
    ClientMessage,
    ClientRejected,
    ClientStalled,
    ClientTransportEvent,
    DevicePaired,
    DisconnectReason,
    HostEvent,
    PairingAttemptFailed,
    PairingCodeIssued,
)
from wavry.rift.framing import (
    MSG1,
    MSG3,
    FramingError,
    HandshakeDatagram,
    TransportDatagram,
    parse_datagram,
)
from wavry.rift.handshake import LocalStatic
from wavry.rift.host_session import (
    HostCounters,
    HostSession,
    HostSessionState,
    PathValidation,
    UntrustedSessions,
    datagram_sizes,
    pair_result,
    stream_size,
)
from wavry.rift.identity import Identity
from wavry.rift.noise import generate_static_key
from wavry.rift.pairing import PairingCodes, PairingVerdict
from wavry.rift.ratelimit import source_key
from wavry.rift.transport import HostTransport

__all__ = ["HostCounters", "HostEndpoint", "HostSession", "HostSessionState"]


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
        self._events: deque[HostEvent] = deque()
        self._out: list[tuple[bytes, Address]] = []
        self._now = 0.0
        self.admission = HandshakeAdmission(
            self.config,
            self._local,
            random_bytes,
            lambda data, addr: self._out.append((data, addr)),
            lambda alias: alias not in self.sessions,
            counters=self.counters,
        )
        self._paths = PathValidation(
            self.config.timing,
            self.counters,
            random_bytes,
            lambda data, addr: self._out.append((data, addr)),
            self._events.append,
        )
        self._timers: DeadlineQueue[int] = DeadlineQueue()
        self._dirty: set[int] = set()  # sessions that may have output
        self._in_send_frame: int | None = None  # its on_batch takes output mid-frame
        self._untrusted = UntrustedSessions()
        self._by_client: dict[str, set[int]] = {}
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
            self._on_handshake(dgram, len(data), addr, now)

    def datagrams_to_send(self, now: float | None = None) -> list[tuple[bytes, Address]]:
        """Handshake datagrams plus what each session's pacer releases at `now`."""
        if now is not None:
            self._now = now
        out, self._out = self._out, []
        dirty, self._dirty = self._dirty, set()
        if self._in_send_frame is not None:
            dirty.add(self._in_send_frame)
        for alias in dirty:
            s = self.sessions.get(alias)
            if s is None:
                continue
            addr = s.addr
            out.extend((d, addr) for d in s.transport.take_output(self._now))
            self._schedule(s)
        return out

    @property
    def has_work(self) -> bool:
        """Whether output or events may be waiting (False after a datagram that was dropped:
        the adapter need not flush, and no deadline moved)."""
        return bool(self._out or self._dirty or self._events)

    def next_event(self) -> HostEvent | None:
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        a, b = self.admission.next_deadline(), self._timers.earliest()
        if a is None:
            return b
        return a if b is None else min(a, b)

    def handle_timer(self, now: float) -> None:
        self._now = now
        t = self.config.timing
        self.admission.expire(now)
        for alias in self._timers.pop_due(now):
            s = self.sessions.get(alias)
            if s is None:
                continue
            silence = now - s.last_rx
            if now >= s.last_rx + t.lost_after_s:  # the form the deadline has
                self._free(s, DisconnectReason.TIMEOUT, f"no packets for {silence:.0f} s")
            elif now >= s.established_at + t.max_session_age_s:
                self.close_session(
                    s.alias, DisconnectReason.SESSION_LIMIT, "session age limit; reconnecting"
                )
            elif s.state is not HostSessionState.ACTIVE and now >= s.wait_until:
                self.counters.untrusted_expired += 1
                self.admission.buckets.penalize(s.source, self.config.untrusted_penalty, now)
                what = "pairing" if s.state is HostSessionState.PAIRING else "Hello"
                self.close_session(
                    s.alias, DisconnectReason.TIMEOUT, f"no {what} in time; connect again"
                )
            else:
                if silence >= t.stall_after_s and not s.stalled:
                    s.stalled = True
                    self._events.append(ClientStalled(s.alias, silence))
                s.transport.handle_timer(now)
                self._drain_transport(s)
                self._dirty.add(alias)
                self._schedule(s)

    def send_message(self, alias: int, message: rift_pb2.Message, now: float | None = None) -> int:
        s = self.sessions.get(alias)
        if s is None:
            raise KeyError(f"no session with alias {alias:#x}")
        if now is not None:
            self._now = now
        pid = self._send(s, message)
        self._schedule(s)
        return pid

    def send_bulk(self, alias: int, message: rift_pb2.Message, now: float) -> None:
        """A bulk message (a file chunk), sent behind the session's queued video."""
        s = self.sessions[alias]
        self._now = now
        s.transport.send_bulk(message, now)
        self._dirty.add(alias)
        self._schedule(s)

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
        self._in_send_frame = alias
        try:
            frame_id = s.transport.send_frame(
                data,
                now,
                keyframe=keyframe,
                timestamp_us=timestamp_us,
                capture_us=capture_us,
                encode_us=encode_us,
                on_batch=on_batch,
            )
        finally:
            self._in_send_frame = None
        self._dirty.add(alias)
        self._schedule(s)
        return frame_id

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
        return len(self.admission.pending)

    @property
    def untrusted_sessions(self) -> int:
        """Sessions not accepted yet (waiting for Hello or pairing)."""
        return len(self._untrusted)

    # ---- handshake -------------------------------------------------------------------

    def _on_handshake(self, dgram: HandshakeDatagram, size: int, addr: Address, now: float) -> None:
        if dgram.message_number == MSG1:
            self.admission.on_msg1(dgram, size, addr, now)
        elif dgram.message_number == MSG3:
            done = self.admission.on_msg3(dgram, now)
            if done is not None:
                p, peer = done
                self._establish(p, peer.wavry_id, peer.name, addr, now)

    def _establish(
        self, p: PendingHandshake, client_id: str, name: str, addr: Address, now: float
    ) -> None:
        for old in list(self._by_client.get(client_id, ())):
            self.close_session(old, DisconnectReason.REPLACED, "replaced by a new session")
        source = source_key(p.addr[0])
        self._make_room_for_untrusted(source)
        client_to_host, host_to_client = p.hs.split()
        limit = self.datagram_limit(p.addr) if self.datagram_limit is not None else None
        max_datagram, tconfig = datagram_sizes(self.config, limit)
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
            # the address msg2 went to; a msg3 from elsewhere is a new path to validate (§3)
            addr=p.addr,
            handshake_hash=p.hs.handshake_hash,
            established_at=now,
            last_rx=now,
            source=source,
            wait_until=now + self.config.timing.hello_wait_s,
            addr_rx=now,
        )
        self.sessions[s.alias] = s
        self._by_client.setdefault(client_id, set()).add(s.alias)
        self._untrusted.add(s.alias, source)
        self.counters.handshakes_completed += 1
        self._events.append(ClientConnected(s.alias, client_id, name, p.addr))
        if addr != p.addr:
            self._paths.challenge(s, addr, now)
        self._schedule(s)

    def _make_room_for_untrusted(self, source: Hashable) -> None:
        """A new session is not accepted yet: keep the bounds on such sessions, replacing the
        oldest one of this source, or else the oldest of all (docs/security.md)."""
        cfg = self.config
        victims = self._untrusted.victims(
            source, cfg.max_untrusted_per_source, cfg.max_untrusted_sessions
        )
        for alias, src in victims:
            self.counters.untrusted_evicted += 1
            self.admission.buckets.penalize(src, cfg.untrusted_penalty, self._now)
            self.close_session(
                alias, DisconnectReason.SESSION_LIMIT, "too many sessions waiting; connect again"
            )

    # ---- transport -------------------------------------------------------------------

    def _on_transport(self, dgram: TransportDatagram, addr: Address, now: float) -> None:
        s = self.sessions.get(dgram.alias)
        if s is None:
            self.counters.unknown_alias += 1
            return
        before = s.channel.counters.received
        messages = s.transport.on_datagram(dgram, now)
        if s.channel.counters.received == before:
            return  # nothing authentic: no state changes, not even the address
        s.last_rx = now
        s.stalled = False
        self._dirty.add(s.alias)
        if addr == s.addr:
            s.addr_rx = now
        else:
            self._paths.on_new_path(s, addr, now)
        active = s.state is HostSessionState.ACTIVE
        for msg in messages:
            if msg.WhichOneof("content") == "control":
                if msg.control.WhichOneof("content") == "pong" and self._paths.on_pong(
                    s, msg.control.pong, addr, now
                ):
                    continue
                self._on_control(s, msg, now)
                if s.alias not in self.sessions:
                    return
                active = s.state is HostSessionState.ACTIVE
            elif active:
                self._events.append(ClientMessage(s.alias, msg))
        if s.transport.has_events:
            self._drain_transport(s)
        self._schedule(s)

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
            self._untrusted.discard(s.alias)
            self._events.append(ClientAccepted(s.alias, s.client_id, hello, ack))
            ml = rift_pb2.MonitorList(monitors=self.monitors)
            self._send(s, rift_pb2.Message(control=rift_pb2.ControlMessage(monitor_list=ml)))
        else:
            if (
                ack.reject_reason == rift_pb2.PAIRING_REQUIRED
                and s.state is not HostSessionState.PAIRING
            ):
                s.state = HostSessionState.PAIRING
                s.wait_until = now + self.config.timing.pairing_wait_s  # a person types a code
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
        width, height = stream_size(cfg, hello)
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
            s.wait_until = now + self.config.timing.hello_wait_s
            self._events.append(DevicePaired(s.client_id, s.client_name))
        elif verdict == PairingVerdict.WRONG:
            self._events.append(PairingAttemptFailed(s.client_id, left))
        result = pair_result(verdict, left)
        self._send(s, rift_pb2.Message(control=rift_pb2.ControlMessage(pair_result=result)))

    # ---- helpers ---------------------------------------------------------------------

    def _send(self, s: HostSession, message: rift_pb2.Message) -> int:
        self._dirty.add(s.alias)
        return s.transport.send_message(message, self._now)

    def _schedule(self, s: HostSession) -> None:
        """Put the session's earliest deadline in the timer heap (after anything touched it)."""
        if s.alias not in self.sessions:
            return
        t = self.config.timing
        when = min(
            s.last_rx + (t.lost_after_s if s.stalled else t.stall_after_s),
            s.established_at + t.max_session_age_s,
        )
        if s.state is not HostSessionState.ACTIVE:
            when = min(when, s.wait_until)
        tt = s.transport.next_timer()
        self._timers.set(s.alias, when if tt is None else min(when, tt))

    def _free(self, s: HostSession, reason: DisconnectReason, message: str) -> None:
        if self.sessions.pop(s.alias, None) is not None:
            self._timers.discard(s.alias)
            self._dirty.discard(s.alias)
            self._untrusted.discard(s.alias)
            same = self._by_client.get(s.client_id)
            if same is not None:
                same.discard(s.alias)
                if not same:
                    del self._by_client[s.client_id]
            # flush what is already queued for it (e.g. the Disconnect), then forget it
            self._out.extend((d, s.addr) for d in s.transport.take_output(self._now))
            self._events.append(ClientGone(s.alias, s.client_id, reason, message))
