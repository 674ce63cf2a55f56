"""`wavry register|login|whoami|hosts|logout` against a real gateway process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyotp

WAVRY = [sys.executable, "-m", "wavry"]


def wavry(
    home: Path, *args: str, password: str | None = "correct horse battery", **env: str
) -> Any:
    full = {**os.environ, "XDG_CONFIG_HOME": str(home), **env}
    full.pop("WAVRY_PASSWORD", None)
    if password is not None:
        full["WAVRY_PASSWORD"] = password
    return subprocess.run(
        [*WAVRY, *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_register_login_whoami_hosts_logout(
    start_gateway: Callable[..., Any], tmp_path: Path
) -> None:
    gw = start_gateway()
    a, b = tmp_path / "a", tmp_path / "b"
    r = wavry(a, "register", gw.url, "--username", "alice", "--email", "a@example.org",
              "--device-kind", "host")  # fmt: skip
    assert r.returncode == 0, r.stderr
    account = a / "wavry" / "account.json"
    assert stat.S_IMODE(account.stat().st_mode) == 0o600
    saved = json.loads(account.read_text())
    assert saved["gateway_url"] == gw.url and saved["username"] == "alice"
    assert "correct horse" not in account.read_text()  # the password is never stored

    r = wavry(b, "login", gw.url, "--login", "alice")
    assert r.returncode == 0, r.stderr
    who = json.loads(wavry(b, "whoami", "--json", "-").stdout)
    assert who["username"] == "alice" and not who["expired"]

    host_id = (a / "wavry" / "identity.pem").exists() and json.loads(
        wavry(a, "id", "--json", "-").stdout
    )["wavry_id"]
    listed = json.loads(wavry(b, "hosts", "--json", "-").stdout)
    assert [(h["wavry_id"], h["online"]) for h in listed] == [(host_id, False)]

    assert wavry(b, "logout").returncode == 0
    assert not (b / "wavry" / "account.json").exists()
    r = wavry(b, "hosts")
    assert r.returncode == 1 and r.stderr.startswith("error: not signed in")


def test_wrong_password_and_totp(start_gateway: Callable[..., Any], tmp_path: Path) -> None:
    gw = start_gateway()
    a = tmp_path / "a"
    assert (
        wavry(a, "register", gw.url, "--username", "bob", "--email", "b@example.org").returncode
        == 0
    )
    r = wavry(a, "login", gw.url, "--login", "bob", password="wrong password!")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error:")
    assert "Traceback" not in r.stderr

    # TOTP on: the login asks for the code (here from WAVRY_TOTP)
    token = json.loads((a / "wavry" / "account.json").read_text())["token"]
    h = {"Authorization": f"Bearer {token}"}
    setup = httpx.post(gw.url + "/v1/auth/totp/setup", json={"password": "correct horse battery"},
                       headers=h).json()  # fmt: skip
    totp = pyotp.TOTP(setup["secret"])
    enable = {"secret": setup["secret"], "code": totp.now()}
    httpx.post(gw.url + "/v1/auth/totp/enable", json=enable, headers=h).raise_for_status()
    r = wavry(a, "login", gw.url, "--login", "bob")  # no code, no terminal
    assert r.returncode == 2 and "WAVRY_TOTP" in r.stderr
    step = totp.timecode(datetime.now(UTC))  # the code just used to enable TOTP was this step's
    r = wavry(a, "login", gw.url, "--login", "bob", WAVRY_TOTP=totp.generate_otp(step + 1))
    assert r.returncode == 0, r.stderr  # the next step's code: within the ±1 step window


def test_no_gateway_is_one_clear_line(tmp_path: Path) -> None:
    r = wavry(tmp_path, "login", "http://127.0.0.1:9", "--login", "x")
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot reach the gateway at http://127.0.0.1:9")
    assert "Traceback" not in r.stderr
