"""Text clipboard sync with the peer: :func:`open_clipboard` picks the back-end for this session
(Mutter's on GNOME, wl-clipboard on other Wayland desktops, X11 selections over XFIXES —
:mod:`wavry.platform.x11clipboard`), all with one interface (``set_remote_text``, ``close``,
``stats``, ``mode``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from wavry.platform.clipboard_common import (
    INCR_CHUNK,
    MAX_TEXT_BYTES,
    ClipboardError,
    ClipboardStats,
)
from wavry.platform.probe import ProbeResult
from wavry.platform.x11clipboard import ClipboardSync
from wavry.platform.xdisplay import XDisplayError, open_display

__all__ = [
    "INCR_CHUNK",
    "MAX_TEXT_BYTES",
    "ClipboardError",
    "ClipboardStats",
    "ClipboardSync",
    "open_clipboard",
    "probe",
]


def probe(display: str | None = None, auth: str | None = None) -> ProbeResult:
    """Whether the X11 clipboard backend can run on ``display`` (needs XFIXES ≥ 1)."""
    name = display or os.environ.get("DISPLAY")
    if not name:
        return ProbeResult(
            "clipboard",
            False,
            "DISPLAY is not set (Wayland clipboard is not supported yet)",
            "run under X11/Xwayland or pass --display :N",
        )
    try:
        d = open_display(name, auth)
    except XDisplayError as exc:
        return ProbeResult("clipboard", False, str(exc), "check DISPLAY and XAUTHORITY")
    try:
        if d.query_extension("XFIXES") is None:
            return ProbeResult(
                "clipboard",
                False,
                f"{name} has no XFIXES extension",
                "use an X server with XFIXES (Xorg, Xvfb and Xwayland have it)",
            )
        v = d.xfixes_query_version()
        version = f"{v.major_version}.{v.minor_version}"
    finally:
        d.close()
    return ProbeResult("clipboard", True, f"XFIXES {version} on {name} (X11 selections)")


def _gnome_clipboard_available() -> bool:
    from wavry.platform.mutter import probe_mutter

    return probe_mutter().ok


def open_clipboard(
    on_local_change: Callable[[str], None],
    *,
    display: str | None = None,
    auth: str | None = None,
    wayland_display: str | None = None,
    runtime_dir: str | None = None,
    max_bytes: int = MAX_TEXT_BYTES,
    on_too_large: Callable[[int], None] | None = None,
) -> Any:
    """Start the clipboard backend for this session and return it (``ClipboardSync`` or
    ``WlClipboardSync``; both have ``set_remote_text``, ``close``, ``stats``, ``mode``).

    On GNOME (Mutter's RemoteDesktop on the session bus) the Mutter session's clipboard is used
    (:mod:`wavry.platform.mutter_clipboard`). Another Wayland display (``wayland_display`` or
    ``$WAYLAND_DISPLAY``) gets wl-clipboard
    (change-driven with ``wl-paste --watch``, polling where the compositor lacks data-control);
    otherwise X11 (XFIXES events, polling without XFIXES). Raises :class:`ClipboardError` when
    neither can run.
    """
    wl = wayland_display or (None if display else os.environ.get("WAYLAND_DISPLAY"))
    problems: list[str] = []
    if wl and _gnome_clipboard_available():
        # GNOME has no data-control: its remote-desktop session carries the clipboard
        from wavry.platform.mutter_clipboard import MutterClipboardSync

        try:
            return MutterClipboardSync(
                on_local_change, max_bytes=max_bytes, on_too_large=on_too_large
            ).start()
        except ClipboardError as exc:
            problems.append(f"GNOME: {exc}")
    if wl:
        from wavry.platform.wlclipboard import WlClipboardSync

        try:
            return WlClipboardSync(
                on_local_change,
                wl,
                runtime_dir,
                max_bytes=max_bytes,
                on_too_large=on_too_large,
            ).start()
        except ClipboardError as exc:
            problems.append(f"Wayland: {exc}")
    x = display or os.environ.get("DISPLAY")
    if x:
        try:
            return ClipboardSync(
                on_local_change, x, auth, max_bytes=max_bytes, on_too_large=on_too_large
            ).start()
        except (ClipboardError, XDisplayError, OSError) as exc:
            problems.append(f"X11: {exc}")
    raise ClipboardError("; ".join(problems) or "no display (neither WAYLAND_DISPLAY nor DISPLAY)")
