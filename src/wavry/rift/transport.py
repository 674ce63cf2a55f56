"""Per-session media transport (docs/spec/RIFT.md §6–§8), sans-I/O.

Sits between a session's SecureChannel and the application. Sending: every new datagram is
kept for retransmission and fed to the FEC encoder; video frames are chunked and paced, control
and input go out at once (priority lane); DELTA turns feedback into target bitrate, frame rate
and FEC redundancy. Receiving: AEAD and replay checks, FEC repair, NACK, feedback, frame
assembly and the jitter buffer. Transport-internal messages (Nack, TransportFeedback,
StatsReport, FecPacket, ReferenceInvalidation, EncoderControl, CongestionControl) are handled
here and surface as events; everything else is handed back to the session.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from google.protobuf.message import DecodeError

from wavry.rift import rift_pb2
from wavry.rift.assembler import AssembledFrame, FrameAssembler, ReferenceInvalidationNeeded
from wavry.rift.channel import SecureChannel
from wavry.rift.chunking import VideoFrameInfo, video_chunk_messages
from wavry.rift.delta import (
    DeltaController,
    DeltaDecision,
    DeltaState,
    DeltaTunables,
    RttSpikeDetector,
    WindowedMin,
)
from wavry.rift.fec import FecDecoder, FecEncoder, fec_params_for_ratio
from wavry.rift.feedback import FeedbackBuilder, FeedbackError, StatsAccumulator
from wavry.rift.framing import TRANSPORT_HEADER_LEN, TransportDatagram, encode_transport_header
from wavry.rift.jitter import JitterBuffer
from wavry.rift.pacer import Pacer, PacerConfig
from wavry.rift.retransmit import NackTracker, RetransmitHistory, nack_messages

# A path that has shown no standing queue and no congestion loss (per DELTA) for CLEAN_HOLD_S
# gets frames drained within 3 % of a frame interval instead of spread over half of it; any sign
# of a queue or of loss beyond the path's random loss restores normal pacing at once (a
# bottleneck keeps resetting the hold). Random loss without a queue is no reason to pace: the
# spread only delays every frame, and with it every repair a NACK could still make in time.
# "No standing queue": under CLEAN_QUEUE_MS, or under CLEAN_QUEUE_NOISE_MS in all but one
# isolated feedback report. A host or client that was busy for a millisecond (1080p on two
# shared cores) shows ~1 ms in one report; with a plain 1 ms threshold that reset the hold every
# few seconds and 1080p30 frames went back to being spread over 7-9 ms. A real queue persists
# across reports. The tolerance only applies while DELTA knows no bottleneck (no capacity
# estimate): near a measured one, frames burst into a queue of 1-2 ms slowed convergence after a
# capacity step (2 of 3 capacity-steps runs missed a step).
CLEAN_QUEUE_MS = 1.0
CLEAN_QUEUE_NOISE_MS = 2.0
CLEAN_LOSS = 0.002
CLEAN_DRAIN_FRACTION = 0.03
CLEAN_HOLD_S = 3.0
# Keyframes (and bulk data) are never paced faster than PACE_CAP_HEADROOM × max(capacity
# estimate, send rate) once DELTA has measured the path's capacity at a standing queue: a
# keyframe then leaves at about the link's rate instead of overflowing its queue. Ordinary
# frames are paced at no more than PACE_FRAME_CAP × that capacity: their burst then queues at
# most a third of their own duration at the bottleneck, and they still leave well within a
# frame interval at the target bitrate.
PACE_CAP_HEADROOM = 0.95
PACE_FRAME_CAP = 1.25
# After a keyframe, requests for one (ReferenceInvalidation) that it already answers are ignored
# for its pacing time + this many RTTs (at least KEYFRAME_GUARD_MIN_S).
KEYFRAME_GUARD_RTTS = 2.0
KEYFRAME_GUARD_MIN_S = 0.1
# On a clean path `send_frame(on_batch=...)` hands datagrams to the pacer in steps of this many
# as they are sealed (sealing costs ~17 µs a datagram: 0.7 ms for a 1080p frame of 42).
SEND_STEP_DATAGRAMS = 8
# DELTA's smoothed loss below this: the path loses nothing (FEC drops to one parity a group).
LOSS_FREE = 0.001
# Smoothing of the datagrams per ordinary frame (the cap on burst parities follows it).
FRAME_SIZE_ALPHA = 0.1
# Control messages that are never resent on a NACK. A resent Ping or Pong would yield an RTT
# sample inflated by the repair (Karn's rule: measure RTT on first transmissions only); the
# client's NACK tracker spaces its re-requests by that RTT, so one such sample (89 ms on the
# 20 ms burst-3pct path) delayed every re-request for half a second and froze the picture. A
# resent Nack is pointless: the tracker asks again itself.
NOT_RESENT_CONTROL = frozenset({"ping", "pong", "nack"})


@dataclass(slots=True)
class TransportConfig:
    fec: bool = True
    nack: bool = True
    congestion_control: bool = True  # DELTA; off = fixed bitrate (a benchmark baseline)
    send_feedback: bool = False  # the media receiver (client) reports arrivals
    jitter_buffer: bool = True
    initial_bitrate_kbps: int = 8000
    max_bitrate_kbps: int | None = None  # DELTA's ceiling (None: DeltaTunables' default)
    fps: int = 60
    fec_ratio: float = 0.05
    expected_burst: int = 2
    #: bursts longer than expected_burst seen on a lossy (not congested) path raise the parity
    #: count up to this fraction of an ordinary frame's datagrams (docs/spec/RIFT.md §8: at
    #: most 50 %)
    max_burst_fraction: float = 0.5
    max_group_shards: int = 32
    max_datagram: int = 1400
    frame_deadline_s: float = 0.1


# ---- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameReady:
    frame: AssembledFrame


@dataclass(frozen=True, slots=True)
class KeyframeRequested:
    last_valid_frame_id: int


@dataclass(frozen=True, slots=True)
class SkipFramesRequested:
    count: int


@dataclass(frozen=True, slots=True)
class RateChanged:
    target_bitrate_kbps: int
    target_fps: int
    fec_ratio: float
    state: str


@dataclass(frozen=True, slots=True)
class PeerStats:
    report: rift_pb2.StatsReport


TransportEvent = FrameReady | KeyframeRequested | SkipFramesRequested | RateChanged | PeerStats


@dataclass(slots=True)
class TransportStats:
    frames_sent: int = 0
    datagrams_sent: int = 0
    parity_sent: int = 0
    retransmitted: int = 0
    nacks_sent: int = 0
    nacked_ids: int = 0
    fec_recovered: int = 0
    frames_completed: int = 0
    frames_dropped_sender: int = 0
    feedback_sent: int = 0
    bytes_media: int = 0
    bytes_overhead: int = 0
    keyframe_requests_absorbed: int = 0
    frames_skipped_backlog: int = 0


def _packet_id(datagram: bytes) -> int:
    return int.from_bytes(datagram[8:16], "big")


class MediaTransport:
    def __init__(self, channel: SecureChannel, config: TransportConfig, now: float) -> None:
        self.channel = channel
        self.config = config
        self.stats = TransportStats()
        self._events: deque[TransportEvent] = deque()
        self._out: list[bytes] = []
        cfg = config
        params = fec_params_for_ratio(cfg.fec_ratio, cfg.expected_burst, cfg.max_group_shards)
        self.fec_encoder = FecEncoder(params.k, params.m, max_datagram_size=cfg.max_datagram)
        self._fec_params = (params.k, params.m)
        self._frame_datagrams = 0.0  # smoothed datagrams per ordinary (non-key) frame
        # smoothed media bytes and wire bytes (datagrams, parities included) per frame
        self._media_ewma = 0.0
        self._wire_ewma = 0.0
        self.fec_decoder = FecDecoder()
        self.history = RetransmitHistory()
        self.nack = NackTracker(
            will_repair=self.fec_decoder.will_repair if cfg.fec else None,
            not_needed=self.fec_decoder.likely_parity if cfg.fec else None,
        )
        self.pacer = Pacer(
            PacerConfig(max_datagram_bytes=cfg.max_datagram), cfg.initial_bitrate_kbps, cfg.fps
        )
        tunables = DeltaTunables()
        if cfg.max_bitrate_kbps is not None:
            tunables = replace(
                tunables,
                max_bitrate_kbps=max(tunables.min_bitrate_kbps, cfg.max_bitrate_kbps),
            )
        self.delta = DeltaController(cfg.initial_bitrate_kbps, max_fps=cfg.fps, tunables=tunables)
        self.spikes = RttSpikeDetector()
        self.feedback = FeedbackBuilder()
        self.stats_acc = StatsAccumulator()
        self.assembler = FrameAssembler(completion_deadline=cfg.frame_deadline_s)
        self.jitter: JitterBuffer[AssembledFrame] = JitterBuffer(in_order=True)
        self._next_frame_id = 1
        self._unresendable: set[int] = set()
        # re-request spacing (client side): ping RTTs and the media path's queueing delay
        self._ping_rtt: float | None = None
        self._min_rtt = math.inf
        self._transit_min = WindowedMin(10.0)
        self._recent_transits: deque[float] = deque(maxlen=2)
        self._media_queue_s = 0.0
        self._queue_ts_us = -1
        self._bulk: deque[rift_pb2.Message] = deque()
        self.decision: DeltaDecision = self.delta.decision
        self._last_unclean = now  # conservative pacing until the path has proven clean
        self._queue_reports = 0  # consecutive feedback reports with a queue ≥ CLEAN_QUEUE_MS
        self._fec_on = cfg.fec
        self._nack_on = cfg.nack
        self._feedback_on = cfg.send_feedback
        self._last_keyframe_id = 0
        self._keyframe_guard_until = -math.inf

    # ---- sending -------------------------------------------------------------------

    def send_message(self, message: rift_pb2.Message, now: float) -> int:
        """Seal a control/input/audio message and send it at once (priority lane)."""
        pid, datagram = self.channel.seal(message)
        resend = not (
            message.WhichOneof("content") == "control"
            and message.control.WhichOneof("content") in NOT_RESENT_CONTROL
        )
        self._track_new(pid, datagram, now, resend=resend)
        self.pacer.enqueue_priority(datagram, now)
        return pid

    def send_bulk(self, message: rift_pb2.Message, now: float) -> None:
        """Queue a bulk message (e.g. a ``FileChunk``); the caller limits its rate.

        Video first: bulk messages wait here *unsealed* while any media datagram is queued in
        the pacer and are sealed and sent (in order, after it) once the media lane is empty. So
        a file chunk never sits in front of a video frame, and packet ids stay in send order
        (no reordering for the receiver's NACK logic to mistake for loss).
        """
        self._bulk.append(message)
        self._release(now)

    @property
    def bulk_pending(self) -> int:
        """Bulk messages waiting for the media lane to empty."""
        return len(self._bulk)

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
        """Chunk, seal, protect and pace one encoded frame; returns its frame id.

        ``on_batch`` (the I/O adapter's "send what is ready"): on a clean path the datagrams go to
        the pacer every ``SEND_STEP_DATAGRAMS`` as they are sealed, and ``on_batch`` is called
        after each step, so the first datagrams are on the wire (and being read by the peer)
        while the rest are still being sealed; the last data datagrams are sent before the
        last group's parities are computed. Elsewhere the frame is queued whole, as without.
        """
        frame_id = self._next_frame_id
        self._next_frame_id += 1
        info = VideoFrameInfo(frame_id, timestamp_us, keyframe, capture_us, encode_us)
        chunks = video_chunk_messages(data, info, max_datagram_size=self.config.max_datagram)
        if not keyframe:
            self._frame_datagrams += FRAME_SIZE_ALPHA * (len(chunks) - self._frame_datagrams)
        # what the pacer may send by now leaves first, so only media that really could not go
        # out in time counts as stale when this frame is queued
        self._release(now)
        stepwise = on_batch is not None and self.pacer.clean_path
        droppable = not keyframe
        last = len(chunks) - 1
        datagrams: list[bytes] = []
        wire = 0  # bytes of the frame's datagrams (parities included), for DELTA's overhead

        def hand_out() -> None:
            """Queue what is sealed so far; on a clean path, let the adapter send it now."""
            nonlocal datagrams, wire
            wire += sum(len(d) for d in datagrams)
            self.pacer.enqueue(datagrams, now, droppable=droppable)
            datagrams = []
            if stepwise and on_batch is not None:
                on_batch()

        seal = self.channel.seal_bytes  # the chunks fit by construction (chunking.py)
        for index, chunk in enumerate(chunks):
            pid, datagram = seal(chunk)
            datagrams.append(datagram)
            datagrams.extend(self._track_new(pid, datagram, now))
            if stepwise and len(datagrams) >= SEND_STEP_DATAGRAMS and index < last:
                hand_out()
        if self.config.fec:
            if stepwise:
                # the frame's last data leaves before its parities are computed: the receiver
                # can assemble the frame without them, and they are only needed on a loss
                hand_out()
            datagrams.extend(self._seal_parities(self.fec_encoder.flush()))
        wire += sum(len(d) for d in datagrams)
        self.pacer.enqueue(datagrams, now, droppable=droppable)
        if keyframe:
            rtt = self.delta.smoothed_rtt_s or 0.05
            guard = max(KEYFRAME_GUARD_MIN_S, KEYFRAME_GUARD_RTTS * rtt)
            self._last_keyframe_id = frame_id
            self._keyframe_guard_until = now + self.pacer.backlog_s() + guard
        self.stats.frames_sent += 1
        self.stats.bytes_media += len(data)
        if self.config.congestion_control and data and not keyframe:
            # what an ordinary frame really costs on the wire (its parities, headers, tags):
            # DELTA sizes the media target so that media plus this is its rate
            self._media_ewma += FRAME_SIZE_ALPHA * (len(data) - self._media_ewma)
            self._wire_ewma += FRAME_SIZE_ALPHA * (wire - self._wire_ewma)
            self.delta.set_send_overhead(self._wire_ewma / self._media_ewma - 1)
        return frame_id

    def _track_new(
        self, pid: int, datagram: bytes, now: float, *, resend: bool = True
    ) -> list[bytes]:
        """History + FEC for a new (non-FEC) datagram; returns parity datagrams it completed."""
        self.stats.datagrams_sent += 1
        if self.config.nack and resend:
            self.history.store(pid, datagram, now)
        if not self.config.fec:
            return []
        return self._seal_parities(self.fec_encoder.add(pid, datagram[TRANSPORT_HEADER_LEN:], now))

    def _seal_parities(self, parities: list[rift_pb2.FecPacket]) -> list[bytes]:
        out = []
        for fec in parities:
            _, datagram = self.channel.seal(rift_pb2.Message(media=rift_pb2.MediaMessage(fec=fec)))
            out.append(datagram)
            self.stats.parity_sent += 1
        return out

    def media_backlog_s(self, now: float) -> float:
        """How long the media already queued needs to leave; a sender should skip encoding a
        frame while this exceeds a fraction of the frame interval (drop, never queue: a frame
        not encoded breaks no reference chain, a frame dropped after encoding does)."""
        self._release(now)
        return self.pacer.backlog_s()

    def should_skip_frame(self, now: float, fraction: float = 0.5) -> bool:
        """True when the pacer is so backlogged that a new frame would wait more than
        ``fraction`` of a frame interval; counts the skip."""
        if self.media_backlog_s(now) > fraction * self.pacer.frame_interval_s:
            self.stats.frames_skipped_backlog += 1
            return True
        return False

    def take_output(self, now: float) -> list[bytes]:
        """Datagrams due now (priority first, media paced)."""
        self._release(now)
        out = self._out
        self._out = []
        return out

    def _release(self, now: float) -> None:
        ready = self.pacer.pop_ready(now)
        for d in ready:
            self.delta.on_packet_sent(_packet_id(d), len(d), now)
        for d in self.pacer.take_dropped():
            self._unresendable.add(_packet_id(d))  # stale on purpose: never resend it
        self.stats.frames_dropped_sender = self.pacer.dropped_frames
        if len(self._unresendable) > 8192:
            self._unresendable.clear()
        self._out.extend(ready)
        if self._bulk and self.pacer.queued_datagrams == 0:
            self._release_bulk(now)

    def _release_bulk(self, now: float) -> None:
        bulk, self._bulk = self._bulk, deque()
        for message in bulk:
            pid, datagram = self.channel.seal(message)
            for d in (datagram, *self._track_new(pid, datagram, now)):
                self.delta.on_packet_sent(_packet_id(d), len(d), now)
                self._out.append(d)

    # ---- receiving -----------------------------------------------------------------

    def on_datagram(
        self,
        dgram: TransportDatagram,
        now: float,
        recovered: bool = False,
        arrival: float | None = None,
    ) -> list[rift_pb2.Message]:
        """Process one received datagram at `now`. `arrival` (same clock) is when it reached
        the host's socket, if the I/O adapter knows (kernel receive timestamp): what the peer
        is told in `TransportFeedback` and the jitter statistics, so that time this process
        spent busy before reading it (decoding, being scheduled) does not look like network
        queueing to the sender's DELTA. Everything else runs on `now`."""
        rx = now if arrival is None else arrival
        plaintext = self.channel.open_bytes(dgram)
        if plaintext is None:
            return []
        msg = rift_pb2.Message()
        try:
            msg.ParseFromString(plaintext)
        except DecodeError:
            self.channel.counters.malformed += 1
            return []
        pid = dgram.packet_id
        if recovered:
            self.stats.fec_recovered += 1
        elif self._feedback_on:
            self.feedback.on_packet(pid, rx)
            self.stats_acc.on_packet(pid, rx)
        out: list[rift_pb2.Message] = []
        repaired: list[tuple[int, bytes]] = []
        media = msg.media if msg.WhichOneof("content") == "media" else None
        if media is not None and media.WhichOneof("content") == "fec":
            if self._fec_on:
                repaired = self.fec_decoder.on_parity(media.fec, now, carrier_packet_id=pid)
        else:
            if self._fec_on:
                repaired = self.fec_decoder.on_datagram(pid, dgram.payload, now)
            self._dispatch(msg, now, out, rx)
        if repaired:
            # rebuilt datagrams first, so the NACK tracker never requests what FEC just repaired
            alias = self.channel.alias
            for rpid, payload in repaired:
                header = encode_transport_header(alias, rpid)
                rebuilt = TransportDatagram(alias, rpid, header, payload)
                out.extend(self.on_datagram(rebuilt, now, recovered=True))
        if self._nack_on:
            # only the paced media lane is in packet-id order; priority-lane messages may
            # overtake it (see NackTracker.on_packet)
            # (audio is media but rides the priority lane: it reveals no gaps either)
            in_order = (media is not None and not media.HasField("audio")) or recovered
            batches = self.nack.on_packet(pid, now, reveals_gaps=in_order)
            if batches:
                self._send_nacks(batches, now)
            if repaired:
                self._send_nacks(self.nack.poll(now), now)
        return out

    def _dispatch(
        self,
        msg: rift_pb2.Message,
        now: float,
        out: list[rift_pb2.Message],
        rx: float | None = None,
    ) -> None:
        kind = msg.WhichOneof("content")
        if kind == "media":
            media = msg.media
            if media.WhichOneof("content") == "video":
                chunk = media.video
                arrival = now if rx is None else rx
                self.stats_acc.on_media_timestamp(chunk.timestamp_us / 1e6, arrival)
                if chunk.timestamp_us > self._queue_ts_us:  # a newer frame's first chunk
                    self._queue_ts_us = chunk.timestamp_us
                    self._note_media_transit(arrival - chunk.timestamp_us / 1e6, now)
                self._assembled(self.assembler.push(chunk, now), now)
                return
        elif kind == "control":
            ctl = msg.control
            which = ctl.WhichOneof("content")
            if which == "nack":
                if self.config.nack:
                    ids = [i for i in ctl.nack.packet_ids[:64] if i not in self._unresendable]
                    # a second copy of a re-requested datagram only where losses are not
                    # congestion: on a bottleneck it would only lengthen the queue
                    delta = self.delta
                    copies = delta.state is DeltaState.STABLE and delta.capacity_kbps(now) is None
                    for d in self.history.resend(ids, now, copies=copies):
                        self.pacer.enqueue_priority(d, now)
                        self.stats.retransmitted += 1
                return
            if which == "transport_feedback":
                if self.config.congestion_control:
                    try:
                        self.delta.on_transport_feedback(ctl.transport_feedback, now)
                    except FeedbackError:
                        return
                    self._queue_reports = (
                        self._queue_reports + 1
                        if self.delta.queue_delay_ms >= CLEAN_QUEUE_MS
                        else 0
                    )
                    self._apply_decision(now)
                return
            if which == "stats":
                report = ctl.stats
                if report.rtt_us:
                    self.delta.on_rtt_sample(report.rtt_us / 1e6, now)
                    self.nack.set_rtt(report.rtt_us / 1e6)
                self._events.append(PeerStats(report))
                return
            if which == "rfi":
                last_valid = ctl.rfi.last_valid_frame_id
                if last_valid < self._last_keyframe_id and now < self._keyframe_guard_until:
                    # a keyframe after the receiver's last good frame is on its way
                    self.stats.keyframe_requests_absorbed += 1
                    return
                self._events.append(KeyframeRequested(last_valid))
                return
            if which == "encoder_control":
                n = min(2, ctl.encoder_control.skip_frames)
                if n:
                    self._events.append(SkipFramesRequested(n))
                return
            if which == "congestion":
                c = ctl.congestion
                self._events.append(RateChanged(c.target_bitrate_kbps, c.target_fps, 0.0, "peer"))
                return
        out.append(msg)

    def _assembled(
        self, outputs: list[AssembledFrame | ReferenceInvalidationNeeded], now: float
    ) -> None:
        if not outputs and not self.jitter.queued:
            return
        for o in outputs:
            if isinstance(o, ReferenceInvalidationNeeded):
                self.send_message(
                    rift_pb2.Message(control=rift_pb2.ControlMessage(rfi=o.to_message())), now
                )
                continue
            self.stats.frames_completed += 1
            if self.config.jitter_buffer:
                sent = (o.timestamp_us + o.capture_us + o.encode_us) / 1e6
                # lateness counts from the first chunk: waiting for the rest of the frame (its
                # size, a repair) or for its predecessor (in-order release) is not jitter
                self.jitter.push(o, now, sent, now - o.first_chunk_at)
            else:
                self._events.append(FrameReady(o))
        if self.config.jitter_buffer:
            for frame in self.jitter.pop_ready(now):
                self._events.append(FrameReady(frame))

    def _send_nacks(self, batches: list[list[int]], now: float) -> None:
        for nack in nack_messages(batches):
            self.send_message(rift_pb2.Message(control=rift_pb2.ControlMessage(nack=nack)), now)
            self.stats.nacks_sent += 1
            self.stats.nacked_ids += len(nack.packet_ids)

    def _apply_decision(self, now: float) -> None:
        cc = self.delta.poll_congestion_control()
        d = self.delta.decision
        self.decision = d
        self.pacer.set_target(d.send_rate_kbps, d.target_fps)
        delta = self.delta
        queue_ms = delta.queue_delay_ms
        noise_ok = self._queue_reports <= 1 and delta.capacity_kbps(now) is None
        no_queue = queue_ms < CLEAN_QUEUE_MS or (queue_ms < CLEAN_QUEUE_NOISE_MS and noise_ok)
        clean_now = (
            d.state is DeltaState.STABLE
            and no_queue
            and delta.loss_fraction - delta.random_loss_fraction < CLEAN_LOSS
        )
        if not clean_now:
            self._last_unclean = now
        clean = now - self._last_unclean >= CLEAN_HOLD_S
        capacity = delta.capacity_kbps(now)
        # whole-frame bursts only where no bottleneck is known: next to one (e.g. just after its
        # capacity went up) they slowed DELTA's convergence (capacity-steps: 2.2 → 3.2 s)
        self.pacer.set_clean_path(CLEAN_DRAIN_FRACTION if clean else None, burst=capacity is None)
        if capacity is None:
            self.pacer.set_rate_cap(None)
        else:
            capacity = max(capacity, d.send_rate_kbps)
            self.pacer.set_rate_cap(PACE_CAP_HEADROOM * capacity, PACE_FRAME_CAP * capacity)
        if self.config.fec and d.fec_ratio > 0:
            # a clean path that loses nothing gets one parity per group (any single loss is
            # still repaired) instead of one per datagram of the expected burst: 8 % less
            # bandwidth on a 12-datagram frame; the first losses bring the burst protection back
            loss_free = clean and delta.loss_fraction < LOSS_FREE
            burst = 1 if loss_free else self._burst_parities(now)
            p = fec_params_for_ratio(d.fec_ratio, burst, self.config.max_group_shards)
            if (p.k, p.m) != self._fec_params:
                self._fec_params = (p.k, p.m)
                self.fec_encoder.set_params(p.k, p.m)
        if cc is not None:
            self.send_message(rift_pb2.Message(control=rift_pb2.ControlMessage(congestion=cc)), now)
            self._events.append(
                RateChanged(d.target_bitrate_kbps, d.target_fps, d.fec_ratio, d.state.value)
            )

    def _burst_parities(self, now: float) -> int:
        """Parities a group carries on a lossy path: the expected burst, or the loss bursts
        DELTA saw outside congestion (its 90th percentile) when longer, capped to
        `max_burst_fraction` of an ordinary frame. Interleaved XOR repairs a burst of up to m
        consecutive losses, so on a link that drops runs of 3–6 datagrams m = 2 loses the frame
        (burst-3pct: 0.90 of frames on time with m = 2, see docs/rate-control.md)."""
        cfg = self.config
        cap = max(cfg.expected_burst, int(cfg.max_burst_fraction * self._frame_datagrams))
        return max(cfg.expected_burst, min(self.delta.loss_burst(now), cap))

    # ---- RTT, timers, events -------------------------------------------------------

    def on_rtt(self, rtt_s: float, now: float) -> None:
        """An RTT sample from Ping/Pong (client side)."""
        self._ping_rtt = rtt_s
        self._min_rtt = min(self._min_rtt, rtt_s)
        self._set_nack_rtt()
        self.stats_acc.set_rtt(rtt_s)
        ctl = self.spikes.encoder_control(rtt_s, now) if self.config.send_feedback else None
        if ctl is not None:
            msg = rift_pb2.Message(control=rift_pb2.ControlMessage(encoder_control=ctl))
            self.send_message(msg, now)

    def _note_media_transit(self, transit: float, now: float) -> None:
        """Queueing delay on the media path right now: the smallest first-chunk transit of the
        last few frames over the 10 s minimum (the clock offset cancels). A queue holds for
        many frames; one late first chunk (lost, then resent) is not a queue."""
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

    def next_timer(self) -> float | None:
        cands = [
            self.pacer.next_send_time(),
            self.fec_encoder.next_timer() if self.config.fec else None,
            self.nack.next_timer() if self.config.nack else None,
            self.feedback.next_timer() if self.config.send_feedback else None,
            self.stats_acc.next_timer() if self.config.send_feedback else None,
            self.assembler.next_timer(),
            self.jitter.next_timer() if self.config.jitter_buffer else None,
        ]
        times = [t for t in cands if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        cfg = self.config
        if cfg.fec:
            # parities of a group closed by its timer go behind any media still queued: in the
            # priority lane they would overtake it and look like a gap (spurious NACKs)
            parities = self._seal_parities(self.fec_encoder.poll(now))
            if parities and self.pacer.queued_bytes > 0:
                self.pacer.enqueue(parities, now, droppable=False)
            else:
                for d in parities:
                    self.pacer.enqueue_priority(d, now)
        if cfg.nack:
            self._send_nacks(self.nack.poll(now), now)
            self.history.expire(now)
        if cfg.send_feedback:
            fb = self.feedback.build(now)
            if fb is not None:
                self.send_message(
                    rift_pb2.Message(control=rift_pb2.ControlMessage(transport_feedback=fb)), now
                )
                self.stats.feedback_sent += 1
            report = self.stats_acc.build(now)
            if report is not None:
                self.send_message(
                    rift_pb2.Message(control=rift_pb2.ControlMessage(stats=report)), now
                )
        if cfg.congestion_control:
            self.delta.tick(now)
            self._apply_decision(now)
        self._assembled(self.assembler.poll(now), now)

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def next_event(self) -> TransportEvent | None:
        return self._events.popleft() if self._events else None

    def drain_events(self) -> list[TransportEvent]:
        out = list(self._events)
        self._events.clear()
        return out


__all__ = [
    "FrameReady",
    "KeyframeRequested",
    "MediaTransport",
    "PeerStats",
    "RateChanged",
    "SkipFramesRequested",
    "TransportConfig",
    "TransportEvent",
    "TransportStats",
]
