"""What shares the host's RIFT socket besides RIFT: the asyncio side of
:class:`~wavry.connectivity.meetings.HostMeetings` and of STUN, plugged into `HostServer` as its
side channel (docs/spec/RIFT.md §10: one socket for direct and relayed datagrams).

The first byte tells datagrams apart: ``0x52`` is RIFT (the server's core takes it), ``0x57`` a
relay header (FORWARD → its RIFT datagram goes to the core with the relay route as its address;
control → the binding), a STUN answer (top bits zero, magic cookie) → the pending STUN query.
Anything else is dropped and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wavry.connectivity.candidates import Address
from wavry.connectivity.meetings import HostMeetings
from wavry.connectivity.relaypath import RelayRoute
from wavry.connectivity.stun import StunQueries, is_stun
from wavry.net.host import HostServer
from wavry.net.udp import Timer

__all__ = ["HostSide", "SideCounters"]

#: the side channel's timer wakes at least this often (relayed sessions are looked up then)
MAX_TIMER_S = 0.5


@dataclass(slots=True)
class SideCounters:
    relayed_in: int = 0
    relayed_out: int = 0
    dropped: int = 0
    unroutable: int = 0


class HostSide:
    def __init__(
        self,
        server: HostServer,
        sign: Callable[[bytes], bytes],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.server = server
        self.meetings = HostMeetings(sign)
        self.counters = SideCounters()
        self._clock = clock
        self._wall = wall_clock
        self.stun = StunQueries(clock, self.pump)
        self._timer = Timer(self._on_timer)
        self._closed = False
        #: RIFT sessions (core alias) that ran through a meeting's relay → that meeting
        self._relayed_by: dict[int, str] = {}

    def attach(self) -> None:
        self.server.side = self

    def close(self) -> None:
        self._closed = True
        self._timer.cancel()
        if self.server.side is self:
            self.server.side = None
        self.stun.close()

    # ---- SideChannel ---------------------------------------------------------------------

    def receive(self, data: bytes, addr: tuple[Any, ...]) -> None:
        now = self._clock()
        if data[:1] == b"W":
            got = self.meetings.unwrap(data, (str(addr[0]), int(addr[1])), now)
            if got is not None:
                self.counters.relayed_in += 1
                self.server.receive(got[0], got[1])
            else:
                self.pump()
            return
        if is_stun(data):
            self.stun.on_datagram(data, (str(addr[0]), int(addr[1])))
            return
        self.counters.dropped += 1

    def owns(self, addr: tuple[Any, ...]) -> bool:
        return isinstance(addr, RelayRoute)

    def send_run(self, run: list[bytes], addr: tuple[Any, ...]) -> None:
        assert isinstance(addr, RelayRoute)
        for d in run:
            wrapped = self.meetings.wrap(addr, d)
            if wrapped is None:
                self.counters.unroutable += 1
                continue
            self.counters.relayed_out += 1
            self.server.send_raw(*wrapped)

    async def reflexive(self, server: Address, timeout: float = 1.0) -> Address | None:
        """The address the gateway's STUN service sees this socket at (None: no answer)."""
        return await self.stun.ask(server, timeout)

    # ---- timers and output ---------------------------------------------------------------

    def pump(self) -> None:
        """Send what is due (probes, relay control, STUN) and re-arm the timer."""
        if self._closed:
            return
        now = self._clock()
        out = self.meetings.take_output(now) + self.stun.take_output(now)
        for data, addr in out:
            self.server.send_raw(data, addr)
        due = [t for t in (self.stun.next_timer(), self.meetings.next_timer()) if t is not None]
        deadline = min([*due, now + MAX_TIMER_S])
        self._timer.schedule(deadline, now)

    def _on_timer(self) -> None:
        now = self._clock()
        sessions = self.server.core.sessions
        relayed = set()
        for alias, s in sessions.items():
            if isinstance(s.addr, RelayRoute):
                relayed.add(s.addr.session)
                self._relayed_by[alias] = s.addr.session
        for alias in [a for a in self._relayed_by if a not in sessions]:
            meeting = self._relayed_by.pop(alias)
            if meeting not in relayed:
                self.meetings.session_ended(meeting)
        self.meetings.set_relayed(relayed, now)
        self.meetings.handle_timer(now)
        self.pump()

    @property
    def wall(self) -> float:
        return self._wall()
