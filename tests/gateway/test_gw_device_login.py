"""Device-key login, ``POST /v1/auth/device`` (docs/spec/CONTROL_PLANE.md §2), over real HTTP:
the signed message, the ±120 s window, single use, the public base URL, and a token that dies
with its device (its signaling socket too)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from wavry.controlplane.devicelogin import (
    canonical_base_url,
    device_login_body,
    device_login_message,
    encode_signature,
)
from wavry.rift.identity import Identity

FAST = {
    "WAVRY_GATEWAY_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_RATE_BURST": "1000",
    "WAVRY_GATEWAY_AUTH_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_AUTH_RATE_BURST": "1000",
}


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_device_signature", r.text


def test_canonical_base_url() -> None:
    assert canonical_base_url("HTTPS://GW.Example.com:443/wavry/") == "https://gw.example.com/wavry"
    assert canonical_base_url("http://127.0.0.1:3000/") == "http://127.0.0.1:3000"
    assert canonical_base_url("http://[::1]:80") == "http://[::1]"
    assert canonical_base_url("https://gw:8443") == "https://gw:8443"
    for bad in ("ftp://gw", "https://user@gw", "https://gw/?q", "gw:3000", "https://gw#x"):
        with pytest.raises(ValueError):
            canonical_base_url(bad)
    msg = device_login_message(1_700_000_000, "HTTP://Gw:80/")
    assert msg == b"wavry-device-login:1700000000:http://gw"


def test_device_login_end_to_end(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    assert f"public URL {gw.url}" in "".join(gw.output)  # default: http:// + --listen
    with httpx.Client(base_url=gw.url, timeout=15) as c:
        acct = helpers.register(c)
        host = helpers.add_device(c, acct, "host", "desk")
        stranger = Identity.generate()  # a valid key, never registered

        now = int(time.time())
        body = device_login_body(host, gw.url, now)
        r = c.post("/v1/auth/device", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["user"]["id"] == acct.user["id"] and out["expires_at"] > time.time() + 3600
        token = out["token"]
        me = c.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["user"]["id"] == acct.user["id"]

        _refused(c.post("/v1/auth/device", json=body))  # the same (wavry_id, timestamp) again
        assert c.post("/v1/auth/device", json=device_login_body(host, gw.url, now - 1)).is_success
        # the window is ±120 s of the gateway's clock
        _refused(c.post("/v1/auth/device", json=device_login_body(host, gw.url, now - 130)))
        _refused(c.post("/v1/auth/device", json=device_login_body(host, gw.url, now + 130)))
        assert c.post("/v1/auth/device", json=device_login_body(host, gw.url, now + 100)).is_success
        # signed for another gateway, by another key, or for an unknown device: one answer
        _refused(c.post("/v1/auth/device", json=device_login_body(host, "https://other.gw", now)))
        forged = {**device_login_body(stranger, gw.url, now + 2), "wavry_id": host.wavry_id}
        _refused(c.post("/v1/auth/device", json=forged))
        _refused(c.post("/v1/auth/device", json=device_login_body(stranger, gw.url, now)))
        sig = host.sign(device_login_message(now + 3, gw.url))
        padded = {"wavry_id": host.wavry_id, "timestamp": now + 3,
                  "signature": encode_signature(sig) + "=="}  # fmt: skip
        assert c.post("/v1/auth/device", json=padded).status_code in (401, 422)
        r = c.post("/v1/auth/device", json={"wavry_id": "x" * 43, "timestamp": now,
                                              "signature": "A" * 86})  # fmt: skip
        _refused(r)

        async def socket_dies_with_device() -> None:
            ws = await connect(gw.ws_url)
            auth = {"type": "auth", "token": token, "wavry_id": host.wavry_id, "role": "host"}
            await ws.send(json.dumps(auth))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
            r = c.delete(f"/v1/devices/{host.wavry_id}", headers=acct.headers)
            assert r.status_code == 204
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert msg["type"] == "error" and msg["code"] in ("removed", "token_revoked"), msg
            await ws.close()

        helpers.run(socket_dies_with_device())
        # revoked with the device: its token is dead, new device logins are refused
        r = c.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        _refused(c.post("/v1/auth/device", json=device_login_body(host, gw.url, now + 5)))
        # the account's password token is untouched
        assert c.get("/v1/me", headers=acct.headers).status_code == 200


def test_device_login_with_configured_public_url(start_gateway: Any, helpers: Any) -> None:
    public = "https://Gateway.Example.net:443/wavry/"
    gw = start_gateway("--public-url", public, env=FAST)
    with httpx.Client(base_url=gw.url, timeout=15) as c:
        acct = helpers.register(c)
        host = helpers.add_device(c, acct, "host")
        now = int(time.time())
        # the URL the request travelled over does not count; the configured one does
        _refused(c.post("/v1/auth/device", json=device_login_body(host, gw.url, now)))
        r = c.post("/v1/auth/device", json=device_login_body(host, public, now))
        assert r.status_code == 200, r.text
        r = c.post(
            "/v1/auth/device",
            json=device_login_body(host, "https://gateway.example.net/wavry", now + 1),
        )
        assert r.status_code == 200, r.text
        # a suspended account gets no token, even with a good signature
        admin = {"Authorization": f"Bearer {helpers.admin_token}"}
        assert c.post(f"/admin/api/users/{acct.user['id']}/ban", headers=admin, json={}).is_success
        r = c.post("/v1/auth/device", json=device_login_body(host, public, now + 2))
        assert r.status_code == 403 and r.json()["error"] == "suspended"
