"""Sharing a host with another account (docs/spec/CONTROL_PLANE.md §2: "clients the owner shared the
host with"). An extension of the §2 table: ``PUT``/``DELETE /v1/devices/{id}/shares/{user}``."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from sqlalchemy import delete, select

from wavry.gateway.api import ERROR_RESPONSES, CurrentUser, State
from wavry.gateway.errors import ApiError
from wavry.gateway.models import Device, HostShare, User
from wavry.gateway.state import GatewayState

__all__ = ["may_connect", "router", "shared_hosts"]

router = APIRouter()


async def may_connect(state: GatewayState, host: Device, user_id: str) -> bool:
    """Same account, or the host's owner shared it with ``user_id``."""
    if host.user_id == user_id:
        return True
    async with state.db() as s:
        share = await s.get(HostShare, (host.wavry_id, user_id))
    return share is not None


async def shared_hosts(state: GatewayState, user_id: str) -> list[Device]:
    async with state.db() as s:
        q = (
            select(Device)
            .join(HostShare, HostShare.host_wavry_id == Device.wavry_id)
            .where(HostShare.user_id == user_id)
            .order_by(Device.created_at)
        )
        return list((await s.execute(q)).scalars())


async def _target(state: GatewayState, owner: User, wavry_id: str, username: str) -> User:
    async with state.db() as s:
        dev = await s.get(Device, wavry_id)
        if dev is None or dev.user_id != owner.id or dev.kind != "host":
            raise ApiError(404, "not_found", "no such host on this account")
        other: User | None = (
            await s.execute(select(User).where(User.username == username.lower()))
        ).scalar_one_or_none()
    if other is None:
        raise ApiError(404, "not_found", "no such user")
    if other.id == owner.id:
        raise ApiError(409, "same_account", "your own clients may connect already")
    return other


@router.put("/v1/devices/{wavry_id}/shares/{username}", status_code=204, responses=ERROR_RESPONSES)
async def share(wavry_id: str, username: str, state: State, user: CurrentUser) -> Response:
    other = await _target(state, user, wavry_id, username)
    async with state.db() as s, s.begin():
        if await s.get(HostShare, (wavry_id, other.id)) is None:
            s.add(HostShare(host_wavry_id=wavry_id, user_id=other.id, created_at=time.time()))
    return Response(status_code=204)


@router.delete(
    "/v1/devices/{wavry_id}/shares/{username}", status_code=204, responses=ERROR_RESPONSES
)
async def unshare(wavry_id: str, username: str, state: State, user: CurrentUser) -> Response:
    other = await _target(state, user, wavry_id, username)
    async with state.db() as s, s.begin():
        await s.execute(
            delete(HostShare).where(
                HostShare.host_wavry_id == wavry_id, HostShare.user_id == other.id
            )
        )
    return Response(status_code=204)
