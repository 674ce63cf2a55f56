"""`wavry relay` settings: `[relay]` in the config file, then `WAVRY_RELAY_*`, then flags
(docs/cli.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from wavry.config import CommandSettings

__all__ = ["RelaySettings"]


class RelaySettings(CommandSettings):
    section = "relay"

    listen: str = "0.0.0.0:4000"
    public_addr: str | None = None
    gateway: str | None = None
    token: str | None = None
    http_listen: str = "127.0.0.1:9091"
    region: str = "default"
    max_sessions: int = Field(default=1000, ge=1)
    max_bitrate_kbps: int = Field(default=100_000, ge=1)
    lease_public_key: Path | None = None
    id: str | None = None
    log_level: str = "info"
