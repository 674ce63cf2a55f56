"""Network lab: a userspace UDP impairment proxy and a network-namespace/tbf harness."""

from wavry.bench.netlab.model import (
    Decision,
    DropCause,
    GilbertElliott,
    ImpairmentModel,
    LinkConfig,
    LinkStats,
    Retime,
    gilbert_elliott,
)
from wavry.bench.netlab.netns import NetnsError, NetnsPair, Tbf, cleanup_stale, probe
from wavry.bench.netlab.proxy import ImpairmentProxy, ProxyStats

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
