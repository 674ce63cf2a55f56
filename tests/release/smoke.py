"""Control-plane smoke against a running gateway and relay (the containers of deploy/compose.yaml).

Run where the services are reachable (tests/release/test_images.py runs it inside the containers'
network namespace): registers an account, logs in, adds a device with its Ed25519 proof, opens the
signaling socket up to `ready`, asks STUN for the reflexive address, and checks that the relay is
registered and healthy at the gateway and ready itself. Prints one JSON object with what it saw;
exits 1 with one line on the first failure.

    python tests/release/smoke.py --gateway http://127.0.0.1:3000 --relay-http
        http://127.0.0.1:9091 --admin-token TOKEN [--relay-id relay-1] [--stun 127.0.0.1:3478]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import struct
import sys
import time
import uuid
from typing import Any

import httpx
import websockets

from wavry.rift.identity import Identity


class SmokeFailed(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SmokeFailed(what)


def stun_binding(addr: tuple[str, int], timeout: float = 3.0) -> tuple[str, int]:
    """One RFC 5389 Binding request; the XOR-MAPPED-ADDRESS of the answer."""
    magic = 0x2112A442
    txid = uuid.uuid4().bytes[:12]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(struct.pack("!HHI", 0x0001, 0, magic) + txid, addr)
        data, _ = s.recvfrom(2048)
    kind, length, cookie = struct.unpack_from("!HHI", data)
    check(kind == 0x0101 and cookie == magic and data[8:20] == txid, "STUN: not a Binding success")
    pos = 20
    while pos + 4 <= 20 + length:
        atype, alen = struct.unpack_from("!HH", data, pos)
        if atype == 0x0020:  # XOR-MAPPED-ADDRESS, IPv4
            port = struct.unpack_from("!H", data, pos + 6)[0] ^ (magic >> 16)
            raw = struct.unpack_from("!I", data, pos + 8)[0] ^ magic
            return socket.inet_ntoa(struct.pack("!I", raw)), port
        pos += 4 + alen + (-alen % 4)
    raise SmokeFailed("STUN: no XOR-MAPPED-ADDRESS")


async def signaling_ready(ws_url: str, token: str, wavry_id: str) -> dict[str, Any]:
    async with websockets.connect(ws_url, open_timeout=10) as ws:
        await ws.send(
            json.dumps({"type": "auth", "token": token, "wavry_id": wavry_id, "role": "host"})
        )
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
    check(answer.get("type") == "ready", f"signaling answered {answer}")
    return dict(answer)


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=args.gateway, timeout=15) as c:
        health = c.get("/health").json()
        check(health.get("status") == "ok", f"/health answered {health}")
        out["health"] = health
        check(c.get("/ready").status_code == 200, "/ready is not 200")
        name = "smoke" + uuid.uuid4().hex[:10]
        password = "smoke " + uuid.uuid4().hex
        r = c.post(
            "/v1/auth/register",
            json={
                "email": f"{name}@example.com",
                "username": name,
                "password": password,
                "display_name": "Smoke",
            },
        )
        check(r.status_code == 201, f"register: HTTP {r.status_code} {r.text[:200]}")
        user_id = r.json()["user"]["id"]
        r = c.post("/v1/auth/login", json={"login": name, "password": password})
        check(r.status_code == 200, f"login: HTTP {r.status_code} {r.text[:200]}")
        token = r.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        ident = Identity.generate()
        sig = ident.sign(b"wavry-device:" + user_id.encode())
        proof = base64.urlsafe_b64encode(sig).decode().rstrip("=")
        r = c.post(
            "/v1/devices",
            headers=auth,
            json={"wavry_id": ident.wavry_id, "name": "smoke", "kind": "host", "proof": proof},
        )
        check(r.status_code == 201, f"device: HTTP {r.status_code} {r.text[:200]}")
        out["device"] = ident.wavry_id
        ws_url = args.gateway.replace("http://", "ws://", 1).rstrip("/") + "/v1/signal"
        out["signaling"] = asyncio.run(signaling_ready(ws_url, token, ident.wavry_id))["type"]
        admin = {"Authorization": f"Bearer {args.admin_token}"}
        deadline = time.monotonic() + args.relay_wait
        relays: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            relays = c.get("/admin/api/relays", headers=admin).json()["relays"]
            if any(x["relay_id"] == args.relay_id and x["state"] == "healthy" for x in relays):
                break
            time.sleep(0.5)
        states = [(x["relay_id"], x["state"]) for x in relays]
        check((args.relay_id, "healthy") in states, f"relay not healthy at the gateway: {states}")
        out["relays"] = states
        metrics = c.get("/metrics").text
        check('wavry_gateway_relays{state="healthy"} 1.0' in metrics, "gateway metrics: no relay")
    with httpx.Client(base_url=args.relay_http, timeout=10) as r_http:
        check(r_http.get("/ready").status_code == 200, "relay /ready is not 200")
        check("wavry_relay_lease_keys 1" in r_http.get("/metrics").text, "relay holds no lease key")
    if args.stun:
        host, _, port = args.stun.rpartition(":")
        out["stun"] = list(stun_binding((host, int(port))))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gateway", required=True)
    p.add_argument("--relay-http", required=True)
    p.add_argument("--admin-token", required=True)
    p.add_argument("--relay-id", default="relay-1")
    p.add_argument("--relay-wait", type=float, default=30.0)
    p.add_argument("--stun", default="")
    args = p.parse_args()
    try:
        print(json.dumps(run(args)))
    except (SmokeFailed, httpx.HTTPError, OSError, TimeoutError, KeyError, ValueError) as exc:
        print(f"smoke: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
