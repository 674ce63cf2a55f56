"""The gateway's /app: the same page, served from the gateway's origin, signs in, lists the
account's hosts, gets the chosen host's browser rendezvous through signaling (CONTROL_PLANE.md
§3 `transport: "web"`, `accept.web`) and then streams straight from the host over WebTransport.

The host is the real thing: `wavry register` (password from WAVRY_PASSWORD) registers the
account and this machine as a host device, then `wavry host --web --gateway URL --name NAME`
signs in with its device key, stays online and answers the page's `connect` with its web
endpoint's certificate hash and addresses.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

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


def _wait_online(c: httpx.Client, token: str, wavry_id: str, timeout: float = 60.0) -> None:
    """Until the gateway lists the host online (its device-key sign-in and signaling socket)."""
    deadline = time.monotonic() + timeout
    listed: Any = None
    while time.monotonic() < deadline:
        r = c.get("/v1/hosts", headers={"Authorization": f"Bearer {token}"})
        listed = r.json()
        if any(h["wavry_id"] == wavry_id and h.get("online") for h in listed.get("hosts", [])):
            return
        time.sleep(0.2)
    raise AssertionError(f"host never came online at the gateway: {listed}")


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
    home = tmp_path / "host"
    env = dict(os.environ, XDG_CONFIG_HOME=str(home), WAVRY_PASSWORD=password)
    reg = subprocess.run(
        [sys.executable, "-m", "wavry", "register", gateway.url, "--username", "webuser",
         "--email", "web@example.com", "--device-kind", "host"],
        env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert reg.returncode == 0, reg.stdout + reg.stderr
    with httpx.Client(base_url=gateway.url, timeout=15) as c:
        r = c.post("/v1/auth/login", json={"login": "webuser", "password": password})
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        args = ("--source", "synthetic", "--size", "320x240", "--fps", "30", "--trust", "any")
        gw_args = ("--gateway", gateway.url, "--name", "lab box")
        with web.host(home, *args, *gw_args) as host:
            identity = load_or_create_identity(home / "wavry")
            assert identity.wavry_id == host.wavry_id
            _wait_online(c, token, host.wavry_id)
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
            # the page asked as a browser, from its own registered device
            me = c.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
            kinds = {d["wavry_id"]: d["kind"] for d in me["devices"]}
            assert kinds[browser_id] == "client"
