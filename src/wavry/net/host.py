"""asyncio adapter: a HostEndpoint on a UDP socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from wavry.net.udp import Timer, open_udp
from wavry.rift import rift_pb2
from wavry.rift.events import DisconnectReason, HostEvent
from wavry.rift.host import HostEndpoint

HostEventHandler = Callable[[HostEvent], None]


class HostServer:
    def __init__(
        self,
        endpoint: HostEndpoint,
        on_event: HostEventHandler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = endpoint
        self._on_event = on_event
        self._clock = clock
        self._transport: asyncio.DatagramTransport | None = None
        self._timer = Timer(self._on_timer)
        self.send_errors = 0

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._transport = await open_udp(self._on_datagram, local=(host, port))
        sockname = self._transport.get_extra_info("sockname")
        return str(sockname[0]), int(sockname[1])

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.core.receive_datagram(data, addr, self._clock())
        self.flush()

    def _on_timer(self) -> None:
        self.core.handle_timer(self._clock())
        self.flush()

    def flush(self) -> None:
        """Send what the core produced, deliver its events, re-arm its timer."""
        transport = self._transport
        core = self.core
        now = self._clock()
        for _ in range(8):  # event handlers may produce more output
            for data, addr in core.datagrams_to_send(now):
                if transport is not None:
                    try:
                        transport.sendto(data, addr)
                    except OSError:
                        self.send_errors += 1
            event = core.next_event()
            if event is None:
                break
            while event is not None:
                if self._on_event is not None:
                    self._on_event(event)
                event = core.next_event()
        self._timer.schedule(core.next_timer(), now)

    def send_message(self, alias: int, message: rift_pb2.Message) -> int:
        pid = self.core.send_message(alias, message)
        self.flush()
        return pid

    async def close(self) -> None:
        self.core.close_all(DisconnectReason.SHUTDOWN, "host is shutting down")
        self.flush()
        self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        await asyncio.sleep(0)
