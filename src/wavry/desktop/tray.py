"""The tray icon, where the desktop offers one (QSystemTrayIcon.isSystemTrayAvailable): show the
window, share on/off, quick connect to recent computers, quit."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from wavry.desktop.icon import app_icon
from wavry.desktop.prefs import Prefs
from wavry.desktop.sharing import ShareState, SharingController

__all__ = ["Tray"]


class Tray(QSystemTrayIcon):
    def __init__(
        self,
        prefs: Prefs,
        sharing: SharingController,
        show: Callable[[], None],
        toggle_share: Callable[[], None],
        connect: Callable[[str, str, str], None],
        quit_app: Callable[[], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(app_icon(), parent)
        self.prefs, self.sharing = prefs, sharing
        self._connect = connect
        self.menu = QMenu(parent)
        self.show_action = QAction("Show Wavry", self.menu)
        self.show_action.triggered.connect(show)
        self.share_action = QAction("Share this computer", self.menu)
        self.share_action.setCheckable(True)
        self.share_action.triggered.connect(lambda _checked: toggle_share())
        self.recent_menu = QMenu("Connect to", self.menu)
        quit_action = QAction("Quit Wavry", self.menu)
        quit_action.triggered.connect(quit_app)
        self.menu.addAction(self.show_action)
        self.menu.addAction(self.share_action)
        self.menu.addMenu(self.recent_menu)
        self.menu.addSeparator()
        self.menu.addAction(quit_action)
        self.menu.aboutToShow.connect(self.update_menu)
        self.setContextMenu(self.menu)
        self.activated.connect(
            lambda reason: show() if reason == QSystemTrayIcon.ActivationReason.Trigger else None
        )
        sharing.state_changed.connect(lambda _s: self.update_state())
        self.update_state()
        self.update_menu()

    def update_state(self) -> None:
        on = self.sharing.state is ShareState.on
        self.setIcon(app_icon(sharing=on))
        self.setToolTip("Wavry: sharing this computer" if on else "Wavry")
        self.share_action.setChecked(on)
        self.share_action.setEnabled(self.sharing.state in (ShareState.on, ShareState.off))

    def update_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.prefs.desktop().recent
        for r in recent:
            action = self.recent_menu.addAction(r.name or r.target)
            action.triggered.connect(
                lambda _c=False, r=r: self._connect(r.target, r.wavry_id, r.name or r.target)
            )
        if not recent:
            none = self.recent_menu.addAction("(no recent computers)")
            none.setEnabled(False)
