"""asyncio adapter: a HostEndpoint on a UDP socket.

The adapter owns the clocks: the core runs on `clock` (monotonic: a wall-clock step never
reaches a timer, a rate or a pacer) and stamps what goes on the wire with `wall_clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from wavry.net.carrier import Carrier, CarrierAddress
from wavry.net.gso import GsoSender, dup_socket
from wavry.net.udp import Timer, open_udp
from wavry.rift import rift_pb2
from wavry.rift.events import DisconnectReason, HostEvent
from wavry.rift.host import HostEndpoint

HostEventHandler = Callable[[HostEvent], None]
SentHook = Callable[[list[bytes], float], None]


class SideChannel(Protocol):
    """What else shares the RIFT socket (wavry.connectivity: STUN answers, relay control and
    relayed RIFT, hole-punching probes). RIFT datagrams start with 0x52; everything else goes to
    ``receive``, which hands relayed RIFT back through `HostServer.receive`. Addresses that are
    not plain UDP addresses (a relay route) are ``owned`` by it and sent through ``send_run``."""

    def receive(self, data: bytes, addr: tuple[Any, ...]) -> None: ...

    def owns(self, addr: tuple[Any, ...]) -> bool: ...

    def send_run(self, run: list[bytes], addr: tuple[Any, ...]) -> None: ...


class HostServer:
    def __init__(
        self,
        endpoint: HostEndpoint,
        on_event: HostEventHandler | None = None,
        clock: Callable[[], float] = time.monotonic,
        gso: bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = endpoint
        self._on_event = on_event
        self._clock = clock
        self.wall_clock = wall_clock
        endpoint.wall_clock = wall_clock
        self._transport: asyncio.DatagramTransport | None = None
        self._timer = Timer(self._on_timer)
        self.send_errors = 0
        self.datagrams_sent = 0
        self.bytes_sent = 0
        #: called with each run of datagrams and the send time (benchmarks log packet ids)
        self.on_sent: SentHook | None = None
        self._gso_wanted = gso
        self.gso: GsoSender | None = None
        self.side: SideChannel | None = None
        #: Every entry into the core holds this lock: the loop's callbacks, the host runtime's
        #: calls (`wavry.host.link.SessionLink`) and `send_frame_threadsafe` from the encoder's
        #: thread (the core itself is single-threaded). Reentrant: event handlers run inside
        #: `flush` and call back into the core.
        self.lock = threading.RLock()
        self._raw: Any = None  # a dup of the socket: sends from another thread
        self._thread_gso = GsoSender(None, self._raw_sendto, enabled=False)
        self._loop: asyncio.AbstractEventLoop | None = None
        #: carriers besides the UDP socket (RIFT.md §11), by name
        self.carriers: dict[str, Carrier] = {}
        endpoint.datagram_limit = self._datagram_limit

    def clock(self) -> float:
        """The core's clock (what every `now` passed to the endpoint must come from)."""
        return self._clock()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._transport = await open_udp(self._on_datagram, local=(host, port))
        sockname = self._transport.get_extra_info("sockname")
        transport = self._transport
        self._loop = asyncio.get_running_loop()
        self._raw = dup_socket(transport.get_extra_info("socket"))
        self._thread_gso = GsoSender(self._raw, self._raw_sendto, enabled=self._gso_wanted)
        raw = dup_socket(transport.get_extra_info("socket")) if self._gso_wanted else None
        buffered: Callable[[], int] | None = getattr(transport, "get_write_buffer_size", None)
        self.gso = GsoSender(
            raw,
            self._sendto,
            can_bypass=(lambda: buffered() == 0) if buffered is not None else (lambda: False),
            enabled=self._gso_wanted and buffered is not None,
        )
        return str(sockname[0]), int(sockname[1])

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.side is not None and data[:1] != b"R":
            self.side.receive(data, addr)
            return
        with self.lock:
            core = self.core
            core.receive_datagram(data, addr, self._clock())
            # a dropped datagram (junk, a flood) changed nothing: no flush, no timer work, so
            # floods cost the receive path alone (docs/security.md)
            if core.has_work:
                self.flush()

    def receive(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """A RIFT datagram that arrived by another way (unwrapped from a relay's FORWARD)."""
        with self.lock:
            self.core.receive_datagram(data, addr, self._clock())
            self.flush()

    def send_raw(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """A datagram from the RIFT socket that is not the core's (STUN, probes, relay)."""
        self._sendto(data, addr)

    # ---- carriers (browsers: WebTransport, WebSocket) ---------------------------------------

    def add_carrier(self, carrier: Carrier) -> None:
        self.carriers[carrier.name] = carrier

    def receive_from_carrier(self, data: bytes, addr: CarrierAddress) -> None:
        """One RIFT datagram that arrived through a carrier connection."""
        with self.lock:
            self.core.receive_datagram(data, addr, self._clock())
            self.flush()

    def carrier_closed(self, addr: CarrierAddress, why: str) -> None:
        """A carrier connection is gone: its session cannot be reached any more."""
        with self.lock:
            self._carrier_closed(addr, why)

    def _carrier_closed(self, addr: CarrierAddress, why: str) -> None:
        for alias, s in list(self.core.sessions.items()):
            if s.addr == addr:
                self.core.close_session(alias, DisconnectReason.USER, why)
        self.flush()

    def _datagram_limit(self, addr: Any) -> int | None:
        if isinstance(addr, CarrierAddress) and (c := self.carriers.get(addr.carrier)):
            return c.max_datagram(addr)
        return None

    def _on_timer(self) -> None:
        with self.lock:
            self.core.handle_timer(self._clock())
            self.flush()

    def send_frame_threadsafe(
        self,
        alias: int,
        data: bytes,
        *,
        keyframe: bool,
        timestamp_us: int,
        capture_us: int = 0,
        encode_us: int = 0,
    ) -> int | None:
        """Hand an encoded frame to the transport from another thread (the encoder's), without
        waiting for the event loop: the frame is chunked, sealed and its first datagrams are on
        the wire before this returns (what the pacer holds back leaves on the loop's timer).
        The loop is then asked to deliver the core's events and re-arm its timer. Returns the
        frame id, or None when the session is gone or the server is not running.

        Sends from this thread go through a duplicate of the socket (UDP sends are atomic per
        datagram), with GSO where the kernel has it."""
        loop = self._loop
        if loop is None or self._transport is None or self._raw is None:
            return None
        with self.lock:
            if self._raw is None:
                return None
            now = self._clock()
            try:
                fid = self.core.send_frame(
                    alias,
                    data,
                    now,
                    keyframe=keyframe,
                    timestamp_us=timestamp_us,
                    capture_us=capture_us,
                    encode_us=encode_us,
                    on_batch=self._send_from_thread,
                )
            except KeyError:
                return None
            self._send_from_thread()
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(self.flush)
        return fid

    def sends_from_thread(self, alias: int) -> bool:
        """Whether `send_frame_threadsafe` sends this session's datagrams itself: a plain UDP
        peer. A browser's carrier and a relayed route live on the loop, and their frames are
        better sent from there (`HostEndpoint.send_frame` on the loop) than sealed here and
        handed over datagram run by datagram run."""
        with self.lock:
            s = self.core.sessions.get(alias)
            if s is None:
                return False
            addr = s.addr
            side = self.side
            return not isinstance(addr, CarrierAddress) and not (
                side is not None and side.owns(addr)
            )

    def should_skip_frame_threadsafe(self, aliases: list[int] | None = None) -> bool:
        """`HostEndpoint.should_skip_frame` from another thread (the encoder's, before it
        encodes): the core's one backlog decision, taken under the same lock, no loop hop."""
        with self.lock:
            return self.core.should_skip_frame(self._clock(), aliases)

    def _send_from_thread(self) -> None:
        now = self._clock()
        out = self.core.datagrams_to_send(now)
        if not out:
            return
        gso = self._thread_gso
        i = 0
        while i < len(out):
            addr = out[i][1]
            j = i + 1
            while j < len(out) and out[j][1] == addr:
                j += 1
            run = [d for d, _ in out[i:j]]
            side = self.side
            if isinstance(addr, CarrierAddress) or (side is not None and side.owns(addr)):
                # a browser's carrier and the side channel (relayed paths) live on the loop:
                # their datagrams go from there
                with contextlib.suppress(RuntimeError):
                    assert self._loop is not None
                    self._loop.call_soon_threadsafe(self._send_runs, out[i:j], now)
                i = j
                continue
            gso.send_run(run, addr)
            self.datagrams_sent += len(run)
            self.bytes_sent += sum(len(d) for d in run)
            if self.on_sent is not None:
                self.on_sent(run, now)
            i = j

    def _raw_sendto(self, data: bytes, addr: Any) -> None:
        raw = self._raw
        if raw is None:
            return
        try:
            raw.sendto(data, addr)
        except OSError:
            self.send_errors += 1  # a full buffer drops it, as a latency-first sender should

    def flush(self) -> None:
        """Send what the core produced, deliver its events, re-arm its timer."""
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        core = self.core
        now = self._clock()
        for _ in range(8):  # event handlers may produce more output
            out = core.datagrams_to_send(now)
            if out:
                self._send_runs(out, now)
            event = core.next_event()
            if event is None:
                break
            while event is not None:
                if self._on_event is not None:
                    self._on_event(event)
                event = core.next_event()
        self._timer.schedule(core.next_timer(), now)

    def send_output(self) -> None:
        """Send the datagrams the core has ready, nothing else (no events, no timer): safe to
        call while the core is inside `send_frame` (its ``on_batch``)."""
        with self.lock:
            now = self._clock()
            out = self.core.datagrams_to_send(now)
            if out:
                self._send_runs(out, now)

    def _send_runs(self, out: list[tuple[bytes, Any]], now: float) -> None:
        """Consecutive datagrams to one address go out together (GSO where supported)."""
        i = 0
        while i < len(out):
            addr = out[i][1]
            j = i + 1
            while j < len(out) and out[j][1] == addr:
                j += 1
            run = [d for d, _ in out[i:j]]
            if self.side is not None and self.side.owns(addr):
                self.side.send_run(run, addr)
            elif isinstance(addr, CarrierAddress):
                carrier = self.carriers.get(addr.carrier)
                if carrier is not None:
                    carrier.send_run(addr, run)
            elif self.gso is not None:
                self.gso.send_run(run, addr)
            else:
                for d in run:
                    self._sendto(d, addr)
            self.datagrams_sent += len(run)
            self.bytes_sent += sum(len(d) for d in run)
            if self.on_sent is not None:
                self.on_sent(run, now)
            i = j

    def _sendto(self, data: bytes, addr: Any) -> None:
        transport = self._transport
        if transport is None:
            return
        try:
            transport.sendto(data, addr)
        except OSError:
            self.send_errors += 1

    def send_message(self, alias: int, message: rift_pb2.Message) -> int:
        with self.lock:
            pid = self.core.send_message(alias, message)
            self.flush()
            return pid

    async def close(self) -> None:
        with self.lock:
            self.core.close_all(DisconnectReason.SHUTDOWN, "host is shutting down")
            self.flush()
            self._timer.cancel()
            if self.gso is not None:
                self.gso.close()
            self._thread_gso.close()
            self._raw = None  # closed with its GsoSender
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        await asyncio.sleep(0)
