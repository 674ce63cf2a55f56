"""The end of every sign-in (`wavry register|login`, the desktop app): register this device with
its proof, then remember the sign-in (:class:`wavry.account.store.AccountStore`)."""

from __future__ import annotations

import socket
from pathlib import Path

from wavry.account.client import AuthResult, GatewayClient
from wavry.account.store import Account, AccountStore
from wavry.store import load_or_create_identity

__all__ = ["complete_sign_in"]


async def complete_sign_in(
    gw: GatewayClient,
    res: AuthResult,
    kind: str,
    *,
    device_name: str = "",
    config_dir: Path | None = None,
    store: AccountStore | None = None,
) -> Account:
    """Register this device (``kind``: "client" or "host") under the signed-in account and save
    the sign-in. Raises GatewayError or StoreError."""
    identity = load_or_create_identity(config_dir)
    user_id = str(res.user["id"])
    await gw.add_device(identity, user_id, device_name or socket.gethostname(), kind)
    account = Account(
        gateway_url=gw.base_url,
        user_id=user_id,
        username=str(res.user.get("username", "")),
        token=res.token,
        expires_at=res.expires_at,
        device_kind=kind,
    )
    (store or AccountStore(config_dir)).save(account)
    return account
