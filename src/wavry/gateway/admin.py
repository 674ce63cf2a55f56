"""Operator admin: ``/admin`` (server-rendered, no JavaScript) and ``/admin/api/*``.

Both need the admin token (≥ 32 chars, constant-time compare): as ``Authorization: Bearer``
for the API, or entered once in the login form, which sets an HMAC-signed session cookie.
Every admin action is written to the audit table.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from wavry.gateway.admin_page import render_page
from wavry.gateway.api import client_ip
from wavry.gateway.errors import ApiError
from wavry.gateway.models import PRESENCE_TTL, AuditEntry, Device, Session, User
from wavry.gateway.state import GatewayState

__all__ = ["router"]

router = APIRouter()
COOKIE = "wavry_admin"
COOKIE_TTL = 8 * 3600


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gw
    return state


def _ip(request: Request) -> str:
    return client_ip(request)


def _token_ok(state: GatewayState, token: str) -> bool:
    expected = state.settings.admin_token
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


def _cookie_value(state: GatewayState, expires: int) -> str:
    mac = hmac.new(
        state.settings.admin_token.encode(), f"admin-session:{expires}".encode(), hashlib.sha256
    )
    return f"{expires}.{mac.hexdigest()}"


def _cookie_ok(state: GatewayState, value: str | None) -> bool:
    if not value or not state.settings.admin_token:
        return False
    exp_text, _, _ = value.partition(".")
    if not exp_text.isdigit() or int(exp_text) < time.time():
        return False
    return hmac.compare_digest(value, _cookie_value(state, int(exp_text)))


def require_admin(request: Request) -> GatewayState:
    state = _state(request)
    if not state.settings.admin_token:
        raise ApiError(403, "admin_disabled", "start the gateway with --admin-token")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _token_ok(state, token.strip()):
        return state
    if _cookie_ok(state, request.cookies.get(COOKIE)):
        return state
    raise ApiError(401, "invalid_token", "admin token required")


Admin = Annotated[GatewayState, Depends(require_admin)]


class BanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration_s: float | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    reason: str = Field(default="", max_length=200)


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=32)


async def overview(state: GatewayState) -> dict[str, Any]:
    async with state.db() as s:
        users = (await s.execute(select(func.count()).select_from(User))).scalar_one()
        devices = (await s.execute(select(func.count()).select_from(Device))).scalar_one()
        online = (
            await s.execute(
                select(func.count())
                .select_from(Device)
                .where(
                    Device.online_instance.is_not(None),
                    Device.last_seen > time.time() - PRESENCE_TTL,
                )
            )
        ).scalar_one()
        tokens = (
            await s.execute(
                select(func.count())
                .select_from(Session)
                .where(Session.revoked.is_(False), Session.expires_at > time.time())
            )
        ).scalar_one()
    return {
        "users": users,
        "devices": devices,
        "devices_online": online,
        # one signaling socket per online device, on whichever instance holds it
        "live_sessions": online,
        "active_tokens": tokens,
        "signal_sockets_here": len(state.hub.local),
        "relays": await state.relays.listing(),
        "instance": state.instance_id,
        "uptime_s": round(time.time() - state.started, 1),
    }


async def list_users(state: GatewayState, limit: int = 200) -> list[dict[str, Any]]:
    async with state.db() as s:
        users = (
            await s.execute(select(User).order_by(User.created_at.desc()).limit(limit))
        ).scalars()
        now = time.time()
        return [
            {
                **u.public(),
                "banned": u.banned_until is not None and u.banned_until > now,
                "banned_until": u.banned_until,
                "ban_reason": u.ban_reason,
            }
            for u in users
        ]


async def list_devices(state: GatewayState, limit: int = 500) -> list[dict[str, Any]]:
    """Devices with their owner, online ones first, then the most recently seen."""
    async with state.db() as s:
        rows = (
            await s.execute(
                select(Device, User.username)
                .join(User, User.id == Device.user_id)
                .order_by(Device.last_seen.desc(), Device.created_at.desc())
                .limit(limit)
            )
        ).all()
    out = [
        {**dev.public(), "owner": username, "last_seen": dev.last_seen or None}
        for dev, username in rows
    ]
    out.sort(key=lambda d: not d["online"])
    return out


async def audit_log(state: GatewayState, limit: int = 200) -> list[dict[str, Any]]:
    async with state.db() as s:
        rows = (
            await s.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
        ).scalars()
        return [
            {
                "id": a.id,
                "at": a.at,
                "actor": a.actor,
                "action": a.action,
                "target": a.target,
                "detail": a.detail,
                "ip": a.ip,
            }
            for a in rows
        ]


async def _revoke(state: GatewayState, user_id: str, code: str = "token_revoked") -> int:
    async with state.db() as s, s.begin():
        res = await s.execute(
            update(Session)
            .where(Session.user_id == user_id, Session.revoked.is_(False))
            .values(revoked=True)
        )
    await state.hub.kick_user(user_id, code, "sessions revoked")
    return int(getattr(res, "rowcount", 0) or 0)


async def ban(state: GatewayState, user_id: str, body: BanIn, ip: str) -> dict[str, Any]:
    until = time.time() + body.duration_s if body.duration_s else 1e12  # "forever"
    async with state.db() as s, s.begin():
        user = await s.get(User, user_id)
        if user is None:
            raise ApiError(404, "not_found", "no such user")
        user.banned_until, user.ban_reason = until, body.reason or None
    revoked = await _revoke(state, user_id, "suspended")
    detail = f"until={until:.0f} reason={body.reason!r} revoked={revoked}"
    await state.audit("admin", "user.ban", user_id, detail, ip)
    return {"ok": True, "banned_until": until, "revoked_sessions": revoked}


async def unban(state: GatewayState, user_id: str, ip: str) -> dict[str, Any]:
    async with state.db() as s, s.begin():
        user = await s.get(User, user_id)
        if user is None:
            raise ApiError(404, "not_found", "no such user")
        user.banned_until, user.ban_reason = None, None
    await state.audit("admin", "user.unban", user_id, "", ip)
    return {"ok": True}


@router.get("/admin/api/overview")
async def api_overview(state: Admin) -> dict[str, Any]:
    return await overview(state)


@router.get("/admin/api/users")
async def api_users(state: Admin) -> dict[str, Any]:
    return {"users": await list_users(state)}


@router.post("/admin/api/users/{user_id}/ban")
async def api_ban(user_id: str, body: BanIn, request: Request, state: Admin) -> dict[str, Any]:
    return await ban(state, user_id, body, _ip(request))


@router.post("/admin/api/users/{user_id}/unban")
async def api_unban(user_id: str, request: Request, state: Admin) -> dict[str, Any]:
    return await unban(state, user_id, _ip(request))


@router.post("/admin/api/sessions/revoke")
async def api_revoke(body: RevokeIn, request: Request, state: Admin) -> dict[str, Any]:
    n = await _revoke(state, body.user_id)
    await state.audit("admin", "sessions.revoke", body.user_id, f"revoked={n}", _ip(request))
    return {"ok": True, "revoked_sessions": n}


@router.get("/admin/api/devices")
async def api_devices(state: Admin) -> dict[str, Any]:
    return {"devices": await list_devices(state)}


@router.get("/admin/api/relays")
async def api_relays(state: Admin) -> dict[str, Any]:
    return {"relays": await state.relays.listing()}


@router.get("/admin/api/audit")
async def api_audit(state: Admin) -> dict[str, Any]:
    return {"entries": await audit_log(state)}


# --- the HTML page ------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:16384].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body).items()}


def _page_headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    )
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/admin", include_in_schema=False)
async def page(request: Request, msg: str = "") -> Response:
    state = _state(request)
    if not _cookie_ok(state, request.cookies.get(COOKIE)):
        html = render_page("login", error=msg, enabled=bool(state.settings.admin_token))
        return _page_headers(HTMLResponse(html, status_code=200))
    html = render_page(
        "dashboard",
        overview=await overview(state),
        users=await list_users(state),
        devices=await list_devices(state),
        audit=await audit_log(state, 50),
        msg=msg,
        now=time.time(),
    )
    return _page_headers(HTMLResponse(html))


@router.post("/admin/login", include_in_schema=False)
async def page_login(request: Request) -> Response:
    state = _state(request)
    form = await _form(request)
    if not _token_ok(state, form.get("token", "")):
        await state.audit("anonymous", "admin.login_failed", "", "", _ip(request))
        return RedirectResponse("/admin?msg=wrong+token", status_code=303)
    expires = int(time.time()) + COOKIE_TTL
    resp = RedirectResponse("/admin", status_code=303)
    resp.set_cookie(
        COOKIE,
        _cookie_value(state, expires),
        max_age=COOKIE_TTL,
        httponly=True,
        samesite="strict",
        secure=state.settings.public_url.startswith("https://"),
        path="/admin",
    )
    await state.audit("admin", "admin.login", "", "", _ip(request))
    return resp


@router.post("/admin/logout", include_in_schema=False)
async def page_logout() -> Response:
    resp = RedirectResponse("/admin", status_code=303)
    resp.delete_cookie(COOKIE, path="/admin")
    return resp


@router.post("/admin/users/{user_id}/{action}", include_in_schema=False)
async def page_action(user_id: str, action: str, request: Request) -> Response:
    state = require_admin(request)
    form = await _form(request)
    ip = _ip(request)
    if action == "ban":
        try:
            hours = float(form.get("hours") or 0)
            body = BanIn(
                duration_s=hours * 3600 if hours > 0 else None, reason=form.get("reason", "")
            )
        except ValueError:
            return RedirectResponse("/admin?msg=bad+ban+form", status_code=303)
        await ban(state, user_id, body, ip)
    elif action == "unban":
        await unban(state, user_id, ip)
    elif action == "revoke":
        n = await _revoke(state, user_id)
        await state.audit("admin", "sessions.revoke", user_id, f"revoked={n}", ip)
    else:
        raise ApiError(404, "not_found", "unknown action")
    return RedirectResponse(f"/admin?msg={action}+done", status_code=303)
