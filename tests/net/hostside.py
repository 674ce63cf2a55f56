"""A trust-any `HostServer` on loopback that remembers the alias of the client it accepts."""

from __future__ import annotations

import asyncio

from wavry.net.host import HostServer
from wavry.rift.config import HostConfig
from wavry.rift.events import ClientAccepted, HostEvent
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity


class AcceptingHost:
    def __init__(self) -> None:
        self.accepted = asyncio.Event()
        self.alias = 0
        endpoint = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
        self.server = HostServer(endpoint, self._on_event)

    def _on_event(self, event: HostEvent) -> None:
        if isinstance(event, ClientAccepted):
            self.alias = event.alias
            self.accepted.set()

    async def start(self) -> tuple[str, int]:
        return await self.server.start("127.0.0.1", 0)

    async def wait_accepted(self, timeout: float = 10) -> int:
        await asyncio.wait_for(self.accepted.wait(), timeout)
        return self.alias
