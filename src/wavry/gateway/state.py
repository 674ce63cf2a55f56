"""Everything one gateway instance shares between its routes."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from wavry.controlplane import KeyedRateLimiter
from wavry.controlplane.lease import LeaseSigner
from wavry.gateway.clientip import ClientAddresses
from wavry.gateway.lockout import LoginLockout
from wavry.gateway.metrics import Metrics
from wavry.gateway.models import AuditEntry
from wavry.gateway.security import Passwords, TotpBox
from wavry.gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from wavry.gateway.relays import RelayRegistry
    from wavry.gateway.signaling import Hub

__all__ = ["GatewayState"]


@dataclass
class GatewayState:
    settings: GatewaySettings
    engine: AsyncEngine
    db: async_sessionmaker[Any]
    passwords: Passwords
    totp: TotpBox
    signer: LeaseSigner
    metrics: Metrics
    lockout: LoginLockout
    addresses: ClientAddresses
    rate: KeyedRateLimiter
    auth_rate: KeyedRateLimiter
    hub: Hub
    relays: RelayRegistry
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.time)
    ready: bool = False
    stun_addr: tuple[Any, ...] | None = None
    stun_transport: asyncio.DatagramTransport | None = None

    async def audit(
        self, actor: str, action: str, target: str = "", detail: str = "", ip: str = ""
    ) -> None:
        async with self.db() as s, s.begin():
            s.add(
                AuditEntry(
                    at=time.time(), actor=actor, action=action, target=target, detail=detail, ip=ip
                )
            )
