"""Identity and trust: `wavry id`, `wavry trust list|forget`, `wavry pins list|forget`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from wavry.cli.common import fail, parse_addr, say, write_json
from wavry.store import KnownHosts, StoreError, TrustedDevices, load_or_create_identity

pins_app = typer.Typer(no_args_is_help=True, help="Host identities pinned on first use.")
trust_app = typer.Typer(no_args_is_help=True, help="Clients this host trusts without pairing.")


def id_cmd(
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write {wavry_id} as JSON to FILE (- = stdout)")
    ] = None,
) -> None:
    """Print this device's Wavry ID (created on first use)."""
    try:
        identity = load_or_create_identity()
    except StoreError as exc:
        fail(str(exc))
    write_json(json_out, {"wavry_id": identity.wavry_id})
    say(identity.wavry_id, json_out)


@pins_app.command("list")
def pins_list() -> None:
    """Show pinned host identities."""
    try:
        pins = KnownHosts().load()
    except StoreError as exc:
        fail(str(exc))
    if not pins:
        typer.echo("no pinned hosts")
    for p in pins.values():
        when = datetime.fromtimestamp(p.first_seen, UTC).strftime("%Y-%m-%d %H:%M UTC")
        typer.echo(f"{p.address}  {p.wavry_id}  (first seen {when})")


@pins_app.command("forget")
def pins_forget(
    address: Annotated[str, typer.Argument(help="HOST:PORT as pinned", metavar="ADDRESS")],
) -> None:
    """Forget the pinned identity of a host address."""
    from wavry.net.addr import format_hostport

    key = format_hostport(*parse_addr(address))
    try:
        removed = KnownHosts().forget(key)
    except StoreError as exc:
        fail(str(exc))
    if not removed:
        fail(f"no pin for {key} (see `wavry pins list`)")
    typer.echo(f"forgot the pinned identity of {key}")


@trust_app.command("list")
def trust_list() -> None:
    """Show the clients this host trusts."""
    try:
        devices = TrustedDevices().load()
    except StoreError as exc:
        fail(str(exc))
    if not devices:
        typer.echo("no trusted devices (clients pair with the code `wavry host` shows)")
    for d in devices:
        when = datetime.fromtimestamp(d.added, UTC).strftime("%Y-%m-%d %H:%M UTC")
        typer.echo(f"{d.wavry_id}  {d.name or '?'}  (paired {when})")


@trust_app.command("forget")
def trust_forget(
    wavry_id: Annotated[str, typer.Argument(help="Wavry ID to stop trusting", metavar="WAVRY_ID")],
) -> None:
    """Stop trusting a client (it must pair again)."""
    try:
        removed = TrustedDevices().remove(wavry_id)
    except StoreError as exc:
        fail(str(exc))
    if not removed:
        fail(f"{wavry_id} is not in the trusted list (see `wavry trust list`)")
    typer.echo(f"forgot {wavry_id}; restart `wavry host` for running sessions to notice")
