"""WebSocket signaling ``GET /v1/signal`` (docs/spec/CONTROL_PLANE.md §3) and cross-instance
delivery.

A session (uuid chosen by the client in ``connect``) is remembered on every instance that
forwards one of its messages, so later messages route without a shared table. With Redis,
messages for a peer not connected here are published on one channel; the instance holding the
peer delivers them. Presence (``devices.online_instance``) lives in the shared database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from sqlalchemy import select, update
from starlette.websockets import WebSocketDisconnect, WebSocketState

from wavry.controlplane import TokenBucket
from wavry.gateway.api import authenticate_session
from wavry.gateway.clientip import limit_key
from wavry.gateway.errors import ApiError
from wavry.gateway.models import Device, Session, User
from wavry.gateway.shares import may_connect
from wavry.gateway.signal_frames import (
    MAX_FRAME,
    BadMessage,
    candidate_of,
    candidates_of,
    error_frame,
    receive_frame,
    session_id_of,
    transport_of,
    web_rendezvous_of,
)
from wavry.gateway.state import GatewayState

__all__ = ["MAX_FRAME", "Hub", "router"]

log = logging.getLogger("wavry.gateway.signal")
router = APIRouter()

CHANNEL = "wavry:signal"
AUTH_TIMEOUT = 10.0
SEND_TIMEOUT = 5.0
MAX_SESSIONS = 100_000
SESSION_TTL = 3600.0


@dataclass
class Conn:
    ws: WebSocket
    wavry_id: str
    user_id: str
    role: str
    ip: str
    bucket: TokenBucket
    lock: asyncio.Lock
    token_hash: str  # the socket lives only as long as the token it authenticated with
    expires_at: float
    presence: bool = False  # this socket is the device's presence (its role is its kind)

    @property
    def key(self) -> str:
        return socket_key(self.wavry_id, self.role)


def socket_key(wavry_id: str, role: str) -> str:
    """Sockets are one per device and role: a device registered as a host may also sign in as a
    client (one machine that shares and connects), each with its own socket."""
    return f"{role}:{wavry_id}"


@dataclass
class SignalSession:
    client: str
    host: str
    created: float


class Hub:
    """Local sockets, per-IP counts, remembered sessions and the Redis bridge."""

    def __init__(self, state: GatewayState | None = None) -> None:
        self.state: GatewayState | None = state
        self.local: dict[str, Conn] = {}  # by socket_key(wavry_id, role)
        self.per_ip: Counter[str] = Counter()
        self.sessions: OrderedDict[str, SignalSession] = OrderedDict()
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None

    @property
    def gw(self) -> GatewayState:
        assert self.state is not None
        return self.state

    async def start(self) -> None:
        url = self.gw.settings.redis_url
        if not url:
            return
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url, decode_responses=True)
        await self._redis.ping()
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._listener = asyncio.get_running_loop().create_task(self._listen(pubsub))

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        for conn in list(self.local.values()):
            with contextlib.suppress(Exception):
                await conn.ws.close(1001)
        if self._redis is not None:
            await self._redis.aclose()

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("redis pub/sub: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if item is None or item.get("type") != "message":
                continue
            try:
                env = json.loads(item["data"])
                await self._remote(env)
            except Exception:
                log.exception("bad pub/sub message")

    async def _remote(self, env: dict[str, Any]) -> None:
        if env.get("origin") == self.gw.instance_id:
            return
        if env.get("op") == "kick":
            roles = [env["role"]] if env.get("role") else ["host", "client"]
            for role in roles:
                conn = self.local.get(socket_key(env["wid"], role))
                if conn is not None:
                    code = env.get("code", "replaced")
                    message = env.get("message", "this device connected elsewhere")
                    await self._close(conn, code, message)
            return
        if env.get("op") == "kick_user":
            await self._kick_local_user(
                env["uid"], env.get("code", "suspended"), env.get("message", "sessions revoked")
            )
            return
        if env.get("op") == "kick_token":
            await self._kick_local_token(
                env["th"], env.get("code", "token_revoked"), env["message"]
            )
            return
        conn = self.local.get(socket_key(env.get("to", ""), env.get("role", "")))
        if conn is None:
            return
        sess = env.get("sess")
        if sess:
            self._remember(sess[0], sess[1], sess[2])
        await self._send(conn, env["msg"])

    def _remember(self, sid: str, client: str, host: str) -> None:
        now = time.time()
        self.sessions[sid] = SignalSession(client, host, now)
        self.sessions.move_to_end(sid)
        while self.sessions and (
            len(self.sessions) > MAX_SESSIONS
            or next(iter(self.sessions.values())).created < now - SESSION_TTL
        ):
            self.sessions.popitem(last=False)

    async def _send(self, conn: Conn, msg: dict[str, Any]) -> None:
        try:
            async with conn.lock:
                await asyncio.wait_for(conn.ws.send_text(json.dumps(msg)), SEND_TIMEOUT)
            self.gw.metrics.signal_messages.labels(str(msg.get("type")), "out").inc()
        except Exception:
            with contextlib.suppress(Exception):
                await conn.ws.close(1011)

    async def deliver(
        self, to: str, role: str, msg: dict[str, Any], sess: tuple[str, str, str] | None = None
    ) -> bool:
        """Send to a local peer's socket for ``role``, or publish for the instance holding it."""
        conn = self.local.get(socket_key(to, role))
        if conn is not None:
            await self._send(conn, msg)
            return True
        if self._redis is None:
            return False
        env = {
            "op": "deliver",
            "to": to,
            "role": role,
            "msg": msg,
            "sess": sess,
            "origin": self.gw.instance_id,
        }
        await self._redis.publish(CHANNEL, json.dumps(env))
        return True

    async def kick(self, wavry_id: str, reason: str) -> None:
        for role in ("host", "client"):
            conn = self.local.get(socket_key(wavry_id, role))
            if conn is not None:
                await self._close(conn, "removed", reason)
        if self._redis is not None:
            env = {
                "op": "kick",
                "wid": wavry_id,
                "code": "removed",
                "message": reason,
                "origin": self.gw.instance_id,
            }
            await self._redis.publish(CHANNEL, json.dumps(env))

    async def kick_user(self, user_id: str, code: str, reason: str) -> None:
        """Close every socket of this user, on every instance."""
        await self._kick_local_user(user_id, code, reason)
        if self._redis is not None:
            env = {"op": "kick_user", "uid": user_id, "code": code, "message": reason}
            await self._redis.publish(CHANNEL, json.dumps({**env, "origin": self.gw.instance_id}))

    async def kick_token(self, token_hash: str, code: str, reason: str) -> None:
        """Close every socket authenticated with this token, on every instance."""
        await self._kick_local_token(token_hash, code, reason)
        if self._redis is not None:
            env = {"op": "kick_token", "th": token_hash, "code": code, "message": reason}
            await self._redis.publish(CHANNEL, json.dumps({**env, "origin": self.gw.instance_id}))

    async def _kick_local_token(self, token_hash: str, code: str, reason: str) -> None:
        for conn in [c for c in self.local.values() if c.token_hash == token_hash]:
            await self._close(conn, code, reason)

    async def revalidate_tokens(self, chunk: int = 500) -> int:
        """Close local sockets whose token is no longer live (revoked, expired, its device or
        user gone, user banned), however that happened: the safety net behind the immediate
        kicks of logout, revocation and device removal. Returns how many were closed."""
        conns = list(self.local.values())
        if not conns:
            return 0
        now = time.time()
        live: set[str] = set()
        hashes = sorted({c.token_hash for c in conns})
        for i in range(0, len(hashes), chunk):
            q = (
                select(Session.token_hash)
                .join(User, User.id == Session.user_id)
                .outerjoin(Device, Device.wavry_id == Session.device_wavry_id)
                .where(
                    Session.token_hash.in_(hashes[i : i + chunk]),
                    Session.revoked.is_(False),
                    Session.expires_at > now,
                    (User.banned_until.is_(None)) | (User.banned_until <= now),
                    (Session.device_wavry_id.is_(None)) | (Device.user_id == Session.user_id),
                )
            )
            async with self.gw.db() as s:
                live.update((await s.execute(q)).scalars())
        closed = 0
        for conn in conns:
            if conn.token_hash not in live and self.local.get(conn.key) is conn:
                await self._close(conn, "token_revoked", "the session token is no longer valid")
                closed += 1
        return closed

    async def _kick_local_user(self, user_id: str, code: str, reason: str) -> None:
        for conn in [c for c in self.local.values() if c.user_id == user_id]:
            await self._close(conn, code, reason)

    async def _close(self, conn: Conn, code: str, message: str) -> None:
        await self._send(conn, {"type": "error", "code": code, "message": message})
        with contextlib.suppress(Exception):
            await conn.ws.close(1008)

    async def refresh_presence(self) -> None:
        """Keep ``last_seen`` of this instance's devices fresh (see ``PRESENCE_TTL``)."""
        gw = self.gw
        async with gw.db() as s, s.begin():
            await s.execute(
                update(Device)
                .where(Device.online_instance == gw.instance_id)
                .values(last_seen=time.time())
            )

    async def _set_online(self, wavry_id: str, online: bool) -> None:
        gw = self.gw
        q = update(Device).where(Device.wavry_id == wavry_id)
        if online:
            q = q.values(online_instance=gw.instance_id, last_seen=time.time())
        else:
            q = q.where(Device.online_instance == gw.instance_id).values(
                online_instance=None, last_seen=time.time()
            )
        async with gw.db() as s, s.begin():
            await s.execute(q)

    # --- message handling -----------------------------------------------------------------

    async def _peer_device(self, wavry_id: str) -> Device | None:
        async with self.gw.db() as s:
            dev: Device | None = await s.get(Device, wavry_id)
            return dev

    async def handle(self, conn: Conn, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "connect":
            await self._connect(conn, msg)
            return
        if kind == "auth":
            raise BadMessage("invalid_message", "already authenticated")
        sid = session_id_of(msg)
        sess = self.sessions.get(sid)
        if sess is None or conn.wavry_id != (sess.client if conn.role == "client" else sess.host):
            raise BadMessage("unknown_session", "no such session for this device")
        # the other side of the session, by role (a device may be both client and host)
        if conn.role == "client":
            other, other_role = sess.host, "host"
        else:
            other, other_role = sess.client, "client"
        triple = (sid, sess.client, sess.host)
        if kind in ("accept", "reject"):
            if conn.role != "host":
                raise BadMessage("not_allowed", f"only the host sends {kind}")
            out: dict[str, Any]
            if kind == "accept":
                out = {
                    "type": "accept",
                    "session": sid,
                    "candidates": candidates_of(msg),
                    "host_wavry_id": conn.wavry_id,
                }
                if "web" in msg:
                    out["web"] = web_rendezvous_of(msg["web"])
            else:
                reason = msg.get("reason", "")
                if not isinstance(reason, str) or len(reason) > 200:
                    raise BadMessage("invalid_message", "reason must be a string ≤ 200 chars")
                out = {"type": "reject", "session": sid, "reason": reason}
            await self.deliver(other, other_role, out, triple)
        elif kind == "candidate":
            out = {
                "type": "candidate",
                "session": sid,
                "candidate": candidate_of(msg.get("candidate")),
            }
            await self.deliver(other, other_role, out, triple)
        elif kind == "relay_request":
            grant = await self.gw.relays.grant(sid, sess.client, sess.host)
            if grant is None:
                raise BadMessage("no_relay", "no healthy relay is available")
            for wid, role, lease in (
                (sess.client, "client", grant.client_lease),
                (sess.host, "host", grant.host_lease),
            ):
                out = {
                    "type": "relay_grant",
                    "session": sid,
                    "relay_id": grant.relay_id,
                    "relay_addr": grant.relay_addr,
                    "lease": lease,
                    "role": role,
                    "expires_at": grant.expires_at,
                }
                await self.deliver(wid, role, out, triple)

    async def _connect(self, conn: Conn, msg: dict[str, Any]) -> None:
        sid = session_id_of(msg)
        target = msg.get("host")
        if conn.role != "client":
            raise BadMessage("not_allowed", "only clients send connect")
        if not isinstance(target, str) or len(target) != 43:
            raise BadMessage("invalid_message", "host must be the target Wavry ID")
        candidates = candidates_of(msg)
        transport = transport_of(msg)
        known = self.sessions.get(sid)
        if known is not None and (known.client, known.host) != (conn.wavry_id, target):
            raise BadMessage("not_allowed", "this session id is in use")
        dev = await self._peer_device(target)
        if dev is None or dev.kind != "host" or not await may_connect(self.gw, dev, conn.user_id):
            raise BadMessage("not_allowed", "you may not connect to this host")
        here = socket_key(target, "host") in self.local
        if not here and (not dev.is_online() or self._redis is None):
            raise BadMessage("host_offline", "the host is not connected to the gateway")
        self._remember(sid, conn.wavry_id, target)
        out = {
            "type": "connect",
            "session": sid,
            "host": target,
            "candidates": candidates,
            "from": conn.wavry_id,
        }
        if transport == "web":
            out["transport"] = "web"
        await self.deliver(target, "host", out, (sid, conn.wavry_id, target))

    # --- socket lifecycle -----------------------------------------------------------------

    def origin_ok(self, ws: WebSocket) -> bool:
        origin = ws.headers.get("origin")
        if origin is None:
            return True  # not a browser
        origin = origin.rstrip("/")
        allowed = self.gw.settings.origins()
        if self.gw.settings.public_url:
            parts = urlsplit(self.gw.settings.public_url)
            allowed.add(f"{parts.scheme}://{parts.netloc}")
        host = ws.headers.get("host", "")
        allowed.update({f"http://{host}", f"https://{host}"})
        return origin in allowed

    async def _first(self, ws: WebSocket, ip: str) -> Conn:
        raw = await asyncio.wait_for(receive_frame(ws), AUTH_TIMEOUT)
        if raw.get("type") != "auth":
            raise BadMessage("auth_required", "the first message must be auth", close=True)
        token, wid, role = raw.get("token"), raw.get("wavry_id"), raw.get("role")
        if not isinstance(token, str) or not isinstance(wid, str) or role not in ("host", "client"):
            raise BadMessage("invalid_message", "auth needs token, wavry_id, role", close=True)
        try:
            user, session = await authenticate_session(self.gw, token)
        except ApiError as exc:
            self.gw.metrics.auth.labels("signal_" + exc.code).inc()
            raise BadMessage(exc.code, exc.message, close=True) from None
        dev = await self._peer_device(wid)
        if dev is None or dev.user_id != user.id:
            raise BadMessage("unknown_device", "register this device first", close=True)
        if role == "host" and dev.kind != "host":
            # a host device may also sign in as a client, a client device never as a host
            raise BadMessage("invalid_message", "this device is registered as a client", True)
        s = self.gw.settings
        conn = Conn(
            ws,
            wid,
            user.id,
            role,
            ip,
            TokenBucket(s.ws_msg_rate, s.ws_msg_burst, time.monotonic()),
            asyncio.Lock(),
            session.token_hash,
            session.expires_at,
        )
        old = self.local.get(conn.key)
        presence = role == dev.kind  # a host's presence is its host socket, not its client one
        if old is not None:
            await self._close(old, "replaced", "this device connected again")
        elif self._redis is not None and (
            not presence or dev.online_instance not in (None, self.gw.instance_id)
        ):
            env = {"op": "kick", "wid": wid, "role": role, "origin": self.gw.instance_id}
            await self._redis.publish(CHANNEL, json.dumps(env))
        self.local[conn.key] = conn
        conn.presence = presence
        if presence:
            await self._set_online(wid, True)
        user_info = {"id": user.id, "username": user.username, "display_name": user.display_name}
        ready: dict[str, Any] = {"type": "ready", "user": user_info, "wavry_id": wid}
        if self.gw.stun_addr is not None:
            ready["stun_port"] = int(self.gw.stun_addr[1])  # on the gateway's host (§3)
        await self._send(conn, ready)
        return conn

    async def _expire(self, conn: Conn) -> None:
        await asyncio.sleep(max(0.0, conn.expires_at - time.time()))
        if self.local.get(conn.key) is conn:
            await self._close(conn, "token_expired", "the session token expired; log in again")

    async def serve(self, ws: WebSocket) -> None:
        gw = self.gw
        ip = limit_key(gw.addresses.of(ws))
        if not self.origin_ok(ws):
            await ws.close(1008)
            return
        if self.per_ip[ip] >= gw.settings.ws_per_ip:
            gw.metrics.rate_limited.labels("signal_ip").inc()
            await ws.accept()
            await ws.send_text(
                error_frame("too_many_connections", "too many sockets from this address")
            )
            await ws.close(1008)
            return
        self.per_ip[ip] += 1
        gw.metrics.connections.inc()
        conn: Conn | None = None
        expiry: asyncio.Task[None] | None = None
        await ws.accept()
        try:
            conn = await self._first(ws, ip)
            expiry = asyncio.get_running_loop().create_task(self._expire(conn))
            while True:
                msg = await receive_frame(ws)
                gw.metrics.signal_messages.labels(str(msg.get("type"))[:20], "in").inc()
                if not conn.bucket.take(time.monotonic()):
                    gw.metrics.rate_limited.labels("signal_msg").inc()
                    raise BadMessage("rate_limited", "too many messages", close=True)
                try:
                    await self.handle(conn, msg)
                except BadMessage as exc:
                    if exc.close:
                        raise
                    await self._send(
                        conn, {"type": "error", "code": exc.code, "message": exc.message}
                    )
        except BadMessage as exc:
            with contextlib.suppress(Exception):
                await ws.send_text(error_frame(exc.code, exc.message))
                await ws.close(1008)
        except TimeoutError:
            with contextlib.suppress(Exception):
                await ws.send_text(error_frame("auth_timeout", "no auth message in time"))
                await ws.close(1008)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if expiry is not None:
                expiry.cancel()
            self.per_ip[ip] -= 1
            if self.per_ip[ip] <= 0:
                del self.per_ip[ip]
            gw.metrics.connections.dec()
            if conn is not None and self.local.get(conn.key) is conn:
                del self.local[conn.key]
                if conn.presence:
                    with contextlib.suppress(Exception):
                        await self._set_online(conn.wavry_id, False)
            if ws.application_state != WebSocketState.DISCONNECTED:
                with contextlib.suppress(Exception):
                    await ws.close()


@router.websocket("/v1/signal")
async def signal(ws: WebSocket) -> None:
    state: GatewayState = ws.app.state.gw
    await state.hub.serve(ws)
