"""XChangeWatcher when the X server goes away while the watcher is being set up: the capture
must learn that its display is gone (CaptureLost, which ends the host with one line), not get a
python-xlib exception it does not know."""

from __future__ import annotations

from typing import Any

import pytest
from Xlib import error as xerror

import wavry.media.x11_changes as changes
from wavry.media.types import CaptureLost


class _ClosingDisplay:
    """A python-xlib display whose server closes the connection at the first DAMAGE request."""

    closed = False

    def query_extension(self, name: str) -> object:
        return object()

    def screen(self) -> Any:
        return type("S", (), {"root": object()})()

    def damage_query_version(self) -> None:
        raise xerror.ConnectionClosedError("server")

    def close(self) -> None:
        self.closed = True


def test_a_server_gone_during_set_up_is_capture_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    d = _ClosingDisplay()
    monkeypatch.setattr(changes, "open_display", lambda display, auth: d)
    with pytest.raises(CaptureLost, match="the X display :9 went away"):
        changes.XChangeWatcher(":9", (0, 0, 10, 10))
    assert d.closed
