"""Computers on this network: hosts advertising ``_wavry._udp.local.`` (mDNS, the reach work's
:mod:`wavry.connectivity.mdns`).

LAN discovery lives in ``wavry.connectivity``; a build without that package (a trimmed install)
gets :data:`NO_LAN_DISCOVERY` from :func:`find_lan_hosts` instead of a list, and the app still
connects by address.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NO_LAN_DISCOVERY",
    "LanEntry",
    "find_lan_hosts",
    "lan_discovery_available",
    "reach_by_name_available",
]

LAN_SECONDS = 1.5
NO_LAN_DISCOVERY = "No LAN discovery in this version of wavry: type the host's address above."


def _has(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # not even its package
        return False


def lan_discovery_available() -> bool:
    return _has("wavry.connectivity.mdns")


def reach_by_name_available() -> bool:
    """`wavry connect NAME --gateway URL` (an account host through the gateway) exists: the
    reach work's ``wavry.connectivity``."""
    return _has("wavry.connectivity")


@dataclass(frozen=True, slots=True)
class LanEntry:
    name: str
    wavry_id: str
    address: str  # HOST:PORT to connect to

    @property
    def target(self) -> str:
        return self.address


async def find_lan_hosts(seconds: float = LAN_SECONDS) -> tuple[list[LanEntry], str]:
    """(hosts that answered, "") or ([], why the LAN cannot be searched)."""
    try:
        from wavry.connectivity.mdns import discover  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return [], NO_LAN_DISCOVERY
    from wavry.net.addr import format_hostport

    try:
        found = await discover(seconds)
    except OSError as exc:
        return [], f"cannot search the LAN: {exc.strerror or exc}"
    entries = [
        LanEntry(h.name, h.wavry_id, format_hostport(h.addresses[0], h.port))
        for h in found
        if h.addresses
    ]
    return entries, ""
