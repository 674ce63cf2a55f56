"""Client side of a RIFT session (sans-I/O): handshake, Hello, pairing, liveness, reconnect.

The adapter feeds `receive_datagram(data, now)` and `handle_timer(now)`, sends what
`datagrams_to_send()` returns to the host address, and reads `next_event()`.

Clocks: every `now` is the adapter's monotonic clock (seconds): timers, RTTs and the media
path never see a wall-clock step. Wall-clock time only stamps what goes on the wire
(`Ping.timestamp_us`) and the clock offset to the host's wall clock (`clock_offset_s`); it
comes from the injected `wall_clock`, or from `now` itself when none is given (tests on one
fake clock).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable

from wavry.rift import rift_pb2
from wavry.rift.channel import SecureChannel
from wavry.rift.clock import ClockOffsetEstimator
from wavry.rift.config import PROTOCOL_VERSION, ClientConfig
from wavry.rift.events import (
    ClientEvent,
    ClientState,
    CloseKind,
    DisconnectReason,
    HandshakeCompleted,
    LinkResumed,
    LinkStalled,
    MessageReceived,
    PairingFinished,
    PongReceived,
    Reconnecting,
    SessionAccepted,
    SessionClosed,
    SessionRejected,
)
from wavry.rift.framing import (
    COOKIE_REPLY,
    MSG2,
    FramingError,
    HandshakeDatagram,
    TransportDatagram,
    parse_datagram,
)
from wavry.rift.handshake import COOKIE_LEN, HandshakeError, InitiatorHandshake, LocalStatic
from wavry.rift.identity import Identity
from wavry.rift.noise import generate_static_key
from wavry.rift.pairing import is_valid_code_format, pairing_proof
from wavry.rift.transport import ClientTransport


class ClientSession:
    def __init__(
        self,
        identity: Identity,
        config: ClientConfig | None = None,
        expected_host_id: str | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        static_private: bytes | None = None,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config or ClientConfig()
        #: wall-clock seconds (Unix epoch) for timestamps on the wire; None: `now` is used
        self.wall_clock = wall_clock
        self.identity = identity
        self.expected_host_id = expected_host_id
        self._random = random_bytes
        self._local = LocalStatic.create(
            identity, static_private or generate_static_key(), self.config.name
        )
        self.state = ClientState.IDLE
        self.host_id: str | None = None
        self.host_name = ""
        self.channel: SecureChannel | None = None
        self.transport: ClientTransport | None = None
        self._now = 0.0
        self.ack: rift_pb2.HelloAck | None = None
        self.clock = ClockOffsetEstimator()
        self.drops = 0
        self._events: deque[ClientEvent] = deque()
        self._out: list[bytes] = []
        self._hs: InitiatorHandshake | None = None
        self._cookie: bytes | None = None  # the host's address proof (§2 cookie reply)
        self._hs_started = 0.0
        self._msg1_next = 0.0
        self._msg1_delay = 0.0
        self._hash = b""
        self._host_confirmed = False
        self._hello_started = 0.0
        self._hello_next = 0.0
        self._ping_next = 0.0
        self._start_pings = 0  # Pings left at the start interval (set when the host accepts)
        self._pings: dict[int, tuple[float, float]] = {}  # ts → (now, wall) when sent
        self._last_rx = 0.0
        self._stalled = False
        self._established_at = 0.0
        self._ever_accepted = False
        self._reconnect_attempt = 0
        self._reconnect_at = 0.0
        self._reconnect_since = 0.0

    # ---- public API ------------------------------------------------------------------

    def connect(self, now: float) -> None:
        self._now = now
        if self.state is not ClientState.IDLE:
            raise RuntimeError("connect() may be called once")
        self._start_handshake(now)

    def receive_datagram(self, data: bytes, now: float, arrival: float | None = None) -> None:
        """One datagram from the host, processed at `now`; `arrival` is when it reached the
        socket if the adapter knows, on the same clock as `now` (see `Receiver.on_datagram`)."""
        self._now = now
        try:
            dgram = parse_datagram(data, self.config.max_datagram)
        except FramingError:
            self.drops += 1
            return
        if dgram.__class__ is TransportDatagram:
            self._on_transport(dgram, now, arrival)
        else:
            self._on_handshake(dgram, now)  # type: ignore[arg-type]

    def datagrams_to_send(self, now: float | None = None) -> list[bytes]:
        """Handshake datagrams plus what the transport's pacer releases at `now`."""
        if now is not None:
            self._now = now
        out, self._out = self._out, []
        if self.transport is not None:
            out.extend(self.transport.take_output(self._now))
        return out

    def next_event(self) -> ClientEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def has_events(self) -> bool:
        """Whether `next_event` has something (e.g. a frame just became complete)."""
        return bool(self._events)

    def next_timer(self) -> float | None:
        t = self.config.timing
        s = self.state
        if s is ClientState.HANDSHAKE:
            return min(self._msg1_next, self._hs_started + t.handshake_timeout_s)
        if s is ClientState.RECONNECT_WAIT:
            return self._reconnect_at
        if s in (ClientState.HELLO, ClientState.PAIRING, ClientState.ACTIVE):
            deadlines = [
                self._ping_next,
                self._last_rx + (t.lost_after_s if self._stalled else t.stall_after_s),
                self._established_at + t.max_session_age_s,
            ]
            if s is ClientState.HELLO:
                deadlines.append(self._hello_next)
            if self.transport is not None and (tt := self.transport.next_timer()) is not None:
                deadlines.append(tt)
            return min(deadlines)
        return None

    def handle_timer(self, now: float) -> None:
        self._now = now
        t = self.config.timing
        s = self.state
        if s is ClientState.HANDSHAKE:
            if now >= self._hs_started + t.handshake_timeout_s:
                self._handshake_gave_up(now)
            elif now >= self._msg1_next and self._hs is not None:
                self._out.append(self._hs.msg1)
                self._msg1_delay = min(self._msg1_delay * 2, t.msg1_max_retry_s)
                self._msg1_next = now + self._msg1_delay
            return
        if s is ClientState.RECONNECT_WAIT:
            if now >= self._reconnect_at:
                self._start_handshake(now)
            return
        if s not in (ClientState.HELLO, ClientState.PAIRING, ClientState.ACTIVE):
            return
        # (deadlines are `_last_rx + ...`: compared in the same form, so that a timer that
        # fires exactly at one acts on it, whatever the rounding of a difference)
        silence = now - self._last_rx
        if now >= self._last_rx + t.lost_after_s:
            self._lost(now, f"no packets from the host for {silence:.0f} s")
            return
        if now >= self._last_rx + t.stall_after_s and not self._stalled:
            self._stalled = True
            self._events.append(LinkStalled(silence))
            if self.config.auto_reconnect and self._ever_accepted:
                # a host that restarted answers a new handshake at once, and one that did not
                # has lost nothing we could keep: attempts start at the stall and back off from
                # there (docs/spec/RIFT.md §4) instead of after the 10 s loss
                self._begin_reconnect(now, f"no packets from the host for {silence:.1f} s",
                                      immediate=True)  # fmt: skip
                return
        if now >= self._established_at + t.max_session_age_s:
            # Fresh keys well before any limit: a new handshake, same host identity.
            self._begin_reconnect(now, "session age limit reached; re-keying", immediate=True)
            return
        if self.transport is not None:
            self.transport.handle_timer(now)
            self._drain_transport()
        if s is ClientState.HELLO and now >= self._hello_next:
            if now >= self._hello_started + t.hello_timeout_s:
                self._close(CloseKind.CONNECT_FAILED, "the host did not answer Hello within 10 s")
                return
            self._send_hello(now)
        if now >= self._ping_next:
            self.ping(now)

    def ping(self, now: float) -> int | None:
        """Send a Ping now (the core also pings every `ping_interval_s` by itself).

        Returns the Ping's timestamp_us (echoed in the matching PongReceived), or None when no
        session is up."""
        if self.channel is None:
            return None
        self._now = now
        wall = now if self.wall_clock is None else self.wall_clock()
        ts = int(wall * 1_000_000)
        while ts in self._pings:
            ts += 1
        self._pings[ts] = (now, wall)
        if len(self._pings) > 64:
            del self._pings[min(self._pings)]
        self._send(
            rift_pb2.Message(control=rift_pb2.ControlMessage(ping=rift_pb2.Ping(timestamp_us=ts)))
        )
        t = self.config.timing
        self._start_pings = max(0, self._start_pings - 1)
        early = self._start_pings > 0
        self._ping_next = now + (t.start_ping_interval_s if early else t.ping_interval_s)
        return ts

    def pair(self, code: str, now: float) -> None:
        """Answer PAIRING_REQUIRED with the code the host shows."""
        if self.channel is None or self.state is not ClientState.PAIRING:
            raise RuntimeError("pairing is only possible after the host asked for it")
        code = code.strip()
        if not is_valid_code_format(code):
            raise ValueError("a pairing code is 6 digits")
        self._now = now
        proof = pairing_proof(code, self._hash)
        self._send(
            rift_pb2.Message(
                control=rift_pb2.ControlMessage(pair_request=rift_pb2.PairRequest(proof=proof))
            )
        )

    def send_message(self, message: rift_pb2.Message) -> int:
        """Seal and queue an application message; returns its packet id."""
        if self.channel is None or self.state is not ClientState.ACTIVE:
            raise RuntimeError("session is not active")
        return self._send(message)

    def close(self, now: float, message: str = "closed by user") -> None:
        self._now = now
        if self.channel is not None and self.state in (
            ClientState.HELLO,
            ClientState.PAIRING,
            ClientState.ACTIVE,
        ):
            self._send_disconnect(DisconnectReason.USER, message)
        self._close(CloseKind.USER, message)

    @property
    def clock_offset_s(self) -> float | None:
        """The host's wall clock minus ours (seconds), from Ping/Pong; None before a Pong."""
        return self.clock.offset_s

    # ---- handshake -------------------------------------------------------------------

    def _start_handshake(self, now: float) -> None:
        hid = self._random(12)
        while hid == b"\x00" * 12:
            hid = self._random(12)
        self._hs = InitiatorHandshake(self._local, hid, cookie=self._cookie)
        self._hs_started = now
        t = self.config.timing
        self._msg1_delay = t.msg1_initial_retry_s
        self._msg1_next = now + self._msg1_delay
        self._host_confirmed = False
        self.channel = None
        self.transport = None
        self.state = ClientState.HANDSHAKE
        self._out.append(self._hs.msg1)

    def _on_handshake(self, dgram: HandshakeDatagram, now: float) -> None:
        hs = self._hs
        if (
            self.state is not ClientState.HANDSHAKE
            or hs is None
            or dgram.message_number not in (MSG2, COOKIE_REPLY)
            or dgram.handshake_id != hs.handshake_id
        ):
            self.drops += 1
            return
        if dgram.message_number == COOKIE_REPLY:
            # the host is under load and wants proof of our address: msg1 again at once, with
            # the cookie (a new attempt: the cookie changes msg1's Noise payload)
            if len(dgram.payload) != COOKIE_LEN or dgram.payload == self._cookie:
                self.drops += 1
                return
            self._cookie = bytes(dgram.payload)
            self._start_handshake_retry(now)
            return
        try:
            peer = hs.on_msg2(dgram.payload)
        except HandshakeError:
            # Could be forged by someone who saw msg1: keep waiting for the real msg2, but a new
            # InitiatorHandshake is needed because Noise state advanced. Restart cleanly.
            self.drops += 1
            self._start_handshake_retry(now)
            return
        self.host_id = peer.wavry_id  # proven by its signature, whether expected or not
        if self.expected_host_id is not None and peer.wavry_id != self.expected_host_id:
            self._close(
                CloseKind.IDENTITY_MISMATCH,
                f"host identity mismatch: expected {self.expected_host_id}, got {peer.wavry_id}",
            )
            return
        send_key, recv_key = hs.split()
        self._hash = hs.handshake_hash
        self.channel = SecureChannel(
            alias=peer.session_alias,
            send_key=send_key,
            recv_key=recv_key,
            max_datagram=self.config.max_datagram,
        )
        tcfg = self.config.transport
        tcfg.max_datagram = self.config.max_datagram
        self.transport = ClientTransport(self.channel, tcfg, now)
        self.host_id = peer.wavry_id
        self.host_name = peer.name
        self.expected_host_id = peer.wavry_id  # reconnects must reach the same host
        self._events.append(
            HandshakeCompleted(peer.wavry_id, peer.name, now - self._hs_started, self._hash)
        )
        self._established_at = now
        self._last_rx = now
        self._stalled = False
        self._hello_started = now
        self._ping_next = now + self.config.timing.ping_interval_s
        self.state = ClientState.HELLO
        self._send_hello(now)

    def _start_handshake_retry(self, now: float) -> None:
        started = self._hs_started
        self._start_handshake(now)
        self._hs_started = started  # the 10 s budget covers the whole attempt

    def _handshake_gave_up(self, now: float) -> None:
        if self._ever_accepted and self.config.auto_reconnect:
            self._schedule_reconnect(now, "host not answering the handshake")
        else:
            self._close(
                CloseKind.CONNECT_FAILED,
                "no handshake answer from the host within 10 s "
                "(is `wavry host` running, and is its UDP port reachable?)",
            )

    # ---- transport -------------------------------------------------------------------

    def _on_transport(
        self, dgram: TransportDatagram, now: float, arrival: float | None = None
    ) -> None:
        ch, tr = self.channel, self.transport
        if ch is None or tr is None or dgram.alias != ch.alias:
            self.drops += 1
            return
        counters = ch.counters
        before = counters.received
        messages = tr.receiver.on_datagram(dgram, now, False, arrival)
        if counters.received != before:
            self._host_confirmed = True
            if self._stalled:
                self._stalled = False
                self._events.append(LinkResumed(now - self._last_rx))
            self._last_rx = now
        for msg in messages:
            if msg.WhichOneof("content") == "control":
                self._on_control(msg, now)
            elif self.state is ClientState.ACTIVE:
                self._events.append(MessageReceived(msg))
            if self.transport is not tr:
                return  # the session ended or restarted while dispatching
        if tr.events:
            self._drain_transport()

    def _drain_transport(self) -> None:
        tr = self.transport
        if tr is None:
            return
        while (e := tr.next_event()) is not None:
            if self.state is ClientState.ACTIVE:
                self._events.append(e)

    def _on_control(self, msg: rift_pb2.Message, now: float) -> None:
        ctl = msg.control
        kind = ctl.WhichOneof("content")
        if kind == "pong":
            self._on_pong(ctl.pong, now)
        elif kind == "ping":
            # the host checks a new path (§3): answer at once, from where we are
            pong = rift_pb2.Pong(timestamp_us=ctl.ping.timestamp_us)
            self._send(rift_pb2.Message(control=rift_pb2.ControlMessage(pong=pong)))
        elif kind == "hello_ack":
            self._on_hello_ack(ctl.hello_ack, now)
        elif kind == "pair_result":
            self._on_pair_result(ctl.pair_result, now)
        elif kind == "disconnect":
            if self.state is not ClientState.CLOSED:
                d = ctl.disconnect
                text = d.message or "the host ended the session"
                self._close(CloseKind.PEER_DISCONNECT, text, peer_reason=d.reason)
        elif self.state is ClientState.ACTIVE:
            self._events.append(MessageReceived(msg))

    def _on_pong(self, pong: rift_pb2.Pong, now: float) -> None:
        sent = self._pings.pop(pong.timestamp_us, None)
        if sent is None:
            return
        sent_at, sent_wall = sent
        # the round trip on the monotonic clock; its midpoint on the wall clock, which the host's
        # is compared with (a wall step between the two only moves the offset, never the RTT)
        rtt = max(0.0, now - sent_at)
        sample = self.clock.add(sent_wall, sent_wall + rtt, pong.host_time_us / 1_000_000)
        if self.transport is not None:
            self.transport.on_rtt(sample.rtt_s, now)
        offset = self.clock.offset_s
        self._events.append(
            PongReceived(
                pong.timestamp_us,
                sample.rtt_s,
                sample.offset_s,
                offset if offset is not None else 0.0,
            )
        )

    def _on_hello_ack(self, ack: rift_pb2.HelloAck, now: float) -> None:
        if self.state is not ClientState.HELLO:
            return  # duplicate answer to a retransmitted Hello
        if ack.accepted:
            ch = self.channel
            if ack.session_alias and ch is not None and ack.session_alias != ch.alias:
                self._close(CloseKind.PROTOCOL_ERROR, "HelloAck carries a different alias")
                return
            self.ack = ack
            if self.transport is not None and ack.fec_scheme in self.config.transport.fec_schemes:
                # §7: the host's choice among what this side offered (XOR otherwise)
                self.transport.set_fec_scheme(ack.fec_scheme, now)
            self.state = ClientState.ACTIVE
            reconnected = self._ever_accepted
            self._ever_accepted = True
            self._reconnect_attempt = 0
            self._events.append(SessionAccepted(ack, reconnected))
            # An RTT and a clock sample before the first frames: until the first Pong the NACK
            # tracker spaces its re-requests by a guessed 50 ms RTT (62 ms at 20 ms RTT, where
            # a lost first resend then froze the session's first second).
            self._start_pings = self.config.timing.start_pings
            self.ping(now)
            return
        reason = ack.reject_reason
        message = ack.message or rift_pb2.RejectReason.Name(reason)
        self._events.append(SessionRejected(reason, message))
        if reason == rift_pb2.PAIRING_REQUIRED:
            self.state = ClientState.PAIRING
        else:
            self._close(CloseKind.REJECTED, message, peer_reason=reason)

    def _on_pair_result(self, result: rift_pb2.PairResult, now: float) -> None:
        if self.state is not ClientState.PAIRING:
            return
        self._events.append(PairingFinished(result.ok, result.message))
        if result.ok:
            self.state = ClientState.HELLO
            self._hello_started = now
            self._send_hello(now)

    # ---- helpers ---------------------------------------------------------------------

    def _send(self, message: rift_pb2.Message) -> int:
        assert self.transport is not None
        return self.transport.send_message(message, self._now)

    def _send_hello(self, now: float) -> None:
        c = self.config
        if not self._host_confirmed and self._hs is not None and self._hs.msg3 is not None:
            self._out.append(self._hs.msg3)
        hello = rift_pb2.Hello(
            client_name=c.name,
            platform=c.platform,  # type: ignore[arg-type]
            supported_codecs=c.supported_codecs,  # type: ignore[arg-type]
            max_resolution=rift_pb2.Resolution(width=c.max_width, height=c.max_height),
            max_fps=c.max_fps,
            input_caps=c.input_caps,
            protocol_version=PROTOCOL_VERSION,
            fec_schemes=list(c.transport.fec_schemes) if c.transport.fec else [],  # type: ignore[arg-type]
        )
        self._send(rift_pb2.Message(control=rift_pb2.ControlMessage(hello=hello)))
        self._hello_next = now + c.timing.hello_retry_s

    def _send_disconnect(self, reason: DisconnectReason, message: str) -> None:
        d = rift_pb2.Disconnect(reason=int(reason), message=message[:200])
        msg = rift_pb2.Message(control=rift_pb2.ControlMessage(disconnect=d))
        for _ in range(self.config.timing.disconnect_repeats):
            self._send(msg)

    def _lost(self, now: float, why: str) -> None:
        if self.config.auto_reconnect and self._ever_accepted:
            self._begin_reconnect(now, why, immediate=False)
        else:
            self._close(CloseKind.CONNECT_FAILED, f"connection lost: {why}")

    def _begin_reconnect(self, now: float, why: str, immediate: bool) -> None:
        if self.state is not ClientState.RECONNECT_WAIT:
            self._reconnect_since = now
        self.channel = None
        self.transport = None
        self._pings.clear()
        if immediate:
            self._events.append(Reconnecting(self._reconnect_attempt + 1, 0.0, why))
            self._reconnect_attempt += 1
            self._start_handshake(now)
        else:
            self._schedule_reconnect(now, why)

    def _schedule_reconnect(self, now: float, why: str) -> None:
        t = self.config.timing
        if self.state is not ClientState.RECONNECT_WAIT and self._reconnect_attempt == 0:
            self._reconnect_since = now
        if now >= self._reconnect_since + t.reconnect_give_up_s:
            self._close(CloseKind.RECONNECT_FAILED, f"could not reconnect: {why}")
            return
        base = min(t.reconnect_initial_s * (2**self._reconnect_attempt), t.reconnect_max_delay_s)
        jitter = 0.8 + 0.4 * (self._random(1)[0] / 255.0)
        delay = base * jitter
        self._reconnect_attempt += 1
        self._reconnect_at = now + delay
        self.channel = None
        self.transport = None
        self.state = ClientState.RECONNECT_WAIT
        self._events.append(Reconnecting(self._reconnect_attempt, delay, why))

    def _close(self, kind: CloseKind, message: str, peer_reason: int = 0) -> None:
        if self.state is ClientState.CLOSED:
            return
        self.state = ClientState.CLOSED
        self._events.append(SessionClosed(kind, message, peer_reason))
