"""The plain values of the host and client settings (no pydantic here: the CLI imports these to
declare its options, and `wavry --help` should not pay for the settings machinery)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_WEB_PORT",
    "GIB",
    "CaptureMode",
    "CodecName",
    "SourceName",
    "TrustMode",
]

DEFAULT_PORT = 47800
DEFAULT_WEB_PORT = 47801
GIB = 1024**3


class TrustMode(StrEnum):
    paired = "paired"
    any = "any"


class SourceName(StrEnum):
    synthetic = "synthetic"
    x11 = "x11"
    wayland = "wayland"
    virtual = "virtual"


class CaptureMode(StrEnum):
    change = "change"  # when the screen changes (X11 DAMAGE), at most --fps
    clock = "clock"  # every frame interval


class CodecName(StrEnum):
    h264 = "h264"
    hevc = "hevc"
    av1 = "av1"
