"""Deterministic bottleneck simulation for tuning and testing DELTA (pure: no I/O, no clock).

One sender, one drop-tail bottleneck of (time-varying) capacity C, a fixed propagation delay
each way, and the real receiver/sender path: `FeedbackBuilder` → serialized `TransportFeedback`
→ `DeltaController.on_transport_feedback`. The receiver's clock is offset from the sender's by
`receiver_clock_offset_s` to show that DELTA never compares the two clocks.

Sender modes: FLUID sends `packet_bytes` datagrams evenly spaced at the controller's rate;
PACED_FRAMES builds one frame per frame interval (rate / fps bytes) and sends it through the real
`Pacer`. Everything is a pure function of the inputs (random loss uses a seeded generator).
"""

from __future__ import annotations

import enum
import math
import random
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise

from wavry.rift import rift_pb2
from wavry.rift.congestion import CongestionController, CongestionState
from wavry.rift.feedback import FeedbackBuilder, FeedbackConfig, parse_feedback
from wavry.rift.pacer import Pacer, PacerConfig
from wavry.rift.redundancy import RedundancyPolicy

__all__ = [
    "BottleneckLink",
    "DecisionRecord",
    "LinkSpec",
    "PacketRecord",
    "SenderMode",
    "SimResult",
    "simulate",
]


class SenderMode(enum.Enum):
    FLUID = "fluid"
    PACED_FRAMES = "paced_frames"


@dataclass(frozen=True, slots=True)
class LinkSpec:
    #: (from time s, capacity kbit/s) steps, sorted, the first at 0
    capacity_steps: tuple[tuple[float, float], ...]
    one_way_delay_s: float = 0.02
    queue_limit_bytes: int = 150_000
    random_loss: float = 0.0
    seed: int = 1
    receiver_clock_offset_s: float = 1000.0

    def __post_init__(self) -> None:
        steps = self.capacity_steps
        if not steps or steps[0][0] != 0 or any(a[0] >= b[0] for a, b in pairwise(steps)):
            raise ValueError("capacity_steps must be sorted by time and start at 0")
        if min(c for _, c in steps) <= 0:
            raise ValueError("capacities must be > 0")

    @classmethod
    def constant(
        cls, capacity_kbps: float, one_way_delay_s: float = 0.02, queue_limit_bytes: int = 150_000
    ) -> LinkSpec:
        return cls(((0.0, capacity_kbps),), one_way_delay_s, queue_limit_bytes)

    def capacity_at(self, t: float) -> float:
        index = bisect_right([start for start, _ in self.capacity_steps], t) - 1
        return self.capacity_steps[max(index, 0)][1]

    def capacity_bits(self, t0: float, t1: float) -> float:
        """Integral of the capacity over [t0, t1), in bits."""
        total = 0.0
        steps = self.capacity_steps
        for i, (start, kbps) in enumerate(steps):
            end = steps[i + 1][0] if i + 1 < len(steps) else math.inf
            lo, hi = max(start, t0), min(end, t1)
            if hi > lo:
                total += (hi - lo) * kbps * 1000
        return total


class BottleneckLink:
    """FIFO drop-tail queue served at the capacity in force when a packet starts service."""

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._in_queue: deque[tuple[float, int]] = deque()  # (departure, size)
        self._queued_bytes = 0
        self._last_departure = 0.0
        self.drops = 0
        self.random_drops = 0

    def queue_wait(self, now: float) -> float:
        """How long a packet arriving at `now` would wait before service."""
        return max(0.0, self._last_departure - now)

    def send(self, size: int, now: float) -> tuple[float | None, float, float | None]:
        """(arrival time at the receiver or None if lost, queue wait, departure or None)."""
        if self.spec.random_loss and self._rng.random() < self.spec.random_loss:
            self.random_drops += 1
            return None, 0.0, None
        while self._in_queue and self._in_queue[0][0] <= now:
            self._queued_bytes -= self._in_queue.popleft()[1]
        wait = self.queue_wait(now)
        if self._queued_bytes + size > self.spec.queue_limit_bytes:
            self.drops += 1
            return None, wait, None
        start = now + wait
        departure = start + size * 8 / (self.spec.capacity_at(start) * 1000)
        self._last_departure = departure
        self._in_queue.append((departure, size))
        self._queued_bytes += size
        return departure + self.spec.one_way_delay_s, wait, departure


@dataclass(frozen=True, slots=True)
class PacketRecord:
    packet_id: int
    send_time: float
    size: int
    queue_wait_s: float
    departure: float | None  # None: dropped


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    time: float
    send_rate_kbps: float
    target_bitrate_kbps: int
    target_fps: int
    fec_ratio: float
    state: CongestionState | None


@dataclass(slots=True)
class SimResult:
    link: LinkSpec
    packets: list[PacketRecord] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    feedback_messages: int = 0
    max_feedback_bytes: int = 0

    def utilisation(self, t0: float, t1: float) -> float:
        """Bits that left the bottleneck in [t0, t1) / capacity over [t0, t1)."""
        bits = sum(
            p.size * 8 for p in self.packets if p.departure is not None and t0 <= p.departure < t1
        )
        return bits / self.link.capacity_bits(t0, t1)

    def queue_delay_ms(self, t0: float, t1: float, percentile: float = 1.0) -> float:
        """Percentile (1.0 = max) of the queue wait of packets sent in [t0, t1) and not dropped."""
        waits = sorted(
            p.queue_wait_s
            for p in self.packets
            if p.departure is not None and t0 <= p.send_time < t1
        )
        if not waits:
            return 0.0
        index = min(len(waits) - 1, max(0, math.ceil(percentile * len(waits)) - 1))
        return waits[index] * 1000

    def drops(self, t0: float, t1: float) -> int:
        return sum(1 for p in self.packets if p.departure is None and t0 <= p.send_time < t1)

    def decision_at(self, t: float) -> DecisionRecord:
        """The last decision recorded at or before `t`."""
        index = bisect_right([d.time for d in self.decisions], t) - 1
        return self.decisions[max(index, 0)]


def simulate(
    link: LinkSpec,
    duration_s: float,
    controller: CongestionController | None,
    *,
    fixed_rate_kbps: float = 20_000.0,
    mode: SenderMode = SenderMode.FLUID,
    packet_bytes: int = 1200,
    fps: int = 60,
    pacer_config: PacerConfig | None = None,
    feedback_config: FeedbackConfig | None = None,
    rtt_interval_s: float = 0.5,
    tick_interval_s: float = 0.05,
) -> SimResult:
    """Run the scenario for `duration_s` seconds; without a controller, send at a fixed rate.

    The FEC ratio in the decisions is the sender's redundancy policy fed the same feedback."""
    result = SimResult(link)
    redundancy = RedundancyPolicy()
    bottleneck = BottleneckLink(link)
    builder = FeedbackBuilder(feedback_config)
    offset = link.receiver_clock_offset_s
    owd = link.one_way_delay_s
    arrivals: deque[tuple[float, int]] = deque()  # (arrival, packet id), in order
    in_flight: deque[tuple[float, bytes]] = deque()  # feedback on its way back
    pacer = Pacer(pacer_config) if mode is SenderMode.PACED_FRAMES else None
    next_id = 1
    next_media = 0.0
    next_rtt = 0.0
    next_tick = 0.0

    def rate_kbps() -> float:
        return controller.decision.send_rate_kbps if controller else fixed_rate_kbps

    def frame_rate() -> int:
        return controller.decision.target_fps if controller else fps

    def transmit(size: int, now: float) -> None:
        nonlocal next_id
        packet_id = next_id
        next_id += 1
        if controller is not None:
            controller.on_packet_sent(packet_id, size, now)
        arrival, wait, departure = bottleneck.send(size, now)
        result.packets.append(PacketRecord(packet_id, now, size, wait, departure))
        if arrival is not None:
            arrivals.append((arrival, packet_id))

    def record(now: float) -> None:
        if controller is None:
            result.decisions.append(DecisionRecord(now, fixed_rate_kbps, 0, fps, 0.0, None))
            return
        d = controller.decision
        ratio = redundancy.ratio
        result.decisions.append(
            DecisionRecord(
                now, d.send_rate_kbps, d.target_bitrate_kbps, d.target_fps, ratio, d.state
            )
        )

    now = 0.0
    while True:
        fb_due = builder.next_timer()
        candidates = [next_media, next_rtt, next_tick]
        if pacer is not None and (send_at := pacer.next_send_time()) is not None:
            candidates.append(send_at)
        if arrivals:
            candidates.append(arrivals[0][0])
        if fb_due is not None:
            candidates.append(fb_due - offset)
        if in_flight:
            candidates.append(in_flight[0][0])
        now = max(now, min(candidates))
        if now > duration_s:
            break
        while arrivals and arrivals[0][0] <= now:
            arrival, packet_id = arrivals.popleft()
            builder.on_packet(packet_id, arrival + offset)
        fb_due = builder.next_timer()
        if fb_due is not None and fb_due - offset <= now + 1e-9:
            while (msg := builder.build(now + offset)) is not None:
                data = msg.SerializeToString()
                result.feedback_messages += 1
                result.max_feedback_bytes = max(result.max_feedback_bytes, len(data))
                in_flight.append((now + owd, data))
        while in_flight and in_flight[0][0] <= now:
            data = in_flight.popleft()[1]
            if controller is not None:
                parsed = parse_feedback(rift_pb2.TransportFeedback.FromString(data))
                decision = controller.on_feedback(parsed, now)
                redundancy.on_feedback(parsed, decision, now)
                record(now)
        if next_rtt <= now:
            next_rtt = now + rtt_interval_s
            if controller is not None:
                controller.on_rtt_sample(2 * owd + bottleneck.queue_wait(now), now)
        if next_tick <= now:
            next_tick = now + tick_interval_s
            if controller is not None:
                controller.tick(now)
            record(now)
        if next_media <= now:
            if pacer is None:
                transmit(packet_bytes, now)
                next_media = now + packet_bytes * 8 / (rate_kbps() * 1000)
            else:
                current_fps = frame_rate()
                frame_bytes = max(1, round(rate_kbps() * 1000 / 8 / current_fps))
                sizes = [packet_bytes] * (frame_bytes // packet_bytes)
                if frame_bytes % packet_bytes:
                    sizes.append(frame_bytes % packet_bytes)
                pacer.set_target(rate_kbps(), current_fps)
                pacer.enqueue([bytes(size) for size in sizes], now)
                next_media = now + 1 / current_fps
        if pacer is not None:
            send_at = pacer.next_send_time()
            if send_at is not None and send_at <= now:
                for datagram, _, _ in pacer.pop_ready(now):
                    transmit(len(datagram), now)
    return result
