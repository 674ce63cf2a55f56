"""The integrated media transport (docs/spec/RIFT.md §6–§8) through a real ClientSession and
HostEndpoint.

A scripted network on a fake clock: per-datagram propagation delay, scripted loss by packet id
(host → client), and an optional rate-limited FIFO bottleneck. No sockets, no wall clock.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.congestion import CongestionDecision, CongestionState
from wavry.rift.events import ClientTransportEvent
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.redundancy import GroupPlan
from wavry.rift.sender import MediaSender
from wavry.rift.testing.loopback import Loopback
from wavry.rift.transport import (
    FrameReady,
    KeyframeRequested,
    PeerStats,
    RateChanged,
    TransportConfig,
)

T0 = 1_700_000_000.0
HOST_ID = Identity.generate()
CLIENT_ID = Identity.generate()
ADDR = ("10.0.0.2", 50000)
STEP = 0.0005


def pid_of(data: bytes) -> int:
    return int.from_bytes(data[8:16], "big")


@dataclass
class Net:
    client: ClientSession
    host: HostEndpoint
    delay_s: float = 0.005
    drop_h2c: Callable[[int], bool] = lambda pid: False
    rate_kbps: float | None = None  # host → client bottleneck (FIFO, no drops)
    now: float = T0
    client_events: list[object] = field(default_factory=list)
    host_events: list[object] = field(default_factory=list)
    frames: list[tuple[float, FrameReady]] = field(default_factory=list)
    h2c_sent: dict[int, list[bytes]] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)
    #: host → client: extra time before the client *reads* a datagram (a busy client), and
    #: whether it is told the true arrival time (a kernel receive timestamp)
    rx_lag_s: Callable[[int], float] = lambda pid: 0.0
    kernel_stamps: bool = True
    _heap: list[tuple[float, int, str, bytes, float]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _link_free: float = 0.0
    streaming: bool = False

    def _collect(self) -> None:
        now = self.now
        for data in self.client.datagrams_to_send(now):
            at = now + self.delay_s
            heapq.heappush(self._heap, (at, next(self._seq), "h", data, at))
        for data, _ in self.host.datagrams_to_send(now):
            pid = pid_of(data)
            if self.streaming:
                self.h2c_sent.setdefault(pid, []).append(data)
                if self.drop_h2c(pid) and len(self.h2c_sent[pid]) == 1:
                    self.dropped.append(pid)  # only the first copy: retransmissions get through
                    continue
            at = now
            if self.rate_kbps is not None:
                self._link_free = max(self._link_free, now) + len(data) * 8 / (
                    self.rate_kbps * 1000
                )
                at = self._link_free
            arrival = at + self.delay_s
            read_at = arrival + self.rx_lag_s(pid)
            heapq.heappush(self._heap, (read_at, next(self._seq), "c", data, arrival))

    def _deliver(self) -> None:
        while self._heap and self._heap[0][0] <= self.now + 1e-12:
            _, _, to, data, arrival = heapq.heappop(self._heap)
            if to == "h":
                self.host.receive_datagram(data, ADDR, self.now)
            else:
                stamp = arrival if self.kernel_stamps else None
                self.client.receive_datagram(data, self.now, stamp)
            self._collect()
        while (ce := self.client.next_event()) is not None:
            self.client_events.append(ce)
            if isinstance(ce, FrameReady):
                self.frames.append((self.now, ce))
        while (he := self.host.next_event()) is not None:
            self.host_events.append(he)

    def advance(self, until: float, on_tick: Callable[[float], None] | None = None) -> None:
        while self.now < until - 1e-12:
            self.now = min(until, self.now + STEP)
            if on_tick is not None:
                on_tick(self.now)
            for side in (self.client, self.host):
                t = side.next_timer()
                if t is not None and t <= self.now:
                    side.handle_timer(self.now)
            self._collect()
            self._deliver()
            self._collect()

    @property
    def alias(self) -> int:
        return next(iter(self.host.sessions))

    def stream(
        self, seconds: float, size: int | Callable[[int], int] = 12_000, fps: int = 60
    ) -> list[int]:
        """Send frames at `fps` for `seconds` (keyframe first); returns their frame ids."""
        self.streaming = True
        ids: list[int] = []
        end = self.now + seconds
        next_at = [self.now]

        def tick(now: float) -> None:
            if now + 1e-9 >= next_at[0] and now < end:
                n = len(ids)
                nbytes = size(n) if callable(size) else size
                data = bytes([n % 251]) * nbytes
                fid = self.host.send_frame(
                    self.alias, data, now, keyframe=n == 0, timestamp_us=round(now * 1e6)
                )
                ids.append(fid)
                next_at[0] += 1 / fps

        self.advance(end, tick)
        self.advance(end + 0.3)  # drain: repairs, feedback, jitter buffer
        return ids


def make(
    host_t: TransportConfig | None = None, client_t: TransportConfig | None = None, **kw: object
) -> Net:
    host = HostEndpoint(HOST_ID, HostConfig(trust_any=True, transport=host_t or TransportConfig()))
    ccfg = ClientConfig(transport=client_t or TransportConfig())
    net = Net(ClientSession(CLIENT_ID, ccfg), host, **kw)  # type: ignore[arg-type]
    net.client.connect(net.now)
    net._collect()
    net.advance(net.now + 0.1)
    assert net.host.sessions, "session not established"
    return net


def loopback_session() -> tuple[HostEndpoint, ClientSession, Loopback]:
    """A host and a client with an established session over the scripted `Loopback`."""
    host = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
    client = ClientSession(Identity.generate(), ClientConfig())
    lb = Loopback(client, host)
    client.connect(T0)
    lb.pump(T0)
    return host, client, lb


def presented_ids(net: Net) -> list[int]:
    return [f.frame.frame_id for _, f in net.frames]


def host_transport_events(net: Net, cls: type) -> list[object]:
    return [
        e.event
        for e in net.host_events
        if isinstance(e, ClientTransportEvent) and isinstance(e.event, cls)
    ]


def test_frames_arrive_complete_and_in_order() -> None:
    net = make()
    ids = net.stream(0.5, size=lambda n: 3_000 + 997 * (n % 7))
    got = [f.frame for _, f in net.frames]
    assert [f.frame_id for f in got] == ids
    for n, f in enumerate(got):
        assert f.data == bytes([n % 251]) * (3_000 + 997 * (n % 7))
    assert got[0].keyframe and not any(f.keyframe for f in got[1:])


def pin_two_parities(media: MediaSender) -> None:
    """Two parities per frame group (of at most 32), whatever the loss fit says."""

    def two(n: int, keyframe: bool) -> GroupPlan:
        groups = -(-n // 32)
        k = -(-n // groups)
        return GroupPlan(k, (0, *(min(2, i) for i in range(1, k)), 2))

    media.redundancy.frame_plan = two  # type: ignore[method-assign]
    # ... and the rate beside them fixed: the pacing, hence which ids fall into one group,
    # follows the overhead the policy reports, and that follows its fit of the loss
    media.redundancy.set_failure_cost = lambda frames: None  # type: ignore[method-assign]
    media.redundancy.on_feedback = lambda *args: None  # type: ignore[method-assign]


@pytest.mark.pure
def test_fec_repairs_scattered_losses_and_bursts_up_to_m_without_nack() -> None:
    # default FEC: m = 2 interleaved parities per group (one group per ~12-id frame); every 40
    # ids a single loss and a burst of 2 consecutive ids, 20 ids apart (never two in one group)
    net = make(drop_h2c=lambda pid: pid > 40 and pid % 40 in (0, 20, 21))
    client_tr = net.client.transport
    assert client_tr is not None
    # the repair mechanics, not the policy: two parities per frame group, whatever the fit says
    pin_two_parities(net.host.sessions[net.alias].transport.media)
    nacked: set[int] = set()
    send_nacks = client_tr.receiver._send_nacks

    def record(batches: list[list[int]], now: float) -> None:
        for b in batches:
            nacked.update(b)
        send_nacks(batches, now)

    client_tr.receiver._send_nacks = record  # type: ignore[method-assign]
    media = net.host.sessions[net.alias].transport.media
    parity_ids: set[int] = set()
    send_parities = media._send_parities

    def note_parities(parities: list[rift_pb2.FecPacket], now: float) -> int:
        first = media.channel.next_packet_id
        total = send_parities(parities, now)
        parity_ids.update(range(first, media.channel.next_packet_id))
        return total

    media._send_parities = note_parities  # type: ignore[method-assign]
    ids = net.stream(1.0)
    host_s = net.host.sessions[net.alias]
    assert len(net.dropped) >= 30
    assert presented_ids(net) == ids
    recovered = client_tr.stats.fec_recovered
    # a lost parity needs no repair (and is never resent): FEC rebuilt the lost data
    data_lost = set(net.dropped) - parity_ids
    assert recovered >= 0.8 * len(data_lost)
    # a NACK only for what FEC could not rebuild (a group that lost both of its parities)
    assert nacked <= set(net.dropped)
    assert len(nacked) <= len(net.dropped) - recovered
    assert host_s.transport.stats.retransmitted <= len(nacked)


@pytest.mark.pure
def test_a_chunk_fec_rebuilt_arrived_with_the_datagram_that_completed_it() -> None:
    """A busy client reads every datagram 4 ms after the kernel stamped it. A chunk FEC
    rebuilt counts as arrived when the datagram that completed its group did, not when it was
    read: the frame's chunk spacing (what times a tail loss's NACK) stays the path's own."""
    net = make(drop_h2c=lambda pid: pid > 40 and pid % 38 == 0, rx_lag_s=lambda pid: 0.004)
    client_tr = net.client.transport
    assert client_tr is not None
    pin_two_parities(net.host.sessions[net.alias].transport.media)
    receiver = client_tr.receiver
    spacings: list[float] = []
    frame_spacing = receiver._frame_spacing

    def note() -> float:
        spacings.append(frame_spacing())
        return spacings[-1]

    receiver._frame_spacing = note  # type: ignore[method-assign]
    ids = net.stream(1.0)
    assert presented_ids(net) == ids
    assert client_tr.stats.fec_recovered >= 10
    # a clean path: each frame's ~12 datagrams leave back to back; read times would add 4 ms
    # to the spread of every frame whose last chunk was rebuilt
    assert max(spacings) < 0.0001, sorted(spacings)[-3:]


def test_unrepairable_loss_is_nacked_at_once_and_resent_byte_identical() -> None:
    lost: set[int] = set()

    def drop(pid: int) -> bool:
        return pid in lost

    net = make(drop_h2c=drop)
    nack_seen_at: list[float] = []
    first_drop_at: list[float] = []

    def watch(now: float) -> None:
        tr = net.client.transport
        if net.dropped and not first_drop_at:
            first_drop_at.append(now)
        if tr is not None and tr.stats.nacks_sent and not nack_seen_at:
            nack_seen_at.append(now)

    net.streaming = True
    ids: list[int] = []
    end = net.now + 0.5
    nxt = [net.now]

    def tick(now: float) -> None:
        watch(now)
        if now + 1e-9 >= nxt[0] and now < end:
            host_tr = net.host.sessions[net.alias].transport
            first = host_tr.channel.next_packet_id
            if not lost and first > 200:
                # the first 4 chunks of this frame: two losses in each of the m = 2 classes
                lost.update(range(first, first + 4))
            ids.append(
                net.host.send_frame(
                    net.alias, bytes(12_000), now, keyframe=not ids, timestamp_us=round(now * 1e6)
                )
            )
            nxt[0] += 1 / 60

    net.advance(end, tick)
    net.advance(end + 0.3)
    assert sorted(net.dropped) == sorted(lost)
    # the gap is NACKed as soon as the client sees it (one-way delay after the loss), without
    # waiting for the FEC hold (20 ms) or any timer
    assert nack_seen_at and nack_seen_at[0] - first_drop_at[0] < net.delay_s + 0.003
    host_tr = net.host.sessions[net.alias].transport
    assert host_tr.stats.retransmitted >= 2
    resent = [pid for pid, copies in net.h2c_sent.items() if len(copies) > 1]
    assert resent and set(resent) <= lost
    for pid in resent:
        assert all(c == net.h2c_sent[pid][0] for c in net.h2c_sent[pid])  # identical bytes
    assert presented_ids(net) == ids


def test_no_repair_baseline_loses_frames_and_requests_a_keyframe() -> None:
    off = TransportConfig(fec=False, nack=False)
    client_off = TransportConfig(fec=False, nack=False)
    net = make(off, client_off, drop_h2c=lambda pid: pid > 40 and pid % 31 == 0)
    ids = net.stream(1.0)
    shown = presented_ids(net)
    assert len(shown) < len(ids)
    assert shown == sorted(shown)
    client_tr = net.client.transport
    assert client_tr is not None and client_tr.stats.fec_recovered == 0
    assert net.host.sessions[net.alias].transport.stats.retransmitted == 0
    requests = host_transport_events(net, KeyframeRequested)
    assert requests, "ReferenceInvalidation did not reach the host"


def test_feedback_every_50ms_and_stats_every_second() -> None:
    net = make()
    tr = net.client.transport
    assert tr is not None
    before = tr.stats.feedback_sent
    net.stream(2.0)
    sent = tr.stats.feedback_sent - before
    assert 30 <= sent <= 50  # ~2.3 s of media at one report per ~50 ms
    stats = host_transport_events(net, PeerStats)
    assert 2 <= len(stats) <= 3


def test_delta_backs_off_when_a_bottleneck_queue_grows() -> None:
    # 8 Mbit/s of media into a 4 Mbit/s FIFO: the one-way delay climbs
    net = make(TransportConfig(initial_bitrate_kbps=8000), rate_kbps=4000)
    net.stream(3.0, size=8_000_000 // 8 // 60)
    changes = host_transport_events(net, RateChanged)
    assert changes, "DELTA never changed the rate"
    assert min(c.target_bitrate_kbps for c in changes) < 4000  # type: ignore[attr-defined]
    assert any(c.state == "congested" for c in changes)  # type: ignore[attr-defined]
    # announced to the client with CongestionControl
    peer = [e for e in net.client_events if isinstance(e, RateChanged)]
    assert peer and peer[-1].state == "peer"
    announced = {c.target_bitrate_kbps for c in changes}  # type: ignore[attr-defined]
    assert all(p.target_bitrate_kbps in announced for p in peer)


def test_jitter_buffer_stays_at_zero_on_a_clean_path() -> None:
    net = make(delay_s=0.01)
    ids = net.stream(1.5, size=lambda n: 6_000 + 4_000 * (n % 3))
    tr = net.client.transport
    assert tr is not None
    assert presented_ids(net) == ids
    assert tr.jitter.delay_ms == 0.0
    # every frame is presented the moment its last chunk arrives
    assert all(t == f.frame.last_chunk_at for t, f in net.frames)


def test_a_keyframe_request_already_answered_is_absorbed() -> None:
    net = make()
    host_tr = net.host.sessions[net.alias].transport
    net.stream(0.2)  # frame 1 is the keyframe
    sender = host_tr.media
    # the client lost everything before the keyframe it is about to get: absorbed
    sender._last_keyframe_id, sender._keyframe_guard_until = 5, net.now + 1.0
    sender.on_reference_invalidation(0, net.now)
    assert host_tr.stats.keyframe_requests_absorbed == 1
    assert not any(isinstance(e, KeyframeRequested) for e in host_tr.drain_events())
    # after the guard, or for a frame after that keyframe, it is a real request
    sender._keyframe_guard_until = net.now - 0.001
    sender.on_reference_invalidation(0, net.now)
    assert any(isinstance(e, KeyframeRequested) for e in host_tr.drain_events())


def test_sender_skips_frames_while_a_capped_keyframe_drains() -> None:
    net = make()
    host_tr = net.host.sessions[net.alias].transport
    host_tr.media.pacer.set_rate_cap(4000, 6000)  # a known 4 Mbit/s bottleneck ...
    host_tr.media.pacer.set_clean_path(None)  # ... that showed its queue
    net.host.send_frame(net.alias, bytes(100_000), net.now, keyframe=True, timestamp_us=1)
    assert net.host.media_backlog_s(net.alias, net.now) > 0.1
    assert host_tr.should_skip_frame(net.now)
    assert host_tr.stats.frames_skipped_backlog == 1
    net.advance(net.now + 0.3)
    assert not host_tr.should_skip_frame(net.now)


@pytest.mark.pure
def test_clean_path_hands_a_frame_out_in_steps_while_sealing() -> None:
    """`send_frame(on_batch=...)` on a clean path: the adapter can send the first datagrams
    while the rest are sealed, and all the data before the last parities; the wire carries the
    same datagrams as a whole-frame send and the client assembles the frame. Without a clean
    path the frame is queued whole."""
    from wavry.rift.sender import FIRST_SEND_STEP_DATAGRAMS
    from wavry.rift.transport import SEND_STEP_DATAGRAMS, FrameReady

    host, client, lb = loopback_session()
    alias = next(iter(host.sessions))
    transport = host.sessions[alias].transport
    now = T0 + 0.1
    steps: list[int] = []
    wire: list[bytes] = []

    def on_batch() -> None:
        out = host.datagrams_to_send(now)
        steps.append(len(out))
        wire.extend(d for d, _ in out)

    data = bytes(range(256)) * 120  # 30 kB: about 23 chunks + parities
    pin_two_parities(transport.media)
    pacer = transport.media.pacer
    pacer.set_clean_path(None)
    host.send_frame(alias, data, now, keyframe=True, timestamp_us=1, on_batch=on_batch)
    assert steps == []  # not clean: queued whole
    lb.run_until(now, now + 0.05, step=0.001)
    assert pacer.queued_datagrams == 0
    pacer.set_clean_path(0.03)  # (the transport's own DELTA decisions say so later)
    now += 0.1  # an idle path refills the clean bucket
    fid = host.send_frame(alias, data, now, keyframe=False, timestamp_us=2, on_batch=on_batch)
    wire.extend(d for d, _ in host.datagrams_to_send(now))
    # a short first step (the client starts reading), steps of SEND_STEP_DATAGRAMS, then the
    # last chunks (and the parities of groups closed on the way) before the last group's
    # parities are computed
    assert steps[0] == FIRST_SEND_STEP_DATAGRAMS
    assert len(steps) >= 4 and all(n >= SEND_STEP_DATAGRAMS for n in steps[1:-1])
    tail = len(wire) - sum(steps)  # only the last group's parities come after the steps
    encoder = transport.media.fec_encoder
    assert encoder is not None and 1 <= tail <= encoder.m
    ids = [pid_of(d) for d in wire]
    assert ids == sorted(ids)  # packet ids still leave in order
    for d in wire:
        client.receive_datagram(d, now)
    frames = [e for e in iter(client.next_event, None) if isinstance(e, FrameReady)]
    assert [f.frame.frame_id for f in frames] == [fid]
    assert frames[0].frame.data == data


class StubController:
    """A congestion controller whose decision the test sets (the interface, nothing more)."""

    def __init__(self) -> None:
        self.decision = CongestionDecision(8000, 60, 8400, CongestionState.STABLE)

    def set(self, **changes: object) -> None:
        self.decision = dataclasses.replace(self.decision, **changes)  # type: ignore[arg-type]

    def on_packet_sent(self, packet_id: int, size_bytes: int, now: float) -> None:
        pass

    def on_feedback(self, arrivals: object, now: float) -> CongestionDecision:
        return self.decision

    def on_rtt_sample(self, rtt_s: float, now: float) -> None:
        pass

    def set_send_overhead(self, ratio: float) -> None:
        pass

    def tick(self, now: float) -> CongestionDecision:
        return self.decision

    def poll_congestion_control(self) -> None:
        return None

    def set_ceiling(self, max_bitrate_kbps: int | None, max_fps: int | None) -> None:
        pass


def stub_sender() -> tuple[MediaSender, StubController]:
    host, _, _ = loopback_session()
    sender = host.sessions[next(iter(host.sessions))].transport.media
    stub = StubController()
    sender.controller = stub
    return sender, stub


def test_short_runs_of_noisy_feedback_keep_a_clean_path_unless_a_bottleneck_is_known() -> None:
    """The clean-path rule: < 1 ms of queue is clean; up to CLEAN_QUEUE_NOISE_MS in runs of at
    most CLEAN_NOISE_REPORTS reports is receiver noise (a busy host, a browser's timestamps)
    while the controller knows no bottleneck; a queue that persists longer, a larger one, or any
    queue next to a measured bottleneck ends the clean state."""
    from wavry.rift.sender import CLEAN_NOISE_REPORTS, CLEAN_QUEUE_NOISE_MS
    from wavry.rift.transport import CLEAN_HOLD_S

    sender, stub = stub_sender()
    now = T0 + 1.0

    def decide(queue_ms: float, reports: int) -> bool:
        nonlocal now
        now += 0.05
        stub.set(queue_delay_ms=queue_ms)
        sender._queue_reports = reports
        sender._apply_decision(now)
        return sender.pacer.clean_path

    sender._last_unclean = now - CLEAN_HOLD_S - 1  # clean for long enough
    assert decide(0.5, 0)
    assert all(decide(1.5, n) for n in range(1, CLEAN_NOISE_REPORTS + 1))  # a run of noise
    assert decide(CLEAN_QUEUE_NOISE_MS - 0.5, 1)  # a single spike
    assert not decide(1.5, CLEAN_NOISE_REPORTS + 1)  # it persisted
    assert not decide(0.5, 0)  # and the 3 s hold restarts
    sender._last_unclean = -1e9
    assert decide(0.5, 0)
    assert not decide(CLEAN_QUEUE_NOISE_MS + 0.5, 1)  # over the noise threshold: a queue at once
    sender._last_unclean = -1e9
    stub.set(capacity_kbps=8000.0)  # a bottleneck measured just now
    assert not decide(1.5, 1)  # next to a known bottleneck: no tolerance
    assert not sender.pacer._clean_burst


def test_a_clean_loss_free_path_stops_sending_parities_and_losses_bring_them_back() -> None:
    """FEC follows the measured loss: the first frames are protected (the prior), a path that
    reports no loss for a few seconds gets none on its ordinary frames, and reported losses
    bring parities back."""
    lossy = [False]
    net = make(drop_h2c=lambda pid: lossy[0] and pid % 20 == 0)
    host_tr = net.host.sessions[net.alias].transport
    stats = host_tr.stats
    net.stream(0.3)
    assert stats.parity_sent > 0
    net.stream(5.0)
    before = stats.parity_sent
    net.stream(1.0)
    # clean: the second's ordinary frames carry no parity (its first frame is a keyframe, held
    # to a stricter target: a parity or two)
    assert stats.parity_sent - before <= 3
    lossy[0] = True
    net.stream(2.0)
    before = stats.parity_sent
    net.stream(1.0)
    assert stats.parity_sent - before >= 60  # about one frame in two or more carries parity


@pytest.mark.pure
def test_parities_follow_the_loss_bursts_of_a_lossy_link() -> None:
    """Bursts of 4 lost ids (no queue: a lossy link, not congestion) are beyond the prior's
    parities and need NACKs at first; once the policy has fitted them the groups carry enough
    parities and the same bursts are rebuilt by FEC with no NACK."""
    drop_times: dict[int, float] = {}

    def drop(pid: int) -> bool:
        lost = pid > 40 and pid % 60 in (10, 11, 12, 13)
        if lost:
            drop_times.setdefault(pid, net.now)
        return lost

    net = make(drop_h2c=drop)
    client_tr = net.client.transport
    assert client_tr is not None
    nacked: list[tuple[float, int]] = []
    send_nacks = client_tr.receiver._send_nacks

    def record(batches: list[list[int]], now: float) -> None:
        nacked.extend((now, pid) for b in batches for pid in b)
        send_nacks(batches, now)

    client_tr.receiver._send_nacks = record  # type: ignore[method-assign]
    start = net.now
    ids = net.stream(3.0)
    host_tr = net.host.sessions[net.alias].transport
    assert presented_ids(net) == ids
    # the fit saw runs of 4: a 9-datagram frame carries at least 4 parities
    assert host_tr.media.redundancy.plan(9, keyframe=False).m >= 4
    assert any(t < start + 1.0 for t, _ in nacked)  # the prior's m at first: bursts NACKed
    late_dropped = {pid for pid, t in drop_times.items() if t > start + 1.5}
    late_nacked = {pid for t, pid in nacked if t > start + 1.5}
    assert len(late_dropped) >= 60
    # left to NACK: bursts that took all 4 parities of a group and nothing else (the receiver
    # cannot tell a lost parity from a lost message); every lost video chunk was rebuilt
    assert late_nacked <= late_dropped
    assert len(late_nacked) <= 0.25 * len(late_dropped)


def _queue_seen_by_host(stamps: bool) -> list[float]:
    # ~11 ids a frame at 60 fps: 165 ids ≈ a quarter second
    net = make(rx_lag_s=lambda pid: 0.0025 if (pid // 165) % 2 else 0.0, kernel_stamps=stamps)
    host_tr = net.host.sessions[net.alias].transport
    queue: list[float] = []
    net.streaming = True
    end = net.now + 2.0
    nxt = [net.now]

    def tick(now: float) -> None:
        if now + 1e-9 >= nxt[0] and now < end:
            first = nxt[0] == net.now
            net.host.send_frame(net.alias, bytes(12_000), now, keyframe=first, timestamp_us=0)
            nxt[0] += 1 / 60
        queue.append(host_tr.decision.queue_delay_ms)

    net.advance(end, tick)
    return queue[len(queue) // 2 :]


@pytest.mark.parametrize("stamps", [True, False])
def test_a_busy_client_reports_kernel_arrival_times_so_delta_sees_no_queue(stamps: bool) -> None:
    """Every other quarter second the client reads datagrams 2.5 ms late (busy), network
    unchanged. With the kernel's arrival time in the feedback the host's DELTA sees an empty
    queue; told the read time instead, it takes the client's work for a queue."""
    late = _queue_seen_by_host(stamps)
    if stamps:
        assert max(late) < 0.2
    else:
        assert max(late) > 2.0
        assert sum(q > 1.0 for q in late) > 0.25 * len(late)


def test_the_host_tells_delta_what_its_frames_really_cost_on_the_wire() -> None:
    """Small frames carry proportionally many parities; DELTA's media target leaves room."""
    host, _, _ = loopback_session()
    alias = next(iter(host.sessions))
    transport = host.sessions[alias].transport
    now = T0 + 0.1
    media = wire = 0
    host.send_frame(alias, bytes(20_000), now, keyframe=True, timestamp_us=1)
    now += 0.5
    host.datagrams_to_send(now)  # the keyframe has left
    for n in range(60):
        now += 1 / 60
        host.send_frame(alias, bytes(4_000), now, keyframe=False, timestamp_us=2 + n)
        out = host.datagrams_to_send(now + 0.015)
        media += 4_000
        wire += sum(len(d) for d, _ in out)
    measured = wire / media - 1  # 3 or 4 datagrams and their parities per 4 kB frame
    assert measured > 0.15
    d = transport.decision
    assert d.target_bitrate_kbps == pytest.approx(d.send_rate_kbps / (1 + measured), rel=0.05)


def test_pings_pongs_and_nacks_are_never_resent_but_input_is() -> None:
    """Karn's rule: an RTT sample from a resent Ping or Pong is inflated by the repair, and the
    NACK tracker spaces its re-requests by that RTT."""
    net = make()
    client_tr = net.client.transport
    host_tr = net.host.sessions[net.alias].transport
    assert client_tr is not None
    now = net.now
    ctl = rift_pb2.ControlMessage
    ping = client_tr.send_message(
        rift_pb2.Message(control=ctl(ping=rift_pb2.Ping(timestamp_us=1))), now
    )
    nack = client_tr.send_message(
        rift_pb2.Message(control=ctl(nack=rift_pb2.Nack(packet_ids=[9]))), now
    )
    key = client_tr.send_message(
        rift_pb2.Message(input=rift_pb2.InputMessage(key=rift_pb2.Key(keycode=30, pressed=True))),
        now,
    )
    pong = host_tr.send_message(
        rift_pb2.Message(control=ctl(pong=rift_pb2.Pong(timestamp_us=1))), now
    )
    assert client_tr.sender.history.resend([ping, nack], now) == []
    assert host_tr.sender.history.resend([pong], now) == []
    assert len(client_tr.sender.history.resend([key], now)) == 1


def test_the_client_measures_the_rtt_as_soon_as_the_session_is_accepted() -> None:
    """The NACK tracker spaces re-requests by the RTT; it must not run on a guess (50 ms)
    until the periodic Ping (every 0.5 s)."""
    net = make()  # connected, then 0.1 s of nothing but the session set-up
    assert net.client.clock.samples == 1
    assert net.client.clock.srtt_s == pytest.approx(2 * net.delay_s, abs=0.002)


def test_rerequests_wait_for_the_queue_the_media_waits_in() -> None:
    """A resend waits in the same queue as the media: the NACK tracker's RTT is at least the
    smallest ping RTT plus the queueing delay frames show now, not the last (pre-queue) ping."""
    host_cfg = TransportConfig(initial_bitrate_kbps=8000, controller="fixed")
    net = make(host_cfg, rate_kbps=4000)  # 8 Mbit/s into a 4 Mbit/s FIFO: a queue builds
    client_tr = net.client.transport
    assert client_tr is not None
    net.stream(0.35, size=8_000_000 // 8 // 60)
    ping_rtt = net.client.clock.min_rtt_s  # the ping at acceptance, before the queue
    assert ping_rtt is not None and ping_rtt < 0.02
    assert client_tr.nack.rtt > ping_rtt + 0.08


@pytest.mark.pure
def test_a_frame_whose_tail_and_parities_are_lost_is_nacked_before_the_next_frame() -> None:
    """A burst that takes a frame's last chunks takes its parities (sent right behind them)
    too, and no later datagram shows the gap until the next frame, 16.7 ms on. The client
    knows from the chunk count that the frame goes on and asks once the lane has been quiet
    for the FEC hold."""

    def groups_of_a_clean_run() -> list[tuple[int, int, list[int]]]:
        """(first id, data datagrams, parity ids) of every FEC group of a lossless run."""
        net = make()
        media = net.host.sessions[net.alias].transport.media
        pin_two_parities(media)
        groups: list[tuple[int, int, list[int]]] = []
        send_parities = media._send_parities

        def note(parities: list[rift_pb2.FecPacket], now: float) -> int:
            first = media.channel.next_packet_id
            total = send_parities(parities, now)
            if parities:
                fec = parities[0]
                ids = list(range(first, media.channel.next_packet_id))
                groups.append((fec.first_packet_id, fec.shard_count, ids))
            return total

        media._send_parities = note  # type: ignore[method-assign]
        net.stream(1.0)
        return groups

    groups = groups_of_a_clean_run()
    first, k, parity_ids = groups[40]  # a frame of ~9 chunks, 0.6 s into the stream
    lost = {first + k - 2, first + k - 1, *parity_ids}
    net = make(drop_h2c=lambda pid: pid in lost)
    pin_two_parities(net.host.sessions[net.alias].transport.media)
    client_tr = net.client.transport
    assert client_tr is not None
    nacks: list[tuple[float, list[int]]] = []
    send_nacks = client_tr.receiver._send_nacks

    def record(batches: list[list[int]], now: float) -> None:
        for b in batches:
            nacks.append((now, b))
        send_nacks(batches, now)

    client_tr.receiver._send_nacks = record  # type: ignore[method-assign]
    sent_at: dict[int, float] = {}
    to_send = net.host.datagrams_to_send

    def noting(now: float) -> list[tuple[bytes, tuple[str, int]]]:
        out = to_send(now)
        for d, _ in out:
            sent_at.setdefault(pid_of(d), now)
        return out

    net.host.datagrams_to_send = noting  # type: ignore[method-assign]
    ids = net.stream(1.0)
    assert sorted(net.dropped) == sorted(lost)  # the same ids as in the clean run
    assert presented_ids(net) == ids
    asked = [(t, b) for t, b in nacks if first + k - 1 in b]
    assert asked, nacks
    when, batch = asked[0]
    assert {first + k - 2, first + k - 1} <= set(batch)
    last_seen = sent_at[first + k - 3] + net.delay_s  # the frame's last chunk that arrived
    next_frame = min(t for pid, t in sent_at.items() if pid > max(lost)) + net.delay_s
    assert when <= last_seen + 0.005 + 0.002  # the FEC hold, and the 0.5 ms steps
    assert when < next_frame - 0.005
    assert client_tr.nack.stats.tail_ids >= 2
