"""Accounts: `wavry register`, `login`, `logout`, `whoami`, `hosts` (docs/connecting.md).

The password comes from a prompt, or from `WAVRY_PASSWORD` when set (scripts); a TOTP code from a
prompt or `WAVRY_TOTP`. Signing in registers this device with its proof and stores the gateway URL
and session token in `$XDG_CONFIG_HOME/wavry/account.json` (0600).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from wavry.account.store import Account, AccountStore
from wavry.cli.common import fail, say, write_json
from wavry.net.loop import run
from wavry.store import StoreError, load_or_create_identity

if TYPE_CHECKING:  # httpx loads only when a command talks to a gateway
    from wavry.account.client import AuthResult, GatewayClient


class DeviceKind(StrEnum):
    client = "client"
    host = "host"


def _secret(env: str, prompt: str, confirm: bool = False) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        fail(f"no {prompt.lower()}: set {env} or run at a terminal", 2)
    value = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    if not value:
        fail(f"empty {prompt.lower()}", 2)
    return str(value)


async def _finish_sign_in(gw: GatewayClient, res: AuthResult, kind: DeviceKind) -> Account:
    """Register this device (with its proof) and remember the sign-in."""
    identity = load_or_create_identity()
    await gw.add_device(identity, str(res.user["id"]), socket.gethostname(), kind.value)
    account = Account(
        gateway_url=gw.base_url,
        user_id=str(res.user["id"]),
        username=str(res.user.get("username", "")),
        token=res.token,
        expires_at=res.expires_at,
        device_kind=kind.value,
    )
    AccountStore().save(account)
    return account


def register(
    url: Annotated[str, typer.Argument(help="Gateway base URL, e.g. https://gw.example.org")],
    username: Annotated[str, typer.Option(help="Account name (3–32 of A-Z a-z 0-9 _ . -)")],
    email: Annotated[str, typer.Option(help="E-mail address")],
    display_name: Annotated[
        str | None, typer.Option(help="Name shown to others (default: the username)")
    ] = None,
    device_kind: Annotated[
        DeviceKind, typer.Option(help="Register this device as a client or as a host")
    ] = DeviceKind.client,
) -> None:
    """Create an account on a gateway, sign in and register this device."""
    from wavry.account.client import GatewayClient, GatewayError

    password = _secret("WAVRY_PASSWORD", "Password", confirm=True)

    async def go() -> Account:
        async with GatewayClient(url) as gw:
            res = await gw.register(email, username, password, display_name or username)
            return await _finish_sign_in(gw, res, device_kind)

    try:
        account = run(go())
    except (GatewayError, StoreError) as exc:
        fail(str(exc))
    typer.echo(f"registered {account.username} on {account.gateway_url}; this device is signed in")


def login(
    url: Annotated[str, typer.Argument(help="Gateway base URL, e.g. https://gw.example.org")],
    login_name: Annotated[
        str, typer.Option("--login", help="Username or e-mail address", metavar="LOGIN")
    ],
    device_kind: Annotated[
        DeviceKind, typer.Option(help="Register this device as a client or as a host")
    ] = DeviceKind.client,
) -> None:
    """Sign in to a gateway and register this device (asks for a TOTP code when needed)."""
    from wavry.account.client import GatewayClient, GatewayError

    password = _secret("WAVRY_PASSWORD", "Password")

    async def go() -> Account:
        async with GatewayClient(url) as gw:
            try:
                res = await gw.login(login_name, password)
            except GatewayError as exc:
                if exc.code != "totp_required":
                    raise
                code = _secret("WAVRY_TOTP", "TOTP code").replace(" ", "")
                res = await gw.login(login_name, password, code)
            return await _finish_sign_in(gw, res, device_kind)

    try:
        account = run(go())
    except (GatewayError, StoreError) as exc:
        fail(str(exc))
    typer.echo(f"signed in to {account.gateway_url} as {account.username}")


def logout() -> None:
    """Sign out: the gateway revokes the session token and this device forgets it."""
    from wavry.account.client import GatewayClient, GatewayError

    store = AccountStore()
    try:
        account = store.load()
    except StoreError as exc:
        fail(str(exc))
    if account is None:
        fail("not signed in")

    async def go() -> None:
        async with GatewayClient(account.gateway_url, account.token) as gw:
            await gw.logout()

    note = ""
    try:
        run(go())
    except GatewayError as exc:
        if exc.status != 401:  # an expired token is as good as revoked
            note = f" (the gateway could not be told: {exc})"
    store.forget()
    typer.echo(f"signed out of {account.gateway_url}{note}")


def whoami(
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the answer as JSON to FILE (- = stdout)")
    ] = None,
) -> None:
    """Who this device is signed in as, where, and until when."""
    try:
        account = AccountStore().load()
        identity = load_or_create_identity()
    except StoreError as exc:
        fail(str(exc))
    if account is None:
        fail("not signed in (wavry login URL --login NAME)")
    until = datetime.fromtimestamp(account.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_json(
        json_out,
        {
            "gateway_url": account.gateway_url,
            "username": account.username,
            "user_id": account.user_id,
            "wavry_id": identity.wavry_id,
            "device_kind": account.device_kind,
            "expires_at": account.expires_at,
            "expired": account.expired(),
        },
    )
    state = "expired" if account.expired() else f"valid until {until}"
    say(f"{account.username} on {account.gateway_url} (session {state})", json_out)
    say(f"this device: {identity.wavry_id} ({account.device_kind})", json_out)


def _ago(t: float | None) -> str:
    if not t:
        return "never"
    s = max(0, int(time.time() - t))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def hosts(
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the list as JSON to FILE (- = stdout)")
    ] = None,
) -> None:
    """The hosts this account may connect to: name, online, Wavry ID, last seen."""
    from wavry.account.client import GatewayClient, GatewayError

    try:
        account = AccountStore().load()
    except StoreError as exc:
        fail(str(exc))
    if account is None:
        fail("not signed in (wavry login URL --login NAME)")

    async def go() -> list[dict[str, object]]:
        async with GatewayClient(account.gateway_url, account.token) as gw:
            return [_entry(h) for h in await gw.hosts()]

    try:
        entries = run(go())
    except GatewayError as exc:
        if exc.status == 401:
            fail("the session expired or was revoked: run `wavry login` again")
        fail(str(exc))
    write_json(json_out, entries)
    if not entries:
        say("no hosts on this account yet (start `wavry host --gateway URL` on one)", json_out)
    for h in entries:
        name = f"{h['owner']}/{h['name']}" if h.get("owner") else str(h["name"])
        state = "online " if h["online"] else "offline"
        seen = "now" if h["online"] else _ago(h.get("last_seen"))  # type: ignore[arg-type]
        say(f"{name:24} {state}  {h['wavry_id']}  last seen {seen}", json_out)


def _entry(h: object) -> dict[str, object]:
    return {
        f: getattr(h, f) for f in ("wavry_id", "name", "online", "shared", "last_seen", "owner")
    }
