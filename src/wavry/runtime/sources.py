"""Choosing and opening the host's picture source."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from wavry.media.types import Capture, CaptureError


class SourceError(Exception):
    """No usable picture source; the message says what to do."""


@dataclass(frozen=True, slots=True)
class SourceChoice:
    name: str
    reason: str


def detect_source(explicit: str | None, virtual: tuple[int, int] | None) -> SourceChoice | None:
    """The source to use: explicit, else virtual when sized, else Wayland (WAYLAND_DISPLAY set
    and the ScreenCast portal reachable), else X11; None when nothing is available (the host
    then serves control messages only)."""
    if explicit:
        return SourceChoice(explicit, "chosen with --source")
    if virtual is not None:
        return SourceChoice("virtual", "--virtual given")
    if os.environ.get("WAYLAND_DISPLAY"):
        from wavry.platform.screencast import CastError, select_wayland_path

        try:
            path = select_wayland_path()
        except CastError as exc:
            return SourceChoice("wayland", str(exc))
        usable = [p for p in path.probes if p.ok]
        if usable or not path.probes:
            return SourceChoice("wayland", f"Wayland, {path.name} path: {path.reason}")
        if not os.environ.get("DISPLAY"):
            # no fallback: the wayland source's error says what the desktop lacks
            return SourceChoice("wayland", f"WAYLAND_DISPLAY is set ({path.reason})")
        return SourceChoice(
            "x11", f"DISPLAY={os.environ['DISPLAY']} (Wayland unusable: {path.reason})"
        )
    if os.environ.get("DISPLAY"):
        return SourceChoice("x11", f"DISPLAY={os.environ['DISPLAY']}")
    return None


NO_SOURCE_HELP = (
    "no picture source (no usable Wayland session or X display). Use --virtual WxH to stream a "
    "private virtual display, or --source synthetic for a test pattern. Until then sessions carry "
    "control messages only."
)


def open_source(
    name: str,
    *,
    width: int,
    height: int,
    fps: float,
    display: str | None = None,
    monitor: int | None = None,
    virtual: tuple[int, int] | None = None,
    run: str | None = None,
    on_change: bool = True,
) -> Capture:
    """Create (not start) the capture backend `name`. ``on_change``: capture when the picture
    changes where the backend can tell (X11 DAMAGE), else every frame interval."""
    try:
        if name == "synthetic":
            from wavry.media.synthetic import SyntheticCapture

            return SyntheticCapture(width, height, fps, noise=12)
        if name == "x11":
            x11 = importlib.import_module("wavry.media.x11")
            capture: Capture = x11.X11Capture(
                display=display, monitor=monitor, fps=fps, on_change=on_change
            )
            return capture
        if name == "virtual":
            virt = importlib.import_module("wavry.media.virtual")
            w, h = virtual or (width, height)
            capture = virt.VirtualCapture(w, h, fps=fps, run=run, on_change=on_change)
            return capture
        if name == "wayland":
            wayland = importlib.import_module("wavry.media.wayland")
            # the path (Mutter API, portal) is chosen by probe at start; --virtual --size WxH with
            # --source wayland is a GNOME virtual monitor of that size
            capture = wayland.WaylandCapture(fps=fps, monitor=monitor, virtual=virtual)
            return capture
    except ImportError as exc:
        raise SourceError(f"the {name} source is not available in this build: {exc}") from exc
    except CaptureError as exc:
        raise SourceError(f"cannot use the {name} source: {exc}") from exc
    raise SourceError(f"unknown source {name!r} (synthetic, x11, wayland, virtual)")


def source_size(capture: Capture) -> tuple[int, int]:
    """The source's picture size. Backends that only know it once started are started briefly
    (which also proves the source works before any client connects)."""
    try:
        return capture.size
    except CaptureError:
        pass
    try:
        capture.start()
        try:
            return capture.size
        finally:
            capture.stop()
    except CaptureError as exc:
        raise SourceError(f"cannot use the {capture.name} source: {exc}") from exc
