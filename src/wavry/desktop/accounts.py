"""The account side of the app: sign in (with the TOTP step), register, the account's hosts and
devices, sign out — :class:`wavry.account.client.GatewayClient` and the one
:class:`wavry.account.store.AccountStore` (token in the system keyring when one answers).

Everything here is async on the app's loop and raises GatewayError / StoreError with messages
for the user; the views show them.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from wavry.account.client import GatewayClient, GatewayError, HostEntry, normalize_url
from wavry.account.signin import complete_sign_in
from wavry.account.store import Account, AccountStore
from wavry.store import StoreError

__all__ = ["AccountService", "DeviceEntry", "TotpRequired"]

HOSTS_EVERY_MS = 3000
DEVICE_KIND = "host"  # the app shares this computer too; a host device may also connect


class TotpRequired(Exception):
    """The account has two-factor sign-in: ask for the code and call sign_in again with it."""


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    wavry_id: str
    name: str
    kind: str
    online: bool
    this_device: bool


class AccountService(QObject):
    """Signals: ``changed`` (signed in or out), ``hosts_changed`` (the account's hosts),
    ``problem`` (a line to show: the gateway cannot be reached, the session expired)."""

    changed = Signal()
    hosts_changed = Signal()
    problem = Signal(str)

    def __init__(self, config_dir: Path | None = None, store: AccountStore | None = None) -> None:
        super().__init__()
        self.config_dir = config_dir
        self.store = store or AccountStore(config_dir)
        self.account: Account | None = None
        self.hosts: list[HostEntry] = []
        self.hosts_at: float | None = None  # time.time() of the last good host list
        self.load_problem = ""
        try:
            self.account = self.store.load()
        except StoreError as exc:
            self.load_problem = str(exc)
        self._poll = QTimer(self)
        self._poll.setInterval(HOSTS_EVERY_MS)
        self._poll.timeout.connect(self._poll_hosts)
        self._polling = False
        self._poll_task: Any = None

    # ---- state ----------------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self.account is not None

    def summary(self) -> str:
        a = self.account
        if a is None:
            return "not signed in"
        state = "session expired" if a.expired() else "signed in"
        return f"{a.username} on {a.gateway_url} ({state})"

    def _client(self, url: str | None = None) -> GatewayClient:
        a = self.account
        if url is not None:
            return GatewayClient(url)
        if a is None:
            raise GatewayError("not_signed_in", "not signed in")
        return GatewayClient(a.gateway_url, a.token)

    # ---- signing in -----------------------------------------------------------------------

    async def sign_in(self, url: str, login: str, password: str, totp: str = "") -> Account:
        """Raises TotpRequired when the account asks for a code and none was given."""
        async with self._client(normalize_url(url)) as gw:
            try:
                res = await gw.login(login.strip(), password, totp.replace(" ", "") or None)
            except GatewayError as exc:
                if exc.code == "totp_required" and not totp:
                    raise TotpRequired(str(exc)) from None
                raise
            return await self._finish(gw, res)

    async def register(
        self, url: str, email: str, username: str, password: str, display_name: str = ""
    ) -> Account:
        async with self._client(normalize_url(url)) as gw:
            res = await gw.register(
                email.strip(), username.strip(), password, display_name.strip() or username
            )
            return await self._finish(gw, res)

    async def _finish(self, gw: GatewayClient, res: Any) -> Account:
        self.account = await complete_sign_in(
            gw, res, DEVICE_KIND, config_dir=self.config_dir, store=self.store
        )
        self.hosts = []
        self.hosts_at = None
        self.changed.emit()
        return self.account

    async def totp_setup(self, password: str) -> tuple[str, str]:
        """A new TOTP secret and its otpauth URI (to type or scan into an authenticator)."""
        async with self._client() as gw:
            return await gw.totp_setup(password)

    async def totp_enable(self, secret: str, code: str) -> None:
        async with self._client() as gw:
            await gw.totp_enable(secret, code)

    async def sign_out(self) -> str:
        """Revoke the token at the gateway and forget it here; returns a note when the gateway
        could not be told (the token is forgotten here anyway)."""
        note = ""
        if self.account is not None:
            try:
                async with self._client() as gw:
                    await gw.logout()
            except GatewayError as exc:
                if exc.status != 401:  # an expired token is as good as revoked
                    note = f"the gateway could not be told ({exc}); signed out here"
        self.store.forget()
        self.account = None
        self.hosts = []
        self.hosts_at = None
        self.stop_polling()
        self.changed.emit()
        self.hosts_changed.emit()
        return note

    # ---- the account's hosts and devices ---------------------------------------------------

    async def refresh_hosts(self) -> list[HostEntry]:
        async with self._client() as gw:
            try:
                hosts = await gw.hosts()
            except GatewayError as exc:
                if exc.status == 401:
                    raise GatewayError(
                        exc.code, "the session expired or was revoked: sign in again", 401
                    ) from None
                raise
        self.hosts = hosts
        self.hosts_at = time.time()
        self.hosts_changed.emit()
        return hosts

    def start_polling(self) -> None:
        if self.signed_in and not self._poll.isActive():
            self._poll.start()
            self._poll_hosts()

    def stop_polling(self) -> None:
        self._poll.stop()

    def _poll_hosts(self) -> None:
        import asyncio

        if self._polling or not self.signed_in:
            return
        self._polling = True

        async def go() -> None:
            try:
                await self.refresh_hosts()
            except (GatewayError, StoreError) as exc:
                self.problem.emit(str(exc))
            finally:
                self._polling = False

        self._poll_task = asyncio.ensure_future(go())

    async def devices(self) -> list[DeviceEntry]:
        from wavry.store import load_or_create_identity

        me = load_or_create_identity(self.config_dir).wavry_id
        async with self._client() as gw:
            data = await gw.me()
        out = []
        for d in data.get("devices", []):
            if isinstance(d, dict):
                wid = str(d.get("wavry_id", ""))
                out.append(
                    DeviceEntry(
                        wid, str(d.get("name", "")), str(d.get("kind", "")), bool(d.get("online")),
                        wid == me,
                    )
                )  # fmt: skip
        return out

    async def remove_device(self, wavry_id: str) -> None:
        async with self._client() as gw:
            await gw.remove_device(wavry_id)


def device_name() -> str:
    return socket.gethostname()
