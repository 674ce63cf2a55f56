"""The app's settings: the ``[desktop]``, ``[host]`` and ``[connect]`` tables of the one
config.toml the CLI reads (docs/configuration.md), read through :func:`wavry.config.load` and
written table by table with :func:`wavry.config.update_section` (everything else in the file is
kept as it was)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypeVar

from wavry.config import CommandSettings, ConfigError, config_file, load, update_section
from wavry.settings import ConnectSettings, DesktopSettings, HostSettings, RecentConnection

__all__ = ["MAX_RECENT", "Prefs"]

MAX_RECENT = 8

S = TypeVar("S", bound=CommandSettings)


class Prefs:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_file()
        self.problem = ""  # the last configuration error (the app shows it once)

    def _load(self, cls: type[S]) -> S:
        """``cls`` from the file and environment; a bad value: the defaults, and ``problem``
        says what was wrong (the app starts anyway and shows it)."""
        try:
            return load(cls, self.path)
        except ConfigError as exc:
            self.problem = str(exc)
            return cls.model_validate({})

    def desktop(self) -> DesktopSettings:
        return self._load(DesktopSettings)

    def host(self) -> HostSettings:
        """The settings sharing starts with (raises ConfigError: sharing must not start on a
        configuration other than the one the user wrote)."""
        return load(HostSettings, self.path)

    def connect(self) -> ConnectSettings:
        return self._load(ConnectSettings)

    def save(self, cls: type[CommandSettings], values: dict[str, Any]) -> None:
        """Set keys of ``[cls.section]`` (None: back to the default). Raises ConfigError with
        what is wrong; the file is then unchanged."""
        update_section(cls, values, self.path)

    def remember(self, target: str, name: str = "", wavry_id: str = "") -> None:
        """Put a connection at the top of the recent list."""
        kept = [r for r in self.desktop().recent if r.target != target][: MAX_RECENT - 1]
        entry = RecentConnection(target=target, name=name, wavry_id=wavry_id, at=time.time())
        self.save(DesktopSettings, {"recent": [r.model_dump() for r in [entry, *kept]]})

    def forget_recent(self, target: str) -> None:
        kept = [r.model_dump() for r in self.desktop().recent if r.target != target]
        self.save(DesktopSettings, {"recent": kept})
