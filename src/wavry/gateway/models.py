"""SQLAlchemy 2 models (times are UNIX seconds as floats, portable across SQLite/PostgreSQL)."""

from __future__ import annotations

import time

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "PRESENCE_TTL",
    "AuditEntry",
    "Base",
    "Device",
    "DeviceLogin",
    "HostShare",
    "LoginFailure",
    "Relay",
    "Session",
    "User",
]

PRESENCE_TTL = 30.0  # an instance refreshes its devices' last_seen every few seconds


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)  # not unique: see accounts.py
    username: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    totp_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # encrypted
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    banned_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    ban_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "email": self.email,
            "username": self.username,
            "display_name": self.display_name,
            "totp_enabled": self.totp_secret is not None,
            "created_at": self.created_at,
        }


class Session(Base):
    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    ip: Mapped[str] = mapped_column(String(64), default="")
    # set for tokens from device-key login: the token dies with the device
    device_wavry_id: Mapped[str | None] = mapped_column(String(43), nullable=True, index=True)


class Device(Base):
    __tablename__ = "devices"

    wavry_id: Mapped[str] = mapped_column(String(43), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[float] = mapped_column(Float)
    online_instance: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_seen: Mapped[float] = mapped_column(Float, default=0.0)

    def is_online(self, now: float | None = None) -> bool:
        """Connected to some instance that refreshed presence recently (survives crashes)."""
        at = time.time() if now is None else now
        return self.online_instance is not None and self.last_seen > at - PRESENCE_TTL

    def public(self) -> dict[str, object]:
        return {
            "wavry_id": self.wavry_id,
            "name": self.name,
            "kind": self.kind,
            "online": self.is_online(),
            "created_at": self.created_at,
        }


class Relay(Base):
    __tablename__ = "relays"

    relay_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_addr: Mapped[str] = mapped_column(String(80))
    region: Mapped[str] = mapped_column(String(64))
    max_sessions: Mapped[int] = mapped_column(Integer)
    max_bitrate_kbps: Mapped[int] = mapped_column(Integer)
    load_pct: Mapped[float] = mapped_column(Float, default=0.0)
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    registered_at: Mapped[float] = mapped_column(Float)
    last_heartbeat: Mapped[float] = mapped_column(Float)
    grants: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")


class HostShare(Base):
    """A host its owner shared with another account (its clients may connect without pairing)."""

    __tablename__ = "host_shares"

    host_wavry_id: Mapped[str] = mapped_column(
        ForeignKey("devices.wavry_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[float] = mapped_column(Float)


class DeviceLogin(Base):
    """A (wavry_id, timestamp) pair accepted by ``POST /v1/auth/device`` (each only once)."""

    __tablename__ = "device_logins"

    wavry_id: Mapped[str] = mapped_column(String(43), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class LoginFailure(Base):
    """Failed logins for one (source address, normalised login) pair."""

    __tablename__ = "login_failures"

    ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[float] = mapped_column(Float, index=True)
    locked_until: Mapped[float] = mapped_column(Float)
