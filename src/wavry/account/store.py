"""What this device remembers of its gateway sign-in: `$XDG_CONFIG_HOME/wavry/account.json`,
mode 0600 (gateway URL, user, the session token's expiry), and the session token itself — in the
system keyring (the `keyring` package's Secret Service back-end) when a Secret Service answers
with an unlocked default collection, else in that 0600 file. The password is never stored; an
unattended host renews its token with its device key (`POST /v1/auth/device`).

This is the one place that decides where the token goes: `wavry login` and `wavry desktop` both
save through :class:`AccountStore`, and a token saved in the keyring is read back from there by
every command (``"token_store": "keyring"`` in the file says so).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from wavry.atomicfile import atomic_write
from wavry.store import StoreError, config_dir

__all__ = ["Account", "AccountStore", "TokenVault", "system_keyring"]

FILE_NAME = "account.json"
KEYRING_SERVICE = "wavry"
PROBE_TIMEOUT_S = 2.0

log = logging.getLogger("wavry.account")


@dataclass(frozen=True, slots=True)
class Account:
    gateway_url: str
    user_id: str
    username: str
    token: str
    expires_at: float
    device_kind: str = "client"

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at - 60


class TokenVault(Protocol):
    """Somewhere a session token can live outside account.json (the system keyring)."""

    name: str

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, token: str) -> None: ...

    def delete(self, key: str) -> None: ...


class _KeyringVault:
    """The `keyring` package's Secret Service back-end."""

    name = "system keyring"

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def get(self, key: str) -> str | None:
        value = self.backend.get_password(KEYRING_SERVICE, key)
        return None if value is None else str(value)

    def set(self, key: str, token: str) -> None:
        self.backend.set_password(KEYRING_SERVICE, key, token)

    def delete(self, key: str) -> None:
        from keyring.errors import PasswordDeleteError

        with contextlib.suppress(PasswordDeleteError):  # nothing there: nothing to delete
            self.backend.delete_password(KEYRING_SERVICE, key)


def _unlocked_secret_service() -> bool:
    """True when a Secret Service answers on the session bus and its default collection is
    unlocked (storing then never raises a prompt: a host without a person must not wait)."""
    import secretstorage

    bus = secretstorage.dbus_init()
    try:
        if not secretstorage.check_service_availability(bus):
            return False
        return not secretstorage.get_default_collection(bus).is_locked()
    finally:
        bus.close()


def system_keyring() -> TokenVault | None:
    """The system keyring when a Secret Service answers (within 2 s), else None."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return None
    try:
        import keyring
        from keyring.backends import SecretService
    except ImportError:  # a services-only install has no keyring package
        return None
    chosen = keyring.get_keyring()  # honours the user's keyring configuration
    backends = getattr(chosen, "backends", [chosen])
    backend = next((b for b in backends if isinstance(b, SecretService.Keyring)), None)
    if backend is None:
        return None
    answer: list[bool] = []

    def probe() -> None:
        try:
            answer.append(_unlocked_secret_service())
        except Exception as exc:  # no service, D-Bus refused, …: the file it is
            log.debug("no Secret Service: %s", exc)

    worker = threading.Thread(target=probe, name="wavry-keyring-probe", daemon=True)
    worker.start()
    worker.join(PROBE_TIMEOUT_S)
    return _KeyringVault(backend) if answer and answer[0] else None


_AUTO: Any = object()


class AccountStore:
    """``vault``: where tokens go (default: the system keyring when one answers, checked on the
    first save); None keeps them in account.json."""

    def __init__(self, base: Path | None = None, vault: TokenVault | None = _AUTO) -> None:
        self.path = (base or config_dir()) / FILE_NAME
        self._vault = vault

    @property
    def vault(self) -> TokenVault | None:
        if self._vault is _AUTO:
            self._vault = system_keyring()
        return self._vault

    @staticmethod
    def _key(raw: dict[str, Any]) -> str:
        return f"{raw.get('user_id', '')}@{raw.get('gateway_url', '')}"

    def token_location(self) -> str:
        """Where the saved token is: "system keyring", the file's path, or "" (none saved)."""
        raw = self._read()
        if raw is None:
            return ""
        return "system keyring" if raw.get("token_store") == "keyring" else str(self.path)

    def _read(self) -> dict[str, Any] | None:
        try:
            raw: Any = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{self.path} is unreadable ({exc}); remove it and log in again"
            ) from None
        if not isinstance(raw, dict):
            raise StoreError(f"{self.path} is not a JSON object; remove it and log in again")
        return raw

    def load(self) -> Account | None:
        raw = self._read()
        if raw is None:
            return None
        if raw.get("token_store") == "keyring":
            raw = dict(raw, token=self._token_from_keyring(raw))
        try:
            return Account(**{k: raw[k] for k in Account.__dataclass_fields__ if k in raw})
        except TypeError:
            raise StoreError(f"{self.path} is incomplete; run `wavry login URL` again") from None

    def _token_from_keyring(self, raw: dict[str, Any]) -> str:
        vault = self.vault
        if vault is None:
            raise StoreError(
                "the session token is in the system keyring, which does not answer now (no "
                "Secret Service, or its keyring is locked): unlock it, or sign in again"
            )
        try:
            token = vault.get(self._key(raw))
        except Exception as exc:
            raise StoreError(f"the system keyring refused the session token: {exc}") from None
        if token is None:
            raise StoreError("the session token is no longer in the system keyring: sign in again")
        return token

    def for_gateway(self, gateway_url: str) -> Account | None:
        """The sign-in for ``gateway_url`` when it is saved and not expired (unreadable: None)."""
        try:
            saved = self.load()
        except StoreError:
            return None
        if saved is None or saved.gateway_url.rstrip("/") != gateway_url.rstrip("/"):
            return None
        return None if saved.expired() else saved

    def save(self, account: Account) -> None:
        doc: dict[str, Any] = asdict(account)
        vault = self.vault
        if vault is not None:
            try:
                vault.set(self._key(doc), account.token)
            except Exception as exc:  # refused after all: keep it in the 0600 file
                log.info("system keyring refused the token (%s); keeping it in %s", exc, self.path)
            else:
                doc = dict(doc, token="", token_store="keyring")
        self._forget_old_token(doc)
        atomic_write(self.path, (json.dumps(doc, indent=2) + "\n").encode(), 0o600)

    def _forget_old_token(self, new: dict[str, Any]) -> None:
        """A sign-in to another account or gateway leaves no token behind in the keyring."""
        try:
            old = self._read()
        except StoreError:
            return
        if old and old.get("token_store") == "keyring" and self._key(old) != self._key(new):
            self._delete_from_keyring(old)

    def _delete_from_keyring(self, raw: dict[str, Any]) -> None:
        vault = self.vault
        if vault is None:
            return
        try:
            vault.delete(self._key(raw))
        except Exception as exc:
            log.info("could not remove the token from the system keyring: %s", exc)

    def forget(self) -> bool:
        try:
            raw = self._read()
        except StoreError:
            raw = None
        if raw is not None and raw.get("token_store") == "keyring":
            self._delete_from_keyring(raw)
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
