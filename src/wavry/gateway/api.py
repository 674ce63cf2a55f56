"""What the HTTP routes of docs/spec/CONTROL_PLANE.md §2 share: request and response models,
the bearer-token check, token issuing; and the read-only routes ``/v1/me`` and ``/v1/hosts``.

The routes that change accounts live in :mod:`wavry.gateway.accounts`, those of devices in
:mod:`wavry.gateway.devices`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from starlette.requests import HTTPConnection

from wavry.gateway.errors import ApiError
from wavry.gateway.models import Device, Session, User
from wavry.gateway.security import hash_token, new_token
from wavry.gateway.state import GatewayState

__all__ = ["authenticate", "authenticate_session", "client_ip", "issue_token", "router"]

router = APIRouter()

CODE_PATTERN = r"^[0-9]{6}$"


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class UserOut(BaseModel):
    id: str
    email: str
    username: str
    display_name: str
    totp_enabled: bool
    created_at: float


class AuthOut(BaseModel):
    user: UserOut
    token: str
    expires_at: float


class DeviceOut(BaseModel):
    wavry_id: str
    name: str
    kind: str
    online: bool
    created_at: float


class MeOut(BaseModel):
    user: UserOut
    devices: list[DeviceOut]


class OkOut(BaseModel):
    ok: bool


class HostOut(DeviceOut):
    shared: bool


class HostsOut(BaseModel):
    hosts: list[HostOut]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    s: {"description": d, "content": {"application/json": {}}}
    for s, d in ((401, "unauthorized"), (422, "invalid request"), (429, "rate limited"))
}


def gw(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gw
    return state


def client_ip(conn: HTTPConnection) -> str:
    """The client's address (``X-Forwarded-For`` only from trusted proxies, see clientip)."""
    state: GatewayState = conn.app.state.gw
    return state.addresses.of(conn)


async def authenticate_session(state: GatewayState, token: str) -> tuple[User, Session]:
    """The user and session row of a live token, or raise 401 (403 for a suspended user).

    A token issued by device-key login lives only as long as its device."""
    now = time.time()
    async with state.db() as s:
        row = (
            await s.execute(
                select(Session, User, Device.user_id)
                .join(User, User.id == Session.user_id)
                .outerjoin(Device, Device.wavry_id == Session.device_wavry_id)
                .where(Session.token_hash == hash_token(token))
            )
        ).first()
    if row is None or row[0].revoked or row[0].expires_at <= now:
        raise ApiError(401, "invalid_token", "missing, expired or revoked session token")
    session, user, device_owner = row
    if session.device_wavry_id is not None and device_owner != user.id:
        raise ApiError(401, "invalid_token", "the device this token was issued to is gone")
    if user.banned_until is not None and user.banned_until > now:
        raise ApiError(403, "suspended", "this account is suspended")
    return user, session


async def authenticate(state: GatewayState, token: str) -> User:
    """Return the user of a live session token, or raise 401."""
    return (await authenticate_session(state, token))[0]


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_token", "send Authorization: Bearer <token>")
    return token.strip()


async def current_user(request: Request) -> User:
    return await authenticate(gw(request), bearer(request))


State = Annotated[GatewayState, Depends(gw)]
CurrentUser = Annotated[User, Depends(current_user)]


async def issue_token(
    state: GatewayState, user: User, ip: str, device: str | None = None
) -> dict[str, Any]:
    """A new session token for ``user`` (bound to ``device`` for device-key logins)."""
    token = new_token()
    now = time.time()
    expires = now + state.settings.token_ttl
    async with state.db() as s, s.begin():
        s.add(
            Session(
                token_hash=hash_token(token),
                user_id=user.id,
                created_at=now,
                expires_at=expires,
                revoked=False,
                ip=ip[:64],
                device_wavry_id=device,
            )
        )
    return {"user": user.public(), "token": token, "expires_at": expires}


async def devices_of(state: GatewayState, user_id: str, kind: str | None = None) -> list[Device]:
    q = select(Device).where(Device.user_id == user_id).order_by(Device.created_at)
    if kind:
        q = q.where(Device.kind == kind)
    async with state.db() as s:
        return list((await s.execute(q)).scalars())


@router.get("/v1/me", response_model=MeOut, responses=ERROR_RESPONSES)
async def me(state: State, user: CurrentUser) -> dict[str, Any]:
    devices = await devices_of(state, user.id)
    return {"user": user.public(), "devices": [d.public() for d in devices]}


@router.get("/v1/hosts", response_model=HostsOut, responses=ERROR_RESPONSES)
async def hosts(state: State, user: CurrentUser) -> dict[str, Any]:
    """This account's hosts, then hosts other accounts shared with it (``shared: true``)."""
    from wavry.gateway.shares import shared_hosts

    own = [{**d.public(), "shared": False} for d in await devices_of(state, user.id, "host")]
    shared = [{**d.public(), "shared": True} for d in await shared_hosts(state, user.id)]
    return {"hosts": own + shared}


async def count_users(state: GatewayState) -> int:
    async with state.db() as s:
        return int((await s.execute(select(func.count()).select_from(User))).scalar_one())
