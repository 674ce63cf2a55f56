"""DELTA: delay-based congestion control (sender side, RIFT §8), a `CongestionController`.

Sans-I/O: time is always a `now` argument in seconds (sender monotonic clock); arrival times in
feedback are on the receiver's clock. The two clocks are never compared directly: one-way delay
(`arrival - send`) is taken relative to its own minimum over `base_delay_window_s`, so a constant
offset between the hosts cancels. See docs/rate-control.md for the algorithm and the tunables.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from wavry.rift import rift_pb2
from wavry.rift.congestion import CongestionDecision, CongestionState, FeedbackArrivals
from wavry.rift.feedback import parse_feedback
from wavry.rift.rtt import WindowedMin

__all__ = ["DeltaController", "DeltaDecision", "DeltaState", "DeltaTunables"]

#: DELTA's states and decision are the congestion-control interface's (congestion.py)
DeltaState = CongestionState
DeltaDecision = CongestionDecision


@dataclass(frozen=True)
class DeltaTunables:
    """Every DELTA constant. Rates in kbit/s, delays in ms, times in s, ratios as fractions."""

    min_bitrate_kbps: int = 500
    max_bitrate_kbps: int = 80_000
    # queueing delay (one-way delay above its windowed minimum)
    queue_delay_budget_ms: float = 7.0
    base_delay_window_s: float = 10.0
    #: the standing queue is the lowest queueing delay over the last max(this, 1.2 frame
    #: intervals) of a feedback batch, so the pacer's intra-frame bursts are not counted.
    queue_filter_s: float = 0.02
    trend_samples: int = 4
    #: the budget also counts as exceeded when queue + trend × this horizon is above it (it
    #: covers the feedback lag during a fast ramp); 0 = only the measured queue counts
    queue_prediction_s: float = 0.08
    rising_slope_ms_per_s: float = 8.0
    rising_min_queue_ms: float = 2.0
    # consecutive feedback samples needed for the non-immediate transitions
    samples_to_rising: int = 2
    samples_rising_to_congested: int = 4
    samples_to_stable: int = 3
    # decrease
    decrease_factor: float = 0.85
    min_decrease_interval_s: float = 0.2
    #: short, so a decrease right after a capacity drop sees the new delivery rate
    delivery_rate_window_s: float = 0.15
    # increase: a step of rate × fraction × dt × headroom, headroom = 1 - queue / budget
    increase_fraction_per_s: float = 0.65
    near_increase_fraction_per_s: float = 0.1
    #: "near" = from (1 - near_band_below) to (1 + near_band_above) × the rate at the last
    #: congestion; past the upper edge the capacity has probably grown: fast increase again
    near_band_below: float = 0.1
    near_band_above: float = 0.05
    min_increase_kbps_per_s: float = 100.0
    #: never raise the rate above this × the measured delivery rate (app-limited sender)
    app_limited_headroom: float = 1.5
    max_update_dt_s: float = 0.2
    #: a feedback batch with at least this loss fraction counts as over the budget
    heavy_loss_fraction: float = 0.3
    #: no feedback for this long while packets are outstanding counts as congestion
    feedback_timeout_s: float = 0.5
    # frame rate
    fps_steps: tuple[int, ...] = (60, 45, 30)
    #: step down once a congestion episode has lasted this long (and again after as long)
    fps_down_after_s: float = 1.0
    #: step up after this long without an episode longer than fps_down_after_s
    fps_up_after_s: float = 5.0
    #: a congestion episode starts on entering CONGESTED and ends after this long in STABLE;
    #: the short CONGESTED blips of normal probing at capacity therefore never step fps down
    congestion_episode_gap_s: float = 1.0
    #: what the sender adds per media byte (parities, headers, tags) until it reports its own
    #: measure (`set_send_overhead`): the media target is send rate / (1 + overhead)
    initial_overhead: float = 0.05
    loss_ewma_alpha: float = 0.05
    #: the path's capacity estimate (delivery rate at the last congestion) is forgotten after
    #: this long without congestion
    capacity_memory_s: float = 30.0
    # CongestionControl messages
    report_change_fraction: float = 0.05
    # bookkeeping
    send_record_ttl_s: float = 2.0
    max_send_records: int = 65536

    def __post_init__(self) -> None:
        if not 0 < self.min_bitrate_kbps <= self.max_bitrate_kbps:
            raise ValueError("need 0 < min_bitrate_kbps <= max_bitrate_kbps")
        if not 0 < self.decrease_factor < 1:
            raise ValueError("decrease_factor must be in (0, 1)")
        if not 0 <= self.initial_overhead <= 1:
            raise ValueError("need 0 <= initial_overhead <= 1")
        if self.queue_delay_budget_ms <= 0:
            raise ValueError("queue_delay_budget_ms must be > 0")
        if not self.fps_steps or min(self.fps_steps) <= 0:
            raise ValueError("fps_steps must be positive frame rates")
        if min(self.trend_samples, self.samples_to_rising, self.samples_to_stable) < 1:
            raise ValueError("sample counts must be >= 1")


class _SendRecord:  # a sent datagram's; not a dataclass (wavry/native.py: made per datagram)
    __slots__ = ("send_time", "size")

    def __init__(self, send_time: float, size: int) -> None:
        self.send_time = send_time
        self.size = size


class DeltaController:
    """The DELTA congestion controller (RIFT §8), driven by `TransportFeedback` and RTT samples.

    Feed it `on_packet_sent` for every transport datagram, `on_feedback` (or
    `on_transport_feedback`) for every feedback message, `on_rtt_sample` for Ping/Pong RTTs and
    `tick(now)` about every 50–100 ms; read `decision`, and send the message returned by
    `poll_congestion_control()` whenever it is not None. Implements `CongestionController`.
    """

    def __init__(
        self,
        initial_bitrate_kbps: int,
        max_fps: int = 60,
        tunables: DeltaTunables | None = None,
    ) -> None:
        self.tunables = t = tunables if tunables is not None else DeltaTunables()
        if max_fps <= 0:
            raise ValueError("max_fps must be > 0")
        self._fps_ladder = sorted({max_fps, *(s for s in t.fps_steps if s < max_fps)}, reverse=True)
        self._fps_index = 0
        #: the receiver's own limits (`set_ceiling`): media kbit/s and frames per second
        self._peer_max_kbps: int | None = None
        self._peer_max_fps: int | None = None
        #: wire bytes per media byte - 1 as the sender measured it (`set_send_overhead`)
        self._send_overhead = t.initial_overhead
        self._rate = 0.0  # total sending rate (media + what the sender adds), kbit/s
        self._set_rate(initial_bitrate_kbps * (1 + self._send_overhead))
        self._state = DeltaState.STABLE
        self._sent: OrderedDict[int, _SendRecord] = OrderedDict()
        #: `on_packet_sent` skips `_expire_records` before this time
        self._records_expire_at = -math.inf
        self._base_delay = WindowedMin(t.base_delay_window_s)
        self._trend: deque[tuple[float, float]] = deque(maxlen=t.trend_samples)
        self._delivered: deque[tuple[float, int]] = deque()  # (receiver arrival s, bytes)
        self._queue_ms = 0.0
        self._slope = 0.0
        self._loss = 0.0
        self._random_loss = 0.0
        self._srtt: float | None = None
        self._rising_count = 0
        self._calm_count = 0
        self._last_update: float | None = None
        self._last_decrease = -math.inf
        self._last_feedback: float | None = None
        self._congested_rate: float | None = None
        self._congested_at = -math.inf
        self._capacity: float | None = None
        self._episode_start: float | None = None
        self._episodes = 0  # congestion episodes so far
        self._stable_since: float | None = None
        self._last_fps_change = -math.inf
        self._last_sustained = -math.inf  # last moment of an episode >= fps_down_after_s
        self._episode_congested_s = 0.0  # non-STABLE time in the current episode
        self._congested_since_step = 0.0  # ... since the last fps step down
        self._last_fps_update: float | None = None
        self._batch_delivery: float | None = None  # kbit/s over the latest feedback batch
        self._last_reported: tuple[int, int] | None = None
        self._last_now = -math.inf  # the latest `now` of any input
        self._decide()

    # ----------------------------------------------------------------- read-only state
    @property
    def state(self) -> DeltaState:
        return self._state

    @property
    def queue_delay_ms(self) -> float:
        """Latest standing-queue estimate (one-way delay above its windowed minimum)."""
        return self._queue_ms

    @property
    def loss_fraction(self) -> float:
        """Smoothed fraction of packets reported lost."""
        return self._loss

    @property
    def random_loss_fraction(self) -> float:
        """Smoothed loss fraction of the feedback batches that showed no congestion."""
        return self._random_loss

    @property
    def smoothed_rtt_s(self) -> float | None:
        return self._srtt

    def capacity_kbps(self, now: float) -> float | None:
        """Estimated bottleneck capacity: the delivery rate measured at the last congestion
        (a standing queue drains at the link's rate), or None if there was none recently."""
        if self._capacity is None:
            return None
        if now > self._congested_at + self.tunables.capacity_memory_s:
            return None
        return self._capacity

    @property
    def delivery_rate_kbps(self) -> float | None:
        """Rate at which the receiver got our packets over the last delivery-rate window."""
        return _rate_kbps(self._delivered)

    @property
    def decision(self) -> CongestionDecision:
        return self._decision

    def _decide(self) -> CongestionDecision:
        """Recompute the decision (after every input, so that reading it costs nothing)."""
        media = self._rate / (1 + self._send_overhead)
        fps = min(self._fps_ladder[self._fps_index], self._peer_max_fps or 1_000)
        self._decision = CongestionDecision(
            target_bitrate_kbps=round(media),
            target_fps=fps,
            send_rate_kbps=round(self._rate),
            state=self._state,
            queue_delay_ms=self._queue_ms,
            loss_fraction=self._loss,
            random_loss_fraction=self._random_loss,
            capacity_kbps=self.capacity_kbps(self._last_now),
            smoothed_rtt_s=self._srtt,
        )
        return self._decision

    # ----------------------------------------------------------------- inputs
    def set_send_overhead(self, ratio: float) -> None:
        """What the sender really puts on the wire per media byte, minus 1: the parities at the
        group sizes frames actually give (a 5-datagram frame with one parity is 20 %, whatever
        the FEC ratio asked for), datagram headers and tags. The media target then leaves room
        for it, so that media plus overhead is the rate DELTA controls; without it a sender
        over its own estimate probes past the capacity before the gentle band near it starts."""
        ratio = min(max(ratio, 0.0), 1.0)
        if ratio != self._send_overhead:
            self._send_overhead = ratio
            self._set_rate(self._rate)  # the bounds apply to the media target
            self._decide()

    def on_packet_sent(self, packet_id: int, size_bytes: int, now: float) -> None:
        """Record a new transport datagram (any kind) leaving the host at `now`.

        A retransmission (same packet id as a recorded datagram) keeps the original record.
        """
        sent = self._sent
        if packet_id not in sent:
            sent[packet_id] = _SendRecord(now, size_bytes)
        # runs for every datagram sent: the full check only when a record may be due
        if now >= self._records_expire_at or len(sent) > self.tunables.max_send_records:
            self._expire_records(now)

    def on_rtt_sample(self, rtt_s: float, now: float) -> None:
        if rtt_s <= 0:
            return
        self._srtt = rtt_s if self._srtt is None else 0.875 * self._srtt + 0.125 * rtt_s
        self._last_now = now
        self._decide()

    def on_transport_feedback(
        self, msg: rift_pb2.TransportFeedback, now: float
    ) -> CongestionDecision:
        """Parse and apply one feedback message (raises `FeedbackError` if it is malformed)."""
        return self.on_feedback(parse_feedback(msg), now)

    def on_feedback(self, arrivals: FeedbackArrivals, now: float) -> CongestionDecision:
        """Apply parsed feedback: `(packet_id, receiver arrival time s, or None when lost)`."""
        t = self.tunables
        samples: list[tuple[float, float]] = []  # (send time, one-way delay incl. clock offset)
        batch: list[tuple[float, int]] = []  # (arrival, size)
        lost = 0
        for packet_id, arrival in arrivals:
            record = self._sent.pop(packet_id, None)
            if record is None:
                continue  # not ours, expired, or already reported
            if arrival is None:
                lost += 1
                continue
            owd = arrival - record.send_time
            samples.append((record.send_time, owd))
            self._base_delay.update(owd, now)
            batch.append((arrival, record.size))
        if not samples and not lost:
            return self.tick(now)
        self._last_now = now
        self._last_feedback = now
        batch.sort()
        self._delivered.extend(batch)
        self._trim_delivered()
        self._batch_delivery = _rate_kbps(batch)
        batch_loss = lost / (lost + len(samples))
        self._loss += t.loss_ewma_alpha * (batch_loss - self._loss)

        base = self._base_delay.get(now)
        if samples and base is not None:
            newest = max(send for send, _ in samples)
            window = max(t.queue_filter_s, 1.2 / self._fps_ladder[self._fps_index])
            standing = min(owd for send, owd in samples if send >= newest - window)
            self._queue_ms = max(0.0, (standing - base) * 1000)
            self._trend.append((now, self._queue_ms))
            self._slope = _slope(self._trend)
        predicted = self._queue_ms + max(self._slope, 0.0) * t.queue_prediction_s
        # heavy loss with no queue at all is not a full bottleneck buffer (e.g. a route or
        # link change that flushed it): the delay signal decides then
        heavy = batch_loss >= t.heavy_loss_fraction and self._queue_ms >= t.rising_min_queue_ms
        over = predicted > t.queue_delay_budget_ms or heavy
        self._transition(now, over)
        if (
            self._state is DeltaState.CONGESTED
            and self._batch_delivery is not None
            and self._queue_ms > t.queue_delay_budget_ms
        ):
            self._note_capacity(self._batch_delivery, now)  # every busy batch, not only decreases
        if not over and self._state is DeltaState.STABLE:
            self._random_loss += t.loss_ewma_alpha * (batch_loss - self._random_loss)
        self._update_rate(now)
        self._update_fps(now)
        return self._decide()

    def tick(self, now: float) -> CongestionDecision:
        """Time-driven work: feedback timeout, frame-rate steps. Call every 50–100 ms."""
        t = self.tunables
        self._last_now = now
        self._expire_records(now)
        last = self._last_feedback
        if self._sent and (last is None or now >= last + t.feedback_timeout_s):
            oldest = next(iter(self._sent.values())).send_time
            if now >= oldest + t.feedback_timeout_s:
                if self._state is not DeltaState.CONGESTED:
                    self._enter(DeltaState.CONGESTED, now)
                elif now >= self._last_decrease + t.feedback_timeout_s:
                    self._decrease(now, use_delivery=False)
        self._update_fps(now)
        return self._decide()

    def poll_congestion_control(self) -> rift_pb2.CongestionControl | None:
        """A `CongestionControl` to send if the decision changed enough since the last one."""
        decision = self.decision
        current = (decision.target_bitrate_kbps, decision.target_fps)
        last = self._last_reported
        if last is not None:
            changed = abs(current[0] - last[0]) >= self.tunables.report_change_fraction * last[0]
            if not changed and current[1] == last[1]:
                return None
        self._last_reported = current
        return rift_pb2.CongestionControl(target_bitrate_kbps=current[0], target_fps=current[1])

    # ----------------------------------------------------------------- internals
    def _expire_records(self, now: float) -> None:
        t = self.tunables
        sent = self._sent
        while sent:
            oldest = next(iter(sent.values()))
            if now <= oldest.send_time + t.send_record_ttl_s and len(sent) <= t.max_send_records:
                # nothing turns stale before the oldest record does
                self._records_expire_at = oldest.send_time + t.send_record_ttl_s
                return
            sent.popitem(last=False)
        self._records_expire_at = -math.inf

    def _trim_delivered(self) -> None:
        delivered = self._delivered
        newest = max(arrival for arrival, _ in delivered) if delivered else 0.0
        while delivered and delivered[0][0] < newest - self.tunables.delivery_rate_window_s:
            delivered.popleft()

    def _enter(self, state: DeltaState, now: float) -> None:
        if state is self._state:
            return
        self._state = state
        self._rising_count = 0
        self._calm_count = 0
        if state is DeltaState.STABLE:
            self._stable_since = now
        else:
            self._stable_since = None
        if state is DeltaState.CONGESTED:
            if self._episode_start is None:
                self._episode_start = now
                self._episodes += 1
            self._decrease(now, use_delivery=True)

    def _transition(self, now: float, over: bool) -> None:
        t = self.tunables
        if over:
            self._enter(DeltaState.CONGESTED, now)
            self._calm_count = 0
            return
        rising = self._slope > t.rising_slope_ms_per_s and self._queue_ms >= t.rising_min_queue_ms
        state = self._state
        if state is DeltaState.STABLE:
            self._rising_count = self._rising_count + 1 if rising else 0
            if self._rising_count >= t.samples_to_rising:
                self._enter(DeltaState.RISING, now)
        elif state is DeltaState.RISING:
            if rising:
                self._calm_count = 0
                self._rising_count += 1
                if self._rising_count >= t.samples_rising_to_congested:
                    self._enter(DeltaState.CONGESTED, now)
            else:
                self._calm_count += 1
                if self._calm_count >= t.samples_to_stable:
                    self._enter(DeltaState.STABLE, now)
        else:
            drained = self._queue_ms <= t.rising_min_queue_ms or self._slope <= 0
            self._calm_count = self._calm_count + 1 if drained and not rising else 0
            if self._calm_count >= t.samples_to_stable:
                self._enter(DeltaState.STABLE, now)

    def _update_rate(self, now: float) -> None:
        t = self.tunables
        last = self._last_update
        self._last_update = now
        dt = 0.0 if last is None else min(max(now - last, 0.0), t.max_update_dt_s)
        if self._state is DeltaState.CONGESTED:
            # Decrease again only while the queue is over budget and not draining.
            interval = max(t.min_decrease_interval_s, self._srtt or 0.0)
            still_over = self._queue_ms > t.queue_delay_budget_ms and self._slope >= 0
            if still_over and now >= self._last_decrease + interval:
                self._decrease(now, use_delivery=True)
            return
        if self._state is not DeltaState.STABLE or dt == 0:
            return
        headroom = min(max(1 - self._queue_ms / t.queue_delay_budget_ms, 0.0), 1.0)
        fraction = t.increase_fraction_per_s
        anchor = self._congested_rate
        if anchor is not None and anchor * (1 - t.near_band_below) <= self._rate <= anchor * (
            1 + t.near_band_above
        ):
            fraction = t.near_increase_fraction_per_s
        step = max(self._rate * fraction, t.min_increase_kbps_per_s) * dt * headroom
        new_rate = self._rate + step
        delivered = self.delivery_rate_kbps
        if delivered is not None:
            new_rate = min(new_rate, max(self._rate, t.app_limited_headroom * delivered))
        self._set_rate(new_rate)

    def _decrease(self, now: float, *, use_delivery: bool) -> None:
        # While the bottleneck queue is standing, the latest batch arrived at the link's rate:
        # it reflects a capacity drop at once, where the longer window still averages it in.
        delivered = None
        if use_delivery:
            delivered = self._batch_delivery or self.delivery_rate_kbps
        basis = self._rate if delivered is None else min(self._rate, delivered)
        # The anchor for the gentle increase is the rate the path delivered when it congested
        # (its capacity), also when we were already sending below it to drain the queue.
        self._congested_rate = self._rate if delivered is None else delivered
        if delivered is not None and self._queue_ms > self.tunables.queue_delay_budget_ms:
            # a standing queue over budget: the path delivered at its capacity (without one,
            # e.g. a jitter spike, the delivery rate is only what we happened to send)
            self._note_capacity(delivered, now)
        self._set_rate(basis * self.tunables.decrease_factor)
        self._last_decrease = now
        self._delivered.clear()  # measure the new rate afresh

    def _note_capacity(self, delivered: float, now: float) -> None:
        """A delivery rate measured while a standing queue was over budget: the link's capacity.

        In the session's first congestion episode (the start-up, when the sender's first rate
        met the path) the highest figure is kept: the first batches there are a few datagrams
        from before the queue stood, and one such figure anchored the gentle increase at
        3.5 Mbit/s below an 8 Mbit/s link, which then took 2 s to pass. Later episodes take the
        newest figure: a capacity that dropped within an episode must be believed at once."""
        episode = self._episode_start
        first = self._episodes == 1 and episode is not None and self._congested_at >= episode
        if self._capacity is not None and first:
            delivered = max(delivered, self._capacity)
        self._capacity = delivered
        self._congested_at = now
        self._congested_rate = delivered

    def set_ceiling(self, max_bitrate_kbps: int | None, max_fps: int | None) -> None:
        """The receiver's limits: the rate never even probes above them."""
        self._peer_max_kbps = max_bitrate_kbps or None
        self._peer_max_fps = max_fps or None
        self._set_rate(self._rate)
        self._decide()

    def _set_rate(self, total_kbps: float) -> None:
        t = self.tunables
        scale = 1 + self._send_overhead
        top = t.max_bitrate_kbps
        if self._peer_max_kbps is not None:
            top = max(t.min_bitrate_kbps, min(top, self._peer_max_kbps))
        self._rate = min(max(total_kbps, t.min_bitrate_kbps * scale), top * scale)

    def _update_fps(self, now: float) -> None:
        t = self.tunables
        last = self._last_fps_update
        self._last_fps_update = now
        start = self._episode_start
        if start is not None and self._state is not DeltaState.STABLE and last is not None:
            dt = min(max(now - last, 0.0), t.max_update_dt_s)
            self._episode_congested_s += dt
            self._congested_since_step += dt
        sustained = start is not None and self._episode_congested_s >= t.fps_down_after_s
        if sustained and self._state is not DeltaState.STABLE:
            self._last_sustained = now
        if self._state is DeltaState.STABLE:
            since = self._stable_since
            if (
                start is not None
                and since is not None
                and now >= since + t.congestion_episode_gap_s
            ):
                self._episode_start = None
                self._episode_congested_s = 0.0
                self._congested_since_step = 0.0
            quiet_since = max(self._last_sustained, self._last_fps_change)
            if self._fps_index > 0 and now >= quiet_since + t.fps_up_after_s:
                self._fps_index -= 1
                self._last_fps_change = now
            return
        if start is None or self._fps_index >= len(self._fps_ladder) - 1:
            return
        if self._congested_since_step >= t.fps_down_after_s:
            self._fps_index += 1
            self._last_fps_change = now
            self._congested_since_step = 0.0


def _rate_kbps(arrivals: Sequence[tuple[float, int]]) -> float | None:
    """Delivery rate of (arrival s, bytes) records sorted by arrival; None if too few."""
    if len(arrivals) < 4:
        return None
    span = arrivals[-1][0] - arrivals[0][0]
    if span < 0.02:
        return None
    total = sum(size for _, size in arrivals) - arrivals[0][1]
    return total * 8 / span / 1000


def _slope(points: deque[tuple[float, float]]) -> float:
    """Least-squares slope (y per x) of the points; 0 for fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var <= 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var
