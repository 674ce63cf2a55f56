"""`wavry desktop`: the desktop app (docs/desktop.md)."""

from __future__ import annotations

import time

import typer

from wavry.cli.common import fail


def desktop() -> None:
    """Open the desktop app: your computers, sharing this one, diagnostics and settings."""
    started = time.monotonic()
    try:
        from wavry.desktop.app import run
    except ImportError as exc:  # a services-only install has no Qt
        fail(
            f"the desktop app needs PySide6 and qasync ({exc.name or exc}): install wavry with "
            "its `desktop` extra (pipx install 'wavry[stream,desktop]')"
        )
    import os

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and not os.environ.get(
        "QT_QPA_PLATFORM"
    ):
        fail("no display to open a window on: run `wavry desktop` inside your desktop session")
    from wavry.store import StoreError

    try:
        code = run(started=started)
    except StoreError as exc:
        fail(str(exc))
    raise typer.Exit(code)
