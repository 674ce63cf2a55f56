"""asyncio adapter: a ClientSession on a connected UDP socket.

The adapter owns the clocks: the core runs on `clock` (monotonic: a wall-clock step never
reaches a timer, an RTT or the media path) and stamps what goes on the wire with `wall_clock`.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

from wavry.net.udp import Timer, TimestampedUdp, open_udp_timestamped
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession
from wavry.rift.events import ClientEvent


async def resolve_udp(host: str, port: int) -> tuple[str, int]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    family, _, _, _, sockaddr = infos[0]
    del family
    return str(sockaddr[0]), int(sockaddr[1])


BatchHandler = Callable[[list[ClientEvent]], None]
#: a kernel receive timestamp older than this when read is not believed (a clock step)
MAX_ARRIVAL_AGE_S = 1.0


class ClientConnection:
    """Drives a ClientSession; events are delivered to an asyncio queue, or synchronously to a
    batch handler (`set_batch_handler`).

    Datagrams that arrive together (up to 64 per wake-up) are handed to the core with one flush
    per batch (output, events, timer), not one per datagram; a datagram that produces an event
    (the last chunk of a frame) is flushed at once, ahead of the rest of the batch (e.g. the
    frame's FEC parities). The socket is read with kernel receive timestamps
    (`TimestampedUdp`), which the core reports to the host as arrival times (converted to the
    core's clock).
    """

    def __init__(
        self,
        session: ClientSession,
        on_event: Callable[[ClientEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = session
        self.events: asyncio.Queue[ClientEvent] = asyncio.Queue()
        self._on_event = on_event
        self._clock = clock
        self.wall_clock = wall_clock
        session.wall_clock = wall_clock
        self._transport: TimestampedUdp | None = None
        self._timer = Timer(self._on_timer)
        self.remote: tuple[str, int] | None = None
        self.send_errors = 0
        self._handler: BatchHandler | None = None
        self._pending: list[ClientEvent] = []
        self._delivering = False
        self._flush_due = False

    async def start(self, host: str, port: int) -> None:
        self.remote = await resolve_udp(host, port)
        self._transport = await open_udp_timestamped(
            self._on_datagram, self.remote, on_batch=self._end_of_batch
        )
        self.core.connect(self._clock())
        self.flush()

    @property
    def receive_errors(self) -> int:
        """Errors the socket reported (ICMP port/host unreachable for what we sent)."""
        return self._transport.receive_errors if self._transport is not None else 0

    def clock(self) -> float:
        """The core's clock (what every `now` passed to the session must come from)."""
        return self._clock()

    @property
    def udp(self) -> TimestampedUdp | None:
        """The socket reader (its `reads` / `datagrams` counters), None before `start`."""
        return self._transport

    def wall_time(self, t: float) -> float:
        """A time of the core's clock (e.g. `AssembledFrame.last_chunk_at`) as wall-clock
        seconds (Unix epoch), for comparison with wire timestamps."""
        return t + (self.wall_clock() - self._clock())

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...], arrival: float | None) -> None:
        now = self._clock()
        if arrival is not None:
            # the kernel stamps CLOCK_REALTIME: its age now moves it onto the core's clock; an
            # age that is negative or implausible (the system clock stepped in between) is
            # dropped and the read time used instead
            age = time.time() - arrival
            arrival = now - age if 0.0 <= age < MAX_ARRIVAL_AGE_S else None
        self.core.receive_datagram(data, now, arrival)
        if self.core.has_events:  # e.g. a frame is complete: hand it over now
            self.flush()
        else:
            self._flush_due = True

    def _end_of_batch(self) -> None:
        if self._flush_due:
            self.flush()

    def _on_timer(self) -> None:
        self.core.handle_timer(self._clock())
        self.flush()

    def flush(self) -> None:
        self._flush_due = False
        transport = self._transport
        now = self._clock()
        for data in self.core.datagrams_to_send(now):
            if transport is not None:
                try:
                    transport.sendto(data)
                except OSError:
                    self.send_errors += 1
        events: list[ClientEvent] = []
        while (event := self.core.next_event()) is not None:
            if self._on_event is not None:
                self._on_event(event)
            events.append(event)
        self._timer.schedule(self.core.next_timer(), now)
        if events:
            self._deliver(events)

    def set_batch_handler(self, handler: BatchHandler | None) -> None:
        """Deliver events synchronously, one list per flush, instead of through `events` (no
        loop iteration between a frame completing and its handler); events already queued go
        first. None restores the queue."""
        self._handler = handler
        if handler is not None:
            queued: list[ClientEvent] = []
            while not self.events.empty():
                queued.append(self.events.get_nowait())
            if queued:
                self._deliver(queued)

    def _deliver(self, events: list[ClientEvent]) -> None:
        if self._handler is None:
            for event in events:
                self.events.put_nowait(event)
            return
        self._pending.extend(events)
        if self._delivering:  # the handler sent something and a nested flush produced events
            return
        self._delivering = True
        try:
            while self._pending and self._handler is not None:
                batch, self._pending = self._pending, []
                self._handler(batch)
            for event in self._pending:  # the handler was removed meanwhile
                self.events.put_nowait(event)
            self._pending = []
        finally:
            self._delivering = False

    async def next_event(self, timeout: float | None = None) -> ClientEvent:
        return await asyncio.wait_for(self.events.get(), timeout)

    def send(self, message: rift_pb2.Message) -> int:
        pid = self.core.send_message(message)
        self.flush()
        return pid

    def ping(self) -> int | None:
        ts = self.core.ping(self._clock())
        self.flush()
        return ts

    def pair(self, code: str) -> None:
        self.core.pair(code, self._clock())
        self.flush()

    async def close(self, message: str = "closed by user") -> None:
        self.core.close(self._clock(), message)
        self.flush()
        self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        await asyncio.sleep(0)
