"""Settings write the tables the CLI reads ([connect], [host], [desktop]) and read back what is
there; a bad value is a readable line and changes nothing; the hotkeys shown are the stream
window's."""

from __future__ import annotations

from typing import Any

from tests.desktop.conftest import click, run, type_into
from wavry.config import load
from wavry.settings import ConnectSettings, DesktopSettings, HostSettings


def test_client_host_network_and_app_settings_round_trip(desk: Any, shot: Any) -> None:
    desk.prefs.path.parent.mkdir(parents=True, exist_ok=True)
    desk.prefs.path.write_text('[gateway]\nlisten = "0.0.0.0:9000"  # kept\n')
    view = desk.window.settings

    async def scenario() -> None:
        desk.window.show()
        desk.window.show_view("settings")
        view.tabs.setCurrentIndex(0)
        view.fullscreen.setChecked(True)
        view.client_fps.setValue(90)
        view.decoder.setCurrentIndex(view.decoder.findData("auto"))
        view.play_audio.setChecked(False)
        view.mic.setCurrentIndex(view.mic.findData("default"))
        shot(desk.window, "settings")
        assert view.apply_client()
        view.tabs.setCurrentIndex(1)
        type_into(view.host_name, "living-room")
        view.port.setValue(47900)
        view.share_form.fps.setValue(50)
        assert view.apply_host()
        view.tabs.setCurrentIndex(2)
        click(view.use_gateway)
        type_into(view.gateway_url, "gw.example.org/")
        assert view.apply_network()
        view.tabs.setCurrentIndex(5)
        view.close_action.setCurrentIndex(view.close_action.findData("tray"))
        assert view.apply_app()

    run(desk, scenario())
    path = desk.prefs.path
    c = load(ConnectSettings, path)
    assert (c.fullscreen, c.fps, c.hwdecode, c.audio, c.mic) == (True, 90, "auto", False, "default")
    h = load(HostSettings, path)
    assert (h.name, h.listen, h.fps) == ("living-room", "0.0.0.0:47900", 50)
    d = load(DesktopSettings, path)
    assert (d.network.value, d.gateway_url) == ("gateway", "https://gw.example.org")
    assert d.close_while_sharing.value == "tray"
    assert '[gateway]\nlisten = "0.0.0.0:9000"  # kept' in path.read_text()

    # a fresh app reads them back
    view.load()
    assert view.fullscreen.isChecked() and view.client_fps.value() == 90
    assert not view.play_audio.isChecked() and view.mic.currentData() == "default"
    assert view.host_name.text() == "living-room" and view.port.value() == 47900
    assert view.use_gateway.isChecked() and view.gateway_url.text() == "https://gw.example.org"


def test_a_bad_value_is_a_readable_line_and_changes_nothing(desk: Any) -> None:
    desk.prefs.path.parent.mkdir(parents=True, exist_ok=True)
    desk.prefs.path.write_text("[host]\nfps = 30\n")
    view = desk.window.settings
    view.load()
    view.share_form.bitrate.setValue(200)
    view.share_form.fps.setValue(30)
    # a start bitrate above the ceiling the file keeps is refused by the settings model
    desk.prefs.path.write_text("[host]\nfps = 30\nmax_bitrate_kbps = 300\n")
    view.share_form.bitrate.setValue(5000)
    assert not view.apply_host()
    assert view.banner.kind == "error"
    assert "host settings not saved" in view.banner.label.text()
    assert view.banner.label.text() == (
        "host settings not saved: [host]: --max-bitrate-kbps (300) is below --bitrate-kbps "
        "(5000): the start bitrate must not exceed the ceiling"
    )
    assert desk.prefs.path.read_text() == "[host]\nfps = 30\nmax_bitrate_kbps = 300\n"


def test_the_hotkeys_shown_are_the_stream_windows() -> None:
    import sdl2

    from wavry.client.window import _HOTKEYS
    from wavry.desktop.settings_view import HOTKEYS

    letters = {sdl2.SDL_GetScancodeName(code).decode().upper() for code in _HOTKEYS}
    shown = {keys.rsplit("+", 1)[1] for keys, _what in HOTKEYS}
    assert shown == letters
    assert all(keys.startswith("Ctrl+Alt+Shift+") for keys, _ in HOTKEYS)
