"""A peer's side of a relayed path (docs/spec/CONTROL_PLANE.md §4, docs/spec/RIFT.md §10).

`RelayTunnel` opens a local UDP port for a RIFT endpoint that does not speak the relay format
itself: it presents the peer's lease to the relay, answers the relay's address challenge with a
proof signed by the device key (the lease's ``sub``), and re-presents the lease every 15 s,
which keeps NAT bindings and, after an address change, moves the binding through a new
challenge. It wraps every datagram from the local endpoint in a FORWARD header and unwraps
FORWARDs from the relay. RIFT is unchanged: the relay sees only encrypted datagrams.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from wavry.relay import wire
from wavry.relay.wire import PacketType, Role

Addr = tuple[Any, ...]


class DeviceKey(Protocol):
    """What signs the address proof: the device identity (``wavry.rift.identity.Identity``)."""

    def sign(self, data: bytes) -> bytes: ...


class RelayRejected(Exception):
    def __init__(self, reason: int) -> None:
        known = wire.LeaseReject(reason).known_reason
        super().__init__(f"relay rejected the lease: {known.name.lower() if known else reason}")
        self.reason = reason


@dataclass(slots=True)
class TunnelStats:
    to_relay: int = 0
    from_relay: int = 0
    dropped: int = 0
    acks: int = 0
    challenges: int = 0


class _Side(asyncio.DatagramProtocol):
    def __init__(self, sink: Any) -> None:
        self._sink = sink

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self._sink(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass


class RelayTunnel:
    """Carries one RIFT endpoint's datagrams through a relay.

    `app_addr` fixes the local endpoint's address (host side: the RIFT host's port); when None
    (client side) the tunnel replies to whoever last sent to its local port.
    """

    def __init__(
        self,
        relay_addr: Addr,
        session_id: uuid.UUID,
        role: Role,
        lease: str,
        identity: DeviceKey,
        *,
        app_addr: Addr | None = None,
        represent_every: float = 15.0,
    ) -> None:
        self.relay_addr = relay_addr
        self.session_id = session_id
        self.role = role
        self.lease = lease
        self._sign: Callable[[bytes], bytes] = identity.sign
        self.app_addr = app_addr
        self._learn_app = app_addr is None
        self.represent_every = represent_every
        self.stats = TunnelStats()
        self.ack: wire.LeaseAck | None = None
        self._local: asyncio.DatagramTransport | None = None
        self._relay: asyncio.DatagramTransport | None = None
        self._acked: asyncio.Future[wire.LeaseAck] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._reproved = False

    async def start(self, timeout: float = 5.0) -> Addr:
        """Present the lease, wait for LEASE_ACK; returns the local address to use for RIFT."""
        loop = asyncio.get_running_loop()
        self._relay, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_relay), remote_addr=self.relay_addr[:2]
        )
        self._local, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_app), local_addr=("127.0.0.1", 0)
        )
        self._acked = loop.create_future()
        self._present()
        try:
            self.ack = await asyncio.wait_for(asyncio.shield(self._acked), timeout)
        except TimeoutError:
            self.close()
            raise ConnectionError(f"no answer from the relay at {self.relay_addr}") from None
        except RelayRejected:
            self.close()
            raise
        self._keepalive = asyncio.create_task(self._represent_loop())
        return tuple(self._local.get_extra_info("sockname"))

    def _present(self) -> None:
        if self._relay is not None:
            self._relay.sendto(wire.encode_lease_present(self.session_id, self.role, self.lease))

    async def _represent_loop(self) -> None:
        while True:
            await asyncio.sleep(self.represent_every)
            self._present()

    def _from_app(self, data: bytes, addr: Addr) -> None:
        if self._learn_app:
            self.app_addr = addr  # client side: reply to the local endpoint's current address
        elif addr[:2] != tuple(self.app_addr or ())[:2]:
            self.stats.dropped += 1  # host side: only the configured endpoint may use the tunnel
            return
        if self._relay is None:
            return
        self._relay.sendto(wire.encode_forward(self.session_id, data))
        self.stats.to_relay += 1

    def _from_relay(self, data: bytes, addr: Addr) -> None:
        try:
            header = wire.decode_header(data)
        except wire.WireError:
            self.stats.dropped += 1
            return
        if header.session_id != self.session_id:
            self.stats.dropped += 1
            return
        if header.type is PacketType.FORWARD:
            try:
                _, payload = wire.forward_payload(data)
            except wire.WireError:
                self.stats.dropped += 1
                return
            if self._local is not None and self.app_addr is not None:
                self._local.sendto(payload, self.app_addr)
                self.stats.from_relay += 1
        elif header.type is PacketType.LEASE_ACK:
            with contextlib.suppress(wire.WireError):
                _, ack = wire.decode_lease_ack(data)
                self._reproved = False
                self.stats.acks += 1
                self.ack = ack
                if self._acked is not None and not self._acked.done():
                    self._acked.set_result(ack)
        elif header.type is PacketType.LEASE_CHALLENGE:
            try:
                proof = wire.answer_challenge(data, self.lease, self._sign)
            except wire.WireError:
                self.stats.dropped += 1
                return
            self.stats.challenges += 1
            if self._relay is not None:
                self._relay.sendto(proof)
        elif header.type is PacketType.LEASE_REJECT:
            with contextlib.suppress(wire.WireError):
                _, rej = wire.decode_lease_reject(data)
                if rej.reason == wire.RejectReason.BAD_PROOF and not self._reproved:
                    self._reproved = True  # the cookie may have aged: present once more
                    self._present()
                    return
                if self._acked is not None and not self._acked.done():
                    self._acked.set_exception(RelayRejected(rej.reason))

    def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        for t in (self._local, self._relay):
            if t is not None:
                t.close()
        self._local = self._relay = None
