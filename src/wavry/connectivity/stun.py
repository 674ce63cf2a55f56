"""A STUN Binding client without I/O (RFC 5389), asked from the RIFT socket itself.

The server-reflexive address a NAT gives the RIFT socket is only useful if the question leaves
through that very socket (docs/spec/CONTROL_PLANE.md §6 step 2): so this is not a client with
its own socket but a state machine the socket demultiplexer feeds (:mod:`wavry.connectivity.mux`).
aioice's message codec builds and parses the datagrams; the retransmission schedule is RFC
5389's doubling one, shortened because the STUN server sits next to the gateway we already
reach (an answer that takes over a second is better traded for connecting without it).
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from aioice import stun

from wavry.connectivity.candidates import Address, CandidateError, parse_ip_port
from wavry.net.addr import format_hostport

__all__ = ["StunQueries", "StunQuery", "is_stun"]

_COOKIE = 0x2112A442
#: seconds after the first request at which it is sent again; the last entry is the give-up
RETRY_SCHEDULE_S = (0.1, 0.3, 0.7, 1.5)
GIVE_UP_S = 2.5


def is_stun(data: bytes) -> bool:
    """RFC 5389 §6/§7.3: two zero top bits, 4-byte aligned, the magic cookie."""
    return (
        len(data) >= 20
        and data[0] < 0x40
        and len(data) % 4 == 0
        and struct.unpack_from("!I", data, 4)[0] == _COOKIE
    )


@dataclass(slots=True)
class StunQuery:
    """One Binding transaction to ``server``: ``take_output`` gives the requests to send,
    ``on_datagram`` takes answers, ``result`` is the reflexive address once one matched."""

    server: Address
    started: float
    random_bytes: Callable[[int], bytes] = os.urandom
    result: Address | None = None
    failed: bool = False
    sent: int = 0
    _request: bytes = b""
    _txid: bytes = b""
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._txid = self.random_bytes(12)
        msg = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.REQUEST,
            transaction_id=self._txid,
        )
        self._request = bytes(msg)
        self._next = self.started

    @property
    def done(self) -> bool:
        return self.result is not None or self.failed

    def next_timer(self) -> float | None:
        if self.done:
            return None
        return min(self._next, self.started + GIVE_UP_S)

    def take_output(self, now: float) -> list[tuple[bytes, Address]]:
        """The request, when it is due (first send, then the retry schedule)."""
        if self.done:
            return []
        if now >= self.started + GIVE_UP_S:
            self.failed = True
            return []
        if now < self._next:
            return []
        self.sent += 1
        later = [self.started + t for t in RETRY_SCHEDULE_S if self.started + t > now]
        self._next = later[0] if later else self.started + GIVE_UP_S
        return [(self._request, self.server)]

    def on_datagram(self, data: bytes, addr: Address) -> bool:
        """True when ``data`` answered this transaction (the result is then set)."""
        if self.done or len(data) < 20 or data[8:20] != self._txid:
            return False
        try:
            msg = stun.parse_message(data)
        except Exception:  # ValueError, struct.error on broken attributes: not our answer
            return False
        if msg.message_class is not stun.Class.RESPONSE:
            self.failed = msg.message_class is stun.Class.ERROR
            return self.failed
        mapped = msg.attributes.get("XOR-MAPPED-ADDRESS") or msg.attributes.get("MAPPED-ADDRESS")
        if not isinstance(mapped, tuple) or len(mapped) != 2:
            return False
        try:
            self.result = parse_ip_port(format_hostport(str(mapped[0]), int(mapped[1])))
        except CandidateError:
            return False
        return True


class StunQueries:
    """The STUN transactions pending on one socket, for its asyncio adapter: ``ask`` waits for
    the answer, ``on_datagram`` takes a STUN datagram, ``take_output``/``next_timer`` drive the
    retries (the adapter sends and schedules)."""

    def __init__(self, clock: Callable[[], float], wake: Callable[[], None]) -> None:
        self._clock = clock
        self._wake = wake  # the adapter sends what is due now and re-arms its timer
        self._pending: list[tuple[StunQuery, asyncio.Future[Address | None]]] = []
        self.answers = 0

    async def ask(self, server: Address, timeout: float = 1.0) -> Address | None:
        """The address ``server`` sees the socket at (None: no answer in ``timeout``)."""
        fut: asyncio.Future[Address | None] = asyncio.get_running_loop().create_future()
        self._pending.append((StunQuery(server, self._clock()), fut))
        self._wake()
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
        finally:
            self._pending = [(q, f) for q, f in self._pending if f is not fut]

    def on_datagram(self, data: bytes, addr: Address) -> None:
        for query, fut in self._pending:
            if query.on_datagram(data, addr):
                self.answers += 1
                if not fut.done():
                    fut.set_result(query.result)
        self._pending = [(q, f) for q, f in self._pending if not q.done]

    def take_output(self, now: float) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        for query, fut in self._pending:
            out.extend(query.take_output(now))
            if query.failed and not fut.done():
                fut.set_result(None)
        return out

    def next_timer(self) -> float | None:
        due = [t for q, _ in self._pending if (t := q.next_timer()) is not None]
        return min(due) if due else None

    def close(self) -> None:
        for _, fut in self._pending:
            if not fut.done():
                fut.set_result(None)
        self._pending.clear()
