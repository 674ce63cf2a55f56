"""The main window, titled "Wavry": a sidebar of views (Computers, This computer, Live session,
Diagnostics, Settings; Ctrl+1…5), a status bar (account, sharing, stream), the tray icon where
the desktop has one, and closing while sharing (keep sharing in the tray, or stop and quit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QSystemTrayIcon,
    QWidget,
)

from wavry.config import ConfigError
from wavry.desktop.accounts import AccountService
from wavry.desktop.computers import ComputersView, Target
from wavry.desktop.diagnostics import DiagnosticsView
from wavry.desktop.icon import app_icon
from wavry.desktop.prefs import Prefs
from wavry.desktop.session import SessionPanel
from wavry.desktop.settings_view import SettingsView
from wavry.desktop.sharing import ShareState, SharingController
from wavry.desktop.streaming import StreamController
from wavry.desktop.thiscomputer import ThisComputerView
from wavry.desktop.widgets import run_task
from wavry.settings import CloseAction, DesktopSettings

__all__ = ["VIEWS", "MainWindow"]

VIEWS = ("computers", "this_computer", "session", "diagnostics", "settings")
LABELS = ("Computers", "This computer", "Live session", "Diagnostics", "Settings")


class MainWindow(QMainWindow):
    def __init__(
        self,
        prefs: Prefs,
        account: AccountService,
        sharing: SharingController,
        stream: StreamController,
        wavry_id: str,
        tray: bool | None = None,
    ) -> None:
        super().__init__()
        self.prefs, self.account, self.sharing, self.stream = prefs, account, sharing, stream
        self.setWindowTitle("Wavry")
        self.setWindowIcon(app_icon())
        self.setMinimumSize(QSize(880, 560))
        self.quitting = False
        self.close_question: QMessageBox | None = None
        self.on_quit: Callable[[], None] = QApplication.quit  # what ends the app at the end

        self.computers = ComputersView(prefs, account, stream, wavry_id)
        self.this_computer = ThisComputerView(prefs, sharing, wavry_id)
        self.session = SessionPanel(stream)
        self.diagnostics = DiagnosticsView()
        self.settings = SettingsView(prefs, account)
        self.views: dict[str, QWidget] = dict(zip(VIEWS, (
            self.computers, self.this_computer, self.session, self.diagnostics, self.settings
        ), strict=True))  # fmt: skip

        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setAccessibleName("Views")
        self.sidebar.setFixedWidth(
            max(180, self.fontMetrics().horizontalAdvance("This computer") + 64)
        )
        self.stack = QStackedWidget()
        for i, (name, label) in enumerate(zip(VIEWS, LABELS, strict=True)):
            item = QListWidgetItem(label)
            item.setToolTip(f"{label} (Ctrl+{i + 1})")
            self.sidebar.addItem(item)
            self.stack.addWidget(self.views[name])
            shortcut = QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self)
            shortcut.activated.connect(lambda i=i: self.show_view(VIEWS[i]))
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        lay.addWidget(self.sidebar)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        QShortcut(QKeySequence.StandardKey.Quit, self).activated.connect(self.quit)

        self.account_state = QLabel()
        self.share_state = QLabel()
        self.stream_state = QLabel()
        for w in (self.account_state, self.share_state, self.stream_state):
            self.statusBar().addPermanentWidget(w)
        account.changed.connect(self.update_status)
        sharing.state_changed.connect(lambda _s: self.update_status())
        sharing.pairing_requested.connect(self._pairing_requested)
        stream.state_changed.connect(lambda *_: self.update_status())
        self.computers.stream_opened.connect(lambda: self.show_view("session"))

        self.tray: Any = None
        if QSystemTrayIcon.isSystemTrayAvailable() if tray is None else tray:
            from wavry.desktop.tray import Tray

            self.tray = Tray(prefs, sharing, self.bring_up, self.toggle_sharing,
                             self.connect_to, self.quit, self)  # fmt: skip
            self.tray.show()
        self.show_view("computers")
        self.update_status()
        if prefs.problem:
            self.statusBar().showMessage(f"configuration: {prefs.problem}", 15000)

    # ---- navigation -------------------------------------------------------------------------

    def show_view(self, name: str) -> None:
        self.sidebar.setCurrentRow(VIEWS.index(name))

    def current_view(self) -> str:
        return VIEWS[self.stack.currentIndex()]

    def bring_up(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def update_status(self) -> None:
        self.account_state.setText(f"Account: {self.account.summary()}")
        self.share_state.setText({
            ShareState.off: "Not sharing",
            ShareState.starting: "Starting to share…",
            ShareState.on: "Sharing this computer",
            ShareState.stopping: "Stopping sharing…",
        }[self.sharing.state])  # fmt: skip
        s = self.stream
        self.stream_state.setText(
            f"Stream: {s.label} ({s.state})" if s.running else "No stream open"
        )

    def _pairing_requested(self, notice: Any) -> None:
        """A device asks to pair while the window is hidden or elsewhere: bring up the code."""
        if notice is None or not hasattr(notice, "wavry_id"):
            return
        self.show_view("this_computer")
        if self.tray is not None and not self.isVisible():
            self.tray.showMessage(
                "Wavry: a device asks to pair",
                f"{notice.name or notice.wavry_id} asks to connect; its code is in the window.",
            )
            self.bring_up()

    # ---- tray actions -----------------------------------------------------------------------

    def toggle_sharing(self) -> None:
        if self.sharing.state is ShareState.off:
            self.this_computer._toggle()
        elif self.sharing.state is ShareState.on:
            run_task(self.sharing.stop(), self.this_computer.banner, "stopping sharing")

    def connect_to(self, target: str, wavry_id: str, label: str) -> None:
        self.bring_up()
        self.show_view("computers")
        self.computers.open(Target(target, label, wavry_id))

    # ---- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.quitting or self.sharing.state is ShareState.off:
            event.accept()
            self.quit()
            return
        event.ignore()
        choice = self.prefs.desktop().close_while_sharing
        if choice is CloseAction.tray and self.tray is not None:
            self.to_tray()
        elif choice is CloseAction.quit:
            self.quit()
        else:
            self.ask_on_close()

    def ask_on_close(self) -> None:
        """Sharing and the window closes: keep sharing in the tray, or stop and quit."""
        if self.close_question is not None:
            return
        box = QMessageBox(self)
        box.setWindowTitle("Wavry: still sharing")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText("This computer is shared. Keep sharing after the window closes?")
        keep = None
        if self.tray is not None:
            box.setInformativeText("Wavry stays in the tray; its menu stops sharing or quits.")
            keep = box.addButton("&Keep sharing in the tray", QMessageBox.ButtonRole.AcceptRole)
        else:
            box.setInformativeText("This desktop has no tray: closing stops sharing.")
        stop = box.addButton("&Stop sharing and quit", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        remember = QCheckBox("&Do not ask again")
        box.setCheckBox(remember)
        box.setDefaultButton(keep or stop)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self.close_question = box

        def answered(_result: int) -> None:
            self.close_question = None
            clicked = box.clickedButton()
            action = CloseAction.tray if clicked is keep and keep is not None else (
                CloseAction.quit if clicked is stop else None
            )  # fmt: skip
            if action is None:
                return
            if remember.isChecked():
                with contextlib.suppress(ConfigError):
                    self.prefs.save(DesktopSettings, {"close_while_sharing": action.value})
            if action is CloseAction.tray:
                self.to_tray()
            else:
                self.quit()

        box.finished.connect(answered)
        box.open()

    def to_tray(self) -> None:
        self.hide()
        if self.tray is not None:
            self.tray.showMessage("Wavry", "Still sharing this computer; the tray menu stops it.")

    def quit(self) -> None:
        """Stop sharing and the stream, then end the app."""
        if self.quitting and self.sharing.state is not ShareState.off:
            return
        self.quitting = True
        self.stream.stop()

        async def finish() -> None:
            await self.sharing.stop()
            for _ in range(50):  # the stream closes its window and session (≤ 5 s)
                if not self.stream.running:
                    break
                await asyncio.sleep(0.1)
            if self.tray is not None:
                self.tray.hide()
            self.on_quit()

        run_task(finish(), None, "quitting")
