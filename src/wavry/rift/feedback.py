"""Receiver-side rate-control reports: `TransportFeedback` (every ~50 ms) and `StatsReport` (1 s).

Sans-I/O: every time is a `now` / `arrival_now` argument in seconds on the receiver's monotonic
clock; nothing here reads a clock, opens a socket or starts a thread.

Reordering policy: a `TransportFeedback` range always starts right after the previous range, so
a packet id that arrives after the feedback covering it was built (a late, reordered packet, or a
retransmission with the same id) is *ignored* and counted in `FeedbackBuilder.late_ignored`; the
sender has already seen it reported as lost. Ids are only ever reported up to the highest id
received so far, so ordinary reordering inside one 50 ms window is reported correctly.
"""

from __future__ import annotations

from dataclasses import dataclass

from wavry.rift import rift_pb2
from wavry.rift.rtt import CLOCK_STEP_S

__all__ = [
    "MAX_FEEDBACK_PACKETS",
    "FeedbackBuilder",
    "FeedbackConfig",
    "FeedbackError",
    "StatsAccumulator",
    "parse_feedback",
]

#: Largest `packet_count` `parse_feedback` accepts (a bitmap of 8 KiB); larger is rejected.
MAX_FEEDBACK_PACKETS = 65536

_U32_MAX = 2**32 - 1
_U64_LIMIT = 2**64
_SINT32_MIN = -(2**31)
_SINT32_MAX = 2**31 - 1


class FeedbackError(ValueError):
    """A `TransportFeedback` message is malformed (inconsistent bitmap, counts or times)."""


def _varint_len(value: int) -> int:
    """Encoded size of an unsigned protobuf varint."""
    return max(1, (value.bit_length() + 6) // 7)


def _sint_len(value: int) -> int:
    """Encoded size of a zig-zag (sint32/sint64) protobuf varint."""
    return _varint_len(value * 2 if value >= 0 else -value * 2 - 1)


def _message_size(base: int, count: int, ref_us: int, packed_len: int) -> int:
    """Serialized size of a `TransportFeedback` (fields equal to zero are not emitted)."""
    size = 0
    if base:
        size += 1 + _varint_len(base)
    if count:
        size += 1 + _varint_len(count)
    bitmap_len = (count + 7) // 8
    if bitmap_len:
        size += 1 + _varint_len(bitmap_len) + bitmap_len
    if ref_us:
        size += 1 + _varint_len(ref_us)
    if packed_len:
        size += 1 + _varint_len(packed_len) + packed_len
    return size


def _to_us(seconds: float) -> int:
    us = round(seconds * 1_000_000)
    if us < 0:
        raise ValueError(f"arrival time must be >= 0 s on the receiver clock, got {seconds!r}")
    return us


@dataclass(frozen=True)
class FeedbackConfig:
    """Tunables of `FeedbackBuilder`."""

    interval_s: float = 0.05
    #: Serialized `TransportFeedback` size budget; longer ranges are split over several messages.
    max_message_bytes: int = 1000
    #: Most ids one message covers; a longer run of missing ids before the next received id is
    #: skipped (never reported) rather than spread over many all-zero messages.
    max_packet_count: int = 4096
    #: Most distinct unreported ids kept; beyond that new ids are ignored until `build` runs.
    max_pending: int = 65536

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        if self.max_message_bytes < 64:
            raise ValueError("max_message_bytes must be >= 64")
        if not 8 <= self.max_packet_count <= MAX_FEEDBACK_PACKETS:
            raise ValueError(f"max_packet_count must be in 8..{MAX_FEEDBACK_PACKETS}")
        if self.max_pending < 1:
            raise ValueError("max_pending must be >= 1")


class FeedbackBuilder:
    """Collects packet arrivals and builds `TransportFeedback` messages (receiver side).

    Call `on_packet` for every authenticated transport datagram (any message kind), and
    `build(now)` whenever `next_timer()` is due. If one range does not fit the size budget,
    `build` returns the first part and the rest is due at once (`next_timer()` returns the time
    of that build), so calling `build` again immediately returns the next part.
    """

    def __init__(self, config: FeedbackConfig | None = None) -> None:
        self._config = config if config is not None else FeedbackConfig()
        self._max_pending = self._config.max_pending
        self._arrivals: dict[int, int] = {}  # packet id -> arrival time (µs)
        self._next_base: int | None = None  # first id not yet covered by a feedback
        self._highest = 0
        self._last_build: float | None = None
        self._backlog = False
        self.late_ignored = 0
        self.duplicates_ignored = 0
        self.overflow_ignored = 0
        self.skipped_ids = 0

    @property
    def config(self) -> FeedbackConfig:
        return self._config

    @property
    def pending(self) -> int:
        """Received ids not yet reported."""
        return len(self._arrivals)

    def on_packet(self, packet_id: int, arrival_now: float) -> None:
        """Record the arrival of `packet_id` at `arrival_now` (receiver clock, seconds)."""
        if not 1 <= packet_id < _U64_LIMIT:
            raise ValueError(f"packet id out of range: {packet_id}")
        arrival_us = round(arrival_now * 1_000_000)  # _to_us, inlined: runs per datagram
        if arrival_us < 0:
            _to_us(arrival_now)  # raises
        arrivals = self._arrivals
        if packet_id > self._highest:  # the common case: a new highest id
            if len(arrivals) >= self._max_pending:
                self.overflow_ignored += 1
                return
            arrivals[packet_id] = arrival_us
            self._highest = packet_id
            return
        if self._next_base is not None and packet_id < self._next_base:
            self.late_ignored += 1
            return
        if packet_id in arrivals:
            self.duplicates_ignored += 1
            return
        if len(arrivals) >= self._max_pending:
            self.overflow_ignored += 1
            return
        arrivals[packet_id] = arrival_us

    def next_timer(self) -> float | None:
        """When `build` should next be called, or None while there is nothing to report."""
        if not self._arrivals:
            return None
        if self._last_build is None:
            return min(self._arrivals.values()) / 1_000_000
        if self._backlog:
            return self._last_build
        return self._last_build + self._config.interval_s

    def build(self, now: float) -> rift_pb2.TransportFeedback | None:
        """The next `TransportFeedback`, or None if nothing is due at `now`."""
        if not self._arrivals:
            return None
        last = self._last_build
        if not self._backlog and last is not None and now + 1e-9 < last + self._config.interval_s:
            return None
        cfg = self._config
        first_rx = min(self._arrivals)
        base = self._next_base if self._next_base is not None else first_rx
        if first_rx - base + 1 > cfg.max_packet_count:
            self.skipped_ids += first_rx - base
            base = first_rx
        ref_us = self._arrivals[first_rx]
        count, deltas = self._fit_range(base, ref_us)
        bitmap = bytearray((count + 7) // 8)
        for offset in range(count):
            if base + offset in self._arrivals:
                bitmap[offset >> 3] |= 1 << (offset & 7)
                del self._arrivals[base + offset]
        if not deltas:
            ref_us = 0
        self._next_base = base + count
        self._last_build = now
        self._backlog = bool(self._arrivals)
        return rift_pb2.TransportFeedback(
            base_packet_id=base,
            packet_count=count,
            received_bitmap=bytes(bitmap),
            reference_time_us=ref_us,
            arrival_delta_us=deltas,
        )

    def _fit_range(self, base: int, ref_us: int) -> tuple[int, list[int]]:
        """Largest id count from `base` (≤ highest received id) that fits the size budget."""
        cfg = self._config
        limit = min(cfg.max_packet_count, self._highest - base + 1)
        deltas: list[int] = []
        packed_len = 0
        count = 0
        for offset in range(limit):
            arrival = self._arrivals.get(base + offset)
            delta = 0
            extra = 0
            if arrival is not None:
                delta = arrival - ref_us
                if not _SINT32_MIN <= delta <= _SINT32_MAX:
                    break  # > 35 min apart: the rest goes in the next message
                extra = _sint_len(delta)
            size = _message_size(base, offset + 1, ref_us, packed_len + extra)
            if size > cfg.max_message_bytes and count > 0:
                break
            count = offset + 1
            packed_len += extra
            if arrival is not None:
                deltas.append(delta)
        return count, deltas


def parse_feedback(msg: rift_pb2.TransportFeedback) -> list[tuple[int, float | None]]:
    """Validate `msg` and return `(packet_id, arrival_time_s or None if lost)` for every id.

    Arrival times are on the receiver's clock (seconds). Raises `FeedbackError` (a `ValueError`)
    on a malformed message: a count above `MAX_FEEDBACK_PACKETS`, a range past 2^64 or starting at
    id 0, a bitmap whose length is not exactly ceil(count / 8) or with bits set past `count`, a
    number of deltas different from the number of received ids, or a negative arrival time.
    """
    count = msg.packet_count
    base = msg.base_packet_id
    bitmap = msg.received_bitmap
    deltas = msg.arrival_delta_us
    if count > MAX_FEEDBACK_PACKETS:
        raise FeedbackError(f"packet_count {count} exceeds the limit {MAX_FEEDBACK_PACKETS}")
    if count and base == 0:
        raise FeedbackError("base_packet_id 0 is not a valid packet id")
    if base + count > _U64_LIMIT:
        raise FeedbackError("feedback range runs past the 64-bit packet id space")
    if len(bitmap) != (count + 7) // 8:
        raise FeedbackError(
            f"received_bitmap has {len(bitmap)} bytes, {(count + 7) // 8} expected for {count} ids"
        )
    if count % 8 and bitmap[-1] >> (count % 8):
        raise FeedbackError("received_bitmap has bits set beyond packet_count")
    received = int.from_bytes(bitmap, "little").bit_count()
    if len(deltas) != received:
        raise FeedbackError(f"{len(deltas)} arrival deltas for {received} received ids")
    ref_us = msg.reference_time_us
    result: list[tuple[int, float | None]] = []
    index = 0
    for offset in range(count):
        if bitmap[offset >> 3] >> (offset & 7) & 1:
            arrival_us = ref_us + deltas[index]
            index += 1
            if arrival_us < 0:
                raise FeedbackError("arrival time before the receiver clock's origin")
            result.append((base + offset, arrival_us / 1_000_000))
        else:
            result.append((base + offset, None))
    return result


class StatsAccumulator:
    """Builds a `StatsReport` about once per `period_s` (receiver side).

    Counts come from `on_packet` (every authenticated transport datagram). Loss per period is the
    RFC 3550 interval loss: ids expected (growth of the highest id) minus ids received, floored
    at 0. Jitter is the RFC 3550 interarrival jitter `J += (|D| - J) / 16` over the timestamps
    passed to `on_media_timestamp` — feed one stream only (e.g. the first chunk of every video
    frame, with the time the frame left the encoder), since audio and video timestamps have
    different pipeline delays.
    """

    def __init__(self, period_s: float = 1.0) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be > 0")
        self._period_s = period_s
        self._period_start: float | None = None
        self._first_id: int | None = None
        self._highest = 0
        self._received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter_s = 0.0
        self._last_media: tuple[float, float] | None = None  # (sender ts, arrival)
        self._rtt_s: float | None = None

    @property
    def jitter_us(self) -> int:
        return min(round(self._jitter_s * 1_000_000), _U32_MAX)

    def on_packet(self, packet_id: int, arrival_now: float) -> None:
        if self._period_start is None:
            self._period_start = arrival_now
        if self._first_id is None or packet_id < self._first_id:
            self._first_id = packet_id
        if packet_id > self._highest:
            self._highest = packet_id
        self._received += 1

    def on_media_timestamp(self, sender_timestamp_s: float, arrival_now: float) -> None:
        """One media unit stamped `sender_timestamp_s` (sender clock) arrived at `arrival_now`."""
        last = self._last_media
        if last is not None and sender_timestamp_s == last[0]:
            return  # same media unit: its first arrival counts
        self._last_media = (sender_timestamp_s, arrival_now)
        if last is None:
            return
        d = (arrival_now - last[1]) - (sender_timestamp_s - last[0])
        if abs(d) > CLOCK_STEP_S:
            return  # the sender's wall clock stepped (timestamps are wall clock): not jitter
        self._jitter_s += (abs(d) - self._jitter_s) / 16

    def set_rtt(self, rtt_s: float | None) -> None:
        """Latest round-trip time (e.g. from Ping/Pong), reported as `rtt_us`; None = unknown."""
        self._rtt_s = rtt_s

    def next_timer(self) -> float | None:
        if self._period_start is None:
            return None
        return self._period_start + self._period_s

    def build(self, now: float) -> rift_pb2.StatsReport | None:
        """The `StatsReport` for the period ending at `now`, or None if it is not due yet."""
        if self._period_start is None:
            self._period_start = now
            return None
        elapsed = now - self._period_start
        if elapsed + 1e-9 < self._period_s:
            return None
        expected = 0 if self._first_id is None else self._highest - self._first_id + 1
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        lost = max(0, expected_interval - received_interval)
        self._expected_prior = expected
        self._received_prior = self._received
        self._period_start = now
        rtt_us = 0 if self._rtt_s is None else max(0, round(self._rtt_s * 1_000_000))
        return rift_pb2.StatsReport(
            period_ms=min(round(elapsed * 1000), _U32_MAX),
            received_packets=min(received_interval, _U32_MAX),
            lost_packets=min(lost, _U32_MAX),
            rtt_us=min(rtt_us, 2**64 - 1),
            jitter_us=self.jitter_us,
        )
