"""Host platform backends: input injection, X servers, probes."""

from wavry.platform.probe import ProbeResult

__all__ = ["ProbeResult"]
