"""The sending half of a session's transport (docs/spec/RIFT.md §6–§8), sans-I/O.

`Sender` is what every side sends with: it seals messages (spending packet ids), keeps them
for NACK resends (§7.3) and protects them with FEC (§7); every datagram it seals leaves, and
every parity it computes is sent, right behind the group it covers. The client's uplink
(input, control, microphone audio, files) needs nothing more.

`MediaSender` (the host) adds video: frames are chunked and queued *unsealed* in the pacer, and
each chunk is sealed only when the pacer releases it, so packet ids leave in order and a frame
the pacer drops as stale spends none. A congestion controller (`congestion.py`) turns feedback
into one decision that the pacer, the encoder and the FEC policy (`redundancy.py`) read.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from wavry.rift import rift_pb2
from wavry.rift.channel import SecureChannel
from wavry.rift.chunking import VideoFrameInfo, fec_message, video_chunk_messages
from wavry.rift.congestion import CongestionDecision, CongestionState
from wavry.rift.controller import controller_for
from wavry.rift.fec import REED_SOLOMON, XOR, FecEncoder
from wavry.rift.feedback import FeedbackError, parse_feedback
from wavry.rift.framing import AEAD_TAG_LEN, TRANSPORT_HEADER_LEN
from wavry.rift.pacer import Pacer, PacerConfig
from wavry.rift.redundancy import (
    GroupPlan,
    RedundancyPolicy,
    RedundancyTunables,
    fec_params_for_ratio,
    unrepaired_frame_cost,
)
from wavry.rift.retransmit import RetransmitHistory
from wavry.rift.transport_types import (
    KeyframeRequested,
    RateChanged,
    TransportConfig,
    TransportEvent,
    TransportStats,
)

__all__ = ["MediaSender", "Sender"]

# A session starts clean (its first report, an RTT + 50 ms in, shows any queue; a 3 s hold at the
# start spread every frame of it over 8 ms and made its first repairs late), and a path that has
# shown no standing queue and no congestion loss (per the controller) for CLEAN_HOLD_S is clean
# again: frames drain within 3 % of a frame interval instead of over half of it; any sign of a
# queue or of loss beyond the path's random loss restores normal pacing at once. Random loss
# without a queue is no reason to pace: the spread only delays every frame, and with it every
# repair a NACK could still make in time. "No standing queue": under CLEAN_QUEUE_MS, or under
# CLEAN_QUEUE_NOISE_MS in runs of at most CLEAN_NOISE_REPORTS feedback reports. A host or client
# busy for a millisecond (1080p on two shared cores) shows ~1 ms in one report: a plain 1 ms
# threshold reset the hold every few seconds. A browser's receive times are noisier (no kernel
# timestamps): idle on loopback, runs of up to 7 reports at 1-1.6 ms and single ones at 3-5 ms.
# A real queue persists (a congested path also leaves STABLE). The tolerance only applies while
# no bottleneck is known (no capacity estimate): near a measured one, bursts into a 1-2 ms queue
# slowed convergence after a capacity step (2 of 3 capacity-steps runs missed a step).
CLEAN_QUEUE_MS = 1.0
CLEAN_QUEUE_NOISE_MS = 5.0
CLEAN_NOISE_REPORTS = 6
CLEAN_LOSS = 0.002
CLEAN_DRAIN_FRACTION = 0.03
CLEAN_HOLD_S = 3.0
# Keyframes (and bulk data) are never paced faster than PACE_CAP_HEADROOM × max(capacity
# estimate, send rate) once the controller has measured the path's capacity at a standing
# queue: a keyframe then leaves at about the link's rate instead of overflowing its queue.
# Ordinary frames are paced at no more than PACE_FRAME_CAP × that capacity: their burst then
# queues at most a third of their own duration at the bottleneck, and they still leave well
# within a frame interval at the target bitrate.
PACE_CAP_HEADROOM = 0.95
PACE_FRAME_CAP = 1.25
# After a keyframe, requests for one (ReferenceInvalidation) that it already answers are ignored
# for its pacing time + this many RTTs (at least KEYFRAME_GUARD_MIN_S).
KEYFRAME_GUARD_RTTS = 2.0
KEYFRAME_GUARD_MIN_S = 0.1
# On a clean path `send_frame(on_batch=...)` seals and hands out a frame's datagrams in steps of
# this many, the first smaller: the peer starts reading while the rest is sealed.
SEND_STEP_DATAGRAMS = 8
FIRST_SEND_STEP_DATAGRAMS = 2
# The encoder skips a frame while the media already queued needs more than this fraction of a
# frame interval to leave (`should_skip_frame`).
SKIP_BACKLOG_FRACTION = 0.5
# Smoothing of the wire and media bytes per ordinary frame (the overhead the controller is told).
FRAME_SIZE_ALPHA = 0.1
# Control messages that are never resent on a NACK. A resent Ping or Pong would yield an RTT
# sample inflated by the repair (Karn's rule: measure RTT on first transmissions only); the
# client's NACK tracker spaces its re-requests by that RTT, so one such sample (89 ms on the
# 20 ms burst-3pct path) delayed every re-request for half a second and froze the picture. A
# resent Nack is pointless: the tracker asks again itself.
NOT_RESENT_CONTROL = frozenset({"ping", "pong", "nack"})
# what sealing adds to a payload: the transport header and the AEAD tag
SEAL_OVERHEAD = TRANSPORT_HEADER_LEN + AEAD_TAG_LEN

Emit = Callable[[TransportEvent], None]


def _resendable(message: rift_pb2.Message) -> bool:
    return not (
        message.WhichOneof("content") == "control"
        and message.control.WhichOneof("content") in NOT_RESENT_CONTROL
    )


class Sender:
    """Seal, keep for resends, protect with FEC; everything sealed goes out at once."""

    def __init__(
        self, channel: SecureChannel, config: TransportConfig, stats: TransportStats
    ) -> None:
        self.channel = channel
        self.config = config
        self.stats = stats
        self._out: list[bytes] = []
        self.history = RetransmitHistory()
        self.fec_encoder: FecEncoder | None = None
        #: the session's FEC code: XOR until Hello/HelloAck agreed on one (`set_fec_scheme`)
        self.fec_scheme = XOR
        if config.fec:
            c = config
            p = fec_params_for_ratio(c.fec_ratio, c.expected_burst, c.max_group_shards)
            self.fec_encoder = FecEncoder(p.k, p.m, max_datagram_size=config.max_datagram)

    def set_fec_scheme(self, scheme: int, now: float) -> None:
        """The FEC code both sides agreed on (`HelloAck.fec_scheme`): the open group leaves
        with its parities in the old code, every later group uses the new one."""
        if scheme == self.fec_scheme:
            return
        self.fec_scheme = scheme
        if self.fec_encoder is not None:
            self._send_parities(self.fec_encoder.flush(), now)
            self.fec_encoder.set_scheme(scheme)

    # ---- sending -------------------------------------------------------------------

    def send_message(self, message: rift_pb2.Message, now: float) -> int:
        """Seal a control/input/audio message and send it at once; returns its packet id."""
        pid, datagram = self.channel.seal(message)
        self._sent_now(pid, datagram, now, _resendable(message))
        return pid

    def send_bulk(self, message: rift_pb2.Message, now: float) -> None:
        """Send a bulk message (e.g. a ``FileChunk``); the caller limits its rate. (A media
        sender holds it back while video is queued, see `MediaSender.send_bulk`.)"""
        self.send_message(message, now)

    @property
    def bulk_pending(self) -> int:
        """Bulk messages waiting to be sealed."""
        return 0

    def on_nack(self, packet_ids: list[int], now: float) -> None:
        """The peer's `Nack`: the identical bytes again (never a new seal)."""
        if not self.config.nack:
            return
        resend = self.history.resend
        for d in resend(packet_ids, now, copies=self._resend_copies(), min_age=self._nack_age()):
            self._out.append(d)
            self._charge(len(d), now)
            self.stats.retransmitted += 1

    def take_output(self, now: float) -> list[bytes]:
        """Datagrams to send now, in packet-id order (resends aside)."""
        out = self._out
        self._out = []
        return out

    # ---- timers --------------------------------------------------------------------

    def next_timer(self) -> float | None:
        if self.fec_encoder is None or not self._group_timer_on():
            return None
        return self.fec_encoder.next_timer()

    def handle_timer(self, now: float) -> None:
        if self.fec_encoder is not None and self._group_timer_on():
            # a group closed by its timer: every id in it has left, its parities follow
            self._send_parities(self.fec_encoder.poll(now), now)
        self.history.expire(now)

    def _group_timer_on(self) -> bool:
        """Whether an open FEC group closes on the encoder's timer (sparse traffic)."""
        return True

    # ---- internals -----------------------------------------------------------------

    def _sent_now(self, pid: int, datagram: bytes, now: float, resend: bool) -> None:
        """A new datagram sealed outside the pacer: out now, kept, protected."""
        self._out.append(datagram)
        self.stats.datagrams_sent += 1
        self._on_new_datagram(pid, len(datagram), now)
        self._charge(len(datagram), now)
        if self.config.nack and resend:
            self.history.store(pid, datagram, now)
        if self.fec_encoder is not None:
            parities = self.fec_encoder.add(pid, datagram[TRANSPORT_HEADER_LEN:], now)
            if parities:
                self._send_parities(parities, now)

    def _send_parities(self, parities: list[rift_pb2.FecPacket], now: float) -> int:
        """Seal and send parities (right behind their group); returns their wire bytes."""
        total = 0
        seal = self.channel.seal_bytes  # a parity fits by construction (fec.py sizes groups)
        for fec in parities:
            pid, datagram = seal(fec_message(fec))
            self._out.append(datagram)
            self.stats.parity_sent += 1
            self._on_new_datagram(pid, len(datagram), now)
            self._charge(len(datagram), now)
            total += len(datagram)
        return total

    def _on_new_datagram(self, pid: int, size: int, now: float) -> None:
        """Hook: a new datagram (data or parity) leaves."""

    def _charge(self, nbytes: int, now: float) -> None:
        """Hook: bytes that leave without the pacer."""

    def _resend_copies(self) -> bool:
        return True

    def _nack_age(self) -> float:
        """How old a datagram must be before a NACK for it is answered (see
        `RetransmitHistory.resend`): half the smallest RTT seen, where the sender knows it."""
        return 0.0


@dataclass
class _FrameRecord:
    """What the sender remembers of a queued frame while the pacer releases it."""

    media_bytes: int
    keyframe: bool
    plan: GroupPlan | None = None  # its FEC groups (redundancy.py)
    wire_bytes: int = 0


class MediaSender(Sender):
    """The host's sender: video frames through the pacer, a congestion controller, FEC policy."""

    def __init__(
        self,
        channel: SecureChannel,
        config: TransportConfig,
        stats: TransportStats,
        emit: Emit,
        now: float,
    ) -> None:
        super().__init__(channel, config, stats)
        self._emit = emit
        self.controller = controller_for(config)
        self.redundancy = RedundancyPolicy(
            RedundancyTunables(max_group_shards=config.max_group_shards),
            rs=self.fec_scheme == REED_SOLOMON,
        )
        self._planned: _FrameRecord | None = None  # the frame whose FEC plan the encoder has
        pacing = PacerConfig(
            max_datagram_bytes=config.max_datagram, datagram_overhead=SEAL_OVERHEAD
        )
        self.pacer = Pacer(pacing, config.initial_bitrate_kbps, config.fps)
        self.pacer.set_clean_path(CLEAN_DRAIN_FRACTION)
        self._next_frame_id = 1
        self._bulk: deque[rift_pb2.Message] = deque()
        self._media_ewma = 0.0  # smoothed media bytes per ordinary frame
        self._wire_ewma = 0.0  # ... and what they cost on the wire (parities included)
        self._min_rtt = math.inf  # the smallest RTT sample (see _nack_age)
        self._flush_pending = False  # a frame's last chunk left; its FEC group is still open
        self._stepping = False  # inside send_frame's stepwise hand-out
        self._last_unclean = now - CLEAN_HOLD_S  # clean until a report shows a queue
        self._queue_reports = 0  # consecutive feedback reports with a queue ≥ CLEAN_QUEUE_MS
        self._last_keyframe_id = 0
        self._keyframe_guard_until = -math.inf

    @property
    def decision(self) -> CongestionDecision:
        """The congestion controller's current decision."""
        return self.controller.decision

    def set_fec_scheme(self, scheme: int, now: float) -> None:
        super().set_fec_scheme(scheme, now)
        self.redundancy.rs = scheme == REED_SOLOMON
        self._planned = None

    # ---- video ---------------------------------------------------------------------

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
        """Chunk and queue one encoded frame (sealed, protected and sent as the pacer releases
        it); returns its frame id.

        ``on_batch`` (the I/O adapter's "send what is ready"): on a clean path the chunks are
        sealed and handed out every ``SEND_STEP_DATAGRAMS``, and ``on_batch`` is called after
        each step, so the first datagrams are on the wire (and being read by the peer) while
        the rest are still being sealed; the last data datagrams are sent before the last
        group's parities are computed. Elsewhere the pacer releases the frame as it paces."""
        frame_id = self._next_frame_id
        self._next_frame_id += 1
        info = VideoFrameInfo(frame_id, timestamp_us, keyframe, capture_us, encode_us)
        chunks = video_chunk_messages(data, info, max_datagram_size=self.config.max_datagram)
        self.redundancy.on_frame(len(chunks), keyframe)
        interval = 1.0 / max(1, self.decision.target_fps or self.config.fps)
        rtt = self.decision.smoothed_rtt_s or 0.05
        self.redundancy.set_failure_cost(
            unrepaired_frame_cost(rtt, interval, self.redundancy.fit.loss)
        )
        # what the pacer may send by now leaves first, so only media that really could not go
        # out in time counts as stale when this frame is queued
        self._release(now)
        plan = self.redundancy.frame_plan(len(chunks), keyframe) if self.fec_encoder else None
        record = _FrameRecord(len(data), keyframe, plan)
        if self.pacer.enqueue(chunks, now, droppable=not keyframe, tag=record):
            self._close_group(now)  # a frame dropped half sent: its group ends here
        self.stats.frames_dropped_sender = self.pacer.dropped_frames
        if on_batch is not None and self.pacer.clean_path:
            self._stepping = True  # `take_output` from `on_batch` sends, never seals
            try:
                limit = FIRST_SEND_STEP_DATAGRAMS
                while self._release(now, limit=limit, defer_flush=True):
                    limit = SEND_STEP_DATAGRAMS
                    on_batch()
                    if self._flush_pending:
                        # the frame's data is out; its last parities only matter on a loss
                        self._close_group(now)
            finally:
                self._stepping = False
        if keyframe:
            rtt = self.decision.smoothed_rtt_s or 0.05
            guard = max(KEYFRAME_GUARD_MIN_S, KEYFRAME_GUARD_RTTS * rtt)
            self._last_keyframe_id = frame_id
            self._keyframe_guard_until = now + self.pacer.backlog_s() + guard
        self.stats.frames_sent += 1
        self.stats.bytes_media += len(data)
        return frame_id

    def media_backlog_s(self, now: float) -> float:
        """How long the media already queued needs to leave."""
        self._release(now)
        return self.pacer.backlog_s()

    def should_skip_frame(self, now: float) -> bool:
        """True when the encoder should not encode the next frame: the media already queued
        needs more than `SKIP_BACKLOG_FRACTION` of a frame interval to leave (drop, never
        queue: a frame not encoded breaks no reference chain, a frame dropped after encoding
        does). Counts the skip in `stats.frames_skipped_backlog`."""
        if self.media_backlog_s(now) > SKIP_BACKLOG_FRACTION * self.pacer.frame_interval_s:
            self.stats.frames_skipped_backlog += 1
            return True
        return False

    # ---- bulk ----------------------------------------------------------------------

    def send_bulk(self, message: rift_pb2.Message, now: float) -> None:
        """Queue a bulk message (e.g. a ``FileChunk``); the caller limits its rate.

        Video first: bulk messages wait here unsealed while any media is queued in the pacer,
        and are sealed and sent (in order, after it) once the media lane is empty. So a file
        chunk never sits in front of a video frame."""
        self._bulk.append(message)
        self._release(now)

    @property
    def bulk_pending(self) -> int:
        return len(self._bulk)

    # ---- output --------------------------------------------------------------------

    def take_output(self, now: float) -> list[bytes]:
        if not self._stepping:
            self._release(now)
        return super().take_output(now)

    def _release(self, now: float, limit: int | None = None, *, defer_flush: bool = False) -> int:
        """Seal and send what the pacer releases at `now`; returns how many chunks."""
        ready = self.pacer.pop_ready(now, limit)
        if ready:
            out = self._out
            seal = self.channel.seal_bytes  # the chunks fit by construction (chunking.py)
            store = self.history.store if self.config.nack else None
            encoder = self.fec_encoder
            sent = self.controller.on_packet_sent
            for payload, record, last in ready:
                pid, datagram = seal(payload)
                size = len(datagram)
                out.append(datagram)
                sent(pid, size, now)
                if store is not None:
                    store(pid, datagram, now)
                frame = record if type(record) is _FrameRecord else None
                wire = size
                if frame is not None and frame is not self._planned and encoder is not None:
                    self._planned = frame  # its first chunk: the frame's own FEC groups
                    if frame.plan is not None:
                        encoder.set_params(frame.plan.k, frame.plan.m, frame.plan.parities)
                if encoder is not None:
                    payload = datagram[TRANSPORT_HEADER_LEN:]
                    # the frame's last chunk leaves before its group's parities are computed
                    parities = encoder.add(pid, payload, now, close_full=not (last and defer_flush))
                    if parities:
                        wire += self._send_parities(parities, now)
                if last:
                    if defer_flush:
                        self._flush_pending = True
                    else:
                        wire += self._close_group(now)
                if frame is not None:
                    frame.wire_bytes += wire
                    if last:
                        self._frame_left(frame)
            self.stats.datagrams_sent += len(ready)
        if self._bulk and self.pacer.queued_datagrams == 0:
            bulk, self._bulk = self._bulk, deque()
            for message in bulk:
                pid, datagram = self.channel.seal(message)
                self._sent_now(pid, datagram, now, True)
        return len(ready)

    def _close_group(self, now: float) -> int:
        """Close the open FEC group (a frame ended); returns the parities' wire bytes."""
        self._flush_pending = False
        if self.fec_encoder is None:
            return 0
        # a frame's group closes with it, so its parities leave with the frame
        return self._send_parities(self.fec_encoder.flush(), now)

    def _frame_left(self, frame: _FrameRecord) -> None:
        """An ordinary frame's last chunk left: what it cost on the wire (parities, headers,
        tags) tells the controller how much room to leave beside the media target."""
        if frame.keyframe or not frame.media_bytes:
            return
        self._media_ewma += FRAME_SIZE_ALPHA * (frame.media_bytes - self._media_ewma)
        self._wire_ewma += FRAME_SIZE_ALPHA * (frame.wire_bytes - self._wire_ewma)
        self._tell_overhead()

    def _tell_overhead(self) -> None:
        measured = self._wire_ewma / self._media_ewma - 1 if self._media_ewma > 0 else 0.0
        self.controller.set_send_overhead(max(measured, self.redundancy.ratio))

    # ---- what the receiver reports ---------------------------------------------------

    def on_feedback(self, feedback: rift_pb2.TransportFeedback, now: float) -> None:
        try:
            arrivals = parse_feedback(feedback)
        except FeedbackError:
            return  # malformed: changes nothing
        decision = self.controller.on_feedback(arrivals, now)
        self.redundancy.on_feedback(arrivals, decision, now)
        reported_queue = decision.queue_delay_ms >= CLEAN_QUEUE_MS
        self._queue_reports = self._queue_reports + 1 if reported_queue else 0
        self._apply_decision(now)

    def on_peer_rtt(self, rtt_s: float, now: float) -> None:
        self.controller.on_rtt_sample(rtt_s, now)
        if rtt_s > 0:
            self._min_rtt = min(self._min_rtt, rtt_s)

    def _nack_age(self) -> float:
        return 0.5 * self._min_rtt if self._min_rtt < math.inf else 0.0

    def on_reference_invalidation(self, last_valid_frame_id: int, now: float) -> None:
        if last_valid_frame_id < self._last_keyframe_id and now < self._keyframe_guard_until:
            # a keyframe after the receiver's last good frame is on its way
            self.stats.keyframe_requests_absorbed += 1
            return
        self._emit(KeyframeRequested(last_valid_frame_id))

    # ---- timers --------------------------------------------------------------------

    def next_timer(self) -> float | None:
        fec = super().next_timer()
        pace = self.pacer.next_send_time()
        if fec is None:
            return pace
        return fec if pace is None else min(fec, pace)

    def handle_timer(self, now: float) -> None:
        self._release(now)
        super().handle_timer(now)
        self.controller.tick(now)
        self._apply_decision(now)

    # ---- internals -----------------------------------------------------------------

    def _group_timer_on(self) -> bool:
        # while a frame is being paced out its group stays open: it closes after the frame's
        # last chunk (the timer would cut a paced frame into several groups, each with its own
        # parities: +35 % overhead at an 8 Mbit/s bottleneck)
        return self.pacer.queued_datagrams == 0

    def _on_new_datagram(self, pid: int, size: int, now: float) -> None:
        self.controller.on_packet_sent(pid, size, now)

    def _charge(self, nbytes: int, now: float) -> None:
        self.pacer.charge(nbytes, now)

    def _resend_copies(self) -> bool:
        # a second copy of a re-requested datagram only where losses are not congestion: on a
        # bottleneck it would only lengthen the queue
        d = self.decision
        return d.state is CongestionState.STABLE and d.capacity_kbps is None

    def set_peer_limits(self, max_bitrate_kbps: int, max_fps: int, now: float) -> None:
        """The receiver's `CongestionControl` (docs/spec/RIFT.md §8): a ceiling on the media
        bitrate and frame rate (0 = no limit); the encoder follows the capped decision at once."""
        self.controller.set_ceiling(max_bitrate_kbps or None, max_fps or None)
        d = self.controller.decision
        self.pacer.set_target(d.send_rate_kbps, d.target_fps)
        ratio = self.redundancy.ratio
        self._emit(RateChanged(d.target_bitrate_kbps, d.target_fps, ratio, d.state.value))

    def _apply_decision(self, now: float) -> None:
        cc = self.controller.poll_congestion_control()
        d = self.controller.decision
        self.pacer.set_target(d.send_rate_kbps, d.target_fps)
        queue_ms = d.queue_delay_ms
        capacity = d.capacity_kbps
        noise_ok = self._queue_reports <= CLEAN_NOISE_REPORTS and capacity is None
        no_queue = queue_ms < CLEAN_QUEUE_MS or (queue_ms < CLEAN_QUEUE_NOISE_MS and noise_ok)
        clean_now = (
            d.state is CongestionState.STABLE
            and no_queue
            and d.loss_fraction - d.random_loss_fraction < CLEAN_LOSS
        )
        if not clean_now:
            self._last_unclean = now
        clean = now >= self._last_unclean + CLEAN_HOLD_S
        # whole-frame bursts only where no bottleneck is known: next to one (e.g. just after its
        # capacity went up) they slowed the controller's convergence (capacity-steps 2.2 → 3.2 s)
        self.pacer.set_clean_path(CLEAN_DRAIN_FRACTION if clean else None, burst=capacity is None)
        if capacity is None:
            self.pacer.set_rate_cap(None)
        else:
            capacity = max(capacity, d.send_rate_kbps)
            self.pacer.set_rate_cap(PACE_CAP_HEADROOM * capacity, PACE_FRAME_CAP * capacity)
        self._tell_overhead()
        if cc is not None:
            self.send_message(rift_pb2.Message(control=rift_pb2.ControlMessage(congestion=cc)), now)
            ratio = self.redundancy.ratio
            self._emit(RateChanged(d.target_bitrate_kbps, d.target_fps, ratio, d.state.value))
