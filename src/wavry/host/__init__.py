"""Sharing this machine: the host runtime (`wavry host`, the desktop app's "share")."""

from __future__ import annotations

from wavry.host.options import HostOptions, OptionsError, options_from_settings
from wavry.host.runtime import ClientInfo, HostBackends, HostRuntime, HostService
from wavry.host.serve import serve
from wavry.host.setup import HostError

__all__ = [
    "ClientInfo",
    "HostBackends",
    "HostError",
    "HostOptions",
    "HostRuntime",
    "HostService",
    "OptionsError",
    "options_from_settings",
    "serve",
]
