"""The parts of the Wayland back-ends that need no compositor: choosing a path, reading Mutter's
monitor list, Mutter's clipboard MIME lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbus_fast import Variant

from wavry.platform.mutter import parse_monitors, probe_mutter
from wavry.platform.mutter_clipboard import _mime_list
from wavry.platform.screencast import CastError, doctor_probes, select_wayland_path


def _mode(w: int, h: int, current: bool) -> tuple[object, ...]:
    return (f"{w}x{h}@60", w, h, 60.0, 1.0, [1.0], {"is-current": Variant("b", current)})


def test_monitors_primary_first_with_current_mode_and_scale() -> None:
    state = [
        1,
        [
            (("HDMI-1", "ACME", "A", "1"), [_mode(1920, 1080, True), _mode(1280, 720, False)], {}),
            (("eDP-1", "ACME", "B", "2"), [_mode(2560, 1600, True)], {}),
        ],
        [
            (0, 0, 1.0, 0, False, [("HDMI-1", "ACME", "A", "1")], {}),
            (1920, 0, 2.0, 0, True, [("eDP-1", "ACME", "B", "2")], {}),
        ],
        {},
    ]
    mons = parse_monitors(state)
    assert [m.connector for m in mons] == ["eDP-1", "HDMI-1"]
    assert mons[0].primary and mons[0].size == (1280, 800) and mons[0].position == (1920, 0)
    assert mons[1].size == (1920, 1080)


def test_mime_list_as_mutter_43_sends_it() -> None:
    assert _mime_list((["text/plain", "UTF8_STRING"],)) == ["text/plain", "UTF8_STRING"]
    assert _mime_list(["text/plain"]) == ["text/plain"]
    assert _mime_list(None) == []


def test_forced_path_and_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVRY_WAYLAND_PATH", "portal")
    assert select_wayland_path().name == "portal"
    monkeypatch.setenv("WAVRY_WAYLAND_PATH", "kwin")
    assert select_wayland_path().name == "kwin"
    monkeypatch.setenv("WAVRY_WAYLAND_PATH", "sway")
    with pytest.raises(CastError, match="not a Wayland path"):
        select_wayland_path()


def test_no_bus_says_so_for_every_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WAVRY_WAYLAND_PATH", raising=False)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "KDE")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not probe_mutter().ok
    path = select_wayland_path()
    assert path.name == "portal" and path.reason.startswith("no usable path")
    probes = {r.name: r for r in doctor_probes()}
    assert probes["wayland-path"].ok is False and probes["wayland-path"].remedy
    assert "GNOME only" in probes["mutter"].remedy
    assert "plasma-workspace" in probes["portal"].remedy  # what Plasma's portal needs
    assert not probes["kwin"].ok and "WAYLAND_DISPLAY" in probes["kwin"].detail


def test_host_virtual_with_wayland_source_is_a_gnome_virtual_monitor() -> None:
    from wavry.host.options import options_from_settings
    from wavry.settings import HostSettings

    wayland = options_from_settings(HostSettings(source="wayland", virtual=True, size="1024x768"))
    assert wayland.source == "wayland" and wayland.virtual == (1024, 768)
    xvfb = options_from_settings(HostSettings(virtual=True, size="800x600"))
    assert xvfb.source == "virtual" and xvfb.virtual == (800, 600)
    plain = options_from_settings(HostSettings(source="wayland"))
    assert plain.source == "wayland" and plain.virtual is None
