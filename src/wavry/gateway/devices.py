"""Device routes of docs/spec/CONTROL_PLANE.md §2: register, remove, and device-key login.

Device-key login (``POST /v1/auth/device``) lets an unattended host renew its token with the
key that is its identity instead of a stored password. The signature covers a timestamp within
±120 s of the gateway's clock and the gateway's public base URL (``--public-url``); each
(wavry_id, timestamp) pair is accepted once (a primary key in the shared database, so also
across instances). Every refusal is the same 401 ``invalid_device_signature``, whether the
device is unknown, the signature wrong, the time off or the pair used: the answer does not tell
which devices are registered. The token it issues is bound to the device and dies with it.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from wavry.controlplane.devicelogin import (
    DEVICE_LOGIN_WINDOW,
    DEVICE_PROOF_CONTEXT,
    decode_signature,
    device_login_message,
)
from wavry.gateway.api import (
    ERROR_RESPONSES,
    AuthOut,
    CurrentUser,
    DeviceOut,
    In,
    State,
    client_ip,
    issue_token,
)
from wavry.gateway.errors import ApiError
from wavry.gateway.models import Device, DeviceLogin, Session, User
from wavry.gateway.state import GatewayState
from wavry.rift.identity import InvalidWavryId, public_key_from_wavry_id, verify_signature

__all__ = ["purge_device_logins", "router"]

router = APIRouter()


class DeviceIn(In):
    wavry_id: str = Field(min_length=43, max_length=43)
    name: str = Field(min_length=1, max_length=64)
    kind: str = Field(pattern=r"^(host|client)$")
    proof: str = Field(min_length=80, max_length=100, description="base64url Ed25519 signature")


class DeviceLoginIn(In):
    wavry_id: str = Field(min_length=43, max_length=43)
    timestamp: int = Field(ge=0, le=2**40, description="Unix seconds")
    signature: str = Field(min_length=80, max_length=100, description="base64url, no padding")


def _decode_proof(text: str) -> bytes:
    """Registration proofs: base64url (standard base64 and padding tolerated, as before)."""
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
    sig = _decode_proof(body.proof)
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
        tokens = list(
            (
                await s.execute(
                    select(Session.token_hash).where(
                        Session.device_wavry_id == wavry_id, Session.revoked.is_(False)
                    )
                )
            ).scalars()
        )
        await s.execute(
            update(Session).where(Session.device_wavry_id == wavry_id).values(revoked=True)
        )
    await state.hub.kick(wavry_id, "device removed")
    for token_hash in tokens:
        await state.hub.kick_token(token_hash, "token_revoked", "the device was removed")
    return Response(status_code=204)


def _refused() -> ApiError:
    return ApiError(
        401,
        "invalid_device_signature",
        "device signature invalid or already used, timestamp off by more than "
        f"{DEVICE_LOGIN_WINDOW} s, or the device is not registered",
    )


@router.post("/v1/auth/device", response_model=AuthOut, responses=ERROR_RESPONSES)
async def device_login(body: DeviceLoginIn, request: Request, state: State) -> dict[str, Any]:
    now = time.time()
    try:
        public_key = public_key_from_wavry_id(body.wavry_id)
    except InvalidWavryId:
        state.metrics.auth.labels("device_refused").inc()
        raise _refused() from None
    message = device_login_message(body.timestamp, state.settings.public_base_url())
    signed = verify_signature(public_key, decode_signature(body.signature), message)
    async with state.db() as s:
        row = (
            await s.execute(
                select(Device, User)
                .join(User, User.id == Device.user_id)
                .where(Device.wavry_id == body.wavry_id)
            )
        ).first()
    if not signed or abs(body.timestamp - now) > DEVICE_LOGIN_WINDOW or row is None:
        state.metrics.auth.labels("device_refused").inc()
        raise _refused()
    try:
        async with state.db() as s, s.begin():
            s.add(DeviceLogin(wavry_id=body.wavry_id, timestamp=body.timestamp))
    except IntegrityError:  # this (wavry_id, timestamp) was accepted before
        state.metrics.auth.labels("device_refused").inc()
        raise _refused() from None
    user: User = row[1]
    if user.banned_until is not None and user.banned_until > now:
        state.metrics.auth.labels("suspended").inc()
        raise ApiError(403, "suspended", "this account is suspended")
    state.metrics.auth.labels("device_login").inc()
    return await issue_token(state, user, client_ip(request), device=body.wavry_id)


async def purge_device_logins(state: GatewayState, now: float) -> None:
    """Forget used pairs whose timestamp can no longer pass the window check."""
    horizon = int(now) - 2 * DEVICE_LOGIN_WINDOW
    async with state.db() as s, s.begin():
        await s.execute(delete(DeviceLogin).where(DeviceLogin.timestamp < horizon))
