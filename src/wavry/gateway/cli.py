"""`wavry gateway`: the command's flags. The gateway itself (FastAPI, SQLAlchemy, …) loads only
when it runs: `wavry --help` and the other commands stay fast."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["gateway_command"]


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
    from pydantic import ValidationError

    from wavry.config import ConfigError as SettingsError
    from wavry.config import load
    from wavry.gateway.service import Fatal, run_loop, serve, setup_logging
    from wavry.gateway.settings import ConfigError, GatewaySettings

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
        level = setup_logging(settings.log_level, settings.log_json)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise _fail(f"WAVRY_GATEWAY_{where.upper()}: {err.get('msg')}", 2) from None
    except (ConfigError, SettingsError) as exc:
        raise _fail(str(exc), 2) from None
    try:
        run_loop(serve(settings, level))
    except (Fatal, ConfigError) as exc:
        raise _fail(str(exc), 1) from None
    except KeyboardInterrupt:
        pass
