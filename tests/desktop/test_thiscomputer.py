"""This computer against real clients: Share on runs the host runtime in the app (synthetic
picture), a real `wavry connect` asks to pair and the view shows the code with the client's name
and ID; the client pairs with that code, shows up with live figures, is disconnected with a
click; the trusted device is removed. A port that is taken is a readable line."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import WAVRY, env_for, free_udp_port
from tests.desktop.conftest import click, run, type_into, until
from wavry.desktop.sharing import ShareState
from wavry.settings import HostSettings
from wavry.store import load_or_create_identity

SHARE = {"source": "synthetic", "size": "320x240", "audio": "off"}


def client(home: Path, port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WAVRY, "connect", f"127.0.0.1:{port}", "--headless", "--timeout-seconds", "8", *args],
        env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_share_pair_a_client_watch_it_and_disconnect_it(
    desk: Any, tmp_path: Path, shot: Any
) -> None:
    port = free_udp_port()
    desk.prefs.save(HostSettings, {**SHARE, "listen": f"127.0.0.1:{port}", "name": "den"})
    view = desk.window.this_computer
    phone = tmp_path / "phone"
    phone_id = load_or_create_identity(phone / "wavry").wavry_id
    procs: list[subprocess.Popen[str]] = []

    async def scenario() -> None:
        desk.window.show()
        desk.window.show_view("this_computer")
        view.form.fps.setValue(30)
        click(view.toggle)
        await until(lambda: desk.sharing.state is ShareState.on, what="sharing on")
        assert f"127.0.0.1:{port}" in view.state_text.text()
        assert "Picture: synthetic 320x240@30" in view.state_text.text()
        assert not view.pairing_box.isVisible()
        # an unknown device connects: the view shows who asks, and the code to type there
        first = client(phone, port, "--seconds", "5")
        procs.append(first)
        await until(lambda: view.pairing_box.isVisible(), 60, "the pairing request")
        assert phone_id in view.pairing_text.text()
        code = view.pairing_code.text().replace(" ", "")
        assert len(code) == 6 and code.isdigit()
        shot(desk.window, "this-computer-pairing")
        await until(lambda: first.poll() is not None, what="the first client to give up")
        # the device types the code: paired, trusted, streaming, with live figures
        second = client(phone, port, "--seconds", "60", "--pair-code", code)
        procs.append(second)
        await until(lambda: view.clients.topLevelItemCount() == 1, 60, "the client in the list")
        await until(lambda: view.trusted.topLevelItemCount() == 1, what="the trusted device")
        assert view.trusted.topLevelItem(0).toolTip(1) == phone_id
        assert not view.pairing_box.isVisible()
        row = view.clients.topLevelItem(0)
        assert row.toolTip(0) == phone_id and row.text(1).startswith("127.0.0.1:")
        assert row.text(2) == "320×240@30"
        # the client's own latency window arrives within ~10 s
        await until(lambda: "ms" in view.clients.topLevelItem(0).text(3), 25, "latency figures")
        shot(desk.window, "this-computer")
        view.clients.setCurrentItem(view.clients.topLevelItem(0))
        click(view.disconnect_button)
        await until(lambda: second.poll() is not None, 10, "the client to be disconnected")
        await until(lambda: view.clients.topLevelItemCount() == 0, what="the list to empty")
        out = second.stdout.read() if second.stdout else ""
        assert "disconnected by the host's owner" in out, out
        view.trusted.setCurrentItem(view.trusted.topLevelItem(0))
        click(view.remove)
        assert view.trusted.topLevelItemCount() == 0
        assert "no longer trusted" in view.banner.label.text()
        click(view.toggle)
        await until(lambda: desk.sharing.state is ShareState.off, what="sharing off")
        assert view.form.isEnabled()

    try:
        run(desk, scenario(), 150)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(5)


def test_a_port_in_use_is_a_readable_line_and_nothing_runs(desk: Any) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    desk.prefs.save(HostSettings, {**SHARE, "listen": f"127.0.0.1:{port}"})
    view = desk.window.this_computer

    async def scenario() -> None:
        desk.window.show()
        desk.window.show_view("this_computer")
        click(view.toggle)
        await until(lambda: view.banner.isVisible(), what="the error")
        await until(lambda: desk.sharing.state is ShareState.off, what="sharing off")

    try:
        run(desk, scenario())
    finally:
        taken.close()
    text = view.banner.label.text()
    assert text == (
        f"cannot share this computer: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert not view.toggle.isChecked() and desk.sharing.runtime is None


def test_settings_are_saved_to_the_host_table_and_checked(desk: Any) -> None:
    view = desk.window.this_computer

    async def scenario() -> None:
        desk.window.show()
        desk.window.show_view("this_computer")
        await until(lambda: view.form.codec.count() == 3, what="the form")
        view.form.codec.setCurrentIndex(view.form.codec.findData("hevc"))
        view.form.bitrate.setValue(12000)
        view.form.fps.setValue(45)
        click(view.save_button)
        type_into(view.name, "studio")
        view.name.editingFinished.emit()

    run(desk, scenario())
    s = desk.prefs.host()
    assert (s.codec.value, s.bitrate_kbps, s.fps, s.name) == ("hevc", 12000, 45, "studio")
    assert view.banner.kind == "ok"
