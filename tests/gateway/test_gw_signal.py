"""Signaling over real WebSockets: SQLite, PostgreSQL, and two instances through Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FAST = {
    "WAVRY_GATEWAY_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_RATE_BURST": "1000",
    "WAVRY_GATEWAY_AUTH_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_AUTH_RATE_BURST": "1000",
}


SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "signaling.schema.json"
_validator: Any = None


def check_schema(msg: dict[str, Any]) -> None:
    """Every frame the gateway sends must match schemas/signaling.schema.json."""
    global _validator
    if _validator is None:
        jsonschema_rs = pytest.importorskip("jsonschema_rs")
        _validator = jsonschema_rs.validator_for(json.loads(SCHEMA_PATH.read_text()))
    errors = [e.message for e in _validator.iter_errors(msg)]
    assert not errors, (msg, errors)


async def recv(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert isinstance(msg, dict)
    check_schema(msg)
    return msg


def test_schema_rejects_what_the_gateway_rejects() -> None:
    sid = str(uuid.uuid4())
    check_schema({"type": "relay_request", "session": sid})
    for bad in (
        {"type": "gossip"},
        {"type": "candidate", "session": sid, "candidate": {"kind": "p2p", "addr": "1.2.3.4:5"}},
        {"type": "connect", "session": "not-a-uuid", "host": "x" * 43},
        {"type": "auth", "token": "t", "wavry_id": "short", "role": "host"},
    ):
        with pytest.raises(AssertionError):
            check_schema(bad)


async def peer(url: str, token: str, wavry_id: str, role: str) -> ClientConnection:
    ws = await connect(url, max_size=2**20)
    await ws.send(json.dumps({"type": "auth", "token": token, "wavry_id": wavry_id, "role": role}))
    ready = await recv(ws)
    assert ready["type"] == "ready" and ready["wavry_id"] == wavry_id, ready
    return ws


async def closed_after_error(ws: ClientConnection, code: str) -> None:
    msg = await recv(ws)
    assert msg["type"] == "error" and msg["code"] == code, msg
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)


def setup_pair(url: str, helpers: Any) -> tuple[Any, Any, Any]:
    with httpx.Client(base_url=url, timeout=15) as c:
        acct = helpers.register(c)
        host = helpers.add_device(c, acct, "host", "desk")
        client = helpers.add_device(c, acct, "client", "laptop")
    return acct, host, client


async def exchange(host_url: str, client_url: str, acct: Any, host: Any, client: Any) -> None:
    """The §3 flow: connect → accept → candidates both ways, then reject of a 2nd session."""
    h = await peer(host_url, acct.token, host.wavry_id, "host")
    c = await peer(client_url, acct.token, client.wavry_id, "client")
    sid = str(uuid.uuid4())
    cands = [{"kind": "host", "addr": "192.168.1.2:47800"}, {"kind": "srflx", "addr": "1.2.3.4:5"}]
    await c.send(
        json.dumps({"type": "connect", "session": sid, "host": host.wavry_id, "candidates": cands})
    )
    got = await recv(h)
    assert got == {
        "type": "connect",
        "session": sid,
        "host": host.wavry_id,
        "candidates": cands,
        "from": client.wavry_id,
    }
    hc = [{"kind": "host", "addr": "10.0.0.9:47800"}]
    await h.send(
        json.dumps(
            {"type": "accept", "session": sid, "candidates": hc, "host_wavry_id": host.wavry_id}
        )
    )
    got = await recv(c)
    assert got == {
        "type": "accept",
        "session": sid,
        "candidates": hc,
        "host_wavry_id": host.wavry_id,
    }
    cand = {"kind": "srflx", "addr": "5.6.7.8:9"}
    await c.send(json.dumps({"type": "candidate", "session": sid, "candidate": cand}))
    assert await recv(h) == {"type": "candidate", "session": sid, "candidate": cand}
    await h.send(json.dumps({"type": "candidate", "session": sid, "candidate": cand}))
    assert await recv(c) == {"type": "candidate", "session": sid, "candidate": cand}
    sid2 = str(uuid.uuid4())
    await c.send(
        json.dumps({"type": "connect", "session": sid2, "host": host.wavry_id, "candidates": []})
    )
    assert (await recv(h))["session"] == sid2
    await h.send(json.dumps({"type": "reject", "session": sid2, "reason": "busy"}))
    assert await recv(c) == {"type": "reject", "session": sid2, "reason": "busy"}
    await h.close()
    await c.close()


def test_exchange_on_sqlite_with_presence_and_errors(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    acct, host, client = setup_pair(gw.url, helpers)
    with httpx.Client(base_url=gw.url, timeout=15) as http:
        stranger = helpers.register(http)
        s_client = helpers.add_device(http, stranger, "client")

        async def main() -> None:
            c = await peer(gw.ws_url, acct.token, client.wavry_id, "client")
            sid = str(uuid.uuid4())
            await c.send(
                json.dumps(
                    {"type": "connect", "session": sid, "host": host.wavry_id, "candidates": []}
                )
            )
            err = await recv(c)
            assert err["type"] == "error" and err["code"] == "host_offline"
            h = await peer(gw.ws_url, acct.token, host.wavry_id, "host")
            hosts = http.get("/v1/hosts", headers=acct.headers).json()["hosts"]
            assert hosts[0]["online"] is True
            # another account may not reach this host
            s = await peer(gw.ws_url, stranger.token, s_client.wavry_id, "client")
            await s.send(
                json.dumps(
                    {
                        "type": "connect",
                        "session": str(uuid.uuid4()),
                        "host": host.wavry_id,
                        "candidates": [],
                    }
                )
            )
            assert (await recv(s))["code"] == "not_allowed"
            # nor inject into a session it is not part of
            await s.send(
                json.dumps(
                    {
                        "type": "candidate",
                        "session": sid,
                        "candidate": {"kind": "host", "addr": "1.1.1.1:1"},
                    }
                )
            )
            assert (await recv(s))["code"] == "unknown_session"
            await h.close()
            await asyncio.sleep(0.3)
            hosts = http.get("/v1/hosts", headers=acct.headers).json()["hosts"]
            assert hosts[0]["online"] is False
            await exchange(gw.ws_url, gw.ws_url, acct, host, client)
            # protocol violations: error, then the socket is closed
            bad = await connect(gw.ws_url)
            await bad.send(json.dumps({"type": "connect"}))
            await closed_after_error(bad, "auth_required")
            bad = await connect(gw.ws_url)
            await bad.send(
                json.dumps(
                    {"type": "auth", "token": "nope", "wavry_id": host.wavry_id, "role": "host"}
                )
            )
            await closed_after_error(bad, "invalid_token")
            for frame, code in (
                (json.dumps({"type": "gossip"}), "unknown_type"),
                (b"\x00\x01", "binary_frame"),
                (json.dumps({"type": "candidate", "pad": "x" * 70000}), "too_large"),
            ):
                ws = await peer(gw.ws_url, acct.token, client.wavry_id, "client")
                await ws.send(frame)
                await closed_after_error(ws, code)
            # browser origin that is not ours
            with pytest.raises(Exception, match="403"):
                await connect(gw.ws_url, origin="https://evil.example")  # type: ignore[arg-type]
            await c.close()
            await s.close()

        helpers.run(main())


def test_exchange_on_postgres(start_gateway: Any, helpers: Any, postgres: Any) -> None:
    gw = start_gateway("--database-url", postgres.create_db(), env=FAST)
    acct, host, client = setup_pair(gw.url, helpers)
    helpers.run(exchange(gw.ws_url, gw.ws_url, acct, host, client))


def test_exchange_across_two_instances_through_redis(
    start_gateway: Any, helpers: Any, postgres: Any, redis_url: str
) -> None:
    db = postgres.create_db()
    args = ("--database-url", db, "--redis-url", redis_url)
    a = start_gateway(*args, env=FAST)
    b = start_gateway(*args, env=FAST)
    acct, host, client = setup_pair(a.url, helpers)
    helpers.run(exchange(a.ws_url, b.ws_url, acct, host, client))
    helpers.run(exchange(b.ws_url, a.ws_url, acct, host, client))

    async def ban_reaches_other_instance() -> None:
        ws = await peer(b.ws_url, acct.token, client.wavry_id, "client")
        async with httpx.AsyncClient(base_url=a.url) as http:
            r = await http.post(
                f"/admin/api/users/{acct.user['id']}/ban",
                headers={"Authorization": f"Bearer {helpers.admin_token}"},
                json={"reason": "test"},
            )
            assert r.status_code == 200, r.text
        await closed_after_error(ws, "suspended")

    helpers.run(ban_reaches_other_instance())


def test_socket_limits_per_ip_and_per_socket(start_gateway: Any, helpers: Any) -> None:
    env = {
        **FAST,
        "WAVRY_GATEWAY_WS_PER_IP": "2",
        "WAVRY_GATEWAY_WS_MSG_RATE": "1",
        "WAVRY_GATEWAY_WS_MSG_BURST": "3",
    }
    gw = start_gateway(env=env)
    acct, host, client = setup_pair(gw.url, helpers)

    async def main() -> None:
        h = await peer(gw.ws_url, acct.token, host.wavry_id, "host")
        c = await peer(gw.ws_url, acct.token, client.wavry_id, "client")
        third = await connect(gw.ws_url)
        await closed_after_error(third, "too_many_connections")
        sid = str(uuid.uuid4())
        for _ in range(3):  # burst of 3 per socket ...
            await c.send(json.dumps({"type": "relay_request", "session": sid}))
            assert (await recv(c))["code"] == "unknown_session"
        await c.send(json.dumps({"type": "relay_request", "session": sid}))
        await closed_after_error(c, "rate_limited")  # ... then the socket is closed
        await h.close()

    helpers.run(main())


def test_host_shared_with_another_account(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    acct, host, _ = setup_pair(gw.url, helpers)
    with httpx.Client(base_url=gw.url, timeout=15) as http:
        friend = helpers.register(http)
        f_client = helpers.add_device(http, friend, "client")
        path = f"/v1/devices/{host.wavry_id}/shares/{friend.user['username']}"
        assert http.put(path, headers=friend.headers).status_code == 404  # not the owner
        assert http.get("/v1/hosts", headers=friend.headers).json()["hosts"] == []

        async def attempt() -> dict[str, Any]:
            h = await peer(gw.ws_url, acct.token, host.wavry_id, "host")
            c = await peer(gw.ws_url, friend.token, f_client.wavry_id, "client")
            sid = str(uuid.uuid4())
            await c.send(
                json.dumps(
                    {"type": "connect", "session": sid, "host": host.wavry_id, "candidates": []}
                )
            )
            # either the host gets the connect, or the client gets an error
            tasks = [asyncio.ensure_future(recv(h)), asyncio.ensure_future(recv(c))]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            got = done.pop().result()
            await h.close()
            await c.close()
            return got

        assert helpers.run(attempt())["code"] == "not_allowed"
        assert http.put(path, headers=acct.headers).status_code == 204
        hosts = http.get("/v1/hosts", headers=friend.headers).json()["hosts"]
        assert [(x["wavry_id"], x["shared"]) for x in hosts] == [(host.wavry_id, True)]
        got = helpers.run(attempt())
        assert got["type"] == "connect" and got["from"] == f_client.wavry_id
        assert http.delete(path, headers=acct.headers).status_code == 204
        assert helpers.run(attempt())["code"] == "not_allowed"
