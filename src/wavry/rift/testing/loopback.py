"""In-memory pump between a ClientSession and a HostEndpoint, on a caller-driven clock.

Used by deterministic protocol tests and by benchmarks that measure the core without sockets.
`drop` decides per datagram (direction, data) whether the scripted network loses it.
"""

from __future__ import annotations

from collections.abc import Callable

from wavry.rift.client import ClientSession
from wavry.rift.events import Address, ClientEvent, HostEvent
from wavry.rift.host import HostEndpoint

DropRule = Callable[[str, bytes], bool]


class Loopback:
    def __init__(
        self,
        client: ClientSession,
        host: HostEndpoint,
        client_addr: Address = ("10.0.0.2", 50000),
        drop: DropRule | None = None,
    ) -> None:
        self.client = client
        self.host = host
        self.client_addr = client_addr
        self.drop = drop
        self.client_events: list[ClientEvent] = []
        self.host_events: list[HostEvent] = []
        self.to_host: list[bytes] = []
        self.to_client: list[bytes] = []

    def pump(self, now: float, rounds: int = 20) -> None:
        """Deliver everything in flight (instantly) until both sides are quiet."""
        for _ in range(rounds):
            moved = False
            for data in self.client.datagrams_to_send(now):
                self.to_host.append(data)
                if self.drop is None or not self.drop("c2h", data):
                    self.host.receive_datagram(data, self.client_addr, now)
                moved = True
            for data, _addr in self.host.datagrams_to_send(now):
                self.to_client.append(data)
                if self.drop is None or not self.drop("h2c", data):
                    self.client.receive_datagram(data, now)
                moved = True
            self._drain()
            if not moved:
                return

    def run_until(self, start: float, end: float, step: float = 0.01) -> float:
        """Advance the clock in `step`s, firing due timers on both sides and pumping."""
        now = start
        while now < end:
            now = min(end, now + step)
            for side in (self.client, self.host):
                t = side.next_timer()
                if t is not None and t <= now:
                    side.handle_timer(now)
            self.pump(now)
        return now

    def _drain(self) -> None:
        while (ce := self.client.next_event()) is not None:
            self.client_events.append(ce)
        while (he := self.host.next_event()) is not None:
            self.host_events.append(he)
