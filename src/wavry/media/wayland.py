"""Wayland capture (xdg-desktop-portal ScreenCast → PipeWire): probe only for now."""

from __future__ import annotations

import os
import shutil

from wavry.media.types import Capture, CapturedFrame, CaptureError, ProbeResult

__all__ = ["WaylandCapture", "probe"]


def probe() -> ProbeResult:
    """Say why portal capture cannot run here. The portal/PipeWire backend is not written yet."""
    missing: list[str] = []
    if not os.environ.get("WAYLAND_DISPLAY"):
        missing.append("no Wayland session (WAYLAND_DISPLAY unset)")
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        missing.append("no D-Bus session bus")
    if not shutil.which("pipewire"):
        missing.append("PipeWire not installed")
    if not os.path.exists("/dev/dri"):
        missing.append("no GPU (/dev/dri) for a compositor to render into")
    detail = "; ".join(missing) if missing else "session found"
    detail += "; the portal ScreenCast backend is not implemented in this build"
    return ProbeResult(
        "wayland",
        False,
        detail,
        "use --source x11 (XWayland/X11 session) or --virtual WxH on a headless machine",
    )


class WaylandCapture(Capture):
    """Placeholder that refuses to construct: raises CaptureError with the probe's reason.

    Lets a runtime ask for the wayland source and get one clear, actionable error instead of an
    AttributeError, until the portal/PipeWire backend exists.
    """

    name = "wayland"

    def __init__(self, fps: float = 60.0, **_: object) -> None:
        result = probe()
        raise CaptureError(f"{result.detail} (fix: {result.remedy})")

    @property
    def size(self) -> tuple[int, int]:  # pragma: no cover - never constructed
        raise CaptureError("wayland capture is not available")

    @property
    def fps(self) -> float:  # pragma: no cover
        raise CaptureError("wayland capture is not available")

    def start(self) -> None:  # pragma: no cover
        raise CaptureError("wayland capture is not available")

    def stop(self) -> None:  # pragma: no cover
        return None

    def grab(self) -> CapturedFrame:  # pragma: no cover
        raise CaptureError("wayland capture is not available")
