"""The client's RIFT socket when the path is not one fixed address: a `ClientConnection` whose
datagrams the path manager (:class:`~wavry.connectivity.paths.ClientPaths`) routes.

The socket is unconnected and shared (docs/spec/RIFT.md §10): RIFT (first byte ``0x52``) goes
to the core, relay datagrams (``0x57``) to the relay binding (a FORWARD's RIFT datagram then to
the core, with the relay route as the path it came by), STUN answers to the pending query.
After the core has taken a datagram, the path manager learns whether it authenticated (the
channel's receive counter moved) or completed a handshake, which is what fixes and moves the
path.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from wavry.connectivity.candidates import Address
from wavry.connectivity.paths import (
    ClientPaths,
    DirectCheckDue,
    PathChanged,
    RelayNeeded,
    describe_path,
    handshake_message_number,
    transport_packet_id,
)
from wavry.connectivity.relaypath import RelayRoute
from wavry.connectivity.stun import StunQueries, is_stun
from wavry.net.client import ClientConnection
from wavry.net.udp import ArrivalSink, Timer, TimestampedUdp, tune_socket
from wavry.rift.client import ClientSession
from wavry.rift.events import ClientState

__all__ = ["PathSocket", "RoutedConnection"]


class PathSocket(TimestampedUdp):
    """An unconnected RIFT socket: ``sendto(data)`` without an address asks ``route``."""

    def __init__(
        self,
        sock: socket.socket,
        sink: ArrivalSink,
        on_batch: Callable[[], None],
        route: Callable[[bytes], list[tuple[bytes, Address]]],
    ) -> None:
        super().__init__(sock, sink, on_batch)
        self._route = route
        self.send_errors = 0

    def sendto(self, data: bytes, addr: tuple[Any, ...] | None = None) -> None:
        if addr is not None:
            self.send_one(data, addr)
            return
        for d, a in self._route(data):
            self.send_one(d, a)

    def send_one(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            super().sendto(data, addr)
        except OSError:
            # one unreachable candidate (no route to a foreign LAN address) must not stop
            # the others; a full buffer drops the datagram (latency first)
            self.send_errors += 1


class RoutedConnection(ClientConnection):
    """A ClientConnection on a PathSocket. ``on_relay_needed`` asks the gateway for a relay,
    ``on_path`` hears every path change."""

    def __init__(self, session: ClientSession, paths: ClientPaths) -> None:
        super().__init__(session)
        self.paths = paths
        self.on_relay_needed: Callable[[RelayNeeded], None] | None = None
        self.on_path: Callable[[PathChanged], None] | None = None
        self.on_close: list[Callable[[], None]] = []
        self._ptimer = Timer(self._on_path_timer)
        self.stun = StunQueries(self._clock, self._pump)
        self._pumping = False
        self._sock: PathSocket | None = None
        self.probes_received = 0
        self.dropped = 0
        #: what the gateway said when it could not give a relay (set by the route)
        self.relay_problem = ""

    def no_answer_reason(self) -> str:
        """Why no handshake completed, for the user (establish's time-out message)."""
        p = self.paths
        tried = ", ".join(f"{c.kind.value} {describe_path(c.addr)}" for c in p.remote.candidates)
        direct = f"no direct answer from the host's candidates ({tried or 'none offered'})"
        b = p.relay
        if b is None:
            relay = self.relay_problem or "no relay was granted"
        elif b.failure:
            relay = f"the relay failed: {b.failure}"
        elif not b.bound:
            relay = "the relay never confirmed the binding"
        else:
            relay = "no answer through the relay either (is the host still online?)"
        return f"{direct}; {relay}"

    @property
    def receive_errors(self) -> int:
        # ICMP errors are expected while punching (candidates that lead nowhere)
        return 0

    async def open_socket(self, local: Address = ("0.0.0.0", 0)) -> Address:
        """Bind the RIFT socket; returns its address. The session starts with `begin`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tune_socket(sock)
            sock.bind(local)
            sock.setblocking(False)
            self._sock = PathSocket(sock, self._on_socket, self._end_of_batch, self._route)
        except BaseException:
            sock.close()
            raise
        self._transport = self._sock
        host, port = sock.getsockname()[:2]
        return str(host), int(port)

    def begin(self) -> None:
        """Start the RIFT handshake (msg1 goes to every candidate the path manager knows)."""
        self.core.connect(self._clock())
        self.flush()

    # ---- the socket ----------------------------------------------------------------------

    def _route(self, data: bytes) -> list[tuple[bytes, Address]]:
        return self.paths.route(data, self._clock())

    def _on_socket(self, data: bytes, addr: tuple[Any, ...], arrival: float | None) -> None:
        first = data[:1]
        src = (str(addr[0]), int(addr[1]))
        if first == b"R":
            self._rift(data, src, arrival)
        elif first == b"W":
            got = self.paths.unwrap(data, src, self._clock())
            if got is not None:
                self._rift(got[0], got[1], arrival)
            else:
                self._pump()
        elif is_stun(data):
            self.stun.on_datagram(data, src)
        else:
            self.dropped += 1

    def _rift(self, data: bytes, path: Address | RelayRoute, arrival: float | None) -> None:
        core = self.core
        number = handshake_message_number(data)
        if number == 0:
            self.probes_received += 1  # the host opening its NAT: never answered (RIFT.md §1)
            return
        channel = core.channel
        before = channel.counters.received if channel is not None else 0
        handshaking = core.state is ClientState.HANDSHAKE
        if handshaking and number == 2:
            self.paths.receiving = path  # msg3 and Hello answer where msg2 came from
        try:
            self._on_datagram(data, path, arrival)
        finally:
            self.paths.receiving = None
        now = self._clock()
        if handshaking and core.channel is not None and core.channel is not channel:
            self.paths.reset_packet_ids()
            self.paths.received(path, True, now, handshake=True)
        elif channel is not None and core.channel is channel and channel.counters.received > before:
            self.paths.received(path, True, now, handshake=False)
            pid = transport_packet_id(data)
            if pid is not None:
                self.paths.authenticated_id(path, pid, now)
        self._pump()

    # ---- STUN from this socket -----------------------------------------------------------

    async def reflexive(self, server: Address, timeout: float = 1.0) -> Address | None:
        return await self.stun.ask(server, timeout)

    # ---- the path manager's output, events and timer -------------------------------------

    def flush(self) -> None:
        super().flush()
        self._pump()

    def _on_path_timer(self) -> None:
        self._pump()

    def _pump(self) -> None:
        if self._pumping or self._sock is None:
            return
        self._pumping = True
        try:
            now = self._clock()
            sock = self._sock
            for data, addr in self.paths.take_output(now) + self.stun.take_output(now):
                sock.send_one(data, addr)
            while (event := self.paths.next_event()) is not None:
                if isinstance(event, PathChanged):
                    if self.on_path is not None:
                        self.on_path(event)
                elif isinstance(event, RelayNeeded):
                    if self.on_relay_needed is not None:
                        self.on_relay_needed(event)
                elif isinstance(event, DirectCheckDue):
                    with self.paths.direct_check():
                        ts = self.core.ping(now)
                        if ts is not None:
                            super().flush()
            due = [t for t in (self.stun.next_timer(), self.paths.next_timer()) if t is not None]
            if due:
                self._ptimer.schedule(min(due), now)
            else:
                self._ptimer.cancel()
        finally:
            self._pumping = False

    async def close(self, message: str = "closed by user") -> None:
        self._ptimer.cancel()
        for hook in self.on_close:
            hook()
        self.stun.close()
        await super().close(message)
        self._sock = None
