"""``wavry gateway`` — register as ``app.command("gateway")(gateway_command)``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from wavry.config import ConfigError as SettingsError
from wavry.config import load
from wavry.gateway.settings import ConfigError, GatewaySettings, parse_host_port

__all__ = ["gateway_command", "serve"]

log = logging.getLogger("wavry.gateway")


class _Fatal(Exception):
    """A runtime failure reported as one line, exit status 1."""


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _setup_logging(level_name: str, as_json: bool) -> int:
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise ConfigError(f"--log-level: unknown level {level_name!r}")
    handler = logging.StreamHandler()
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(_JsonFormatter() if as_json else logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    return level


def _fmt(addr: tuple[Any, ...]) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in str(addr[0]) else f"{addr[0]}:{addr[1]}"


def _bind(listen: str) -> socket.socket:
    host, port = parse_host_port(listen, "--listen")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _Fatal(f"cannot listen on tcp {listen}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(settings: GatewaySettings, level: int = logging.INFO) -> None:
    """Prepare (migrate, Redis, STUN), bind, print the addresses, serve until signalled."""
    import uvicorn

    from wavry.gateway.app import StartupError, create_app, startup

    try:
        app = create_app(settings)
    except OSError as exc:
        raise _Fatal(f"data directory / key files: {exc}") from None
    state = app.state.gw
    try:
        await startup(state)
    except StartupError as exc:
        await state.engine.dispose()
        raise _Fatal(str(exc)) from None
    sock = _bind(settings.listen)
    addr = _fmt(sock.getsockname())
    stun = _fmt(state.stun_addr) if state.stun_addr else "-"
    print(
        f"wavry gateway: listening on http://{addr} (signaling ws://{addr}/v1/signal, "
        f"admin http://{addr}/admin); STUN on udp {stun}; "
        f"database {settings.db_url().split('://')[0]}"
        + (", redis pub/sub" if settings.redis_url else "")
        + f"; public URL {settings.public_base_url()}",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        loop="none",
        ws="websockets-sansio",
        ws_max_size=1024 * 1024,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        log_level=level,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        server_header=False,
        # X-Forwarded-For is the gateway's business (only from --trusted-proxies): uvicorn's
        # default would trust it from 127.0.0.1 and let any local client pick its address.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    await server.serve(sockets=[sock])


def _run(coro: Coroutine[Any, Any, None]) -> None:
    runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    if sys.platform != "win32":
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
    runner(coro)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _opt(flag: str, env: str, help_text: str) -> Any:
    """A flag; its WAVRY_GATEWAY_<env> variable and config-file key are read by the settings."""
    return typer.Option(flag, help=help_text)


def gateway_command(
    listen: Annotated[
        str | None,
        _opt("--listen", "LISTEN", "HTTP/WebSocket HOST:PORT [default: 127.0.0.1:3000]."),
    ] = None,
    database_url: Annotated[
        str | None,
        _opt("--database-url", "DATABASE_URL", "sqlite+aiosqlite:///FILE or postgresql+asyncpg://"),
    ] = None,
    redis_url: Annotated[
        str | None, _opt("--redis-url", "REDIS_URL", "Redis for cross-instance signaling.")
    ] = None,
    stun_listen: Annotated[
        str | None,
        _opt("--stun-listen", "STUN_LISTEN", "STUN UDP HOST:PORT [default: --listen host:3478]."),
    ] = None,
    relay_token: Annotated[
        str | None, _opt("--relay-token", "RELAY_TOKEN", "Relay enrolment token (≥ 16 chars).")
    ] = None,
    admin_token: Annotated[
        str | None, _opt("--admin-token", "ADMIN_TOKEN", "Admin token (≥ 32 chars).")
    ] = None,
    lease_key: Annotated[
        str | None, _opt("--lease-key", "LEASE_KEY", "Ed25519 lease key file (made if absent).")
    ] = None,
    public_url: Annotated[
        str | None,
        _opt(
            "--public-url",
            "PUBLIC_URL",
            "Base URL clients use (device logins sign it; origin checks) [default: http://LISTEN].",
        ),
    ] = None,
    trusted_proxies: Annotated[
        str | None,
        _opt(
            "--trusted-proxies",
            "TRUSTED_PROXIES",
            "Comma-separated proxy IPs/networks whose X-Forwarded-For is honoured [default: none].",
        ),
    ] = None,
    data_dir: Annotated[
        str | None, _opt("--data-dir", "DATA_DIR", "State directory (default: XDG data dir).")
    ] = None,
    production: Annotated[
        bool | None,
        typer.Option(
            "--production/--no-production",
            help="Refuse to start without secrets from configuration.",
            show_default=False,
        ),
    ] = None,
    log_json: Annotated[
        bool | None,
        typer.Option("--log-json/--no-log-json", help="Log as JSON lines.", show_default=False),
    ] = None,
    log_level: Annotated[
        str | None, _opt("--log-level", "LOG_LEVEL", "debug, info (default), warning, error.")
    ] = None,
) -> None:
    """Run the Wavry gateway: accounts, devices, signaling, relay registry, STUN, admin.

    Settings come from `[gateway]` in $XDG_CONFIG_HOME/wavry/config.toml, then WAVRY_GATEWAY_*
    variables, then these flags (docs/gateway.md lists every setting).
    """
    given: dict[str, Any] = {
        "listen": listen,
        "database_url": database_url,
        "redis_url": redis_url,
        "stun_listen": stun_listen,
        "relay_token": relay_token,
        "admin_token": admin_token,
        "lease_key": lease_key,
        "public_url": public_url,
        "trusted_proxies": trusted_proxies,
        "data_dir": data_dir,
        "production": production,
        "log_json": log_json,
        "log_level": log_level,
    }
    try:
        settings = load(GatewaySettings, **given)
        settings.validate_all()
        level = _setup_logging(settings.log_level, settings.log_json)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise _fail(f"WAVRY_GATEWAY_{where.upper()}: {err.get('msg')}", 2) from None
    except (ConfigError, SettingsError) as exc:
        raise _fail(str(exc), 2) from None
    try:
        _run(serve(settings, level))
    except (_Fatal, ConfigError) as exc:
        raise _fail(str(exc), 1) from None
    except KeyboardInterrupt:
        pass
