"""The receiving half of a session's transport (docs/spec/RIFT.md §6–§8), sans-I/O.

`Receiver` is what every side receives with: AEAD and replay checks, FEC repair (§7), NACK
(§7.3, requests go out through the side's `Sender`, which also answers the peer's). Messages
that belong to the transport surface as events or go to the sending half; everything else is
handed back to the session.

- `HostReceiver` (the host's uplink): the client's feedback, statistics, keyframe and
  skip-frame requests go to the `MediaSender`.
- `MediaReceiver` (the client): reports arrivals (`TransportFeedback`, `StatsReport`),
  assembles frames, releases them through the jitter buffer, and asks the host to skip frames
  on an RTT spike.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

from google.protobuf.message import DecodeError

from wavry.rift import rift_pb2
from wavry.rift.assembler import AssembledFrame, FrameAssembler, ReferenceInvalidationNeeded
from wavry.rift.channel import SecureChannel
from wavry.rift.fec import XOR
from wavry.rift.fec_decoder import FecDecoder
from wavry.rift.feedback import FeedbackBuilder, StatsAccumulator
from wavry.rift.framing import TransportDatagram, encode_transport_header
from wavry.rift.jitter import JitterBuffer
from wavry.rift.retransmit import NackTracker, nack_messages
from wavry.rift.rtt import CLOCK_STEP_S, RttSpikeDetector, WindowedMin
from wavry.rift.sender import MediaSender, Sender
from wavry.rift.transport_types import (
    FrameReady,
    PeerStats,
    RateChanged,
    SkipFramesRequested,
    TransportConfig,
    TransportEvent,
    TransportStats,
)

__all__ = ["HostReceiver", "MediaReceiver", "Receiver", "video_chunk_start"]

Emit = Callable[[TransportEvent], None]
Msg = rift_pb2.Message
_parse_chunk = rift_pb2.VideoChunk.FromString
_NONE: tuple[tuple[int, bytes], ...] = ()

#: a frame's missing tail is asked for after this many chunk spacings of quiet (at least the
#: NACK tracker's FEC hold), with this many ids beyond the chunks still to come
TAIL_SPACINGS = 3.0
TAIL_SLACK_IDS = 1
#: ... and only while parities arrive (see MediaReceiver._tail_due)
TAIL_PARITY_RECENT_S = 1.0

# wire tags (field number << 3 | 2, length-delimited) of Message.media and MediaMessage.video
_MEDIA_TAG = 3 << 3 | 2
_VIDEO_TAG = 1 << 3 | 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _VideoPrefixes(dict[int, bytes]):
    """Plaintext length → the bytes a `Message` of exactly `media { video { … } }` starts
    with at that length (both lengths as shortest varints, as protobuf writes them), or b""
    where no such message has that length. Filled on first use of a length."""

    def __missing__(self, n: int) -> bytes:
        prefix = b""
        for outer in (1, 2, 3):
            media_len = n - 1 - outer
            if media_len < 0 or len(_varint(media_len)) != outer:
                continue
            for inner in (1, 2, 3):
                chunk_len = media_len - 1 - inner
                if chunk_len >= 0 and len(_varint(chunk_len)) == inner:
                    prefix = bytes([_MEDIA_TAG]) + _varint(media_len)
                    prefix += bytes([_VIDEO_TAG]) + _varint(chunk_len)
        if len(self) < 65536:
            self[n] = prefix
        return prefix


_VIDEO_PREFIXES = _VideoPrefixes()


def video_chunk_start(plaintext: bytes) -> int:
    """Where the `VideoChunk` starts in a `Message` that is exactly `media { video { … } }`
    (one field in each wrapper, lengths written as protobuf writes them), else 0.

    Protobuf's own parse of such a message yields the chunk that parsing these bytes alone
    does; anything else (other or repeated fields, other length encodings) answers 0 and takes
    the whole-message parse. Checked by hand because building and reading the two wrapper
    messages cost more than the chunk's parse itself: the prefix depends only on the length."""
    prefix = _VIDEO_PREFIXES[len(plaintext)]
    return len(prefix) if prefix and plaintext.startswith(prefix) else 0


class Receiver:
    #: whether this side takes video chunks (`_on_video`): the client's media receiver
    _takes_video = False

    def __init__(
        self,
        channel: SecureChannel,
        config: TransportConfig,
        stats: TransportStats,
        emit: Emit,
        sender: Sender,
    ) -> None:
        self.channel = channel
        self.config = config
        self.stats = stats
        self._emit = emit
        self.sender = sender
        # every peer may send XOR parities (§7); Reed-Solomon only when this side offers it
        schemes = (XOR, *config.fec_schemes)
        self.fec_decoder: FecDecoder | None = FecDecoder(schemes=schemes) if config.fec else None
        self.nack = NackTracker(
            will_repair=self.fec_decoder.will_repair if self.fec_decoder is not None else None,
            not_needed=self.fec_decoder.likely_parity if self.fec_decoder is not None else None,
        )
        self._nack_on = config.nack

    @property
    def highest_packet_id(self) -> int:
        """The highest authenticated packet id seen so far."""
        return self.nack.highest_packet_id

    def on_datagram(
        self,
        dgram: TransportDatagram,
        now: float,
        recovered: bool = False,
        arrival: float | None = None,
    ) -> list[rift_pb2.Message]:
        """Process one received datagram at `now`. `arrival` (same clock) is when it reached
        the socket, if the I/O adapter knows (kernel receive timestamp): what the peer is told
        in `TransportFeedback` and the jitter statistics, so that time this process spent busy
        before reading it does not look like network queueing to the sender. Everything else
        runs on `now`."""
        plaintext = self.channel.open_bytes(dgram)
        if plaintext is None:
            return []
        # Runs for every datagram: one function, few calls (docs/benchmarks.md, `wavry bench
        # transport`). Parse, arrival bookkeeping, FEC, dispatch, gaps — in that order.
        pid = dgram.packet_id
        rx = now if arrival is None else arrival
        decoder = self.fec_decoder
        out: list[rift_pb2.Message] = []
        start = video_chunk_start(plaintext) if self._takes_video else 0
        if start:
            # a bare video chunk (the bulk of a media stream): its two wrappers hold nothing
            # else, so parsing the chunk alone gives what the whole message's parse would
            try:
                chunk = _parse_chunk(plaintext[start:])
            except DecodeError:
                self.channel.counters.malformed += 1
                return out
            if recovered:
                self.stats.fec_recovered += 1
            else:
                self._on_arrival(pid, rx)
            repaired = decoder.on_datagram(pid, dgram.payload, now) if decoder else _NONE
            self._on_video(chunk, pid, now, rx)
            in_order = True
        else:
            msg = rift_pb2.Message()
            try:
                msg.ParseFromString(plaintext)
            except DecodeError:
                # authentic but unparseable: a peer bug (the id stays marked: it was authentic)
                self.channel.counters.malformed += 1
                return out
            if recovered:
                self.stats.fec_recovered += 1
            else:
                self._on_arrival(pid, rx)
            content = msg.WhichOneof("content")
            kind = msg.media.WhichOneof("content") if content == "media" else None
            if kind == "fec":
                repaired = (
                    decoder.on_parity(msg.media.fec, now, carrier_packet_id=pid)
                    if decoder is not None
                    else _NONE
                )
                self._on_parity(msg.media.fec)
            else:
                repaired = decoder.on_datagram(pid, dgram.payload, now) if decoder else _NONE
                self._dispatch(msg, content, kind, now, out, rx, pid)
            # only media reveals gaps: a peer may send control, input and audio ahead of
            # media it sealed earlier (ours does not, see sender.py; others may)
            in_order = (kind is not None and kind != "audio") or recovered
        if repaired:
            self._repaired(repaired, now, rx, out)
        if self._nack_on:
            batches = self.nack.on_packet(pid, now, reveals_gaps=in_order)
            if batches:
                self._send_nacks(batches, now)
            if repaired:
                self._send_nacks(self.nack.poll(now), now)
        return out

    def _repaired(
        self, repaired: Sequence[tuple[int, bytes]], now: float, rx: float, out: list[Msg]
    ) -> None:
        """Datagrams FEC rebuilt, processed before the NACK tracker sees the datagram that
        completed them, so that it never requests what FEC just repaired. They count as
        arrived when that datagram did (`rx`)."""
        alias = self.channel.alias
        for rpid, payload in repaired:
            header = encode_transport_header(alias, rpid)
            rebuilt = TransportDatagram(alias, rpid, header, payload)
            out.extend(self.on_datagram(rebuilt, now, recovered=True, arrival=rx))

    def _on_arrival(self, pid: int, rx: float) -> None:
        """Hook: an authenticated datagram (not a repair) arrived at `rx`."""

    def _on_video(self, chunk: rift_pb2.VideoChunk, pid: int, now: float, rx: float) -> None:
        """Hook of receivers with `_takes_video`: one video chunk (datagram `pid`)."""
        raise NotImplementedError

    def _on_parity(self, fec: rift_pb2.FecPacket) -> None:
        """Hook: a parity arrived (after the FEC decoder took it)."""

    def _dispatch(
        self,
        msg: rift_pb2.Message,
        content: str | None,
        kind: str | None,
        now: float,
        out: list[rift_pb2.Message],
        rx: float,
        pid: int,
    ) -> None:
        """`content`: the message's oneof; `kind`: the media message's (None if not media);
        `pid`: the datagram's packet id."""
        if content == "control":
            ctl = msg.control
            which = ctl.WhichOneof("content")
            if which == "nack":
                self.sender.on_nack(list(ctl.nack.packet_ids[:64]), now)
                return
            if self._control(which, ctl, now):
                return
        out.append(msg)

    def _control(self, which: str | None, ctl: rift_pb2.ControlMessage, now: float) -> bool:
        """Hook: handle a transport control message; False hands it to the session."""
        return False

    def _send_nacks(self, batches: list[list[int]], now: float) -> None:
        for nack in nack_messages(batches):
            msg = rift_pb2.Message(control=rift_pb2.ControlMessage(nack=nack))
            self.sender.send_message(msg, now)
            self.stats.nacks_sent += 1
            self.stats.nacked_ids += len(nack.packet_ids)

    def next_timer(self) -> float | None:
        return self.nack.next_timer() if self._nack_on else None

    def handle_timer(self, now: float) -> None:
        if self._nack_on:
            self._send_nacks(self.nack.poll(now), now)


class HostReceiver(Receiver):
    """The host's receiving half: the client's uplink, and its reports for the media sender."""

    def __init__(
        self,
        channel: SecureChannel,
        config: TransportConfig,
        stats: TransportStats,
        emit: Emit,
        sender: MediaSender,
    ) -> None:
        super().__init__(channel, config, stats, emit, sender)
        self.media_sender = sender

    def _control(self, which: str | None, ctl: rift_pb2.ControlMessage, now: float) -> bool:
        if which == "transport_feedback":
            self.media_sender.on_feedback(ctl.transport_feedback, now)
        elif which == "stats":
            report = ctl.stats
            if report.rtt_us:
                self.media_sender.on_peer_rtt(report.rtt_us / 1e6, now)
                self.nack.set_rtt(report.rtt_us / 1e6)
            self._emit(PeerStats(report))
        elif which == "rfi":
            self.media_sender.on_reference_invalidation(ctl.rfi.last_valid_frame_id, now)
        elif which == "congestion":  # the client's own ceiling (RIFT.md §8)
            c = ctl.congestion
            self.media_sender.set_peer_limits(c.target_bitrate_kbps, c.target_fps, now)
        elif which == "encoder_control":
            n = min(2, ctl.encoder_control.skip_frames)
            if n:
                self._emit(SkipFramesRequested(n))
        else:
            return False
        return True


class MediaReceiver(Receiver):
    """The client's receiving half: feedback, assembly, jitter buffer, re-request spacing."""

    _takes_video = True

    def __init__(
        self,
        channel: SecureChannel,
        config: TransportConfig,
        stats: TransportStats,
        emit: Emit,
        sender: Sender,
    ) -> None:
        super().__init__(channel, config, stats, emit, sender)
        self.feedback = FeedbackBuilder()
        self.stats_acc = StatsAccumulator()
        self.spikes = RttSpikeDetector()
        self.assembler = FrameAssembler(completion_deadline=config.frame_deadline_s)
        self.jitter: JitterBuffer[AssembledFrame] = JitterBuffer(in_order=True)
        self._jitter_on = config.jitter_buffer
        # re-request spacing: ping RTTs and the media path's queueing delay
        self._ping_rtt: float | None = None
        self._min_rtt = math.inf
        self._transit_min = WindowedMin(10.0)
        self._recent_transits: deque[float] = deque(maxlen=2)
        self._media_queue_s = 0.0
        self._queue_frame_id = 0
        # the newest frame's expected last data id, and how its chunks arrived (_tail_due)
        self._tail_pid = 0
        self._tail_frame = -1
        self._tail_first_pid = self._tail_last_pid = 0
        self._tail_first_rx = self._tail_last_rx = 0.0
        self._chunk_gap = 0.0  # the last frame's gap between consecutive chunks
        self._parity_seen_at = -math.inf

    def _on_arrival(self, pid: int, rx: float) -> None:
        self.feedback.on_packet(pid, rx)
        self.stats_acc.on_packet(pid, rx)

    def _on_video(self, chunk: rift_pb2.VideoChunk, pid: int, now: float, rx: float) -> None:
        frame_id = chunk.frame_id
        # the id the frame's last chunk should have (chunks leave back to back; see _tail_due),
        # worked out again only where the ids jump (a loss, or a datagram sealed between): this
        # runs for every chunk
        if frame_id == self._tail_frame:
            last = self._tail_last_pid
            if pid > last:
                self._tail_last_pid, self._tail_last_rx = pid, rx
                if pid != last + 1:
                    tail = pid + chunk.chunk_count - 1 - chunk.chunk_index
                    if tail > self._tail_pid:
                        self._tail_pid = tail
        elif frame_id > self._tail_frame:
            if self._tail_last_pid > self._tail_first_pid:  # the previous frame's spacing
                self._chunk_gap = self._frame_spacing()
            self._tail_frame = frame_id
            self._tail_pid = pid + chunk.chunk_count - 1 - chunk.chunk_index
            self._tail_first_pid = self._tail_last_pid = pid
            self._tail_first_rx = self._tail_last_rx = rx
        if frame_id > self._queue_frame_id:  # a newer frame's first chunk
            sent_s = chunk.timestamp_us / 1e6
            self.stats_acc.on_media_timestamp(sent_s, rx)
            self._queue_frame_id = frame_id
            self._note_media_transit(rx - sent_s, now)
        done = self.assembler.push(chunk, now)
        if done or self.jitter.queued:
            self._assembled(done, now)

    def _dispatch(
        self,
        msg: rift_pb2.Message,
        content: str | None,
        kind: str | None,
        now: float,
        out: list[rift_pb2.Message],
        rx: float,
        pid: int,
    ) -> None:
        if kind == "video":
            self._on_video(msg.media.video, pid, now, rx)
            return
        super()._dispatch(msg, content, kind, now, out, rx, pid)

    def _control(self, which: str | None, ctl: rift_pb2.ControlMessage, now: float) -> bool:
        if which == "congestion":
            c = ctl.congestion
            self._emit(RateChanged(c.target_bitrate_kbps, c.target_fps, 0.0, "peer"))
            return True
        return False

    def _assembled(
        self, outputs: list[AssembledFrame | ReferenceInvalidationNeeded], now: float
    ) -> None:
        if not outputs and not self.jitter.queued:
            return
        for o in outputs:
            if isinstance(o, ReferenceInvalidationNeeded):
                rfi = rift_pb2.Message(control=rift_pb2.ControlMessage(rfi=o.to_message()))
                self.sender.send_message(rfi, now)
                continue
            self.stats.frames_completed += 1
            if self._jitter_on:
                sent = (o.timestamp_us + o.capture_us + o.encode_us) / 1e6
                # lateness counts from the first chunk: waiting for the rest of the frame (its
                # size, a repair) or for its predecessor (in-order release) is not jitter
                self.jitter.push(o, now, sent, now - o.first_chunk_at)
            else:
                self._emit(FrameReady(o))
        if self._jitter_on:
            for frame in self.jitter.pop_ready(now):
                self._emit(FrameReady(frame))

    # ---- RTT and the media path's queue ----------------------------------------------

    def on_rtt(self, rtt_s: float, now: float) -> None:
        """An RTT sample from Ping/Pong."""
        self._ping_rtt = rtt_s
        self._min_rtt = min(self._min_rtt, rtt_s)
        self._set_nack_rtt()
        self.stats_acc.set_rtt(rtt_s)
        ctl = self.spikes.encoder_control(rtt_s, now)
        if ctl is not None:
            msg = rift_pb2.Message(control=rift_pb2.ControlMessage(encoder_control=ctl))
            self.sender.send_message(msg, now)

    def _note_media_transit(self, transit: float, now: float) -> None:
        """Queueing delay on the media path right now: the smallest first-chunk transit of the
        last few frames over the 10 s minimum (the clock offset cancels). A queue holds for
        many frames; one late first chunk (lost, then resent) is not a queue. A transit a
        second above the minimum is the host's wall clock stepping (frame timestamps are wall
        clock): the history restarts."""
        base = self._transit_min.get(now)
        if base is not None and transit - base > CLOCK_STEP_S:
            self._transit_min.reset()
            self._recent_transits.clear()
        self._transit_min.update(transit, now)
        base = self._transit_min.get(now)
        recent = self._recent_transits
        recent.append(transit)
        self._media_queue_s = 0.0 if base is None else max(0.0, min(recent) - base)
        self._set_nack_rtt()

    def _set_nack_rtt(self) -> None:
        """The NACK tracker expects a resend one RTT after its request. Pings come every 0.5 s
        and the first one before any queue: on a bottleneck that fills at start-up (100 ms of
        queue) re-requests spaced by it asked 3 times for every keyframe datagram lost. A resend
        waits in the same queue as the media, so the RTT is at least the smallest ping RTT plus
        the queueing the media sees now."""
        if self._ping_rtt is not None:
            self.nack.set_rtt(max(self._ping_rtt, self._min_rtt + self._media_queue_s))

    # ---- a frame's lost tail ------------------------------------------------------------

    def _tail_due(self) -> float | None:
        """When to ask for the rest of the newest frame, if its last chunks have not come: once
        the media lane has been quiet for the FEC hold or for three chunk spacings (this
        frame's or the last one's, the wider: a slow link), whichever is longer. A burst that
        takes a frame's end takes its parities too, and nothing else would show the gap before
        the next frame (`NackTracker.expect_through`).

        Only while the sender protects its frames with parities (one arrived in the last
        `TAIL_PARITY_RECENT_S`): a frame the sender's pacer cut short looks the same, and only
        the parities it sends for the part that left (`_on_parity`) tell the two apart. A
        clean path carries no parity; its frames are cut short on a bottleneck, where a
        request for ids that were never sent would only add to the queue."""
        nack = self.nack
        if not self._nack_on or self._tail_pid <= nack.highest_packet_id:
            return None
        if nack.last_arrival - self._parity_seen_at > TAIL_PARITY_RECENT_S:
            return None
        spacing = self._chunk_gap
        if self._tail_last_pid > self._tail_first_pid:  # this frame's so far, if wider
            spacing = max(spacing, self._frame_spacing())
        return nack.last_arrival + max(nack.fec_hold, TAIL_SPACINGS * spacing)

    def _frame_spacing(self) -> float:
        """The newest frame's mean gap between consecutive chunk ids (two or more seen)."""
        spread = self._tail_last_rx - self._tail_first_rx
        return spread / (self._tail_last_pid - self._tail_first_pid)

    def _on_parity(self, fec: rift_pb2.FecPacket) -> None:
        self._parity_seen_at = self.nack.last_arrival
        # A parity of the group holding the frame's newest chunk says where that group's data
        # ends: if the frame goes on, the rest comes in a later group (its own parities will
        # show its gaps) or the sender cut the frame short there (its pacer dropped the stale
        # rest, and those ids go to later datagrams). Either way, nothing to infer.
        if fec.first_packet_id + fec.shard_count > self._tail_last_pid > 0:
            self._tail_pid = 0

    def _ask_for_tail(self, now: float) -> None:
        due = self._tail_due()
        if due is None or now < due:
            return
        # one id more than the chunks still to come: a datagram of the priority lane (audio,
        # control) may have been sealed between them
        self._send_nacks(self.nack.expect_through(self._tail_pid + TAIL_SLACK_IDS, now), now)
        self._tail_pid = 0

    # ---- timers --------------------------------------------------------------------

    def next_timer(self) -> float | None:
        cands = (
            self._tail_due(),
            super().next_timer(),
            self.feedback.next_timer(),
            self.stats_acc.next_timer(),
            self.assembler.next_timer(),
            self.jitter.next_timer() if self._jitter_on else None,
        )
        times = [t for t in cands if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        self._ask_for_tail(now)
        send = self.sender.send_message
        fb = self.feedback.build(now)
        if fb is not None:
            send(rift_pb2.Message(control=rift_pb2.ControlMessage(transport_feedback=fb)), now)
            self.stats.feedback_sent += 1
        report = self.stats_acc.build(now)
        if report is not None:
            send(rift_pb2.Message(control=rift_pb2.ControlMessage(stats=report)), now)
        self._assembled(self.assembler.poll(now), now)
