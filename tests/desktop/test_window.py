"""The main window: titled "Wavry", views by keyboard (Ctrl+1…5, Tab), closing while sharing asks
whether to keep sharing in the tray (and remembers the answer when asked to), the tray's share
switch and recent computers, quitting stops sharing."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.conftest import free_udp_port
from tests.desktop.conftest import click, run, until
from wavry.desktop.sharing import ShareState
from wavry.desktop.window import VIEWS
from wavry.settings import DesktopSettings, HostSettings


def share(desk: Any) -> None:
    desk.prefs.save(HostSettings, {"source": "synthetic", "size": "320x240", "audio": "off",
                                   "listen": f"127.0.0.1:{free_udp_port()}"})  # fmt: skip


def test_title_and_keyboard_navigation(desk: Any) -> None:
    w = desk.window
    w.show()
    w.activateWindow()
    assert QTest.qWaitForWindowActive(w, 5000)
    assert w.windowTitle() == "Wavry"
    for i, name in enumerate(VIEWS):
        QTest.keyClick(w, Qt.Key(Qt.Key.Key_1 + i), Qt.KeyboardModifier.ControlModifier)
        assert w.current_view() == name
    QTest.keyClick(w, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    # the sidebar moves with the arrow keys; Tab reaches the address field and its button
    w.sidebar.setFocus()
    QTest.keyClick(w.sidebar, Qt.Key.Key_Down)
    assert w.current_view() == "this_computer"
    QTest.keyClick(w.sidebar, Qt.Key.Key_Up)
    seen = []
    for _ in range(8):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    c = w.computers
    assert c.address in seen and c.tree in seen
    # Enter in the address field connects (here: asks for an address first)
    c.address.setFocus()
    QTest.keyClick(c.address, Qt.Key.Key_Return)
    assert c.banner.isVisible() and "Type an address" in c.banner.label.text()


def _close_and_answer(desk: Any, button_text: str, remember: bool = False) -> QMessageBox:
    w = desk.window
    event = QCloseEvent()
    w.closeEvent(event)
    assert not event.isAccepted()
    box = w.close_question
    assert box is not None and box.isVisible()
    if remember:
        box.checkBox().setChecked(True)
    button = next(b for b in box.buttons() if b.text().replace("&", "") == button_text)
    click(button)
    return box


def test_closing_while_sharing_keeps_sharing_in_the_tray(desks: Any) -> None:
    desk = desks("a", tray=True)
    share(desk)
    w = desk.window
    assert w.tray is not None

    async def scenario() -> None:
        w.show()
        w.tray.share_action.trigger()  # the tray's switch
        await until(lambda: desk.sharing.state is ShareState.on, what="sharing on")
        assert w.tray.share_action.isChecked()
        box = _close_and_answer(desk, "Keep sharing in the tray", remember=True)
        assert box.text().startswith("This computer is shared.")
        assert not w.isVisible()
        assert desk.sharing.state is ShareState.on  # still sharing
        assert desk.prefs.desktop().close_while_sharing.value == "tray"
        # remembered: the next close goes to the tray without asking
        w.show()
        event = QCloseEvent()
        w.closeEvent(event)
        assert w.close_question is None and not w.isVisible()
        # the tray's Quit stops sharing and ends the app
        w.quit()
        await until(lambda: desk.quit_calls, what="quit")
        assert desk.sharing.state is ShareState.off

    run(desk, scenario(), 60)


def test_closing_while_sharing_can_stop_and_quit(desk: Any) -> None:
    share(desk)
    w = desk.window

    async def scenario() -> None:
        w.show()
        w.show_view("this_computer")
        click(w.this_computer.toggle)
        await until(lambda: desk.sharing.state is ShareState.on, what="sharing on")
        box = _close_and_answer(desk, "Stop sharing and quit")
        assert "no tray" in box.informativeText()
        await until(lambda: desk.quit_calls, what="quit")
        assert desk.sharing.state is ShareState.off
        assert desk.prefs.desktop().close_while_sharing.value == "ask"

    run(desk, scenario(), 60)


def test_cancel_keeps_the_window_and_sharing(desk: Any) -> None:
    share(desk)
    w = desk.window

    async def scenario() -> None:
        w.show()
        w.show_view("this_computer")
        click(w.this_computer.toggle)
        await until(lambda: desk.sharing.state is ShareState.on, what="sharing on")
        _close_and_answer(desk, "Cancel")
        assert w.isVisible() and desk.sharing.state is ShareState.on and not desk.quit_calls

    run(desk, scenario(), 60)


def test_closing_without_sharing_quits(desk: Any) -> None:
    async def scenario() -> None:
        desk.window.show()
        desk.window.closeEvent(QCloseEvent())
        await until(lambda: desk.quit_calls, what="quit")

    run(desk, scenario())


def test_the_tray_lists_recent_computers(desks: Any) -> None:
    desk = desks("a", tray=True)
    desk.prefs.remember("10.1.2.3:47800", "den", "d" * 43)
    tray = desk.window.tray
    tray.update_menu()
    actions = tray.recent_menu.actions()
    assert [a.text() for a in actions] == ["den"]
    desk.prefs.save(DesktopSettings, {"recent": []})
    tray.update_menu()
    assert [a.text() for a in tray.recent_menu.actions()] == ["(no recent computers)"]
