"""Admin API and the admin page in headless Chromium (Playwright); health and metrics."""

from __future__ import annotations

import json
import shutil
from typing import Any

import httpx
import pytest

import wavry

FAST = {
    "WAVRY_GATEWAY_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_RATE_BURST": "1000",
    "WAVRY_GATEWAY_AUTH_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_AUTH_RATE_BURST": "1000",
}
CHROMIUM = "/usr/bin/chromium"


def test_admin_api_ban_unban_revoke_audit(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    admin = {"Authorization": f"Bearer {helpers.admin_token}"}
    with httpx.Client(base_url=gw.url, timeout=15) as c:
        acct = helpers.register(c, "henry")
        assert c.get("/admin/api/overview").status_code == 401
        wrong = {"Authorization": "Bearer " + "y" * len(helpers.admin_token)}
        assert c.get("/admin/api/overview", headers=wrong).json()["error"] == "invalid_token"
        ov = c.get("/admin/api/overview", headers=admin).json()
        assert ov["users"] == 1 and ov["active_tokens"] == 1 and ov["live_sessions"] == 0
        uid = acct.user["id"]
        r = c.post(
            f"/admin/api/users/{uid}/ban",
            headers=admin,
            json={"duration_s": 3600, "reason": "abuse"},
        )
        assert r.status_code == 200 and r.json()["revoked_sessions"] == 1, r.text
        assert c.get("/v1/me", headers=acct.headers).status_code == 401  # revoked
        r = c.post("/v1/auth/login", json={"login": "henry", "password": acct.password})
        assert r.status_code == 403 and r.json()["error"] == "suspended"
        assert c.post(f"/admin/api/users/{uid}/unban", headers=admin).status_code == 200
        r = c.post("/v1/auth/login", json={"login": "henry", "password": acct.password})
        assert r.status_code == 200
        r = c.post("/admin/api/sessions/revoke", headers=admin, json={"user_id": uid})
        assert r.json()["revoked_sessions"] == 1  # the login after the unban
        assert c.post("/admin/api/users/nobody/ban", headers=admin, json={}).status_code == 404
        actions = [e["action"] for e in c.get("/admin/api/audit", headers=admin).json()["entries"]]
        assert actions[:3] == ["sessions.revoke", "user.unban", "user.ban"]
        assert c.get("/health").json() == {"status": "ok", "version": wavry.__version__}
        assert c.get("/ready").json() == {"ready": True}
        m = c.get("/metrics").text
        for name in (
            "wavry_gateway_signal_connections",
            "wavry_gateway_signal_messages",
            'wavry_gateway_auth_total{outcome="suspended"} 1.0',
            "wavry_gateway_relays",
            "wavry_gateway_lease_grants_total",
        ):
            assert name in m, name


def test_admin_page_in_chromium(start_gateway: Any, helpers: Any) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    gw = start_gateway(env=FAST)
    with httpx.Client(base_url=gw.url, timeout=15) as c:
        acct = helpers.register(c, "ivy")
        helpers.register(c, "jack")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(gw.url + "/admin")
            page.fill("#token", "not-the-token")
            page.click("#login")
            assert "wrong token" in page.inner_text("#error")
            page.fill("#token", helpers.admin_token)
            page.click("#login")
            page.wait_for_selector("#users")
            assert "ivy" in page.inner_text("#users") and "jack" in page.inner_text("#users")
            row = page.locator('tr[data-username="ivy"]')
            row.locator('input[name="hours"]').fill("2")
            row.locator('input[name="reason"]').fill("spam")
            row.locator("button.ban").click()
            page.wait_for_selector("#msg")
            assert "banned until" in page.locator('tr[data-username="ivy"]').inner_text()
            audit = page.inner_text("#audit")
            assert "user.ban" in audit and acct.user["id"] in audit and "spam" in audit
            assert "admin.login" in audit and "admin.login_failed" in audit
        finally:
            browser.close()
    r = httpx.post(gw.url + "/v1/auth/login", json={"login": "ivy", "password": acct.password})
    assert r.status_code == 403 and r.json()["error"] == "suspended"


def test_json_logs(start_gateway: Any) -> None:
    gw = start_gateway("--log-json", "--log-level", "info", env=FAST)
    httpx.get(gw.url + "/health")
    gw.stop()
    lines = [ln for ln in gw.output if ln.startswith("{")]
    assert lines, gw.output
    records = [json.loads(ln) for ln in lines]
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    assert any(r["logger"].startswith("uvicorn") for r in records)
