"""The relay's UDP_GRO receive / UDP_SEGMENT forward path, over real loopback sockets.

Peers send runs of datagrams with UDP_SEGMENT; on loopback the run reaches the relay's GRO
socket as one buffer, so these tests drive ``RelayServer.segments_received`` for real. Each
test checks that exactly the datagrams per-datagram forwarding would deliver arrive, in order,
at the right peer, and nothing else. Ordering barriers (a later datagram from a bound peer)
replace sleeps: the relay handles its socket queue in arrival order.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import struct
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from wavry.controlplane.lease import LeaseSigner, LeaseVerifier, generate_private_key
from wavry.net.gso import gso_supported
from wavry.relay import wire
from wavry.relay.http import render_relay_metrics
from wavry.relay.server import RelayConfig, RelayServer, open_gro_socket
from wavry.relay.wire import Role
from wavry.rift.identity import Identity

RELAY_ID = "relay-gro-test"
T0 = 1_900_000_000.0
SOL_UDP, UDP_SEGMENT = 17, 103


def _gro_available() -> bool:
    try:
        sock = open_gro_socket("127.0.0.1", 0)
    except OSError:
        return False
    if sock is None:
        return False
    sock.close()
    return gso_supported()


pytestmark = pytest.mark.skipif(not _gro_available(), reason="needs Linux UDP_GRO and GSO")


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 20))

    return run


class Relay:
    def __init__(self, **config: Any) -> None:
        self.signer = LeaseSigner(generate_private_key())
        verifier = LeaseVerifier({self.signer.kid: self.signer.public_key}, RELAY_ID)
        self.mono = 100.0
        self.server = RelayServer(
            RelayConfig(relay_id=RELAY_ID, **config),
            verifier,
            clock=lambda: T0,
            monotonic=lambda: self.mono,
        )
        self.socks: list[socket.socket] = []

    async def __aenter__(self) -> Relay:
        self.addr = await self.server.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for s in self.socks:
            s.close()
        self.server.close()

    def peer(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        self.socks.append(s)
        return s

    async def recv(self, s: socket.socket) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(s, 70000), 3)

    async def present(self, s: socket.socket, role: Role, sid: uuid.UUID, **kw: Any) -> None:
        args: dict[str, Any] = {"slimit_kbps": 20000, "hlimit_kbps": 40000, "now": T0}
        args.update(kw)
        key = Identity.generate()
        token = self.signer.mint(key.wavry_id, sid, role.claim, RELAY_ID, **args)
        s.sendto(wire.encode_lease_present(sid, role, token), self.addr)
        challenge = await self.recv(s)  # a new address proves itself first
        s.sendto(wire.answer_challenge(challenge, token, key.sign), self.addr)
        reply = await self.recv(s)
        assert wire.decode_header(reply).type is wire.PacketType.LEASE_ACK

    async def pair(self, **kw: Any) -> tuple[uuid.UUID, socket.socket, socket.socket]:
        sid = uuid.uuid4()
        client, host = self.peer(), self.peer()
        await self.present(client, Role.CLIENT, sid, **kw)
        await self.present(host, Role.HOST, sid, **kw)
        return sid, client, host

    def send_run(self, s: socket.socket, datagrams: list[bytes]) -> None:
        """One UDP_SEGMENT sendmsg: equal sizes (the last may be shorter)."""
        seg = struct.pack("=H", len(datagrams[0]))
        s.sendmsg([b"".join(datagrams)], [(SOL_UDP, UDP_SEGMENT, seg)], 0, self.addr)


def _fwd(sid: uuid.UUID, i: int, size: int = 200) -> bytes:
    body = b"%06d" % i
    return wire.encode_forward(sid, body + bytes(size - wire.HEADER_LEN - len(body)))


def _quiet(s: socket.socket) -> bool:
    try:
        s.recv(70000)
    except BlockingIOError:
        return True
    return False


@async_test
async def test_run_is_checked_once_and_forwarded_with_one_sendmsg() -> None:
    async with Relay() as r:
        assert r.server.gro_enabled
        sid, client, host = await r.pair()
        run = [_fwd(sid, i) for i in range(10)] + [_fwd(sid, 10, 120)]  # shorter last one
        r.send_run(client, run)
        assert [await r.recv(host) for _ in run] == run
        back = [_fwd(sid, 100 + i, 300) for i in range(5)]
        r.send_run(host, back)
        assert [await r.recv(client) for _ in back] == back
        st = r.server.stats
        assert (st.gro_runs, st.gso_sends) == (2, 2)
        metrics = render_relay_metrics(r.server)
        assert "wavry_relay_gro_runs_total 2" in metrics
        assert "wavry_relay_gso_sends_total 2" in metrics
        assert st.packets_forwarded == 16 and st.bytes_forwarded == 10 * 200 + 120 + 5 * 300
        assert sum(st.dropped.values()) == 0
        assert _quiet(client) and _quiet(host)


@async_test
async def test_runs_without_a_binding_are_refused() -> None:
    async with Relay() as r:
        sid, client, host = await r.pair()
        outsider = r.peer()
        r.send_run(outsider, [_fwd(sid, i) for i in range(8)])  # spoofed source
        r.send_run(outsider, [_fwd(uuid.uuid4(), i) for i in range(6)])  # unleased session
        half = uuid.uuid4()  # leased for one role only: no peer to forward to
        lone = r.peer()
        await r.present(lone, Role.CLIENT, half)
        r.send_run(lone, [_fwd(half, i) for i in range(4)])
        barrier = _fwd(sid, 999)
        client.sendto(barrier, r.addr)
        assert await r.recv(host) == barrier
        st = r.server.stats
        assert st.dropped["unbound_source"] == 8
        assert st.dropped["unknown_session"] == 6
        assert st.dropped["no_peer"] == 4
        assert st.packets_forwarded == 1 and st.gro_runs == 0
        assert _quiet(outsider) and _quiet(lone) and _quiet(client) and _quiet(host)


@async_test
async def test_mixed_run_falls_back_to_per_datagram_handling() -> None:
    async with Relay() as r:
        sid, client, host = await r.pair()
        other = uuid.uuid4()
        run = [_fwd(other if i % 3 == 2 else sid, i) for i in range(9)]  # starts valid
        r.send_run(client, run)
        expected = [d for i, d in enumerate(run) if i % 3 != 2]
        assert [await r.recv(host) for _ in expected] == expected
        barrier = _fwd(sid, 999)
        client.sendto(barrier, r.addr)
        assert await r.recv(host) == barrier
        st = r.server.stats
        assert st.dropped["unknown_session"] == 3 and st.gro_runs == 0
        assert st.packets_forwarded == len(expected) + 1


@async_test
async def test_partial_bitrate_budget_forwards_exactly_the_prefix() -> None:
    # 8 kbps = 1000 B/s; the bucket holds 3000 bytes and the clock does not move
    async with Relay(max_bitrate_kbps=8, min_bitrate_burst_bytes=3000) as r:
        sid, client, host = await r.pair()
        run = [_fwd(sid, i, 1000) for i in range(10)]
        r.send_run(client, run)
        assert [await r.recv(host) for _ in range(3)] == run[:3]
        r.mono += 2.0  # refill 2000 bytes: the next datagram is the barrier
        barrier = _fwd(sid, 999, 1000)
        client.sendto(barrier, r.addr)
        assert await r.recv(host) == barrier
        st = r.server.stats
        assert st.dropped["bitrate"] == 7 and st.packets_forwarded == 4


@async_test
async def test_ip_packet_limit_admitting_part_of_a_run() -> None:
    # burst 10 per IP, the clock stands still: two leases (present + proof each) use 4, the
    # run of 10 gets 6 through
    async with Relay(ip_packet_rate=1.0, ip_packet_burst=10) as r:
        sid, client, host = await r.pair()
        run = [_fwd(sid, i) for i in range(10)]
        r.send_run(client, run)
        assert [await r.recv(host) for _ in range(6)] == run[:6]
        r.mono += 1.0  # one token back
        barrier = _fwd(sid, 999)
        client.sendto(barrier, r.addr)
        assert await r.recv(host) == barrier
        st = r.server.stats
        assert st.dropped["ip_rate"] == 4 and st.packets_forwarded == 7


@async_test
async def test_without_gro_the_asyncio_transport_path_forwards() -> None:
    async with Relay(gro=False) as r:
        assert not r.server.gro_enabled
        sid, client, host = await r.pair()
        run = [_fwd(sid, i) for i in range(5)]
        r.send_run(client, run)  # the kernel splits it for a socket without GRO
        assert [await r.recv(host) for _ in run] == run
        assert r.server.stats.gro_runs == 0 and r.server.stats.packets_forwarded == 5
