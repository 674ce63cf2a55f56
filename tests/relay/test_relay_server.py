"""The UDP relay over real loopback sockets, its HTTP endpoint, gateway registration and CLI."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from wavry.controlplane.lease import (
    LeaseSigner,
    LeaseVerifier,
    generate_private_key,
    public_key_to_paserk,
    save_public_key,
)
from wavry.relay import wire
from wavry.relay.cli import relay_command
from wavry.relay.http import RelayHttpServer, render_relay_metrics
from wavry.relay.registration import GatewayClient, GatewayError, RegistrationLoop, RelayInfo
from wavry.relay.server import RelayConfig, RelayServer
from wavry.relay.wire import Role
from wavry.rift.identity import Identity

RELAY_ID = "relay-test-1"
T0 = 1_900_000_000.0


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 10))

    return run


class Clock:
    def __init__(self) -> None:
        self.wall = T0
        self.mono = 5000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class Peer(asyncio.DatagramProtocol):
    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert addr[:2] == self.h.relay_addr[:2], "datagram from someone other than the relay"
        self.queue.put_nowait(data)

    @property
    def addr(self) -> tuple[Any, ...]:
        assert self.transport is not None
        return tuple(self.transport.get_extra_info("sockname"))

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.h.sent += 1
        self.transport.sendto(data, self.h.relay_addr)

    async def recv(self) -> bytes:
        return await asyncio.wait_for(self.queue.get(), 2.0)

    def forward(self, sid: uuid.UUID, payload: bytes) -> None:
        self.send(wire.encode_forward(sid, payload))


class Harness:
    def __init__(self, **config: Any) -> None:
        self.keys = {Role.CLIENT: Identity.generate(), Role.HOST: Identity.generate()}
        self.clock = Clock()
        self.signer = LeaseSigner(generate_private_key())
        self.verifier = LeaseVerifier({self.signer.kid: self.signer.public_key}, RELAY_ID)
        self.server = RelayServer(
            RelayConfig(relay_id=RELAY_ID, **config),
            self.verifier,
            clock=lambda: self.clock.wall,
            monotonic=lambda: self.clock.mono,
        )
        self.sent = 0
        self.peers: list[Peer] = []

    async def __aenter__(self) -> Harness:
        self.relay_addr = await self.server.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for p in self.peers:
            if p.transport is not None:
                p.transport.close()
        self.server.close()

    async def peer(self) -> Peer:
        loop = asyncio.get_running_loop()
        _, p = await loop.create_datagram_endpoint(lambda: Peer(self), local_addr=("127.0.0.1", 0))
        self.peers.append(p)
        return p

    def lease(self, role: Role, sid: uuid.UUID, **kw: Any) -> str:
        signer = kw.pop("signer", self.signer)
        args: dict[str, Any] = {
            "sub": self.keys[role].wavry_id,
            "rid": RELAY_ID,
            "slimit_kbps": 20000,
            "hlimit_kbps": 40000,
            "now": self.clock.wall,
        }
        args.update(kw)
        return str(signer.mint(sid=sid, role=role.claim, **args))

    async def present(
        self,
        peer: Peer,
        role: Role,
        sid: uuid.UUID,
        token: str | None = None,
        renew: bool = False,
        key: Identity | None = None,
        prove: bool = True,
    ) -> wire.LeaseAck | wire.LeaseReject | wire.LeaseChallenge:
        """Present a lease; answer a challenge with a proof signed by ``key`` (default: the
        role's key) unless ``prove`` is False; return the relay's final answer."""
        token = token if token is not None else self.lease(role, sid)
        peer.send(wire.encode_lease_present(sid, role, token, renew=renew))
        reply = await peer.recv()
        header = wire.decode_header(reply)
        assert header.session_id == sid
        if header.type is wire.PacketType.LEASE_CHALLENGE:
            if not prove:
                return wire.decode_lease_challenge(reply)[1]
            signer = key or self.keys[role]
            peer.send(wire.answer_challenge(reply, token, signer.sign))
            reply = await peer.recv()
            header = wire.decode_header(reply)
        if header.type is wire.PacketType.LEASE_ACK:
            return wire.decode_lease_ack(reply)[1]
        return wire.decode_lease_reject(reply)[1]

    async def settle(self) -> None:
        """Wait until the relay has processed every datagram sent so far, plus a little."""
        while self.server.stats.packets_received < self.sent:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.02)

    async def pair(self) -> tuple[uuid.UUID, Peer, Peer]:
        sid = uuid.uuid4()
        client, host = await self.peer(), await self.peer()
        assert isinstance(await self.present(client, Role.CLIENT, sid), wire.LeaseAck)
        assert isinstance(await self.present(host, Role.HOST, sid), wire.LeaseAck)
        return sid, client, host


def _reason(reply: wire.LeaseAck | wire.LeaseReject) -> int:
    assert isinstance(reply, wire.LeaseReject), reply
    return reply.reason


@async_test
async def test_two_peers_relay_both_ways_and_outsider_gets_nothing() -> None:
    async with Harness() as h:
        sid = uuid.uuid4()
        client, host, outsider = await h.peer(), await h.peer(), await h.peer()
        ack = await h.present(client, Role.CLIENT, sid)
        assert ack == wire.LeaseAck(int((T0 + 300) * 1000), 20000, 40000)
        assert isinstance(await h.present(host, Role.HOST, sid), wire.LeaseAck)
        for i in range(3):
            client.forward(sid, b"c2h %d" % i)
            assert await host.recv() == wire.encode_forward(sid, b"c2h %d" % i)
            host.forward(sid, b"h2c %d" % i)
            assert await client.recv() == wire.encode_forward(sid, b"h2c %d" % i)
        # The outsider, without a lease, gets nothing through and nothing is sent to it.
        outsider.forward(sid, b"spoofed")
        outsider.forward(uuid.uuid4(), b"unknown session")
        outsider.send(wire.encode_lease_present(sid, Role.HOST, "v4.public.garbage"))
        assert _reason(wire.decode_lease_reject(await outsider.recv())[1]) == 2
        client.forward(sid, b"after")
        assert await host.recv() == wire.encode_forward(sid, b"after")
        await h.settle()
        assert client.queue.empty() and host.queue.empty() and outsider.queue.empty()
        st = h.server.stats
        assert st.dropped["unbound_source"] == 1 and st.dropped["unknown_session"] == 1
        assert st.packets_forwarded == 7 and h.server.session_count == 1
        assert h.server.session_info(sid) == {
            "client": {
                "addr": client.addr,
                "sub": h.keys[Role.CLIENT].wavry_id,
                "expires_at": T0 + 300,
            },
            "host": {"addr": host.addr, "sub": h.keys[Role.HOST].wavry_id, "expires_at": T0 + 300},
        }


@async_test
async def test_bad_leases_refused() -> None:
    async with Harness() as h:
        sid = uuid.uuid4()
        p = await h.peer()
        forger = LeaseSigner(generate_private_key(), kid=h.signer.kid)
        cases = [
            (h.lease(Role.CLIENT, sid, signer=forger), Role.CLIENT, 2),  # forged, real kid
            (h.lease(Role.CLIENT, sid, signer=LeaseSigner(generate_private_key())), Role.CLIENT, 2),
            (h.lease(Role.CLIENT, sid, now=T0 - 301), Role.CLIENT, 1),  # expired
            (h.lease(Role.CLIENT, sid, rid="relay-other"), Role.CLIENT, 3),
            (h.lease(Role.CLIENT, uuid.uuid4()), Role.CLIENT, 2),  # other session
            (h.lease(Role.CLIENT, sid), Role.HOST, 2),  # client lease presented as host
        ]
        for token, role, code in cases:
            assert _reason(await h.present(p, role, sid, token)) == code
        assert h.server.session_count == 0 and h.server.stats.leases_accepted == 0
        assert sum(h.server.stats.rejects_by_code.values()) == len(cases)


@async_test
async def test_spoofed_forward_and_rebinding() -> None:
    async with Harness() as h:
        sid, client, host = await h.pair()
        spoofer = await h.peer()
        spoofer.forward(sid, b"inject")
        # Re-presenting the client's lease from a new port (NAT rebinding) moves the binding.
        moved = await h.peer()
        token = h.lease(Role.CLIENT, sid)
        assert isinstance(await h.present(moved, Role.CLIENT, sid, token), wire.LeaseAck)
        host.forward(sid, b"to client")
        assert await moved.recv() == wire.encode_forward(sid, b"to client")
        client.forward(sid, b"from old port")
        moved.forward(sid, b"from new port")
        assert await host.recv() == wire.encode_forward(sid, b"from new port")
        await h.settle()
        assert client.queue.empty() and spoofer.queue.empty() and host.queue.empty()
        assert h.server.stats.dropped["unbound_source"] == 2
        assert h.server.stats.rebinds == 1


@async_test
async def test_replayed_lease_does_not_steal_the_binding() -> None:
    """Issue 21: a peer's LEASE_PRESENT replayed from another address rebound the role. Now
    the new address is challenged and must sign the cookie with the lease's device key."""
    async with Harness() as h:
        sid = uuid.uuid4()
        client, host, thief = await h.peer(), await h.peer(), await h.peer()
        token = h.lease(Role.CLIENT, sid)
        present = wire.encode_lease_present(sid, Role.CLIENT, token)
        client.send(present)
        challenge = await client.recv()
        assert wire.decode_header(challenge).type is wire.PacketType.LEASE_CHALLENGE
        proof = wire.answer_challenge(challenge, token, h.keys[Role.CLIENT].sign)
        client.send(proof)
        assert wire.decode_header(await client.recv()).type is wire.PacketType.LEASE_ACK
        assert isinstance(await h.present(host, Role.HOST, sid), wire.LeaseAck)
        # the thief replays what it saw on the wire, byte for byte, from its own address
        thief.send(present)
        stolen = await thief.recv()
        assert wire.decode_header(stolen).type is wire.PacketType.LEASE_CHALLENGE
        thief.send(proof)  # the client's proof is for the client's address
        assert _reason(wire.decode_lease_reject(await thief.recv())[1]) == 8
        thief_key = Identity.generate()  # its own key is not the lease's
        thief.send(wire.answer_challenge(stolen, token, thief_key.sign))
        assert _reason(wire.decode_lease_reject(await thief.recv())[1]) == 8
        # the binding did not move: traffic still flows between the real peers only
        host.forward(sid, b"to the real client")
        assert await client.recv() == wire.encode_forward(sid, b"to the real client")
        client.forward(sid, b"to the host")
        assert await host.recv() == wire.encode_forward(sid, b"to the host")
        thief.forward(sid, b"injected")
        await h.settle()
        assert thief.queue.empty() and host.queue.empty() and client.queue.empty()
        assert h.server.stats.rebinds == 0
        assert h.server.session_info(sid)["client"]["addr"] == client.addr  # type: ignore[index]
        # a present from the bound address refreshes without a challenge (keep-alive)
        assert isinstance(await h.present(client, Role.CLIENT, sid, token, prove=False),
                          wire.LeaseAck)  # fmt: skip
        # a challenge answered too late is refused
        mover = await h.peer()
        late = await h.present(mover, Role.CLIENT, sid, token, prove=False)
        assert isinstance(late, wire.LeaseChallenge)
        h.clock.advance(11)
        mover.send(
            wire.encode_lease_proof(
                sid, Role.CLIENT, late.cookie,
                h.keys[Role.CLIENT].sign(wire.proof_message(sid, Role.CLIENT, late.cookie)),
                token,
            )
        )  # fmt: skip
        assert _reason(wire.decode_lease_reject(await mover.recv())[1]) == 8


@async_test
async def test_identity_pinned_per_role() -> None:
    """A valid lease naming another ``sub`` for a bound session and role does not rebind it,
    from any address, even with a good proof for that other identity."""
    async with Harness() as h:
        sid, client, host = await h.pair()
        other = Identity.generate()
        foreign = h.lease(Role.CLIENT, sid, sub=other.wavry_id)
        intruder = await h.peer()
        assert _reason(await h.present(intruder, Role.CLIENT, sid, foreign, key=other)) == 7
        assert _reason(await h.present(client, Role.CLIENT, sid, foreign, key=other)) == 7
        renew = await h.present(client, Role.CLIENT, sid, foreign, renew=True, key=other)
        assert _reason(renew) == 7
        host.forward(sid, b"still the client")
        assert await client.recv() == wire.encode_forward(sid, b"still the client")
        await h.settle()
        assert intruder.queue.empty()
        assert h.server.stats.rejects["identity_mismatch"] == 3
        # a lease whose sub is not a Wavry ID cannot prove anything: refused
        sid2 = uuid.uuid4()
        bogus = h.lease(Role.HOST, sid2, sub="not-a-wavry-id")
        assert _reason(await h.present(intruder, Role.HOST, sid2, bogus)) == 8


@async_test
async def test_renewal_expiry_and_idle() -> None:
    async with Harness() as h:
        sid, client, host = await h.pair()
        for _ in range(4):  # traffic every 50 s keeps the session from idling out
            h.clock.advance(50)
            client.forward(sid, b"keepalive")
            assert await host.recv() == wire.encode_forward(sid, b"keepalive")
        # T0+200: renew the client only; its binding now lasts until T0+500.
        ack = await h.present(client, Role.CLIENT, sid, h.lease(Role.CLIENT, sid), renew=True)
        assert ack == wire.LeaseAck(int((T0 + 500) * 1000), 20000, 40000)
        assert h.server.stats.renewals == 1
        h.clock.advance(50)
        client.forward(sid, b"keepalive")
        await host.recv()
        h.clock.advance(55)  # T0+305: the host's lease has expired, the client's has not
        client.forward(sid, b"to expired host")
        await h.settle()
        assert host.queue.empty() and h.server.stats.dropped["no_peer"] == 1
        old = h.lease(Role.HOST, sid, now=T0)
        assert _reason(await h.present(host, Role.HOST, sid, old)) == 1  # expired lease
        assert isinstance(await h.present(host, Role.HOST, sid), wire.LeaseAck)  # fresh lease
        client.forward(sid, b"again")
        assert await host.recv() == wire.encode_forward(sid, b"again")
        # Idle: 59 s of silence keeps the session, 60 s ends it.
        h.clock.advance(59)
        h.server.sweep()
        assert h.server.session_count == 1
        h.clock.advance(1)
        h.server.sweep()
        assert h.server.session_count == 0
        assert h.server.stats.sessions_ended["idle"] == 1
        client.forward(sid, b"too late")
        renew = h.lease(Role.CLIENT, sid)
        assert _reason(await h.present(client, Role.CLIENT, sid, renew, renew=True)) == 1
        await h.settle()
        assert host.queue.empty()

        # Without renewal a session ends at lease expiry even when busy.
        sid2, c2, h2 = await h.pair()
        for step in [50] * 5 + [49]:  # up to 1 s before expiry
            h.clock.advance(step)
            c2.forward(sid2, b"busy")
            assert await h2.recv() == wire.encode_forward(sid2, b"busy")
        h.clock.advance(1)  # exactly at exp
        c2.forward(sid2, b"expired")
        await h.settle()
        assert h2.queue.empty() and h.server.session_count == 0
        assert h.server.stats.sessions_ended["expired"] == 1


@async_test
async def test_bitrate_hard_limit() -> None:
    # 80 kbps = 10 000 B/s; bucket depth 5 000 B; clock frozen.
    async with Harness(bitrate_burst_seconds=0.5, min_bitrate_burst_bytes=0) as h:
        sid = uuid.uuid4()
        client, host = await h.peer(), await h.peer()
        for peer, role in ((client, Role.CLIENT), (host, Role.HOST)):
            token = h.lease(role, sid, slimit_kbps=60, hlimit_kbps=80)
            assert await h.present(peer, role, sid, token) == wire.LeaseAck(
                int((T0 + 300) * 1000), 60, 80
            )
        payload = b"x" * 980  # 1 000 bytes with the header
        for _ in range(10):
            client.forward(sid, payload)
        await h.settle()
        assert host.queue.qsize() == 5 and h.server.stats.dropped["bitrate"] == 5
        h.clock.advance(0.3)  # +3 000 B
        for _ in range(5):
            host.forward(sid, payload)  # both directions share the session budget
        await h.settle()
        assert client.queue.qsize() == 3 and h.server.stats.dropped["bitrate"] == 7


@async_test
async def test_relay_caps_lease_bitrate() -> None:
    async with Harness(max_bitrate_kbps=1000) as h:
        sid, p = uuid.uuid4(), await h.peer()
        assert await h.present(p, Role.CLIENT, sid) == wire.LeaseAck(
            int((T0 + 300) * 1000), 1000, 1000
        )


@async_test
async def test_session_cap_load_shedding() -> None:
    async with Harness(max_sessions=2) as h:
        sid1, c1, _ = await h.pair()
        await h.pair()
        third = await h.peer()
        sid3 = uuid.uuid4()
        assert _reason(await h.present(third, Role.CLIENT, sid3)) == 4
        assert h.server.stats.rejects["session_full"] == 1
        # Existing sessions still accept (re)presentations.
        assert isinstance(await h.present(c1, Role.CLIENT, sid1), wire.LeaseAck)
        h.clock.advance(61)  # both sessions idle; making room happens on demand
        assert isinstance(await h.present(third, Role.CLIENT, sid3), wire.LeaseAck)
        assert h.server.session_count == 1


@async_test
async def test_rate_limits_and_bans() -> None:
    async with Harness(identity_lease_burst=2, identity_lease_rate=0.001) as h:
        sid, p = uuid.uuid4(), await h.peer()
        for _ in range(2):
            assert isinstance(await h.present(p, Role.CLIENT, sid), wire.LeaseAck)
        assert _reason(await h.present(p, Role.CLIENT, sid)) == 6  # same identity, too fast
        assert isinstance(await h.present(p, Role.HOST, sid), wire.LeaseAck)  # other identity
        h.server.banned_identities.add(h.keys[Role.HOST].wavry_id)
        assert _reason(await h.present(p, Role.HOST, sid)) == 5
    async with Harness(ip_lease_burst=2, ip_lease_rate=0.001) as h:
        sid, p = uuid.uuid4(), await h.peer()  # present + proof: two lease datagrams
        assert isinstance(await h.present(p, Role.CLIENT, sid), wire.LeaseAck)
        assert _reason(await h.present(p, Role.HOST, sid)) == 6
    async with Harness(ip_packet_burst=7, ip_packet_rate=0.001) as h:
        sid, client, host = await h.pair()  # 4 packets (presents and proofs)
        for i in range(5):
            client.forward(sid, b"%d" % i)
        await h.settle()
        assert host.queue.qsize() == 3 and h.server.stats.dropped["ip_rate"] == 2


@async_test
async def test_malformed_datagrams_do_not_crash() -> None:
    async with Harness() as h:
        sid, client, host = await h.pair()
        junk = [  # (asyncio does not send empty datagrams, so b"" cannot be tested here)
            b"W",
            b"\x00" * 20,
            b"W\x02\x10\x00" + sid.bytes + b"x",
            b"W\x01\x10\x01" + sid.bytes + b"x",
            wire.encode_header(wire.PacketType.FORWARD, sid),  # empty forward
            wire.encode_lease_ack(sid, 1, 2, 3),
            wire.encode_lease_reject(sid, 2),
            wire.encode_header(wire.PacketType.LEASE_PRESENT, sid) + b"\x05\x00\x01x",
            wire.encode_header(wire.PacketType.LEASE_PRESENT, sid) + b"\x00\xff\xffx",
            os.urandom(1200),
        ]
        for data in junk:
            client.send(data)
        h.sent += 1
        h.server.datagram_received(b"", client.addr)
        client.forward(sid, b"still works")
        assert await host.recv() == wire.encode_forward(sid, b"still works")
        await h.settle()
        assert client.queue.empty() and host.queue.empty()
        assert sum(h.server.stats.dropped.values()) == len(junk) + 1


# --- HTTP endpoint ---------------------------------------------------------------------------


async def _http_get(addr: tuple[Any, ...], path: str, method: str = "GET") -> tuple[int, str, str]:
    reader, writer = await asyncio.open_connection(addr[0], addr[1])
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    status = int(head.split(" ")[1])
    return status, head, body


@async_test
async def test_http_health_ready_metrics() -> None:
    async with Harness() as h:
        sid, client, host = await h.pair()
        client.forward(sid, b"abc")
        await host.recv()
        ready = [True]
        http = RelayHttpServer(lambda: render_relay_metrics(h.server), lambda: ready[0])
        addr = await http.start("127.0.0.1", 0)
        try:
            assert (await _http_get(addr, "/health"))[0] == 200
            assert (await _http_get(addr, "/ready"))[0] == 200
            ready[0] = False
            assert (await _http_get(addr, "/ready"))[0] == 503
            assert (await _http_get(addr, "/nope"))[0] == 404
            assert (await _http_get(addr, "/metrics", "POST"))[0] == 405
            status, head, body = await _http_get(addr, "/metrics")
            assert status == 200 and "text/plain; version=0.0.4" in head
            assert f"Content-Length: {len(body.encode())}" in head
            assert (await _http_get(addr, "/metrics", "HEAD"))[2] == ""
        finally:
            await http.close()
    _check_prometheus(body)
    samples = dict(line.rsplit(" ", 1) for line in body.splitlines() if not line.startswith("#"))
    assert samples["wavry_relay_sessions"] == "1"
    assert samples["wavry_relay_packets_forwarded_total"] == "1"
    assert samples["wavry_relay_leases_accepted_total"] == "2"
    assert samples['wavry_relay_lease_rejects_total{reason="session_full"}'] == "0"


def _check_prometheus(text: str) -> None:
    """Every sample belongs to a family announced by HELP then TYPE, names are valid."""
    assert text.endswith("\n")
    families: dict[str, str] = {}
    name_re = re.compile(
        r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\})? (\S+)$"
    )
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split(" ")[2]
            assert current not in families
            families[current] = ""
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current and kind in ("counter", "gauge")
            families[name] = kind
        else:
            m = name_re.match(line)
            assert m, line
            assert m.group(1) == current
            float(m.group(4))
            if families[current] == "counter":
                assert current.endswith("_total")


# --- registration against a fake gateway -----------------------------------------------------


class FakeGateway:
    def __init__(self, lease_key: str, kid: str) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.script: dict[str, list[tuple[int, Any]]] = {"register": [], "heartbeat": []}
        self.default = {
            "register": (
                200,
                {"heartbeat_interval_ms": 50, "lease_public_key": lease_key, "key_id": kid},
            ),
            "heartbeat": (200, {}),
        }
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gw.requests.append((self.path, dict(self.headers), body))
                what = self.path.rsplit("/", 1)[-1]
                queue = gw.script[what]
                status, answer = queue.pop(0) if queue else gw.default[what]
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def gateway_key() -> LeaseSigner:
    return LeaseSigner(generate_private_key())


@pytest.fixture
def fake_gateway(gateway_key: LeaseSigner) -> Any:
    gw = FakeGateway(public_key_to_paserk(gateway_key.public_key), gateway_key.kid)
    yield gw
    gw.close()


INFO = RelayInfo(RELAY_ID, "203.0.113.7:4000", "eu-west", 500, 50000)


@async_test
async def test_registration_heartbeats_backoff_and_reregistration(
    fake_gateway: FakeGateway, gateway_key: LeaseSigner
) -> None:
    gw = fake_gateway
    err = {"error": "unavailable", "message": "try later"}
    gw.script["register"] = [(503, err)]
    gw.script["heartbeat"] = [(500, err), (500, err), (200, {}), (404, {"error": "unknown_relay"})]
    verifier = LeaseVerifier({}, RELAY_ID)
    delays: list[float] = []
    registrations = []

    async def fake_sleep(d: float) -> None:
        delays.append(d)
        await asyncio.sleep(0)

    def installed(reg: Any) -> None:
        registrations.append(reg)
        verifier.add_key(reg.key_id, reg.lease_public_key)

    loop = RegistrationLoop(
        GatewayClient(gw.url, "enrol-secret"),
        INFO,
        on_registered=installed,
        load=lambda: (12.5, 3),
        backoff_base=0.5,
        min_interval=0.01,
        rng=lambda: 1.0,
        sleep=fake_sleep,
    )
    task = asyncio.create_task(loop.run())
    while len(registrations) < 2 or loop.heartbeats_sent < 1:
        await asyncio.sleep(0.005)
    task.cancel()
    # register failed (503) -> backoff 0.5; heartbeats every 50 ms; two failures back off
    # 0.5 then 1.0; success; 404 re-registers at once.
    assert delays[:6] == [0.5, 0.05, 0.5, 1.0, 0.05, 0.05]
    paths = [r[0] for r in gw.requests[:7]]
    assert paths == ["/v1/relays/register", "/v1/relays/register"] + [
        "/v1/relays/heartbeat"
    ] * 4 + ["/v1/relays/register"]
    for _, headers, _ in gw.requests:
        assert headers["Authorization"] == "Bearer enrol-secret"
        assert headers["Content-Type"] == "application/json"
    assert gw.requests[0][2] == {
        "relay_id": RELAY_ID,
        "public_addr": "203.0.113.7:4000",
        "region": "eu-west",
        "max_sessions": 500,
        "max_bitrate_kbps": 50000,
    }
    assert gw.requests[2][2] == {"relay_id": RELAY_ID, "load_pct": 12.5, "sessions": 3}
    # The key from the registration answer verifies leases minted by the gateway.
    token = gateway_key.mint("w", uuid.UUID(int=7), "host", RELAY_ID, slimit_kbps=1, hlimit_kbps=2)
    assert verifier.verify(token, time.time(), uuid.UUID(int=7), "host").sub == "w"


@async_test
async def test_registration_fatal_and_bad_answers(fake_gateway: FakeGateway) -> None:
    gw = fake_gateway
    gw.script["register"] = [
        (200, {"heartbeat_interval_ms": 50}),  # no key: treated as a failure, retried
        (401, {"error": "invalid_token", "message": "bad enrolment token"}),
    ]
    delays: list[float] = []

    async def fake_sleep(d: float) -> None:
        delays.append(d)

    loop = RegistrationLoop(
        GatewayClient(gw.url, "wrong"),
        INFO,
        on_registered=lambda r: None,
        load=lambda: (0.0, 0),
        rng=lambda: 0.0,
        sleep=fake_sleep,
    )
    with pytest.raises(GatewayError) as info:
        await loop.run()
    assert info.value.status == 401 and info.value.code == "invalid_token"
    assert delays == [0.5] and not loop.registered
    with pytest.raises(GatewayError, match="unreachable"):
        await GatewayClient("http://127.0.0.1:9", "t", timeout=2).register(INFO)
    with pytest.raises(ValueError):
        GatewayClient("file:///etc/passwd", "t")


# --- CLI -------------------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    app = typer.Typer()
    app.command()(relay_command)
    return CliRunner().invoke(app, list(args), env={"WAVRY_RELAY_GATEWAY": ""})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no lease key source"),
        (["--listen", "nonsense", "--relay-id", "r"], "--listen"),
        (["--listen", "1.2.3.4:99999", "--relay-id", "r"], "bad port"),
        (["--lease-public-key", "/nonexistent/key.pub", "--relay-id", "r"], "cannot read"),
        (["--gateway", "http://gw:3000", "--public-addr", "1.2.3.4:4000"], "--token"),
        (["--gateway", "http://gw:3000", "--token", "t"], "--public-addr"),
        (["--gateway", "ftp://gw", "--token", "t", "--public-addr", "1.2.3.4:1"], "--gateway"),
        (["--max-sessions", "0", "--relay-id", "r"], "--max-sessions"),
    ],
)
def test_cli_bad_configuration_one_line(args: list[str], message: str) -> None:
    result = _cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_cli_lease_key_needs_relay_id(tmp_path: Path) -> None:
    save_public_key(generate_private_key().public_key(), tmp_path / "k.pub")
    result = _cli("--lease-public-key", str(tmp_path / "k.pub"))
    assert result.exit_code == 2 and "--relay-id" in result.output


def test_cli_runs_serves_and_stops(tmp_path: Path) -> None:
    key = generate_private_key()
    save_public_key(key.public_key(), tmp_path / "k.pub")
    code = "import typer; from wavry.relay.cli import relay_command; typer.run(relay_command)"
    env = {**os.environ, "WAVRY_RELAY_LEASE_PUBLIC_KEY": str(tmp_path / "k.pub")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--relay-id",
            RELAY_ID,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"udp 127\.0\.0\.1:(\d+).*http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        status, _, _ = asyncio.run(_http_get(("127.0.0.1", int(m.group(2))), "/ready"))
        assert status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
