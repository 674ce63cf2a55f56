"""Relay registry and leases end to end: a real RelayServer registers through the real
registration client; relay_request yields leases that carry datagrams through it."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any

import httpx
from aioice import stun

from wavry.controlplane.lease import LeaseVerifier
from wavry.relay import wire
from wavry.relay.registration import GatewayClient, Registration, RegistrationLoop, RelayInfo
from wavry.relay.server import RelayConfig, RelayServer
from wavry.relay.wire import PacketType, Role
from wavry.rift.identity import Identity

FAST = {
    "WAVRY_GATEWAY_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_RATE_BURST": "1000",
    "WAVRY_GATEWAY_HEARTBEAT_INTERVAL_MS": "300",
}


class Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)

    async def get(self, timeout: float = 3) -> bytes:
        return await asyncio.wait_for(self.queue.get(), timeout)


async def udp() -> Udp:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
    return proto


async def recv(ws: Any) -> dict[str, Any]:
    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert isinstance(msg, dict)
    return msg


def test_relay_registration_grant_and_forwarding(start_gateway: Any, helpers: Any) -> None:
    from websockets.asyncio.client import connect

    gw = start_gateway(env=FAST)
    with httpx.Client(base_url=gw.url, timeout=15) as c:
        acct = helpers.register(c)
        host = helpers.add_device(c, acct, "host")
        client = helpers.add_device(c, acct, "client")
        # a wrong enrolment token is refused
        r = c.post(
            "/v1/relays/register",
            headers={"Authorization": "Bearer wrong"},
            json={
                "relay_id": "r",
                "public_addr": "1.2.3.4:4000",
                "region": "x",
                "max_sessions": 1,
                "max_bitrate_kbps": 1,
            },
        )
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"

    async def main() -> None:
        relay_id = "relay-" + uuid.uuid4().hex[:6]
        verifier = LeaseVerifier({}, relay_id)
        server = RelayServer(RelayConfig(relay_id=relay_id), verifier)
        host_addr, port = (await server.start("127.0.0.1", 0))[:2]
        relay_addr = f"{host_addr}:{port}"
        registered: list[Registration] = []

        def installed(reg: Registration) -> None:
            verifier.add_key(reg.key_id, reg.lease_public_key)
            registered.append(reg)

        loop = RegistrationLoop(
            GatewayClient(gw.url, helpers.relay_token),
            RelayInfo(relay_id, relay_addr, "eu", 100, 20_000),
            on_registered=installed,
            load=lambda: (server.load_pct, server.session_count),
            min_interval=0.1,
        )
        task = asyncio.get_running_loop().create_task(loop.run())
        try:
            for _ in range(100):
                if registered and loop.heartbeats_sent >= 1:
                    break
                await asyncio.sleep(0.05)
            assert registered and registered[0].heartbeat_interval_ms == 300
            async with httpx.AsyncClient(base_url=gw.url) as http:
                r = await http.get(
                    "/admin/api/relays", headers={"Authorization": f"Bearer {helpers.admin_token}"}
                )
                relays = r.json()["relays"]
                assert [(x["relay_id"], x["state"]) for x in relays] == [(relay_id, "healthy")]

            h = await connect(gw.ws_url)
            await h.send(
                json.dumps(
                    {"type": "auth", "token": acct.token, "wavry_id": host.wavry_id, "role": "host"}
                )
            )
            assert (await recv(h))["type"] == "ready"
            cl = await connect(gw.ws_url)
            await cl.send(
                json.dumps(
                    {
                        "type": "auth",
                        "token": acct.token,
                        "wavry_id": client.wavry_id,
                        "role": "client",
                    }
                )
            )
            assert (await recv(cl))["type"] == "ready"
            sid = uuid.uuid4()
            await cl.send(
                json.dumps(
                    {
                        "type": "connect",
                        "session": str(sid),
                        "host": host.wavry_id,
                        "candidates": [],
                    }
                )
            )
            assert (await recv(h))["type"] == "connect"
            await h.send(json.dumps({"type": "relay_request", "session": str(sid)}))
            grants = {"host": await recv(h), "client": await recv(cl)}
            for role, g in grants.items():
                assert g["type"] == "relay_grant" and g["role"] == role, g
                assert g["relay_id"] == relay_id and g["relay_addr"] == relay_addr
                assert g["session"] == str(sid) and g["expires_at"].endswith("Z")
                assert g["lease"].startswith("v4.public.")

            a, b, intruder = await udp(), await udp(), await udp()
            assert a.transport and b.transport and intruder.transport
            dest = (host_addr, port)
            # the host's lease presented as the client role is refused
            intruder.transport.sendto(
                wire.encode_lease_present(sid, Role.CLIENT, grants["host"]["lease"]), dest
            )
            hdr = wire.decode_header(await intruder.get())
            assert hdr.type is PacketType.LEASE_REJECT
            # each peer proves its address with its device key (CONTROL_PLANE.md §4)
            for peer, role, ident in ((a, Role.CLIENT, client), (b, Role.HOST, host)):
                assert peer.transport
                lease = grants[role.claim]["lease"]
                peer.transport.sendto(wire.encode_lease_present(sid, role, lease), dest)
                challenge = await peer.get()
                assert wire.decode_header(challenge).type is PacketType.LEASE_CHALLENGE
                peer.transport.sendto(wire.answer_challenge(challenge, lease, ident.sign), dest)
            ack = wire.decode_lease_ack(await a.get())[1]
            assert ack.hard_limit_kbps == 20_000
            wire.decode_lease_ack(await b.get())
            # the client's lease, replayed by the intruder, does not take the client's role
            intruder.transport.sendto(
                wire.encode_lease_present(sid, Role.CLIENT, grants["client"]["lease"]), dest
            )
            stolen = await intruder.get()
            intruder.transport.sendto(
                wire.answer_challenge(stolen, grants["client"]["lease"], Identity.generate().sign),
                dest,
            )
            assert wire.decode_lease_reject(await intruder.get())[1].reason == 8
            for i in range(20):
                a.transport.sendto(wire.encode_forward(sid, b"c2h-%d" % i), dest)
                assert wire.forward_payload(await b.get())[1] == b"c2h-%d" % i
                b.transport.sendto(wire.encode_forward(sid, b"h2c-%d" % i), dest)
                assert wire.forward_payload(await a.get())[1] == b"h2c-%d" % i
            # a third socket without a lease gets nothing through, and nothing back
            for _ in range(10):
                intruder.transport.sendto(wire.encode_forward(sid, b"spoof"), dest)
            a.transport.sendto(wire.encode_forward(sid, b"after"), dest)
            assert wire.forward_payload(await b.get())[1] == b"after"
            await asyncio.sleep(0.2)
            assert a.queue.empty() and b.queue.empty() and intruder.queue.empty()
            assert server.stats.packets_forwarded == 41
            await h.close()
            await cl.close()
            for p in (a, b, intruder):
                assert p.transport
                p.transport.close()
        finally:
            task.cancel()
            server.close()

    helpers.run(main())
    metrics = httpx.get(gw.url + "/metrics").text
    assert "wavry_gateway_lease_grants_total 2.0" in metrics
    assert 'wavry_gateway_relays{state="healthy"} 1.0' in metrics


def test_no_relay_and_stun(start_gateway: Any, helpers: Any) -> None:
    from websockets.asyncio.client import connect

    gw = start_gateway(env=FAST)
    with httpx.Client(base_url=gw.url, timeout=15) as c:
        acct = helpers.register(c)
        host = helpers.add_device(c, acct, "host")
        client = helpers.add_device(c, acct, "client")

    async def main() -> None:
        h = await connect(gw.ws_url)
        await h.send(
            json.dumps(
                {"type": "auth", "token": acct.token, "wavry_id": host.wavry_id, "role": "host"}
            )
        )
        await recv(h)
        cl = await connect(gw.ws_url)
        await cl.send(
            json.dumps(
                {"type": "auth", "token": acct.token, "wavry_id": client.wavry_id, "role": "client"}
            )
        )
        await recv(cl)
        sid = str(uuid.uuid4())
        await cl.send(
            json.dumps({"type": "connect", "session": sid, "host": host.wavry_id, "candidates": []})
        )
        await recv(h)
        await cl.send(json.dumps({"type": "relay_request", "session": sid}))
        err = await recv(cl)
        assert err["type"] == "error" and err["code"] == "no_relay"
        await h.close()
        await cl.close()

    helpers.run(main())
    # STUN Binding on the gateway's UDP port answers our mapped address
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3)
    req = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    sock.sendto(bytes(req), gw.stun)
    resp = stun.parse_message(sock.recv(2048))
    assert resp.transaction_id == req.transaction_id
    assert resp.attributes["XOR-MAPPED-ADDRESS"] == sock.getsockname()
    sock.close()
