"""Configuration, counters and events of a session's media transport (docs/spec/RIFT.md §6–§8).

Shared by the sending half (sender.py), the receiving half (receiver.py) and the per-side
transports that compose them (transport.py, which re-exports everything here).
"""

from __future__ import annotations

from dataclasses import dataclass

from wavry.rift import rift_pb2
from wavry.rift.assembler import AssembledFrame

__all__ = [
    "CONTROLLERS",
    "FrameReady",
    "KeyframeRequested",
    "PeerStats",
    "RateChanged",
    "SkipFramesRequested",
    "TransportConfig",
    "TransportEvent",
    "TransportStats",
]

#: congestion controllers a media sender can run (`TransportConfig.controller`)
CONTROLLERS = ("delta", "fixed")


@dataclass
class TransportConfig:
    """What a session's transport does. One config for both sides: each side's halves read
    the fields they use (the host sends media, the client receives it)."""

    fec: bool = True
    nack: bool = True
    #: the media sender's congestion controller: "delta" (RIFT §8) or "fixed" (the target
    #: bitrate never changes: a benchmark baseline)
    controller: str = "delta"
    jitter_buffer: bool = True
    initial_bitrate_kbps: int = 8000
    max_bitrate_kbps: int | None = None  # DELTA's ceiling (None: DeltaTunables' default)
    fps: int = 60
    #: FEC redundancy to start from (parities per data datagram; the policy adapts it)
    fec_ratio: float = 0.05
    expected_burst: int = 2
    #: bursts longer than expected_burst seen on a lossy (not congested) path raise the parity
    #: count up to this fraction of an ordinary frame's datagrams (docs/spec/RIFT.md §8: at
    #: most 50 %)
    max_burst_fraction: float = 0.5
    max_group_shards: int = 32
    max_datagram: int = 1400
    frame_deadline_s: float = 0.1
    #: FEC schemes this side supports, in order of preference (docs/spec/RIFT.md §7): a client
    #: offers them in `Hello.fec_schemes`, a host picks its first one the client offers (XOR,
    #: which every peer supports, when the client offers none of them)
    fec_schemes: tuple[int, ...] = (rift_pb2.FEC_REED_SOLOMON, rift_pb2.FEC_XOR_INTERLEAVED)

    def __post_init__(self) -> None:
        known = (rift_pb2.FEC_REED_SOLOMON, rift_pb2.FEC_XOR_INTERLEAVED)
        if not self.fec_schemes or any(s not in known for s in self.fec_schemes):
            raise ValueError(f"fec_schemes must name FecScheme values, got {self.fec_schemes}")
        if self.controller not in CONTROLLERS:
            raise ValueError(
                f"unknown congestion controller {self.controller!r}; "
                f"choose one of {', '.join(CONTROLLERS)}"
            )


# ---- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameReady:
    frame: AssembledFrame


@dataclass(frozen=True)
class KeyframeRequested:
    last_valid_frame_id: int


@dataclass(frozen=True)
class SkipFramesRequested:
    count: int


@dataclass(frozen=True)
class RateChanged:
    target_bitrate_kbps: int
    target_fps: int
    fec_ratio: float
    state: str


@dataclass(frozen=True)
class PeerStats:
    report: rift_pb2.StatsReport


TransportEvent = FrameReady | KeyframeRequested | SkipFramesRequested | RateChanged | PeerStats


@dataclass
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
