"""Network lab: a userspace UDP impairment proxy and a network-namespace/tbf harness."""

from wavry.bench.netlab.impair import (
    Decision,
    DropCause,
    GilbertElliott,
    ImpairmentModel,
    ImpairmentProxy,
    LinkConfig,
    LinkStats,
    ProxyStats,
    Retime,
    gilbert_elliott,
)
from wavry.bench.netlab.netns import NetnsError, NetnsPair, Tbf, cleanup_stale, probe

__all__ = [
    "Decision",
    "DropCause",
    "GilbertElliott",
    "ImpairmentModel",
    "ImpairmentProxy",
    "LinkConfig",
    "LinkStats",
    "NetnsError",
    "NetnsPair",
    "ProxyStats",
    "Retime",
    "Tbf",
    "cleanup_stale",
    "gilbert_elliott",
    "probe",
]
