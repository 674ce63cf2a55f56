"""Account routes of docs/spec/CONTROL_PLANE.md §2: register, login, logout, TOTP.

Enumeration: usernames are public handles (hosts are shared by username), so registration says
``username_taken``; e-mail addresses are private and never revealed: they are not unique, and
registration answers the same whether or not an address is already in use. A login that is an
e-mail address reaches the first account registered with it. Unknown logins, wrong passwords and
locked (address, login) pairs all cost one Argon2 verification, so they take the same time.

TOTP (RFC 6238 §5.2): a code is accepted at most once per user — the last accepted time step is
kept and only later steps pass, across instances (a conditional UPDATE in the shared database).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from wavry.gateway.api import (
    CODE_PATTERN,
    ERROR_RESPONSES,
    AuthOut,
    CurrentUser,
    In,
    OkOut,
    State,
    bearer,
    client_ip,
    issue_token,
)
from wavry.gateway.clientip import limit_key
from wavry.gateway.errors import ApiError
from wavry.gateway.models import Session, User
from wavry.gateway.policy import USERNAME_PATTERN, normalize_login, password_problem
from wavry.gateway.security import TotpBox, hash_token
from wavry.gateway.state import GatewayState

__all__ = ["router"]

router = APIRouter()

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")


class RegisterIn(In):
    email: str = Field(min_length=3, max_length=254)
    username: str = Field(min_length=1, max_length=64, description="3–32 of a-z 0-9 _ . -")
    password: str = Field(min_length=1, max_length=1024)
    display_name: str = Field(min_length=1, max_length=64)


class LoginIn(In):
    login: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, max_length=16)


class PasswordIn(In):
    password: str = Field(min_length=1, max_length=1024)


class TotpEnableIn(In):
    secret: str = Field(pattern=r"^[A-Z2-7]{16,64}$")
    code: str = Field(pattern=CODE_PATTERN)


class TotpDisableIn(In):
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(pattern=CODE_PATTERN)


class TotpSetupOut(BaseModel):
    secret: str
    otpauth_uri: str


@router.post(
    "/v1/auth/register", status_code=201, response_model=AuthOut, responses=ERROR_RESPONSES
)
async def register(body: RegisterIn, request: Request, state: State) -> dict[str, Any]:
    username = normalize_login(body.username)
    email = normalize_login(body.email)
    if not USERNAME_PATTERN.match(username):
        raise ApiError(422, "invalid_request", "username: 3 to 32 of a-z, 0-9, '_', '.', '-'")
    if not EMAIL_PATTERN.match(email):
        raise ApiError(422, "invalid_request", "email: expected an address like name@example.com")
    problem = password_problem(body.password, username, email)
    if problem is not None:
        raise ApiError(422, "weak_password", problem)
    async with state.db() as s:
        taken = (await s.execute(select(User.id).where(User.username == username))).first()
    if taken is not None:
        raise ApiError(409, "username_taken", "this username is taken")
    pw_hash = await state.passwords.hash(body.password)
    user = User(
        id=uuid.uuid4().hex,
        email=email,
        username=username,
        display_name=body.display_name,
        password_hash=pw_hash,
        totp_secret=None,
        totp_last_step=None,
        created_at=time.time(),
    )
    try:
        async with state.db() as s, s.begin():
            s.add(user)
    except IntegrityError:  # the same username in a race with another registration
        raise ApiError(409, "username_taken", "this username is taken") from None
    state.metrics.auth.labels("registered").inc()
    return await issue_token(state, user, client_ip(request))


async def find_user(state: GatewayState, login: str) -> User | None:
    """The account a normalised login names: a username, or an e-mail address (the first
    account registered with it)."""
    column = User.email if "@" in login else User.username
    async with state.db() as s:
        user: User | None = (
            await s.execute(select(User).where(column == login).order_by(User.created_at).limit(1))
        ).scalar_one_or_none()
    return user


async def use_totp_step(state: GatewayState, user_id: str, step: int) -> bool:
    """Record ``step`` as the user's last accepted one; False if it (or a later one) was."""
    async with state.db() as s, s.begin():
        res = await s.execute(
            update(User)
            .where(
                User.id == user_id,
                or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
    return int(getattr(res, "rowcount", 0) or 0) == 1


@router.post("/v1/auth/login", response_model=AuthOut, responses=ERROR_RESPONSES)
async def login(body: LoginIn, request: Request, state: State) -> dict[str, Any]:
    ip = client_ip(request)
    key = limit_key(ip)
    name = normalize_login(body.login)
    now = time.time()
    wait = await state.lockout.locked_for(key, name, now)
    user = await find_user(state, name)
    if wait > 0:
        await state.passwords.verify(None, body.password)  # the same time as any other answer
        state.metrics.auth.labels("locked").inc()
        raise ApiError(429, "locked", "too many failed logins for this login from here", wait)
    ok = await state.passwords.verify(user.password_hash if user else None, body.password)
    if not ok or user is None:
        await state.lockout.failed(key, name, now)
        state.metrics.auth.labels("invalid_credentials").inc()
        raise ApiError(401, "invalid_credentials", "wrong login or password")
    if user.banned_until is not None and user.banned_until > now:
        state.metrics.auth.labels("suspended").inc()
        raise ApiError(403, "suspended", "this account is suspended")
    if user.totp_secret is not None:
        if not body.totp_code:
            state.metrics.auth.labels("totp_required").inc()
            raise ApiError(401, "totp_required", "this account needs a TOTP code")
        secret = state.totp.open(user.totp_secret)
        step = None if secret is None else TotpBox.matching_step(secret, body.totp_code, now)
        if step is None or not await use_totp_step(state, user.id, step):
            await state.lockout.failed(key, name, now)
            state.metrics.auth.labels("invalid_totp").inc()
            raise ApiError(401, "invalid_totp", "wrong, expired or already used TOTP code")
    await state.lockout.succeeded(key, name)
    state.metrics.auth.labels("success").inc()
    return await issue_token(state, user, ip)


@router.post("/v1/auth/logout", status_code=204, responses=ERROR_RESPONSES)
async def logout(request: Request, state: State, user: CurrentUser) -> Response:
    token_hash = hash_token(bearer(request))
    async with state.db() as s, s.begin():
        await s.execute(
            update(Session).where(Session.token_hash == token_hash).values(revoked=True)
        )
    await state.hub.kick_token(token_hash, "token_revoked", "logged out")
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
    step = TotpBox.matching_step(body.secret, body.code, time.time())
    if step is None:
        raise ApiError(400, "invalid_totp", "the code does not match this secret")
    async with state.db() as s, s.begin():
        res = await s.execute(
            update(User)
            .where(User.id == user.id, User.totp_secret.is_(None))
            .values(totp_secret=state.totp.seal(body.secret), totp_last_step=step)
        )
    if int(getattr(res, "rowcount", 0) or 0) != 1:
        raise ApiError(409, "totp_enabled", "TOTP is already enabled")
    return {"ok": True}


@router.post("/v1/auth/totp/disable", response_model=OkOut, responses=ERROR_RESPONSES)
async def totp_disable(body: TotpDisableIn, state: State, user: CurrentUser) -> dict[str, bool]:
    if user.totp_secret is None:
        raise ApiError(409, "totp_not_enabled", "TOTP is not enabled")
    if not await state.passwords.verify(user.password_hash, body.password):
        raise ApiError(401, "invalid_credentials", "wrong password")
    secret = state.totp.open(user.totp_secret)
    step = None if secret is None else TotpBox.matching_step(secret, body.code, time.time())
    if step is None or not await use_totp_step(state, user.id, step):
        raise ApiError(401, "invalid_totp", "wrong, expired or already used TOTP code")
    async with state.db() as s, s.begin():
        await s.execute(
            update(User).where(User.id == user.id).values(totp_secret=None, totp_last_step=None)
        )
    return {"ok": True}
