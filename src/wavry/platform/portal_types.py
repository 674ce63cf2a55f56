"""The xdg-desktop-portal client's vocabulary (wavry.platform.portal): the portal's constants,
its errors, what a started session granted, and the restore-token store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbus_fast import Variant

from wavry.atomicfile import atomic_write

__all__ = [
    "PortalCancelled",
    "PortalError",
    "PortalStream",
    "RestoreTokenStore",
    "StartResult",
    "parse_streams",
    "unwrap",
]

SOURCE_MONITOR, SOURCE_WINDOW, SOURCE_VIRTUAL = 1, 2, 4
CURSOR_HIDDEN, CURSOR_EMBEDDED, CURSOR_METADATA = 1, 2, 4
DEVICE_KEYBOARD, DEVICE_POINTER, DEVICE_TOUCHSCREEN = 1, 2, 4
PERSIST_NONE, PERSIST_TRANSIENT, PERSIST_PERSISTENT = 0, 1, 2


class PortalError(RuntimeError):
    """The portal is missing, refused, or failed; the message says what to do."""


class PortalCancelled(PortalError):
    """The user cancelled (code 1) or the portal ended (code 2) an interactive request."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PortalStream:
    """One PipeWire stream the portal granted: its node id and what the portal said about it."""

    node_id: int
    size: tuple[int, int] | None = None
    position: tuple[int, int] | None = None
    source_type: int = SOURCE_MONITOR
    stream_id: str = ""


@dataclass
class StartResult:
    streams: list[PortalStream]
    devices: int = 0
    restore_token: str = ""
    remote_desktop: bool = False


class RestoreTokenStore:
    """The portal restore tokens of the last session, per kind (screencast / remotedesktop)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from wavry.store import config_dir

            path = config_dir() / "portal-restore-token.json"
        self.path = path

    def load(self, kind: str) -> str:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return ""
        value = data.get(kind, "") if isinstance(data, dict) else ""
        return value if isinstance(value, str) else ""

    def save(self, kind: str, token: str) -> None:
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[kind] = token
        atomic_write(self.path, json.dumps(data).encode())


def unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Variant) else value


def _pair(value: Any) -> tuple[int, int] | None:
    v = unwrap(value)
    if isinstance(v, list | tuple) and len(v) == 2:
        return int(v[0]), int(v[1])
    return None


def parse_streams(raw: Any) -> list[PortalStream]:
    """``a(ua{sv})`` from a Start response → streams."""
    out = []
    for item in unwrap(raw) or []:
        node, props = int(item[0]), dict(item[1])
        out.append(
            PortalStream(
                node,
                _pair(props.get("size")),
                _pair(props.get("position")),
                int(unwrap(props.get("source_type", Variant("u", SOURCE_MONITOR)))),
                str(unwrap(props.get("id", Variant("s", "")))),
            )
        )
    return out
