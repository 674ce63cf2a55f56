"""Which congestion controller a transport runs (sans-I/O)."""

from __future__ import annotations

from wavry.rift.congestion import CongestionController, FixedRateController
from wavry.rift.delta import DeltaController, DeltaTunables
from wavry.rift.transport_types import TransportConfig

__all__ = ["controller_for"]


def controller_for(config: TransportConfig) -> CongestionController:
    """The congestion controller a transport config asks for: DELTA, or a fixed rate."""
    if config.controller == "fixed":
        return FixedRateController(config.initial_bitrate_kbps, config.fps)
    tunables = DeltaTunables(initial_overhead=config.fec_ratio)
    if config.max_bitrate_kbps is not None:
        ceiling = max(tunables.min_bitrate_kbps, config.max_bitrate_kbps)
        tunables = DeltaTunables(initial_overhead=config.fec_ratio, max_bitrate_kbps=ceiling)
    return DeltaController(config.initial_bitrate_kbps, max_fps=config.fps, tunables=tunables)
