"""`ImpairmentProxy`: one `ImpairmentModel` per direction applied to real UDP traffic between
one client and one upstream, delivered on the asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from wavry.bench.netlab.model import (
    Address,
    Direction,
    DirectionArg,
    ImpairmentModel,
    LinkConfig,
    LinkStats,
    Retime,
)

_SLACK = 0.0002  # deliver datagrams due within this many seconds when a timer fires
#: event-loop timers fire up to ~1 ms late (libuv and epoll count milliseconds): with
#: `precise=True` the timer is armed this much early and the rest is waited out by spinning
_EARLY = 0.0012
_SOCK_BUF = 4 * 1024 * 1024


@dataclass(slots=True)
class ProxyStats:
    """Snapshot of an ImpairmentProxy: per-direction link counters plus proxy counters."""

    up: LinkStats
    down: LinkStats
    sent_up: int = 0
    sent_down: int = 0
    overflow: int = 0  # dropped because the pending-delivery cap was reached
    send_errors: int = 0  # socket errors on send or reported by the kernel (e.g. ICMP)
    ignored: int = 0  # not forwarded: looped-back source, or reply with no client known
    client_changes: int = 0
    pending: int = 0

    def summary(self) -> str:
        return (
            f"up: {self.up.summary()} sent={self.sent_up} | "
            f"down: {self.down.summary()} sent={self.sent_down} | "
            f"pending={self.pending} overflow={self.overflow} errors={self.send_errors} "
            f"ignored={self.ignored} client_changes={self.client_changes}"
        )


@dataclass(slots=True, eq=False)
class _Pending:
    key: tuple[Direction, int, int]
    data: bytes
    dead: bool = False


class _Side(asyncio.DatagramProtocol):
    def __init__(
        self, on_data: Callable[[bytes, Address], None], on_error: Callable[[Exception], None]
    ) -> None:
        self._on_data = on_data
        self._on_error = on_error

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._on_data(data, addr)

    def error_received(self, exc: Exception) -> None:
        self._on_error(exc)


def _tune(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, opt, _SOCK_BUF)


def _directions(direction: DirectionArg) -> tuple[Direction, ...]:
    if direction == "both":
        return ("up", "down")
    if direction in ("up", "down"):
        return (direction,)
    raise ValueError(f"direction must be 'up', 'down' or 'both', got {direction!r}")


class ImpairmentProxy:
    """UDP proxy: client ↔ `listen` ↔ (impairments) ↔ `upstream`.

    Replies go to the most recent client source address. Only the upstream and that client are
    ever sent to. The direction models are seeded with f"{seed}/up" and f"{seed}/down".
    Works with the default asyncio loop and uvloop. Loop timers alone are ~1 ms late (measured:
    10 ms configured → 10.9 ms median); with `precise` (default) a timer is armed 1.2 ms early
    and the remainder is spun out, so delays hold to ~0.1 ms at the cost of at most that much
    busy CPU per wake-up. Datagrams that a link does not delay are forwarded at once.
    """

    def __init__(
        self,
        listen: tuple[str, int],
        upstream: tuple[str, int],
        up: LinkConfig | None = None,
        down: LinkConfig | None = None,
        *,
        seed: int = 0,
        max_pending: int = 65536,
        max_pending_bytes: int = 64 * 1024 * 1024,
        max_send_buffer: int = 4 * 1024 * 1024,
        precise: bool = True,
    ) -> None:
        self._precise = precise
        self._listen = (listen[0], int(listen[1]))
        self._upstream = (upstream[0], int(upstream[1]))
        self._models: dict[Direction, ImpairmentModel] = {
            "up": ImpairmentModel(up, f"{seed}/up"),
            "down": ImpairmentModel(down, f"{seed}/down"),
        }
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._max_send_buffer = max_send_buffer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client_tr: asyncio.DatagramTransport | None = None
        self._up_tr: asyncio.DatagramTransport | None = None
        self._own: set[Address] = set()
        self._client: Address | None = None
        self._heap: list[tuple[float, int, int, int, _Pending]] = []
        self._live: dict[tuple[Direction, int, int], _Pending] = {}
        self._live_dir: dict[Direction, int] = {"up": 0, "down": 0}
        self._pending_bytes = 0
        self._tick = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._closed = False
        self._c = ProxyStats(LinkStats(), LinkStats())

    async def __aenter__(self) -> ImpairmentProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind the listen socket and connect the upstream socket."""
        if self._loop is not None:
            raise RuntimeError("proxy already started")
        self._loop = asyncio.get_running_loop()
        try:
            await self._open_upstream()
            tr, _ = await self._loop.create_datagram_endpoint(
                lambda: _Side(self._from_client, self._on_error), local_addr=self._listen
            )
            self._client_tr = tr
            _tune(tr)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop forwarding, drop pending datagrams and close the sockets (idempotent)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        self._live.clear()
        self._pending_bytes = 0
        self._live_dir = {"up": 0, "down": 0}
        for tr in (self._client_tr, self._up_tr):
            if tr is not None:
                tr.close()
        if self._loop is not None:
            await asyncio.sleep(0)

    async def rebind(self) -> Address:
        """Open a new upstream socket (new source port, like a NAT rebinding); return it."""
        if self._loop is None or self._closed:
            raise RuntimeError("proxy not running")
        old = self._up_tr
        await self._open_upstream()
        if old is not None:
            old.close()
        return self.upstream_local

    @property
    def address(self) -> tuple[str, int]:
        """Bound listen address (host, port)."""
        if self._client_tr is None:
            raise RuntimeError("proxy not started")
        name = self._client_tr.get_extra_info("sockname")
        return (name[0], name[1])

    @property
    def upstream_local(self) -> tuple[str, int]:
        """Local address of the upstream-facing socket (what the upstream sees)."""
        if self._up_tr is None:
            raise RuntimeError("proxy not started")
        name = self._up_tr.get_extra_info("sockname")
        return (name[0], name[1])

    @property
    def client(self) -> Address | None:
        """Most recent client source address."""
        return self._client

    @property
    def stats(self) -> ProxyStats:
        return replace(
            self._c,
            up=self._models["up"].stats.copy(),
            down=self._models["down"].stats.copy(),
            pending=len(self._live),
        )

    def model(self, direction: Direction) -> ImpairmentModel:
        return self._models[direction]

    def set_rate(self, direction: DirectionArg, kbps: float | None) -> None:
        """Change the rate limit now (None = unlimited); queued datagrams are re-timed."""
        for d in _directions(direction):
            self._apply(d, self._models[d].set_rate(kbps, time.monotonic()))

    def update(self, direction: DirectionArg, **changes: Any) -> None:
        """Change LinkConfig fields of one or both directions now."""
        for d in _directions(direction):
            self._apply(d, self._models[d].update(time.monotonic(), **changes))

    async def _open_upstream(self) -> None:
        assert self._loop is not None
        tr, _ = await self._loop.create_datagram_endpoint(
            lambda: _Side(self._from_upstream, self._on_error), remote_addr=self._upstream
        )
        _tune(tr)
        self._up_tr = tr
        for key in ("peername", "sockname"):
            name = tr.get_extra_info(key)
            if name:
                self._own.add(tuple(name[:2]))

    def _from_client(self, data: bytes, addr: Address) -> None:
        if self._closed:
            return
        if not isinstance(addr, tuple) or tuple(addr[:2]) in self._own:
            self._c.ignored += 1
            return
        if addr != self._client:
            self._c.client_changes += self._client is not None
            self._client = addr
        self._admit("up", data)

    def _from_upstream(self, data: bytes, addr: Address) -> None:
        if self._closed:
            return
        if self._client is None:
            self._c.ignored += 1
            return
        self._admit("down", data)

    def _on_error(self, exc: Exception) -> None:
        self._c.send_errors += 1

    def _admit(self, direction: Direction, data: bytes) -> None:
        now = time.monotonic()
        decision = self._models[direction].process(len(data), now)
        for copy, when in enumerate(decision.deliveries):
            if when <= now and self._live_dir[direction] == 0:
                self._send(direction, data)
            else:
                self._enqueue((direction, decision.seq, copy), when, data)
        if self._heap and self._heap[0][0] <= now:
            self._run_due()

    def _enqueue(self, key: tuple[Direction, int, int], when: float, data: bytes) -> None:
        if (
            len(self._live) >= self._max_pending
            or self._pending_bytes + len(data) > self._max_pending_bytes
        ):
            self._c.overflow += 1
            return
        self._live_dir[key[0]] += 1
        self._pending_bytes += len(data)
        self._push(_Pending(key, data), when)

    def _push(self, p: _Pending, when: float) -> None:
        self._live[p.key] = p
        heapq.heappush(self._heap, (when, p.key[1], p.key[2], next(self._tick), p))
        self._arm(when)

    def _apply(self, direction: Direction, retimes: list[Retime]) -> None:
        for seq, copy, when in retimes:
            old = self._live.get((direction, seq, copy))
            if old is not None:
                old.dead = True
                self._push(_Pending(old.key, old.data), when)

    def _arm(self, when: float) -> None:
        if self._loop is None or self._closed or when >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, when - time.monotonic() - (_EARLY if self._precise else 0.0))
        self._timer = self._loop.call_at(self._loop.time() + delay, self._on_timer)
        self._timer_at = when

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        if self._precise and self._heap:
            # hand-written spin: no event loop offers sub-millisecond timers
            due = self._heap[0][0]
            while time.monotonic() < due - _SLACK and due - time.monotonic() <= 2 * _EARLY:
                os.sched_yield()  # spin, but let the processes under test run first
        self._run_due()

    def _run_due(self) -> None:
        heap = self._heap
        limit = time.monotonic() + _SLACK
        while heap and (heap[0][4].dead or heap[0][0] <= limit):
            p = heapq.heappop(heap)[4]
            if p.dead:
                continue
            del self._live[p.key]
            self._live_dir[p.key[0]] -= 1
            self._pending_bytes -= len(p.data)
            self._send(p.key[0], p.data)
        if heap:
            self._arm(heap[0][0])

    def _send(self, direction: Direction, data: bytes) -> None:
        if self._closed:
            return
        if direction == "up":
            tr, dest = self._up_tr, None
        else:
            tr, dest = self._client_tr, self._client
            if dest is None:
                self._c.ignored += 1
                return
        if tr is None or tr.is_closing():
            self._c.send_errors += 1
            return
        try:
            backlog = getattr(tr, "get_write_buffer_size", lambda: 0)()
            if backlog > self._max_send_buffer:
                self._c.overflow += 1
                return
            tr.sendto(data, dest)
        except (OSError, RuntimeError, ValueError, TypeError):
            self._c.send_errors += 1
            return
        if direction == "up":
            self._c.sent_up += 1
        else:
            self._c.sent_down += 1
