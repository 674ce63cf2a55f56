"""Connect to an X display with a given Xauthority file without touching the rest of the process."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["XDisplayError", "open_display", "xauthority"]


class XDisplayError(RuntimeError):
    """No display to connect to, or the connection was refused."""


@contextlib.contextmanager
def xauthority(path: str | None) -> Iterator[None]:
    """Point XAUTHORITY at ``path`` while connecting (libxcb and Xlib read it at connect time).

    Scoped rather than global so a process can hold a private Xvfb and its own desktop at once.
    """
    if path is None:
        yield
        return
    old = os.environ.get("XAUTHORITY")
    os.environ["XAUTHORITY"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("XAUTHORITY", None)
        else:
            os.environ["XAUTHORITY"] = old


def open_display(display: str | None, auth: str | None = None) -> Any:
    """A python-xlib Display for ``display`` (default $DISPLAY)."""
    from Xlib import display as xdisplay
    from Xlib import error as xerror

    name = display or os.environ.get("DISPLAY")
    if not name:
        raise XDisplayError("no X display: set DISPLAY or pass --display :N (or use --virtual WxH)")
    try:
        with xauthority(auth):
            return xdisplay.Display(name)
    except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
        # ConnectionClosedError: the server accepted and then went away (it is stopping)
        raise XDisplayError(f"cannot open X display {name}: {exc}") from exc
