"""Connectivity as host services: what `wavry host` starts next to its sessions.

:func:`host_services` builds, from the host's settings, the services the host runtime starts
after it binds its RIFT socket and stops before it closes it: the LAN advertisement (mDNS), the
router port mapping (UPnP-IGD) and the presence at a gateway — in that order, so the presence's
candidates include the mapping when the router grants one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import Any

from wavry.connectivity.candidates import Candidate, CandidateKind
from wavry.connectivity.mdns import LanAdvertiser
from wavry.connectivity.portmap import PortMapping, map_port_async
from wavry.connectivity.presence import HostPresence

__all__ = ["ConnectivityOptions", "PortMapService", "host_services", "saved_gateway"]

log = logging.getLogger("wavry.connectivity")


@dataclass(slots=True)
class ConnectivityOptions:
    gateway: str | None = None  # None: not online at a gateway
    name: str = ""  # the host's name (default: the host name)
    mdns: bool = True
    upnp: bool = True


def saved_gateway() -> str | None:
    """The gateway `wavry login` signed this device in to, if any."""
    from wavry.account.store import AccountStore

    try:
        saved = AccountStore().load()
    except Exception:
        return None
    return saved.gateway_url if saved is not None else None


class PortMapService:
    """Asks the router for a UPnP-IGD port mapping of the RIFT port; removes it on close. The
    request runs in the background (router discovery takes up to a second)."""

    def __init__(self) -> None:
        self.mapping: PortMapping | None = None
        self.web_mapping: PortMapping | None = None  # the web endpoint's UDP (WebTransport)
        self._task: asyncio.Task[None] | None = None
        self._runtime: Any = None

    async def start(self, runtime: Any) -> None:
        self._runtime = runtime
        if runtime.bound is None:
            return
        web = next(
            (
                int(s.endpoint.bound[1])
                for s in getattr(runtime, "services", [])
                if getattr(getattr(s, "endpoint", None), "bound", None) is not None
            ),
            None,
        )
        self._task = asyncio.create_task(self._map(int(runtime.bound[1]), web))

    async def _map(self, port: int, web_port: int | None) -> None:
        mapping = await map_port_async(port)
        if mapping is None:
            return
        self.mapping = mapping
        host, ext = mapping.external
        self._runtime.say(f"router maps {host}:{ext}/udp to this host (UPnP-IGD)")
        if web_port is not None:
            self.web_mapping = await map_port_async(web_port)

    def candidates(self) -> list[Candidate]:
        m = self.mapping
        return [Candidate(CandidateKind.srflx, m.external)] if m is not None else []

    def web_candidates(self) -> list[tuple[str, int]]:
        m = self.web_mapping
        return [m.external] if m is not None else []

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for m in (self.mapping, self.web_mapping):
            if m is not None:
                await asyncio.to_thread(m.remove)
        self.mapping = self.web_mapping = None


def host_services(opts: ConnectivityOptions) -> list[Any]:
    """The services for these options (HostService objects: ``start(runtime)``, ``close()``)."""
    name = opts.name or socket.gethostname()
    services: list[Any] = []
    if opts.mdns:
        services.append(LanAdvertiser(name))
    if opts.gateway:
        mapper = PortMapService() if opts.upnp else None
        if mapper is not None:
            services.append(mapper)
        services.append(
            HostPresence(
                opts.gateway,
                name,
                extra_candidates=mapper.candidates if mapper else None,
                web_mapped=mapper.web_candidates if mapper else None,
            )
        )
    return services
