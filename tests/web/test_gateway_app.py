"""The gateway's /app: the same page, served from the gateway's origin, signs in, lists the
account's hosts, gets the chosen host's browser rendezvous through signaling (CONTROL_PLANE.md
§3 `transport: "web"`, `accept.web`) and then streams straight from the host over WebTransport.

The host side of that signaling (a gateway-connected `wavry host`) is not built yet (the "reach
by name" work): a small stand-in here signs in with the real host's identity as a host device and
answers `connect` with the real `wavry host --web`'s certificate hash and address, which is what
that host will send.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from wavry.store import load_or_create_identity

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _gateway_helpers() -> Any:
    """tests/gateway/conftest.py's launcher (one of each)."""
    path = Path(__file__).resolve().parents[1] / "gateway" / "conftest.py"
    spec = importlib.util.spec_from_file_location("wavry_gateway_test_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


GW = _gateway_helpers()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class StandInHost:
    """Answers `connect` on the host's behalf, with the web rendezvous of `wavry host --web`."""

    def __init__(self, signal_url: str, token: str, wavry_id: str, web: dict[str, Any]) -> None:
        self.url, self.token, self.wavry_id, self.web = signal_url, token, wavry_id, web
        self.connects: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),))
        self._thread.daemon = True
        self._thread.start()

    async def _run(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve()

    async def _serve(self) -> None:
        async with websockets.connect(self.url) as ws:
            auth = {"type": "auth", "token": self.token, "wavry_id": self.wavry_id, "role": "host"}
            await ws.send(json.dumps(auth))
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "ready":
                    self.ready.set()
                elif msg["type"] == "connect":
                    self.connects.append(msg)
                    answer = {"type": "accept", "session": msg["session"], "candidates": []}
                    answer["web"] = self.web
                    await ws.send(json.dumps(answer))

    def stop(self) -> None:
        for task in asyncio.all_tasks(self._loop):
            self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(5)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "gw").mkdir()
    gw = GW.launch_gateway(tmp_path / "gw")
    try:
        yield gw
    finally:
        gw.stop()


def test_gateway_app_signs_in_picks_host_and_streams(
    chromium: Any, web: Any, tmp_path: Path, gateway: Any
) -> None:
    password = "browser-" + uuid.uuid4().hex
    with httpx.Client(base_url=gateway.url, timeout=15) as c:
        r = c.post(
            "/v1/auth/register",
            json={"email": "web@example.com", "username": "webuser", "password": password,
                  "display_name": "Web"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        user, token = r.json()["user"], r.json()["token"]
        home = tmp_path / "host"
        args = ("--source", "synthetic", "--size", "320x240", "--fps", "30", "--trust", "any")
        with web.host(home, *args, "--name", "lab box") as host:
            identity = load_or_create_identity(home / "wavry")
            assert identity.wavry_id == host.wavry_id
            proof = b64url(identity.sign(b"wavry-device:" + user["id"].encode()))
            r = c.post(
                "/v1/devices",
                headers={"Authorization": f"Bearer {token}"},
                json={"wavry_id": host.wavry_id, "name": "lab box", "kind": "host",
                      "proof": proof},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            cert = re.search(r"[#&]h=([A-Za-z0-9_-]{43})", host.url)
            addr = re.search(r"https://([^/]+)/", host.url)
            assert cert and addr
            rendezvous = {
                "cert_sha256": cert.group(1),
                "candidates": [{"kind": "host", "addr": addr.group(1)}],
            }
            stand_in = StandInHost(gateway.ws_url, token, host.wavry_id, rendezvous)
            try:
                assert stand_in.ready.wait(15), "stand-in host never signed in"
                page = web.open_page(chromium, gateway.url + "/app")
                try:
                    page.fill("#login", "webuser")
                    page.fill("#password", password)
                    page.click("#signin button[type=submit]")
                    button = page.wait_for_selector(
                        f"#hosts button[data-wavry-id='{host.wavry_id}']", timeout=20_000
                    )
                    assert button is not None and "lab box" in button.inner_text()
                    button.click()
                    stats = web.wait_stats(page, lambda s: s.get("framesDecoded", 0) >= 20)
                    assert stats["transport"] == "webtransport"
                    assert stats["hostId"] == host.wavry_id
                    assert page.is_hidden("#gateway")
                    browser_id = stats["myId"]
                finally:
                    page.context.close()
            finally:
                stand_in.stop()
            # the page asked as a browser, from its own registered device
            assert stand_in.connects and stand_in.connects[0]["transport"] == "web"
            assert stand_in.connects[0]["from"] == browser_id
            me = c.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
            kinds = {d["wavry_id"]: d["kind"] for d in me["devices"]}
            assert kinds[browser_id] == "client"
