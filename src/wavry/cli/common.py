"""What every `wavry` command shares: one error style, JSON output, address and settings
parsing (docs/cli.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from wavry.net.addr import AddressError, parse_hostport
from wavry.settings_types import DEFAULT_PORT

if TYPE_CHECKING:
    from wavry.config import CommandSettings

S = TypeVar("S", bound="CommandSettings")


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit (2: usage or configuration)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_addr(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    try:
        return parse_hostport(text, default_port)
    except AddressError as exc:
        fail(str(exc), 2)


def settings(cls: type[S], **flags: Any) -> S:
    """The command's settings from config file, environment and flags, or exit 2."""
    from wavry.config import ConfigError, load

    try:
        return load(cls, **flags)
    except ConfigError as exc:
        fail(str(exc), 2)


def write_json(target: str | Path | None, data: Any) -> None:
    """`--json FILE` (or `-`: stdout)."""
    if target is None:
        return
    text = json.dumps(data, indent=2) + "\n"
    if str(target) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


def human(json_target: str | Path | None) -> bool:
    """True when human-readable results go to stdout (not when JSON does)."""
    return json_target is None or str(json_target) != "-"


def say(text: str, json_target: str | Path | None = None) -> None:
    """A human-readable result line: stdout, or stderr when stdout carries JSON."""
    typer.echo(text, err=not human(json_target))
