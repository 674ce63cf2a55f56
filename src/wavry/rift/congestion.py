"""Congestion control behind one small interface (sender side, sans-I/O).

A `CongestionController` is told what the sender does and what the receiver reports — every
datagram sent, every `TransportFeedback` (parsed: arrivals and losses), every RTT sample — and
answers with one `CongestionDecision` that the pacer, the encoder and the FEC policy read.
`DeltaController` (delta.py, RIFT §8) is the product's implementation; `FixedRateController`
is the fixed-bitrate baseline `wavry bench net` compares it with. Nothing outside a controller
reads its internals: everything the rest of the sender needs is in the decision.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wavry.rift import rift_pb2

__all__ = [
    "CongestionController",
    "CongestionDecision",
    "CongestionState",
    "FeedbackArrivals",
    "FixedRateController",
]

#: parsed `TransportFeedback`: (packet id, receiver arrival time in s, or None when lost)
FeedbackArrivals = Sequence[tuple[int, float | None]]


class CongestionState(enum.Enum):
    STABLE = "stable"
    RISING = "rising"
    CONGESTED = "congested"


@dataclass(frozen=True)
class CongestionDecision:
    """What the sender should do now, and what the controller sees of the path.

    `target_bitrate_kbps` is the encoder (media) bitrate; `send_rate_kbps` is the total sending
    rate the controller governs (media plus what the sender adds: parities, headers, tags).
    """

    target_bitrate_kbps: int
    target_fps: int
    send_rate_kbps: int
    state: CongestionState
    #: the standing queue the controller measures (one-way delay above its minimum), ms
    queue_delay_ms: float = 0.0
    #: smoothed fraction of datagrams reported lost, all of them / only outside congestion
    loss_fraction: float = 0.0
    random_loss_fraction: float = 0.0
    #: the bottleneck capacity the controller measured recently (None: no bottleneck known)
    capacity_kbps: float | None = None
    smoothed_rtt_s: float | None = None


class CongestionController(Protocol):
    """The sender's congestion controller. Times are the sender's monotonic clock in seconds;
    arrival times in feedback are on the receiver's clock (never compared with ours)."""

    @property
    def decision(self) -> CongestionDecision: ...

    def on_packet_sent(self, packet_id: int, size_bytes: int, now: float) -> None:
        """A new datagram left (never called for a resend)."""

    def on_feedback(self, arrivals: FeedbackArrivals, now: float) -> CongestionDecision:
        """The receiver's report: arrivals and losses (None) by packet id."""
        ...

    def on_rtt_sample(self, rtt_s: float, now: float) -> None:
        """A round-trip time measured by the peer (StatsReport) or by us."""

    def set_send_overhead(self, ratio: float) -> None:
        """Wire bytes per media byte − 1, as the sender measures it: the media target leaves
        room for it within the send rate."""

    def tick(self, now: float) -> CongestionDecision:
        """Time-driven work (feedback timeout, frame-rate steps); about every 50–100 ms."""
        ...

    def poll_congestion_control(self) -> rift_pb2.CongestionControl | None:
        """A `CongestionControl` to tell the peer, when the decision changed enough."""
        ...

    def set_ceiling(self, max_bitrate_kbps: int | None, max_fps: int | None) -> None:
        """The receiver's own limits (its `CongestionControl`, docs/spec/RIFT.md §8): the media
        bitrate and frame rate never go above them (None: no limit of the receiver's)."""


class FixedRateController:
    """No congestion control: a constant target bitrate and frame rate (a baseline).

    It measures nothing, so its decision always says STABLE with no queue and no loss."""

    def __init__(self, bitrate_kbps: int, fps: int = 60) -> None:
        if bitrate_kbps <= 0 or fps <= 0:
            raise ValueError("need bitrate_kbps > 0 and fps > 0")
        self._overhead = 0.0
        self._bitrate = self._base_bitrate = bitrate_kbps
        self._fps = self._base_fps = fps

    @property
    def decision(self) -> CongestionDecision:
        return CongestionDecision(
            target_bitrate_kbps=self._bitrate,
            target_fps=self._fps,
            send_rate_kbps=round(self._bitrate * (1 + self._overhead)),
            state=CongestionState.STABLE,
        )

    def on_packet_sent(self, packet_id: int, size_bytes: int, now: float) -> None:
        pass

    def on_feedback(self, arrivals: FeedbackArrivals, now: float) -> CongestionDecision:
        return self.decision

    def on_rtt_sample(self, rtt_s: float, now: float) -> None:
        pass

    def set_send_overhead(self, ratio: float) -> None:
        self._overhead = min(max(ratio, 0.0), 1.0)

    def tick(self, now: float) -> CongestionDecision:
        return self.decision

    def poll_congestion_control(self) -> rift_pb2.CongestionControl | None:
        return None  # the target never changes: nothing to announce

    def set_ceiling(self, max_bitrate_kbps: int | None, max_fps: int | None) -> None:
        self._bitrate = min(self._base_bitrate, max_bitrate_kbps or self._base_bitrate)
        self._fps = min(self._base_fps, max_fps or self._base_fps)
