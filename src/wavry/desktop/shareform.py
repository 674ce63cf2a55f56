"""What sharing uses — monitor, codec, start bitrate, frame rate, audio source — as one form
over the ``[host]`` table (This computer and Settings → Host both show it)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtWidgets import QComboBox, QFormLayout, QSpinBox, QWidget

from wavry.settings import HostSettings

__all__ = ["CODECS", "ShareSettingsForm", "audio_choices", "monitor_choices"]

CODECS = (("h264", "H.264 (every client)"), ("hevc", "HEVC"), ("av1", "AV1"))
CHOICES_FRESH_S = 30.0  # monitors and sound sources are asked again after this long

T = TypeVar("T")
_cache: dict[str, tuple[float, Any]] = {}


def _cached(name: str, make: Callable[[], T]) -> T:
    hit = _cache.get(name)
    if hit is not None and time.monotonic() - hit[0] < CHOICES_FRESH_S:
        return hit[1]  # type: ignore[no-any-return]
    value = make()
    _cache[name] = (time.monotonic(), value)
    return value


def monitor_choices(ask: bool = True) -> list[tuple[int | None, str]]:
    """(monitor id, label): "Automatic" and the X11 monitors when there is a display."""
    out: list[tuple[int | None, str]] = [(None, "Automatic (the whole screen / portal choice)")]
    if ask and os.environ.get("DISPLAY"):
        try:
            from wavry.media.x11 import list_monitors

            for m in list_monitors():
                out.append((m.id, f"{m.id}: {m.name} {m.width}×{m.height}"))
        except Exception:  # no X server answering: automatic only
            pass
    return out


def audio_choices_offline() -> list[tuple[str | None, str]]:
    """The --audio values every machine has (no sound server asked)."""
    return [
        (None, "Automatic (the system mix when a sound server answers)"),
        ("off", "Off"),
        ("system", "System mix"),
        ("mic", "Default microphone"),
    ]


def audio_choices() -> list[tuple[str | None, str]]:
    """(--audio value, label) for the sound sources this machine has."""
    out = audio_choices_offline()
    try:
        from wavry.platform.audio import AudioError, pactl

        text = pactl("list", "short", "sources", timeout=2.0)
    except (AudioError, OSError, ImportError):
        return out
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) > 1:
            out.append((f"source:{parts[1]}", f"Source: {parts[1]}"))
    return out


def select(combo: QComboBox, value: Any, label: str) -> None:
    """Select the entry holding ``value``; an unknown value gets an entry of its own."""
    index = combo.findData(value)
    if index < 0:
        combo.addItem(label, value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


class ShareSettingsForm(QWidget):
    """The choices (monitors, sound sources) are listed when the form is first shown, not when
    it is built or loaded: the app's window comes up without waiting for them. The values are
    there from :meth:`load` on."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._listed = False
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.monitor = QComboBox()
        self.codec = QComboBox()
        for value, label in CODECS:
            self.codec.addItem(label, value)
        self.bitrate = QSpinBox()
        self.bitrate.setRange(200, 500_000)
        self.bitrate.setSingleStep(1000)
        self.bitrate.setSuffix(" kbit/s")
        self.fps = QSpinBox()
        self.fps.setRange(1, 240)
        self.fps.setSuffix(" fps")
        self.audio = QComboBox()
        for label, w in (("&Monitor", self.monitor), ("&Codec", self.codec),
                         ("&Bitrate (start)", self.bitrate), ("&Frame rate", self.fps),
                         ("&Audio", self.audio)):  # fmt: skip
            w.setAccessibleName(label.replace("&", ""))
            form.addRow(label, w)
        self.load(HostSettings.model_validate({}))

    def load(self, s: HostSettings) -> None:
        select(self.codec, s.codec.value, s.codec.value)
        self.bitrate.setValue(s.bitrate_kbps or 8000)
        self.fps.setValue(s.fps or 60)
        self.monitor.clear()
        self.audio.clear()
        monitors, sounds = _cache.get("monitors"), _cache.get("audio")
        self._list(self.monitor, monitors[1] if monitors else monitor_choices(ask=False), s.monitor)
        self._list(self.audio, sounds[1] if sounds else audio_choices_offline(), s.audio)
        self._listed = bool(monitors and sounds)
        if self.isVisible() and not self._listed:
            self._list_choices()

    @staticmethod
    def _list(combo: QComboBox, choices: list[Any], value: Any) -> None:
        combo.clear()
        for v, label in choices:
            combo.addItem(label, v)
        select(combo, value, str(value))

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._listed:
            self._list_choices()

    def _list_choices(self) -> None:
        self._listed = True
        self._list(self.monitor, _cached("monitors", monitor_choices), self.monitor.currentData())
        self._list(self.audio, _cached("audio", audio_choices), self.audio.currentData())

    def values(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor.currentData(),
            "codec": self.codec.currentData(),
            "bitrate_kbps": self.bitrate.value(),
            "fps": self.fps.value(),
            "audio": self.audio.currentData(),
        }
