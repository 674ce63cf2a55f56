"""Errors as the app shows them: one readable line, never a traceback.

Expected failures (the gateway refused, a port is taken, a file is unreadable) carry messages
written for the user; anything else is logged with its traceback to the app's log file and shown
as one line that says where the details are.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["EXPECTED", "describe", "log_file"]

log = logging.getLogger("wavry.desktop")

#: exception class names whose message is written for the user (matched by name so this module
#: imports nothing heavy)
EXPECTED = frozenset(
    {
        "AddressError",
        "AudioError",
        "ConfigError",
        "GatewayError",
        "HostError",
        "OptionsError",
        "SessionFailed",
        "SourceError",
        "StoreError",
        "StreamError",
    }
)


def log_file() -> Path:
    """Where the app logs what the user does not need to read: $XDG_STATE_HOME/wavry."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "wavry" / "desktop.log"


def _expected(exc: BaseException) -> bool:
    return any(c.__name__ in EXPECTED for c in type(exc).__mro__)


def describe(exc: BaseException, doing: str = "") -> str:
    """One line for ``exc`` (``doing``: what was being done, e.g. "sharing")."""
    lead = f"{doing}: " if doing else ""
    if _expected(exc):
        return f"{lead}{exc}"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{lead}{exc.strerror or exc}{where}"
    if isinstance(exc, TimeoutError):
        return f"{lead}no answer in time"
    log.error("unexpected error%s", f" while {doing}" if doing else "", exc_info=exc)
    return f"{lead}unexpected error ({type(exc).__name__}: {exc}); details are in {log_file()}"
