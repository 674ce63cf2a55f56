"""Gateway configuration: flags and ``WAVRY_GATEWAY_*`` environment variables."""

from __future__ import annotations

import base64
import binascii
import socket
from pathlib import Path

from pydantic import Field

from wavry.config import CommandSettings
from wavry.controlplane.devicelogin import canonical_base_url
from wavry.gateway.clientip import parse_networks
from wavry.net.addr import AddressError, parse_endpoint
from wavry.store import data_dir

__all__ = ["ConfigError", "GatewaySettings", "parse_host_port"]


class ConfigError(Exception):
    """Bad configuration: reported as one line, exit status 2."""


def parse_host_port(value: str, what: str, allow_zero: bool = True) -> tuple[str, int]:
    """Parse ``HOST:PORT`` / ``[V6]:PORT`` (port 0 = any free port unless refused)."""
    try:
        return parse_endpoint(value, allow_zero=allow_zero)
    except AddressError as exc:
        raise ConfigError(f"{what}: {exc}") from None


class GatewaySettings(CommandSettings):
    """Every setting: `[gateway]` in the config file, then `WAVRY_GATEWAY_*`, then the flags
    (docs/cli.md; settings without a flag come from the first two only)."""

    section = "gateway"

    listen: str = "127.0.0.1:3000"
    database_url: str = ""
    redis_url: str = ""
    stun_listen: str = ""  # empty: the --listen host, port 3478 (one bind rule for both)
    relay_token: str = ""
    admin_token: str = ""
    lease_key: str = ""
    public_url: str = ""  # empty: http://<listen host>:<port> (see public_base_url)
    trusted_proxies: str = ""  # comma separated IPs/networks whose X-Forwarded-For counts
    totp_key: str = ""
    production: bool = False
    data_dir: str = ""
    allowed_origins: str = ""  # comma separated; empty = only same host / non-browser clients
    token_ttl: float = Field(default=24 * 3600, gt=0)
    lease_ttl: float = Field(default=300, gt=0)
    lockout_failures: int = Field(default=5, ge=1)
    lockout_seconds: float = Field(default=15 * 60, gt=0)
    rate_per_ip: float = Field(default=20.0, gt=0)  # requests/s per IP, all routes
    rate_burst: float = Field(default=60.0, gt=0)
    auth_rate_per_ip: float = Field(default=2.0, gt=0)  # /v1/auth/* per IP
    auth_rate_burst: float = Field(default=20.0, gt=0)
    ws_per_ip: int = Field(default=64, ge=1)  # concurrent signaling sockets per IP
    ws_msg_rate: float = Field(default=50.0, gt=0)  # messages/s per socket
    ws_msg_burst: float = Field(default=200.0, gt=0)
    heartbeat_interval_ms: int = Field(default=5000, ge=100)
    argon2_concurrency: int = Field(default=2, ge=1)
    argon2_executor: str = "process"  # "process" (niced worker processes) or "thread"
    argon2_nice: int = Field(default=10, ge=0, le=19)  # niceness of the worker processes
    argon2_queue: int = Field(default=64, ge=0)  # waiting beyond the running ones, then 503
    log_json: bool = False
    log_level: str = "info"

    def base_dir(self) -> Path:
        return Path(self.data_dir) if self.data_dir else data_dir()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.base_dir() / 'gateway.db'}"

    def resolved_lease_key(self) -> Path:
        return Path(self.lease_key) if self.lease_key else self.base_dir() / "gateway-lease.key"

    def resolved_stun_listen(self) -> str:
        """``--stun-listen``, else the HTTP listen host on port 3478: the gateway's listeners
        are public exactly when ``--listen`` is."""
        if self.stun_listen:
            return self.stun_listen
        host, _ = parse_host_port(self.listen, "--listen")
        return f"[{host}]:3478" if ":" in host else f"{host}:3478"

    def public_base_url(self) -> str:
        """The URL clients reach this gateway at, canonical (device-key logins sign it):
        ``--public-url``, else ``http://`` + the listen address, a wildcard host replaced by
        this machine's host name."""
        if self.public_url:
            return canonical_base_url(self.public_url)
        host, port = parse_host_port(self.listen, "--listen")
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return canonical_base_url(f"http://{netloc}")

    def origins(self) -> set[str]:
        return {o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()}

    def validate_all(self) -> None:
        """Raise :class:`ConfigError` with one clear line on anything unusable."""
        parse_host_port(self.listen, "--listen")
        if self.stun_listen:
            parse_host_port(self.stun_listen, "--stun-listen")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"--trusted-proxies: {exc}") from None
        url = self.resolved_database_url()
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://")):
            raise ConfigError(
                "--database-url: use sqlite+aiosqlite:///FILE or postgresql+asyncpg://..."
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("--redis-url: expected redis://HOST:PORT[/DB]")
        if self.argon2_executor not in ("process", "thread"):
            raise ConfigError("WAVRY_GATEWAY_ARGON2_EXECUTOR must be 'process' or 'thread'")
        if self.admin_token and len(self.admin_token) < 32:
            raise ConfigError("--admin-token must be at least 32 characters")
        if self.relay_token and len(self.relay_token) < 16:
            raise ConfigError("--relay-token must be at least 16 characters")
        if self.public_url:
            try:
                canonical_base_url(self.public_url)
            except ValueError as exc:
                raise ConfigError(f"--public-url: {exc}") from None
        if self.totp_key:
            try:
                raw = base64.urlsafe_b64decode(self.totp_key.encode("ascii"))
            except (binascii.Error, ValueError, UnicodeEncodeError):
                raw = b""
            if len(raw) != 32:
                raise ConfigError(
                    "WAVRY_GATEWAY_TOTP_KEY must be 32 bytes in url-safe base64 (a Fernet key)"
                )
        elif self.production:
            raise ConfigError(
                "--production needs WAVRY_GATEWAY_TOTP_KEY (TOTP secrets are encrypted at rest)"
            )
        if self.production and not self.admin_token:
            raise ConfigError("--production needs --admin-token (or WAVRY_GATEWAY_ADMIN_TOKEN)")

    def db_url(self) -> str:
        url = self.resolved_database_url()
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url[len("postgresql://") :]
        return url
