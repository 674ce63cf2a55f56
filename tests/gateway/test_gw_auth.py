"""Accounts over real HTTP: register, login (with/without TOTP), lockout, limits, devices."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyotp
import pytest
import typer
from typer.testing import CliRunner

from wavry.gateway.cli import gateway_command
from wavry.rift.identity import Identity

FAST = {
    "WAVRY_GATEWAY_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_RATE_BURST": "1000",
    "WAVRY_GATEWAY_AUTH_RATE_PER_IP": "1000",
    "WAVRY_GATEWAY_AUTH_RATE_BURST": "1000",
}


def _client(url: str, source: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(
        base_url=url, timeout=15, transport=httpx.HTTPTransport(local_address=source)
    )


def _err(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code and body["message"], body


def test_register_login_logout_me_and_validation(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    with _client(gw.url) as c:
        acct = helpers.register(c, "alice")
        assert acct.user["username"] == "alice" and len(acct.token) >= 43
        _err(
            c.post(
                "/v1/auth/register",
                json={
                    "email": "new@example.com",
                    "username": " ALICE ",  # the same username in another form
                    "password": "another fine secret",
                    "display_name": "A",
                },
            ),
            409,
            "username_taken",
        )
        # an e-mail address already in use is not revealed: the answer is a normal account
        r = c.post(
            "/v1/auth/register",
            json={
                "email": "Alice@Example.com",
                "username": "alice2",
                "password": "another fine secret",
                "display_name": "A2",
            },
        )
        assert r.status_code == 201 and r.json()["user"]["email"] == "alice@example.com", r.text
        _err(
            c.post("/v1/auth/register", json={"email": "nope", "username": "a"}),
            422,
            "invalid_request",
        )
        _err(
            c.post(
                "/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
            ),
            422,
            "invalid_request",
        )
        r = c.post("/v1/auth/login", json={"login": "ALICE@example.com", "password": acct.password})
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        assert token != acct.token and r.json()["expires_at"] > time.time() + 23 * 3600
        hdr = {"Authorization": f"Bearer {token}"}
        me = c.get("/v1/me", headers=hdr)
        assert me.status_code == 200 and me.json()["user"]["id"] == acct.user["id"]
        _err(c.get("/v1/me"), 401, "invalid_token")
        _err(
            c.post("/v1/auth/login", json={"login": "alice", "password": "wrong"}),
            401,
            "invalid_credentials",
        )
        assert c.post("/v1/auth/logout", headers=hdr).status_code == 204
        _err(c.get("/v1/me", headers=hdr), 401, "invalid_token")
        assert c.get("/v1/me", headers=acct.headers).status_code == 200  # other session lives
        # tokens are stored only as hashes
        db = (gw.data_dir / "gateway.db").read_bytes()
        assert token.encode() not in db and acct.token.encode() not in db


def fresh_totp_step() -> float:
    """Wait until at least 6 s remain in the current 30 s TOTP step; return the time."""
    left = 30 - time.time() % 30
    if left < 6:
        time.sleep(left + 0.05)
    return time.time()


def test_totp_enrolment_login_and_single_use(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    with _client(gw.url) as c:
        acct = helpers.register(c, "bob")
        _err(
            c.post("/v1/auth/totp/setup", headers=acct.headers, json={"password": "bad"}),
            401,
            "invalid_credentials",
        )
        setup = c.post(
            "/v1/auth/totp/setup", headers=acct.headers, json={"password": acct.password}
        )
        assert setup.status_code == 200, setup.text
        secret = setup.json()["secret"]
        assert setup.json()["otpauth_uri"].startswith("otpauth://totp/Wavry:bob?secret=" + secret)
        totp = pyotp.TOTP(secret)
        # not active before enable
        assert (
            c.post("/v1/auth/login", json={"login": "bob", "password": acct.password}).status_code
            == 200
        )
        now = fresh_totp_step()
        bad = f"{(int(totp.at(now)) + 500000) % 1000000:06d}"
        _err(
            c.post(
                "/v1/auth/totp/enable", headers=acct.headers, json={"secret": secret, "code": bad}
            ),
            400,
            "invalid_totp",
        )
        enable_code = totp.at(now)
        r = c.post(
            "/v1/auth/totp/enable",
            headers=acct.headers,
            json={"secret": secret, "code": enable_code},
        )
        assert r.status_code == 200, r.text

        def login(code: str | None) -> httpx.Response:
            body: dict[str, Any] = {"login": "bob", "password": acct.password}
            if code is not None:
                body["totp_code"] = code
            return c.post("/v1/auth/login", json=body)

        _err(login(None), 401, "totp_required")
        _err(login(bad), 401, "invalid_totp")
        # RFC 6238 §5.2: the code that enabled TOTP is spent, and so is every earlier step
        _err(login(enable_code), 401, "invalid_totp")
        _err(login(totp.at(now - 30)), 401, "invalid_totp")
        nxt = totp.at(now + 30)  # ±1 step accepted, once
        r = login(nxt)
        assert r.status_code == 200, r.text
        assert r.json()["user"]["totp_enabled"] is True
        _err(login(nxt), 401, "invalid_totp")
        # the secret is encrypted at rest
        assert secret.encode() not in (gw.data_dir / "gateway.db").read_bytes()

        # disabling needs a code too (a second account: bob's codes in the window are spent)
        carl = helpers.register(c, "carl")
        secret2 = c.post(
            "/v1/auth/totp/setup", headers=carl.headers, json={"password": carl.password}
        ).json()["secret"]
        totp2 = pyotp.TOTP(secret2)
        now = fresh_totp_step()
        r = c.post(
            "/v1/auth/totp/enable",
            headers=carl.headers,
            json={"secret": secret2, "code": totp2.at(now - 30)},
        )
        assert r.status_code == 200, r.text
        _err(
            c.post(
                "/v1/auth/totp/disable",
                headers=carl.headers,
                json={"password": carl.password, "code": totp2.at(now - 30)},  # spent
            ),
            401,
            "invalid_totp",
        )
        r = c.post(
            "/v1/auth/totp/disable",
            headers=carl.headers,
            json={"password": carl.password, "code": totp2.at(now)},
        )
        assert r.status_code == 200, r.text
        r = c.post("/v1/auth/login", json={"login": "carl", "password": carl.password})
        assert r.status_code == 200, r.text


def test_lockout_per_address_and_login(start_gateway: Any, helpers: Any) -> None:
    """Five failures lock that (address, login) pair only: nobody can lock anyone else out."""
    gw = start_gateway(env=FAST)
    with _client(gw.url, "127.0.0.1") as a, _client(gw.url, "127.0.0.2") as b:
        carol = helpers.register(a, "carol")
        dave = helpers.register(a, "dave")
        for _ in range(5):
            _err(
                a.post("/v1/auth/login", json={"login": "carol", "password": "nope"}),
                401,
                "invalid_credentials",
            )
        # 127.0.0.1 is locked out of carol, even with the right password ...
        r = a.post("/v1/auth/login", json={"login": "carol", "password": carol.password})
        _err(r, 429, "locked")
        assert 800 <= int(r.headers["Retry-After"]) <= 900
        # ... and of every other spelling of that login
        for variant in ("CAROL", " carol\t", "\uff43\uff41\uff52\uff4f\uff4c"):
            r = a.post("/v1/auth/login", json={"login": variant, "password": carol.password})
            _err(r, 429, "locked")
        # carol herself, from her own address, is not locked out
        r = b.post("/v1/auth/login", json={"login": "Carol", "password": carol.password})
        assert r.status_code == 200, r.text
        # nor is anyone else behind 127.0.0.1
        r = a.post("/v1/auth/login", json={"login": "dave", "password": dave.password})
        assert r.status_code == 200, r.text


def test_rate_limit_and_token_expiry(start_gateway: Any, helpers: Any) -> None:
    env = {
        "WAVRY_GATEWAY_RATE_PER_IP": "1000",
        "WAVRY_GATEWAY_RATE_BURST": "1000",
        "WAVRY_GATEWAY_AUTH_RATE_PER_IP": "0.05",  # refill far slower than argon2 work
        "WAVRY_GATEWAY_AUTH_RATE_BURST": "4",
        "WAVRY_GATEWAY_TOKEN_TTL": "2",
    }
    gw = start_gateway(env=env)
    with _client(gw.url) as c:
        acct = helpers.register(c, "erin")
        assert c.get("/v1/me", headers=acct.headers).status_code == 200
        statuses = []
        for _ in range(6):
            r = c.post("/v1/auth/login", json={"login": "erin", "password": acct.password})
            statuses.append(r.status_code)
        assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429, statuses
        _err(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) == 20
        time.sleep(2.2)
        _err(c.get("/v1/me", headers=acct.headers), 401, "invalid_token")  # expired
    with _client(gw.url) as c:  # general per-IP limit on every route
        env2 = {**env, "WAVRY_GATEWAY_RATE_PER_IP": "1", "WAVRY_GATEWAY_RATE_BURST": "5"}
        gw2 = start_gateway(env=env2)
        codes = [httpx.get(gw2.url + "/v1/hosts").status_code for _ in range(8)]
        assert 429 in codes and codes[0] == 401, codes


def test_devices_with_proof_and_hosts(start_gateway: Any, helpers: Any) -> None:
    gw = start_gateway(env=FAST)
    with _client(gw.url) as c:
        acct = helpers.register(c, "frank")
        other = helpers.register(c, "grace")
        ident = Identity.generate()
        body = {
            "wavry_id": ident.wavry_id,
            "name": "desk",
            "kind": "host",
            "proof": helpers.device_proof(ident, other.user["id"]),
        }
        _err(c.post("/v1/devices", headers=acct.headers, json=body), 403, "invalid_proof")
        thief = Identity.generate()  # signature by another key
        body["proof"] = helpers.device_proof(thief, acct.user["id"])
        _err(c.post("/v1/devices", headers=acct.headers, json=body), 403, "invalid_proof")
        body["proof"] = helpers.device_proof(ident, acct.user["id"])
        r = c.post("/v1/devices", headers=acct.headers, json=body)
        assert r.status_code == 201 and r.json()["online"] is False, r.text
        body2 = {**body, "proof": helpers.device_proof(ident, other.user["id"])}
        _err(c.post("/v1/devices", headers=other.headers, json=body2), 409, "device_taken")
        bad = {**body, "wavry_id": "!" * 43}
        _err(c.post("/v1/devices", headers=acct.headers, json=bad), 422, "invalid_wavry_id")
        helpers.add_device(c, acct, "client", "laptop")
        hosts = c.get("/v1/hosts", headers=acct.headers).json()["hosts"]
        assert [(h["wavry_id"], h["name"], h["online"]) for h in hosts] == [
            (ident.wavry_id, "desk", False)
        ]
        assert c.get("/v1/hosts", headers=other.headers).json()["hosts"] == []
        assert len(c.get("/v1/me", headers=acct.headers).json()["devices"]) == 2
        _err(c.delete(f"/v1/devices/{ident.wavry_id}", headers=other.headers), 404, "not_found")
        assert c.delete(f"/v1/devices/{ident.wavry_id}", headers=acct.headers).status_code == 204
        assert c.get("/v1/hosts", headers=acct.headers).json()["hosts"] == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--listen", "nonsense"], "--listen: expected HOST:PORT"),
        (["--admin-token", "short"], "--admin-token must be at least 32"),
        (["--database-url", "mysql://x"], "--database-url"),
        (["--production"], "--production needs WAVRY_GATEWAY_TOTP_KEY"),
        (["--trusted-proxies", "10.0.0.1,proxy.lan"], "--trusted-proxies: not an IP"),
        (["--public-url", "https://gw.example.com/?x=1"], "--public-url: a base URL has no"),
        (["--stun-listen", "nowhere"], "--stun-listen: expected HOST:PORT"),
    ],
)
def test_cli_bad_configuration_is_one_line(args: list[str], needle: str, tmp_path: Any) -> None:
    app = typer.Typer()
    app.command()(gateway_command)
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)], env={})
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert needle in out and "Traceback" not in out and len(out.splitlines()) == 1, out


def test_cli_unreachable_database_is_one_line(tmp_path: Any, helpers: Any) -> None:
    app = typer.Typer()
    app.command()(gateway_command)
    port = helpers.free_port()
    url = f"postgresql+asyncpg://nobody:secret@127.0.0.1:{port}/x"
    result = CliRunner().invoke(
        app, ["--database-url", url, "--data-dir", str(tmp_path), "--stun-listen", "127.0.0.1:0"]
    )
    assert result.exit_code == 1, result.output
    out = result.output.strip()
    assert out.startswith("error: database") and "secret" not in out, out
    assert len(out.splitlines()) == 1
