"""A session's media transport (docs/spec/RIFT.md §6–§8), sans-I/O: one per side.

Each side composes a sending half (sender.py) and a receiving half (receiver.py) and builds
only what it uses:

- `HostTransport` (one per client session on the host): a `MediaSender` (video chunks, pacer,
  congestion controller, FEC encoder and policy, resend history) and a `HostReceiver` for the
  client's uplink (FEC repair, NACK; feedback and requests go to the media sender). No frame
  assembler, no jitter buffer.
- `ClientTransport`: a plain `Sender` for the uplink (input, control, microphone audio, files:
  sealed at once, kept for NACK, FEC-protected; no pacer, no congestion controller) and a
  `MediaReceiver` (FEC, NACK, feedback, frame assembly, jitter buffer).

Transport-internal messages (Nack, TransportFeedback, StatsReport, FecPacket,
ReferenceInvalidation, EncoderControl, CongestionControl) are handled here and surface as
events; everything else is handed back to the session.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from wavry.rift import rift_pb2
from wavry.rift.assembler import AssembledFrame
from wavry.rift.channel import SecureChannel
from wavry.rift.congestion import CongestionDecision
from wavry.rift.fec import XOR
from wavry.rift.framing import TransportDatagram
from wavry.rift.jitter import JitterBuffer
from wavry.rift.receiver import HostReceiver, MediaReceiver, Receiver
from wavry.rift.retransmit import NackTracker
from wavry.rift.sender import (
    CLEAN_HOLD_S,
    SEND_STEP_DATAGRAMS,
    MediaSender,
    Sender,
)
from wavry.rift.transport_types import (
    FrameReady,
    KeyframeRequested,
    PeerStats,
    RateChanged,
    SkipFramesRequested,
    TransportConfig,
    TransportEvent,
    TransportStats,
)

__all__ = [
    "CLEAN_HOLD_S",
    "SEND_STEP_DATAGRAMS",
    "ClientTransport",
    "FrameReady",
    "HostTransport",
    "KeyframeRequested",
    "PeerStats",
    "RateChanged",
    "SkipFramesRequested",
    "TransportConfig",
    "TransportEvent",
    "TransportStats",
]


class _Transport:
    """What both sides share: the halves' events, output, timers and the datagram path."""

    sender: Sender
    receiver: Receiver

    def __init__(self, channel: SecureChannel, config: TransportConfig) -> None:
        self.channel = channel
        self.config = config
        self.stats = TransportStats()
        self._events: deque[TransportEvent] = deque()
        #: the events not yet taken (read-only: `next_event` takes them)
        self.events = self._events
        self._emit: Callable[[TransportEvent], None] = self._events.append

    def send_message(self, message: rift_pb2.Message, now: float) -> int:
        """Seal a control/input/audio message and send it at once; returns its packet id."""
        return self.sender.send_message(message, now)

    def send_bulk(self, message: rift_pb2.Message, now: float) -> None:
        """Send a bulk message (e.g. a ``FileChunk``) behind any queued video; the caller
        limits its rate."""
        self.sender.send_bulk(message, now)

    @property
    def bulk_pending(self) -> int:
        return self.sender.bulk_pending

    def take_output(self, now: float) -> list[bytes]:
        """Datagrams due now."""
        return self.sender.take_output(now)

    @property
    def fec_scheme(self) -> int:
        """The FEC code this side's parities use (docs/spec/RIFT.md §7)."""
        return self.sender.fec_scheme

    def set_fec_scheme(self, scheme: int, now: float) -> None:
        """The FEC code agreed in Hello/HelloAck, for this side's parities from now on."""
        self.sender.set_fec_scheme(scheme, now)

    def agree_fec_scheme(self, offered: list[int], now: float) -> int:
        """The host's choice for an accepted `HelloAck.fec_scheme`, in force for this side's
        parities from now on: its first preference the client offers in `Hello.fec_schemes`
        (empty: XOR, which every peer supports)."""
        scheme = XOR
        if self.config.fec:
            scheme = next((s for s in self.config.fec_schemes if s in offered), XOR)
        self.set_fec_scheme(scheme, now)
        return scheme

    def on_datagram(
        self, dgram: TransportDatagram, now: float, arrival: float | None = None
    ) -> list[rift_pb2.Message]:
        """One authenticated-to-be datagram; returns the messages for the session."""
        return self.receiver.on_datagram(dgram, now, arrival=arrival)

    def next_timer(self) -> float | None:
        a, b = self.sender.next_timer(), self.receiver.next_timer()
        if a is None:
            return b
        return a if b is None else min(a, b)

    def handle_timer(self, now: float) -> None:
        self.sender.handle_timer(now)
        self.receiver.handle_timer(now)

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def next_event(self) -> TransportEvent | None:
        return self._events.popleft() if self._events else None

    def drain_events(self) -> list[TransportEvent]:
        out = list(self._events)
        self._events.clear()
        return out


class HostTransport(_Transport):
    """The host's transport for one client session: sends media, receives the uplink."""

    def __init__(self, channel: SecureChannel, config: TransportConfig, now: float) -> None:
        super().__init__(channel, config)
        self.sender = self.media = MediaSender(channel, config, self.stats, self._emit, now)
        self.receiver = HostReceiver(channel, config, self.stats, self._emit, self.media)

    @property
    def decision(self) -> CongestionDecision:
        """The congestion controller's current decision (target bitrate, frame rate, what it
        sees of the path)."""
        return self.media.decision

    def send_frame(
        self,
        data: bytes,
        now: float,
        *,
        keyframe: bool,
        timestamp_us: int,
        capture_us: int = 0,
        encode_us: int = 0,
        on_batch: Callable[[], None] | None = None,
    ) -> int:
        """See `MediaSender.send_frame`."""
        return self.media.send_frame(
            data,
            now,
            keyframe=keyframe,
            timestamp_us=timestamp_us,
            capture_us=capture_us,
            encode_us=encode_us,
            on_batch=on_batch,
        )

    def media_backlog_s(self, now: float) -> float:
        return self.media.media_backlog_s(now)

    def should_skip_frame(self, now: float) -> bool:
        return self.media.should_skip_frame(now)


class ClientTransport(_Transport):
    """The client's transport: receives media, sends the uplink."""

    def __init__(self, channel: SecureChannel, config: TransportConfig, now: float) -> None:
        super().__init__(channel, config)
        self.sender = Sender(channel, config, self.stats)
        self.receiver = self.media = MediaReceiver(
            channel, config, self.stats, self._emit, self.sender
        )

    def on_rtt(self, rtt_s: float, now: float) -> None:
        """An RTT sample from Ping/Pong."""
        self.media.on_rtt(rtt_s, now)

    @property
    def jitter(self) -> JitterBuffer[AssembledFrame]:
        return self.media.jitter

    @property
    def nack(self) -> NackTracker:
        return self.media.nack
