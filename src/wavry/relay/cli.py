"""`wavry relay`: the command's flags. The relay itself (and its imports) load only when it runs:
`wavry --help` and the other commands stay fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["relay_command"]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def relay_command(
    listen: Annotated[
        str | None, typer.Option("--listen", help="UDP HOST:PORT [default: 0.0.0.0:4000].")
    ] = None,
    public_addr: Annotated[
        str | None,
        typer.Option(
            "--public-addr", help="HOST:PORT peers reach this relay at (announced to the gateway)."
        ),
    ] = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="Gateway base URL.")] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Relay enrolment token (prefer WAVRY_RELAY_TOKEN)."),
    ] = None,
    http_listen: Annotated[
        str | None,
        typer.Option("--http-listen", help="/health /ready /metrics [default: 127.0.0.1:9091]."),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region name.")] = None,
    max_sessions: Annotated[
        int | None, typer.Option("--max-sessions", help="Session cap [default: 1000].")
    ] = None,
    max_bitrate_kbps: Annotated[
        int | None,
        typer.Option(
            "--max-bitrate-kbps",
            help="Highest per-session hard limit honoured; leases above are clamped.",
        ),
    ] = None,
    lease_public_key: Annotated[
        Path | None,
        typer.Option(
            "--lease-public-key",
            help="Gateway lease public key file (PEM, PASERK k4.public, hex or base64).",
        ),
    ] = None,
    relay_id: Annotated[
        str | None,
        typer.Option("--id", "--relay-id", help="Relay id (the leases' rid claim)."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="debug, info (default), warning, error.")
    ] = None,
) -> None:
    """Run a Wavry relay: forwards leased sessions' datagrams between two peers.

    Settings come from `[relay]` in $XDG_CONFIG_HOME/wavry/config.toml, then WAVRY_RELAY_*
    variables (WAVRY_RELAY_TOKEN, WAVRY_RELAY_ID, ...), then these flags.
    """
    import logging

    from wavry.config import ConfigError as SettingsError
    from wavry.config import load
    from wavry.relay.service import ConfigError, Fatal, build_settings, run_loop, serve
    from wavry.relay.settings import RelaySettings

    try:
        s = load(
            RelaySettings,
            listen=listen,
            public_addr=public_addr,
            gateway=gateway,
            token=token,
            http_listen=http_listen,
            region=region,
            max_sessions=max_sessions,
            max_bitrate_kbps=max_bitrate_kbps,
            lease_public_key=lease_public_key,
            id=relay_id,
            log_level=log_level,
        )
    except SettingsError as exc:
        raise _fail(str(exc), 2) from None
    level = logging.getLevelName(s.log_level.upper())
    if not isinstance(level, int):
        raise _fail(f"--log-level: unknown level {s.log_level!r}", 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = build_settings(
            s.listen,
            s.public_addr,
            s.gateway,
            s.token,
            s.http_listen,
            s.region,
            s.max_sessions,
            s.max_bitrate_kbps,
            s.lease_public_key,
            s.id,
        )
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    try:
        run_loop(serve(settings))
    except Fatal as exc:
        raise _fail(str(exc), 1) from None
    except KeyboardInterrupt:
        pass
