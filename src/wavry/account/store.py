"""What this device remembers of its gateway sign-in: `$XDG_CONFIG_HOME/wavry/account.json`,
mode 0600 (gateway URL, user, session token and its expiry). The password is never stored; an
unattended host renews its token with its device key (`POST /v1/auth/device`)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wavry.atomicfile import atomic_write
from wavry.store import StoreError, config_dir

__all__ = ["Account", "AccountStore"]

FILE_NAME = "account.json"


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


class AccountStore:
    def __init__(self, base: Path | None = None) -> None:
        self.path = (base or config_dir()) / FILE_NAME

    def load(self) -> Account | None:
        try:
            raw: Any = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{self.path} is unreadable ({exc}); remove it and log in again"
            ) from None
        try:
            return Account(**{k: raw[k] for k in Account.__dataclass_fields__ if k in raw})
        except TypeError:
            raise StoreError(f"{self.path} is incomplete; run `wavry login URL` again") from None

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
        atomic_write(self.path, (json.dumps(asdict(account), indent=2) + "\n").encode(), 0o600)

    def forget(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
