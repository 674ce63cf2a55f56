"""A machine that shares and connects: its host device signs in to signaling as a host and as
a client at once (CONTROL_PLANE.md §3), each socket lives on its own, presence follows the host
socket only, and a client device still cannot sign in as a host. `ready` names the STUN port."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

from tests.gateway.test_gw_signal import FAST, peer, recv


def test_host_device_signs_in_as_host_and_as_client(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    with httpx.Client(base_url=gw.url, timeout=15) as c:
        acct = helpers.register(c)
        box = helpers.add_device(c, acct, "host", "box")
        other = helpers.add_device(c, acct, "host", "other")
        laptop = helpers.add_device(c, acct, "client", "laptop")

    def online() -> dict[str, bool]:
        with httpx.Client(base_url=gw.url, timeout=15) as c:
            hosts = c.get("/v1/hosts", headers=acct.headers).json()["hosts"]
        return {h["name"]: h["online"] for h in hosts}

    async def run() -> None:
        as_host = await peer(gw.ws_url, acct.token, box.wavry_id, "host")
        as_client = await peer(gw.ws_url, acct.token, box.wavry_id, "client")
        other_host = await peer(gw.ws_url, acct.token, other.wavry_id, "host")
        assert online() == {"box": True, "other": True}
        # box (as a client) connects to other; other answers; box's host socket hears nothing
        sid = str(uuid.uuid4())
        await as_client.send(
            json.dumps(
                {"type": "connect", "session": sid, "host": other.wavry_id, "candidates": []}
            )
        )
        msg = await recv(other_host)
        assert msg["type"] == "connect" and msg["from"] == box.wavry_id
        await other_host.send(
            json.dumps(
                {
                    "type": "accept",
                    "session": sid,
                    "candidates": [],
                    "host_wavry_id": other.wavry_id,
                }
            )
        )
        assert (await recv(as_client))["type"] == "accept"
        # and box as a host is reachable by a client meanwhile
        laptop_ws = await peer(gw.ws_url, acct.token, laptop.wavry_id, "client")
        sid2 = str(uuid.uuid4())
        await laptop_ws.send(
            json.dumps({"type": "connect", "session": sid2, "host": box.wavry_id, "candidates": []})
        )
        got = await recv(as_host)
        assert got["type"] == "connect" and got["session"] == sid2
        # the client socket going away leaves the host online
        await as_client.close()
        assert online()["box"] is True
        await as_host.close()
        for _ in range(50):
            if not online()["box"]:
                break
            await asyncio.sleep(0.1)
        assert online()["box"] is False
        for ws in (other_host, laptop_ws):
            await ws.close()

    async def refused() -> dict[str, Any]:
        from websockets.asyncio.client import connect

        async with connect(gw.ws_url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "auth",
                        "token": acct.token,
                        "wavry_id": laptop.wavry_id,
                        "role": "host",
                    }
                )
            )
            return await recv(ws)

    helpers.run(run())
    err = helpers.run(refused())
    assert err["type"] == "error" and err["code"] == "invalid_message"


def test_ready_names_the_stun_port(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    with httpx.Client(base_url=gw.url, timeout=15) as c:
        acct = helpers.register(c)
        dev = helpers.add_device(c, acct, "client", "laptop")

    async def run() -> dict[str, Any]:
        from websockets.asyncio.client import connect

        async with connect(gw.ws_url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "auth",
                        "token": acct.token,
                        "wavry_id": dev.wavry_id,
                        "role": "client",
                    }
                )
            )
            return await recv(ws)

    ready = helpers.run(run())
    assert ready["type"] == "ready" and ready["stun_port"] == gw.stun[1]
