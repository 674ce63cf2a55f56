"""Relay registry (registration, heartbeats, health, expiry), selection and lease minting."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update

from wavry.controlplane.lease import public_key_to_paserk
from wavry.gateway.errors import ApiError
from wavry.gateway.models import Relay
from wavry.gateway.state import GatewayState

__all__ = ["Grant", "RelayRegistry", "health_state", "rank_relays", "router"]

router = APIRouter()

HEALTHY, DEGRADED, STALE = "healthy", "degraded", "stale"
_RANK = {HEALTHY: 0, DEGRADED: 1}


def health_state(relay: Relay, now: float, interval_s: float) -> str:
    """healthy: heartbeat within 2 intervals and load < 85 %; degraded: late (≤ 4 intervals)
    or loaded; stale: older than that (never selected)."""
    age = now - relay.last_heartbeat
    if age > 4 * interval_s:
        return STALE
    if age > 2 * interval_s or relay.load_pct >= 85.0:
        return DEGRADED
    return HEALTHY


def rank_relays(
    relays: list[Relay], now: float, interval_s: float, region: str | None = None
) -> list[Relay]:
    """Usable relays, best first: health, then region, load, then success history
    (grants vs. missed-heartbeat failures, Laplace-smoothed). Stale or full relays are out."""

    def score(r: Relay) -> tuple[int, int, float, float]:
        st = health_state(r, now, interval_s)
        success = (r.grants + 1) / (r.grants + r.failures + 2)
        return (_RANK[st], 0 if region in (None, r.region) else 1, r.load_pct, -success)

    usable = [
        r
        for r in relays
        if health_state(r, now, interval_s) != STALE and r.sessions < r.max_sessions
    ]
    return sorted(usable, key=score)


@dataclass(frozen=True)
class Grant:
    relay_id: str
    relay_addr: str
    client_lease: str
    host_lease: str
    expires_at: str


class RelayRegistry:
    """Registry in the shared database; selection by health, load and success history."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    @property
    def interval_s(self) -> float:
        return self.state.settings.heartbeat_interval_ms / 1000.0

    async def listing(self) -> list[dict[str, Any]]:
        now = time.time()
        async with self.state.db() as s:
            relays = list((await s.execute(select(Relay).order_by(Relay.relay_id))).scalars())
        out = []
        counts = {HEALTHY: 0, DEGRADED: 0, STALE: 0}
        for r in relays:
            st = health_state(r, now, self.interval_s)
            counts[st] += 1
            out.append(
                {
                    "relay_id": r.relay_id,
                    "public_addr": r.public_addr,
                    "region": r.region,
                    "state": st,
                    "load_pct": r.load_pct,
                    "sessions": r.sessions,
                    "max_sessions": r.max_sessions,
                    "max_bitrate_kbps": r.max_bitrate_kbps,
                    "last_heartbeat": r.last_heartbeat,
                    "grants": r.grants,
                    "failures": r.failures,
                }
            )
        for st, n in counts.items():
            self.state.metrics.relays.labels(st).set(n)
        return out

    async def expire(self) -> int:
        """Forget relays silent for 30 intervals; count newly stale ones as failures."""
        now = time.time()
        async with self.state.db() as s, s.begin():
            res = await s.execute(
                delete(Relay).where(Relay.last_heartbeat < now - 30 * self.interval_s)
            )
        await self.listing()
        return int(getattr(res, "rowcount", 0) or 0)

    async def select(self, region: str | None = None) -> Relay | None:
        async with self.state.db() as s:
            relays = list((await s.execute(select(Relay))).scalars())
        ranked = rank_relays(relays, time.time(), self.interval_s, region)
        return ranked[0] if ranked else None

    async def grant(self, sid: str, client_id: str, host_id: str) -> Grant | None:
        relay = await self.select()
        if relay is None:
            return None
        signer = self.state.signer
        lifetime = timedelta(seconds=self.state.settings.lease_ttl)
        now = datetime.now(UTC).replace(microsecond=0)
        hlimit = relay.max_bitrate_kbps
        slimit = max(1, hlimit * 8 // 10)
        leases = [
            signer.mint(
                wid,
                sid,
                role,
                relay.relay_id,
                slimit_kbps=slimit,
                hlimit_kbps=hlimit,
                lifetime=lifetime,
                now=now,
            )
            for wid, role in ((client_id, "client"), (host_id, "host"))
        ]
        async with self.state.db() as s, s.begin():
            await s.execute(
                update(Relay)
                .where(Relay.relay_id == relay.relay_id)
                .values(grants=Relay.grants + 1)
            )
        self.state.metrics.lease_grants.inc(2)
        expires = (now + lifetime).isoformat().replace("+00:00", "Z")
        return Grant(relay.relay_id, relay.public_addr, leases[0], leases[1], expires)


class RelayRegisterIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    relay_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    public_addr: str = Field(min_length=3, max_length=80)
    region: str = Field(default="default", min_length=1, max_length=64)
    max_sessions: int = Field(ge=1, le=10_000_000)
    max_bitrate_kbps: int = Field(ge=1, le=100_000_000)


class RelayHeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    relay_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    load_pct: float = Field(ge=0, le=100_000)
    sessions: int = Field(ge=0, le=10_000_000)


class RelayRegisterOut(BaseModel):
    heartbeat_interval_ms: int
    lease_public_key: str
    key_id: str


class RelayHeartbeatOut(BaseModel):
    ok: bool
    state: str


def _check_relay_token(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gw
    expected = state.settings.relay_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not expected:
        raise ApiError(403, "relays_disabled", "this gateway has no relay enrolment token")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise ApiError(401, "invalid_token", "bad relay enrolment token")
    return state


@router.post("/v1/relays/register", response_model=RelayRegisterOut)
async def register_relay(body: RelayRegisterIn, request: Request) -> dict[str, Any]:
    state = _check_relay_token(request)
    now = time.time()
    async with state.db() as s, s.begin():
        relay = await s.get(Relay, body.relay_id)
        if relay is None:
            s.add(
                Relay(
                    relay_id=body.relay_id,
                    public_addr=body.public_addr,
                    region=body.region,
                    max_sessions=body.max_sessions,
                    max_bitrate_kbps=body.max_bitrate_kbps,
                    load_pct=0.0,
                    sessions=0,
                    registered_at=now,
                    last_heartbeat=now,
                    grants=0,
                    failures=0,
                )
            )
        else:
            relay.public_addr, relay.region = body.public_addr, body.region
            relay.max_sessions, relay.max_bitrate_kbps = body.max_sessions, body.max_bitrate_kbps
            relay.last_heartbeat = now
    await state.audit(f"relay:{body.relay_id}", "relay.register", body.relay_id, body.public_addr)
    await state.relays.listing()
    return {
        "heartbeat_interval_ms": state.settings.heartbeat_interval_ms,
        "lease_public_key": public_key_to_paserk(state.signer.public_key),
        "key_id": state.signer.kid,
    }


@router.post("/v1/relays/heartbeat", response_model=RelayHeartbeatOut)
async def heartbeat(body: RelayHeartbeatIn, request: Request) -> dict[str, Any]:
    state = _check_relay_token(request)
    now = time.time()
    async with state.db() as s, s.begin():
        relay = await s.get(Relay, body.relay_id)
        if relay is None:
            raise ApiError(404, "unknown_relay", "register this relay first")
        if health_state(relay, now, state.relays.interval_s) == STALE:
            relay.failures += 1
        relay.load_pct, relay.sessions, relay.last_heartbeat = body.load_pct, body.sessions, now
        st = health_state(relay, now, state.relays.interval_s)
    return {"ok": True, "state": st}
