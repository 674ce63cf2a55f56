"""Connect from the app to real `wavry host` processes: the stream runs as a `wavry connect
--events-json -` child (headless here: no display on the offscreen platform; the Xvfb flow opens
its window), the pairing-code dialog when the host asks, a wrong code asked again, the
changed-identity dialog that retries only after the user confirms, the live session panel's
figures, Disconnect, and an unreachable host as one readable line."""

from __future__ import annotations

from typing import Any

from tests.desktop.conftest import click, run, type_into, until
from wavry.desktop.dialogs import IdentityChangedDialog, PairingCodeDialog
from wavry.settings import ConnectSettings
from wavry.store import KnownHosts


def headless(desk: Any, **more: Any) -> None:
    desk.prefs.save(ConnectSettings, {"headless": True, "timeout_seconds": 8, **more})


def test_pair_by_code_then_watch_the_live_session(desk: Any, hosts: Any, shot: Any) -> None:
    host = hosts("den")
    headless(desk)
    view, panel = desk.window.computers, desk.window.session

    async def scenario() -> None:
        desk.window.show()
        type_into(view.address, f"127.0.0.1:{host.port}")
        view.connect_typed()
        await until(lambda: isinstance(view.dialog, PairingCodeDialog), 20, "the pairing dialog")
        dialog = view.dialog
        assert dialog.isVisible() and f"127.0.0.1:{host.port}" in dialog.findChildren(
            type(dialog.error))[0].text()  # fmt: skip
        shot(dialog, "pairing-dialog")
        assert not dialog.ok.isEnabled()
        type_into(dialog.edit, "12")
        assert not dialog.ok.isEnabled()  # not 6 digits yet
        await until(lambda: host.code(), 10, "the host's code")
        type_into(dialog.edit, f"{host.code()[:3]} {host.code()[3:]}")
        click(dialog.ok)
        await until(lambda: desk.stream.state == "streaming", 20, "streaming")
        assert desk.window.current_view() == "session"
        assert "den" in panel.heading.text() or host.wavry_id[:8] in panel.subtitle.text()
        await until(lambda: len(panel.plot.points) >= 10, 30, "ten seconds of figures")
        assert panel.plot.points[-1][1] is not None
        f = panel.fields
        assert f["latency"].text().endswith(" ms") and " / " in f["latency"].text()
        assert f["path"].text().startswith("direct")
        assert f["bitrate"].text().endswith("Mbit/s")
        assert all(v.text().endswith(" ms") for k, v in panel.stage_values.items()
                   if k in ("capture", "encode", "network", "decode"))  # fmt: skip
        shot(desk.window, "session")
        click(panel.disconnect_button)
        await until(lambda: not desk.stream.running, 10, "the stream to end")
        assert desk.stream.error == ""
        assert not view.banner.isVisible()
        assert desk.stream.summary["frames_presented"] > 0

    run(desk, scenario(), 120)
    recent = desk.prefs.desktop().recent
    assert recent[0].target == f"127.0.0.1:{host.port}" and recent[0].wavry_id == host.wavry_id
    assert any("paired and trusted" in ln for ln in host.lines)


def test_a_wrong_code_is_asked_again_and_cancel_ends_it(desk: Any, hosts: Any) -> None:
    host = hosts("den")
    headless(desk)
    view = desk.window.computers

    async def scenario() -> None:
        desk.window.show()
        type_into(view.address, f"127.0.0.1:{host.port}")
        view.connect_typed()
        await until(lambda: isinstance(view.dialog, PairingCodeDialog), 20, "the pairing dialog")
        await until(lambda: host.code(), 10, "the host's code")
        wrong = "000000" if host.code() != "000000" else "111111"
        first = view.dialog
        type_into(first.edit, wrong)
        click(first.ok)
        await until(lambda: view.dialog is not None and view.dialog is not first, 20, "asked again")
        again = view.dialog
        assert again.error.isVisible() and "wrong code" in again.error.text()
        again.reject()
        await until(lambda: not desk.stream.running, 20, "the stream to give up")
        assert view.banner.isVisible() and view.banner.kind == "error"
        assert "Traceback" not in view.banner.label.text()

    run(desk, scenario(), 90)
    assert desk.prefs.desktop().recent == []


def test_changed_identity_needs_confirmation_before_retrying(
    desk: Any, hosts: Any, shot: Any
) -> None:
    first = hosts("first", None, "--trust", "any")
    port = first.port
    headless(desk, seconds=2)
    view = desk.window.computers

    async def scenario() -> None:
        desk.window.show()
        type_into(view.address, f"127.0.0.1:{port}")
        view.connect_typed()  # pins the first host's identity for that address
        await until(lambda: desk.stream.state == "streaming", 20, "the first stream")
        await until(lambda: not desk.stream.running, 20, "its two seconds")
        first.stop()
        second = hosts("second", port, "--trust", "any")  # reinstalled: a new identity
        assert second.wavry_id != first.wavry_id
        view.connect_typed()
        await until(lambda: isinstance(view.dialog, IdentityChangedDialog), 20, "the warning")
        dialog = view.dialog
        texts = " ".join(e.text() for e in dialog.findChildren(type(view.address)))
        assert first.wavry_id in texts and second.wavry_id in texts
        assert not dialog.retry.isEnabled()  # nothing until the user confirms
        shot(dialog, "identity-dialog")
        click(dialog.confirm)
        assert dialog.retry.isEnabled()
        click(dialog.retry)
        await until(lambda: desk.stream.state == "streaming", 20, "the stream to the new host")
        pins = KnownHosts(desk.home / "wavry").load()
        assert pins[f"127.0.0.1:{port}"].wavry_id == second.wavry_id

    run(desk, scenario(), 120)


def test_refusing_the_changed_identity_keeps_the_pin(desk: Any, hosts: Any) -> None:
    first = hosts("first", None, "--trust", "any")
    port = first.port
    headless(desk, seconds=1)
    view = desk.window.computers

    async def scenario() -> None:
        desk.window.show()
        type_into(view.address, f"127.0.0.1:{port}")
        view.connect_typed()
        await until(lambda: desk.stream.state == "streaming", 20, "the first stream")
        await until(lambda: not desk.stream.running, 20, "its second")
        first.stop()
        hosts("second", port, "--trust", "any")
        view.connect_typed()
        await until(lambda: isinstance(view.dialog, IdentityChangedDialog), 20, "the warning")
        view.dialog.reject()
        await until(lambda: not desk.stream.running, 20, "the stream to give up")
        assert view.banner.kind == "error"

    run(desk, scenario(), 90)
    pins = KnownHosts(desk.home / "wavry").load()
    assert pins[f"127.0.0.1:{port}"].wavry_id == first.wavry_id


def test_an_unreachable_host_is_one_readable_line(desk: Any) -> None:
    from tests.conftest import free_udp_port

    headless(desk, timeout_seconds=1)
    view = desk.window.computers
    port = free_udp_port()

    async def scenario() -> None:
        desk.window.show()
        type_into(view.address, f"127.0.0.1:{port}")
        view.connect_typed()
        await until(lambda: not desk.stream.running and view.banner.isVisible(), 30, "the error")

    run(desk, scenario(), 60)
    text = view.banner.label.text()
    assert text.startswith(f"127.0.0.1:{port}: ")
    assert "nothing answers" in text or "no answer" in text, text
    assert "\n" not in text and "Traceback" not in text
