"""A port mapping on the home router over UPnP-IGD (miniupnpc), for one more candidate.

A router that offers UPnP-IGD forwards its public port to the host's RIFT port on request; the
mapped address is then a ``srflx`` candidate that works even from behind a symmetric NAT on the
client's side. miniupnpc is blocking (SSDP discovery waits up to ``discover_ms``), so these
functions run in a worker thread (:func:`map_port_async`). The mapping carries a lease and is
removed when the host stops (:meth:`PortMapping.remove`). NAT-PMP/PCP: no well-kept Python
library does them, so only UPnP-IGD is asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["IgdStatus", "PortMapping", "map_port", "map_port_async", "probe_igd"]

log = logging.getLogger("wavry.portmap")

DESCRIPTION = "wavry host"
LEASE_S = 3600


@dataclass(frozen=True, slots=True)
class IgdStatus:
    """What `wavry doctor` reports: whether a router answered, and its public address."""

    found: bool
    detail: str
    external_ip: str | None = None
    lan_addr: str | None = None


class PortMapping:
    """A UDP port the router forwards to this machine (remove() gives it back)."""

    def __init__(self, upnp: Any, external: tuple[str, int], internal: tuple[str, int]) -> None:
        self._upnp = upnp
        self.external = external
        self.internal = internal
        self.removed = False

    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        with contextlib.suppress(Exception):
            self._upnp.deleteportmapping(self.external[1], "UDP")


def _igd(discover_ms: int) -> Any:
    import miniupnpc

    upnp = miniupnpc.UPnP()
    upnp.discoverdelay = discover_ms
    if upnp.discover() <= 0:
        raise LookupError("no UPnP device answered on this network")
    try:
        upnp.selectigd()
    except Exception as exc:  # miniupnpc raises a bare Exception
        raise LookupError(f"no usable UPnP-IGD router ({exc})") from None
    return upnp


def probe_igd(discover_ms: int = 1000) -> IgdStatus:
    """Is there a router that maps ports (never raises)."""
    try:
        upnp = _igd(discover_ms)
        external = str(upnp.externalipaddress())
    except Exception as exc:
        return IgdStatus(False, str(exc))
    return IgdStatus(True, f"UPnP-IGD router, public address {external}", external, upnp.lanaddr)


def map_port(internal_port: int, discover_ms: int = 1000) -> PortMapping | None:
    """Ask the router to forward UDP ``internal_port`` (the same public port when free, else a
    nearby one). None when no router maps ports."""
    try:
        upnp = _igd(discover_ms)
        external_ip = str(upnp.externalipaddress())
        lan = str(upnp.lanaddr)
    except Exception as exc:
        log.info("no port mapping: %s", exc)
        return None
    for port in (internal_port, *range(internal_port + 1, internal_port + 8)):
        try:
            ok = upnp.addportmapping(port, "UDP", lan, internal_port, DESCRIPTION, "", LEASE_S)
        except TypeError:  # builds without the lease argument
            ok = upnp.addportmapping(port, "UDP", lan, internal_port, DESCRIPTION, "")
        except Exception as exc:  # conflict, or the router refused this port
            log.info("port mapping %d refused: %s", port, exc)
            continue
        if ok:
            return PortMapping(upnp, (external_ip, port), (lan, internal_port))
    return None


async def map_port_async(internal_port: int, discover_ms: int = 1000) -> PortMapping | None:
    return await asyncio.to_thread(map_port, internal_port, discover_ms)
