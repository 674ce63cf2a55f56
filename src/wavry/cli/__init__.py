"""The `wavry` command: commands in the order a user needs them (docs/cli.md)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import warnings
from enum import StrEnum
from typing import Annotated, Any

import typer
from typer import _click as click  # Typer's own vendored copy of click (its Context)

from wavry import __version__
from wavry.cli import account, apps, bench, desktop, identity, services, session

__all__ = ["app", "main"]

CONTEXT = {"help_option_names": ["-h", "--help"]}
LOG_LEVELS = ("debug", "info", "warning", "error")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
    help="Wavry: low-latency remote desktop and game streaming over RIFT.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wavry {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Wavry: low-latency remote desktop and game streaming over RIFT."""


# 1. sessions
app.command("host", context_settings=CONTEXT)(session.host)
app.command("connect", context_settings=CONTEXT)(session.connect)
app.command("ping", context_settings=CONTEXT)(session.ping)
app.command("discover", context_settings=CONTEXT)(session.discover)
# 2. identity and trust
app.command("id", context_settings=CONTEXT)(identity.id_cmd)
app.add_typer(identity.trust_app, name="trust", context_settings=CONTEXT)
app.add_typer(identity.pins_app, name="pins", context_settings=CONTEXT)
# 3. accounts
app.command("register", context_settings=CONTEXT)(account.register)
app.command("login", context_settings=CONTEXT)(account.login)
app.command("logout", context_settings=CONTEXT)(account.logout)
app.command("whoami", context_settings=CONTEXT)(account.whoami)
app.command("hosts", context_settings=CONTEXT)(account.hosts)
# 4. apps
app.command("desktop", context_settings=CONTEXT)(desktop.desktop)
app.command("demo", context_settings=CONTEXT)(apps.demo)
app.command("doctor", context_settings=CONTEXT)(apps.doctor)
# 5. services, 6. measurement
services.register(app)
bench.register(app)


def setup_logging(level: str) -> None:
    """Logs to stderr at ``level`` (debug|info|warning|error)."""
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise click.exceptions.BadParameter(
            f"unknown level {level!r} (one of {', '.join(LOG_LEVELS)})"
        )
    logging.basicConfig(
        level=number, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _apply_log_level(value: LogLevel | None) -> None:
    if value is not None:
        setup_logging(value.value)


def _log_level_template(
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            envvar="WAVRY_LOG_LEVEL",
            callback=_apply_log_level,
            is_eager=True,
            expose_value=False,
            help="Log level on stderr: debug, info, warning (default) or error "
            "[env WAVRY_LOG_LEVEL].",
        ),
    ] = None,
) -> None:
    """Only here to let Typer build the `--log-level` option every command gets."""


def _log_level_option() -> Any:
    holder = typer.Typer()
    holder.command()(_log_level_template)
    return typer.main.get_command(holder).params[0]


ORDER = [
    "host",
    "connect",
    "ping",
    "discover",
    "id",
    "trust",
    "pins",
    "register",
    "login",
    "logout",
    "whoami",
    "hosts",
    "desktop",
    "demo",
    "doctor",
    "gateway",
    "relay",
    "bench",
    "lab",
]


def _add_common_options(cmd: Any) -> None:
    """Every command gets `--log-level` (the services define their own, with their env names),
    and value options show a name (``--listen LISTEN``) rather than a type."""
    if not any("--log-level" in getattr(p, "opts", ()) for p in cmd.params):
        cmd.params.append(_log_level_option())
    for p in cmd.params:
        desc = getattr(p, "type_descriptor", None)
        flag = getattr(p, "is_flag", False) or getattr(p, "is_bool_flag", False)
        if p.metavar is None and not flag and desc is not None and not desc.is_choice:
            p.metavar = (p.name or "value").upper()
        if isinstance(p, typer.core.TyperArgument):  # `TARGET`, not `{TARGET}` and `<str>`
            shown = p.metavar or (p.name or "value").upper()
            usage = shown if p.required else f"[{shown}]"
            setattr(p, "_usage_display_name", lambda usage=usage: usage)  # noqa: B010
            setattr(p, "display_type_rich", lambda ctx: None)  # noqa: B010
    if isinstance(cmd, typer.core.TyperGroup):
        rank = {name: i for i, name in enumerate(ORDER)}
        cmd.commands = dict(
            sorted(cmd.commands.items(), key=lambda kv: rank.get(kv[0], len(ORDER)))
        )
        for sub in cmd.commands.values():
            _add_common_options(sub)


def build() -> click.core.Command:
    cmd = typer.main.get_command(app)
    _add_common_options(cmd)
    return cmd


# Options whose value may be left out (`wavry host --web` = the default address). typer cannot
# declare that, so the bare option becomes `--opt=` (empty: the setting's default) before parsing.
OPTIONAL_VALUE = frozenset({"--web"})


def optional_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    for i, tok in enumerate(argv):
        if tok == "--":
            return out + argv[i:]
        following = argv[i + 1] if i + 1 < len(argv) else None
        if tok in OPTIONAL_VALUE and (following is None or following.startswith("-")):
            tok += "="
        out.append(tok)
    return out


def main(argv: list[str] | None = None) -> None:
    # pysdl2-dll announces itself on import; the doctor says which SDL is used instead
    warnings.filterwarnings("ignore", message="Using SDL2 binaries from pysdl2-dll")
    if os.environ.get("WAVRY_LOG_LEVEL"):
        try:
            setup_logging(os.environ["WAVRY_LOG_LEVEL"])
        except click.exceptions.BadParameter as exc:
            print(f"error: WAVRY_LOG_LEVEL: {exc.message}", file=sys.stderr)
            sys.exit(2)
    cmd = build()
    argv = optional_values(sys.argv[1:] if argv is None else argv)
    try:
        rv: Any = cmd.main(args=argv, prog_name="wavry", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # `wavry` alone: help, exit 0
        click.utils.echo(exc.ctx.get_help() if exc.ctx else "")
        sys.exit(0)
    except click.exceptions.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "wavry"
        print(f"error: {exc.format_message()} (see `{where} --help`)", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
