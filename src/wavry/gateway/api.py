"""Accounts and devices: the HTTP routes of docs/spec/CONTROL_PLANE.md §2."""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from wavry.gateway.errors import ApiError
from wavry.gateway.models import Device, Session, User
from wavry.gateway.security import TotpBox, hash_token, new_token
from wavry.gateway.state import GatewayState
from wavry.rift.identity import InvalidWavryId, public_key_from_wavry_id, verify_signature

__all__ = ["DEVICE_PROOF_CONTEXT", "authenticate", "router"]

DEVICE_PROOF_CONTEXT = b"wavry-device:"
router = APIRouter()

_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$"
_USERNAME = r"^[A-Za-z0-9_.-]{3,32}$"
_CODE = r"^[0-9]{6}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegisterIn(_In):
    email: str = Field(pattern=_EMAIL, max_length=254)
    username: str = Field(pattern=_USERNAME)
    password: str = Field(min_length=8, max_length=256)
    display_name: str = Field(min_length=1, max_length=64)


class LoginIn(_In):
    login: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)
    totp_code: str | None = Field(default=None, max_length=16)


class PasswordIn(_In):
    password: str = Field(min_length=1, max_length=256)


class TotpEnableIn(_In):
    secret: str = Field(pattern=r"^[A-Z2-7]{16,64}$")
    code: str = Field(pattern=_CODE)


class TotpDisableIn(_In):
    password: str = Field(min_length=1, max_length=256)
    code: str = Field(pattern=_CODE)


class DeviceIn(_In):
    wavry_id: str = Field(min_length=43, max_length=43)
    name: str = Field(min_length=1, max_length=64)
    kind: str = Field(pattern=r"^(host|client)$")
    proof: str = Field(min_length=80, max_length=100, description="base64(url) Ed25519 signature")


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


class TotpSetupOut(BaseModel):
    secret: str
    otpauth_uri: str


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


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate(state: GatewayState, token: str) -> User:
    """Return the user of a live session token, or raise 401."""
    now = time.time()
    async with state.db() as s:
        row = (
            await s.execute(
                select(Session, User)
                .join(User, User.id == Session.user_id)
                .where(Session.token_hash == hash_token(token))
            )
        ).first()
    if row is None or row[0].revoked or row[0].expires_at <= now:
        raise ApiError(401, "invalid_token", "missing, expired or revoked session token")
    user: User = row[1]
    if user.banned_until is not None and user.banned_until > now:
        raise ApiError(403, "suspended", "this account is suspended")
    return user


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


async def _issue(state: GatewayState, user: User, ip: str) -> dict[str, Any]:
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
                ip=ip,
            )
        )
    return {"user": user.public(), "token": token, "expires_at": expires}


@router.post(
    "/v1/auth/register", status_code=201, response_model=AuthOut, responses=ERROR_RESPONSES
)
async def register(body: RegisterIn, request: Request, state: State) -> dict[str, Any]:
    email = body.email.lower()
    username = body.username.lower()
    async with state.db() as s:
        taken = (
            await s.execute(
                select(User.email, User.username).where(
                    or_(User.email == email, User.username == username)
                )
            )
        ).first()
    if taken is not None:
        field = "email" if taken[0] == email else "username"
        raise ApiError(409, f"{field}_taken", f"this {field} is already registered")
    pw_hash = await state.passwords.hash(body.password)
    user = User(
        id=uuid.uuid4().hex,
        email=email,
        username=username,
        display_name=body.display_name,
        password_hash=pw_hash,
        totp_secret=None,
        created_at=time.time(),
        failed_logins=0,
        locked_until=0.0,
    )
    try:
        async with state.db() as s, s.begin():
            s.add(user)
    except IntegrityError:  # unique violation in a race with another registration
        raise ApiError(409, "username_taken", "this email or username is taken") from None
    state.metrics.auth.labels("registered").inc()
    return await _issue(state, user, client_ip(request))


async def _fail_login(state: GatewayState, user: User | None, ip: str, outcome: str) -> None:
    now = time.time()
    state.ip_lockout.failed(ip, now)
    state.metrics.auth.labels(outcome).inc()
    if user is None:
        return
    limit = state.settings.lockout_failures
    async with state.db() as s, s.begin():
        await s.execute(
            update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
        )
        count = (await s.execute(select(User.failed_logins).where(User.id == user.id))).scalar_one()
        if count >= limit:
            await s.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=0, locked_until=now + state.settings.lockout_seconds)
            )


@router.post("/v1/auth/login", response_model=AuthOut, responses=ERROR_RESPONSES)
async def login(body: LoginIn, request: Request, state: State) -> dict[str, Any]:
    ip = client_ip(request)
    now = time.time()
    wait = state.ip_lockout.locked_for(ip, now)
    if wait > 0:
        state.metrics.auth.labels("locked").inc()
        raise ApiError(429, "locked", "too many failed logins from this address", wait)
    name = body.login.lower()
    async with state.db() as s:
        user = (
            await s.execute(select(User).where(or_(User.email == name, User.username == name)))
        ).scalar_one_or_none()
    if user is not None and user.locked_until > now:
        state.metrics.auth.labels("locked").inc()
        raise ApiError(
            429, "locked", "too many failed logins for this account", user.locked_until - now
        )
    ok = await state.passwords.verify(user.password_hash if user else None, body.password)
    if not ok or user is None:
        await _fail_login(state, user, ip, "invalid_credentials")
        raise ApiError(401, "invalid_credentials", "wrong login or password")
    if user.banned_until is not None and user.banned_until > now:
        state.metrics.auth.labels("suspended").inc()
        raise ApiError(403, "suspended", "this account is suspended")
    if user.totp_secret is not None:
        if not body.totp_code:
            state.metrics.auth.labels("totp_required").inc()
            raise ApiError(401, "totp_required", "this account needs a TOTP code")
        secret = state.totp.open(user.totp_secret)
        if secret is None or not state.totp.check(secret, body.totp_code):
            await _fail_login(state, user, ip, "invalid_totp")
            raise ApiError(401, "invalid_totp", "wrong or expired TOTP code")
    state.ip_lockout.succeeded(ip)
    if user.failed_logins:
        async with state.db() as s, s.begin():
            await s.execute(update(User).where(User.id == user.id).values(failed_logins=0))
    state.metrics.auth.labels("success").inc()
    return await _issue(state, user, ip)


@router.post("/v1/auth/logout", status_code=204, responses=ERROR_RESPONSES)
async def logout(request: Request, state: State, user: CurrentUser) -> Response:
    async with state.db() as s, s.begin():
        await s.execute(
            update(Session)
            .where(Session.token_hash == hash_token(bearer(request)))
            .values(revoked=True)
        )
    return Response(status_code=204)


@router.post("/v1/auth/totp/setup", response_model=TotpSetupOut, responses=ERROR_RESPONSES)
async def totp_setup(body: PasswordIn, state: State, user: CurrentUser) -> dict[str, str]:
    if user.totp_secret is not None:
        raise ApiError(409, "totp_enabled", "TOTP is already enabled; disable it first")
    if not await state.passwords.verify(user.password_hash, body.password):
        raise ApiError(401, "invalid_credentials", "wrong password")
    secret = TotpBox.new_secret()
    uri = (
        f"otpauth://totp/Wavry:{quote(user.username)}?secret={secret}"
        "&issuer=Wavry&algorithm=SHA1&digits=6&period=30"
    )
    return {"secret": secret, "otpauth_uri": uri}


@router.post("/v1/auth/totp/enable", response_model=OkOut, responses=ERROR_RESPONSES)
async def totp_enable(body: TotpEnableIn, state: State, user: CurrentUser) -> dict[str, bool]:
    if user.totp_secret is not None:
        raise ApiError(409, "totp_enabled", "TOTP is already enabled")
    if not state.totp.check(body.secret, body.code):
        raise ApiError(400, "invalid_totp", "the code does not match this secret")
    async with state.db() as s, s.begin():
        await s.execute(
            update(User).where(User.id == user.id).values(totp_secret=state.totp.seal(body.secret))
        )
    return {"ok": True}


@router.post("/v1/auth/totp/disable", response_model=OkOut, responses=ERROR_RESPONSES)
async def totp_disable(body: TotpDisableIn, state: State, user: CurrentUser) -> dict[str, bool]:
    if user.totp_secret is None:
        raise ApiError(409, "totp_not_enabled", "TOTP is not enabled")
    if not await state.passwords.verify(user.password_hash, body.password):
        raise ApiError(401, "invalid_credentials", "wrong password")
    secret = state.totp.open(user.totp_secret)
    if secret is None or not state.totp.check(secret, body.code):
        raise ApiError(401, "invalid_totp", "wrong or expired TOTP code")
    async with state.db() as s, s.begin():
        await s.execute(update(User).where(User.id == user.id).values(totp_secret=None))
    return {"ok": True}


async def _devices(state: GatewayState, user_id: str, kind: str | None = None) -> list[Device]:
    q = select(Device).where(Device.user_id == user_id).order_by(Device.created_at)
    if kind:
        q = q.where(Device.kind == kind)
    async with state.db() as s:
        return list((await s.execute(q)).scalars())


@router.get("/v1/me", response_model=MeOut, responses=ERROR_RESPONSES)
async def me(state: State, user: CurrentUser) -> dict[str, Any]:
    return {"user": user.public(), "devices": [d.public() for d in await _devices(state, user.id)]}


def _decode_sig(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "==")
    except (binascii.Error, ValueError):
        return b""


@router.post("/v1/devices", status_code=201, response_model=DeviceOut, responses=ERROR_RESPONSES)
async def add_device(body: DeviceIn, state: State, user: CurrentUser) -> dict[str, Any]:
    try:
        public_key = public_key_from_wavry_id(body.wavry_id)
    except InvalidWavryId as exc:
        raise ApiError(422, "invalid_wavry_id", str(exc)) from None
    sig = _decode_sig(body.proof)
    if not verify_signature(public_key, sig, DEVICE_PROOF_CONTEXT + user.id.encode("ascii")):
        raise ApiError(
            403, "invalid_proof", "proof must be the device key's signature over wavry-device:+id"
        )
    now = time.time()
    async with state.db() as s, s.begin():
        dev = await s.get(Device, body.wavry_id)
        if dev is not None and dev.user_id != user.id:
            raise ApiError(409, "device_taken", "this device is registered to another account")
        if dev is None:
            dev = Device(
                wavry_id=body.wavry_id,
                user_id=user.id,
                name=body.name,
                kind=body.kind,
                created_at=now,
                online_instance=None,
                last_seen=0.0,
            )
            s.add(dev)
        else:
            dev.name, dev.kind = body.name, body.kind
    return dict(dev.public())


@router.delete("/v1/devices/{wavry_id}", status_code=204, responses=ERROR_RESPONSES)
async def delete_device(wavry_id: str, state: State, user: CurrentUser) -> Response:
    async with state.db() as s, s.begin():
        dev = await s.get(Device, wavry_id)
        if dev is None or dev.user_id != user.id:
            raise ApiError(404, "not_found", "no such device on this account")
        await s.delete(dev)
    await state.hub.kick(wavry_id, "device removed")
    return Response(status_code=204)


@router.get("/v1/hosts", response_model=HostsOut, responses=ERROR_RESPONSES)
async def hosts(state: State, user: CurrentUser) -> dict[str, Any]:
    """This account's hosts, then hosts other accounts shared with it (``shared: true``)."""
    from wavry.gateway.shares import shared_hosts

    own = [{**d.public(), "shared": False} for d in await _devices(state, user.id, "host")]
    shared = [{**d.public(), "shared": True} for d in await shared_hosts(state, user.id)]
    return {"hosts": own + shared}


async def count_users(state: GatewayState) -> int:
    async with state.db() as s:
        return int((await s.execute(select(func.count()).select_from(User))).scalar_one())
