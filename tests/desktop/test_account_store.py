"""Where the session token lives: the system keyring when a Secret Service answers (a real
gnome-keyring on a private bus), else account.json at mode 0600 — and every reader finds it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from wavry.account.store import Account, AccountStore, system_keyring
from wavry.store import StoreError

ACCOUNT = Account("https://gw.example.org", "user-1", "ada", "secret-token-123", 2e9, "host")


def test_without_a_secret_service_the_token_is_in_the_0600_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert system_keyring() is None
    store = AccountStore(tmp_path)
    store.save(ACCOUNT)
    raw = json.loads(store.path.read_text())
    assert raw["token"] == "secret-token-123"
    assert "token_store" not in raw
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.load() == ACCOUNT
    assert store.token_location() == str(store.path)


def test_with_a_secret_service_the_token_goes_to_the_keyring(
    tmp_path: Path, secret_service: str
) -> None:
    store = AccountStore(tmp_path)
    assert store.vault is not None and store.vault.name == "system keyring"
    store.save(ACCOUNT)
    raw = json.loads(store.path.read_text())
    assert raw["token"] == "" and raw["token_store"] == "keyring"
    assert "secret-token-123" not in store.path.read_text()
    assert store.token_location() == "system keyring"
    # a new reader (another process, the CLI) finds it there
    assert AccountStore(tmp_path).load() == ACCOUNT
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path.parent))
    code = (
        "from pathlib import Path; from wavry.account.store import AccountStore;"
        f"print(AccountStore(Path({str(tmp_path)!r})).load().token)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "secret-token-123", out.stderr
    # signing out removes it from the keyring too
    vault = store.vault
    assert store.forget()
    assert vault.get("user-1@https://gw.example.org") is None


def test_a_token_the_keyring_lost_is_a_clear_error(tmp_path: Path, secret_service: str) -> None:
    store = AccountStore(tmp_path)
    store.save(ACCOUNT)
    assert store.vault is not None
    store.vault.delete("user-1@https://gw.example.org")
    with pytest.raises(StoreError, match="no longer in the system keyring: sign in again"):
        AccountStore(tmp_path).load()


def test_a_keyring_token_without_the_keyring_says_what_to_do(
    tmp_path: Path, secret_service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    AccountStore(tmp_path).save(ACCOUNT)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    with pytest.raises(StoreError, match="system keyring, which does not answer now"):
        AccountStore(tmp_path).load()


def test_signing_in_elsewhere_leaves_no_old_token_behind(
    tmp_path: Path, secret_service: str
) -> None:
    store = AccountStore(tmp_path)
    store.save(ACCOUNT)
    other = Account("https://other.example.org", "user-2", "bob", "tok-2", 2e9)
    store.save(other)
    assert store.vault is not None
    assert store.vault.get("user-1@https://gw.example.org") is None
    assert store.load() == other
