"""The first run: this network only, or a gateway (then sign in or create an account — with the
TOTP step — or skip). The choice goes to ``[desktop]`` of config.toml."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wavry.account.client import normalize_url
from wavry.config import ConfigError
from wavry.desktop.accounts import AccountService
from wavry.desktop.prefs import Prefs
from wavry.desktop.signin import SignInForm
from wavry.desktop.widgets import Banner, title
from wavry.settings import DesktopSettings, NetworkMode

__all__ = ["FirstRunDialog"]


def _text(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


class FirstRunDialog(QDialog):
    """Emits ``completed`` once the choices are saved (after signing in, or skipping it)."""

    completed = Signal()

    def __init__(self, prefs: Prefs, account: AccountService, parent: QWidget | None = None):
        super().__init__(parent)
        self.prefs = prefs
        self.account = account
        self.setWindowTitle("Wavry: welcome")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        self.banner = Banner()
        lay.addWidget(self.banner)
        self.pages = QStackedWidget()
        lay.addWidget(self.pages)
        self.pages.addWidget(self._choice_page())
        self.pages.addWidget(self._sign_in_page())

    def _choice_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(title("Welcome to Wavry"))
        lay.addWidget(
            _text(
                "Wavry shows other computers' screens here and can share this one. How will "
                "you reach them?"
            )
        )
        self.lan = QRadioButton("&This network only: computers on this LAN, or by address")
        self.gateway = QRadioButton(
            "With a &gateway: your computers by name from anywhere, with an account"
        )
        group = QButtonGroup(self)
        group.addButton(self.lan)
        group.addButton(self.gateway)
        self.lan.setChecked(True)
        lay.addWidget(self.lan)
        lay.addWidget(self.gateway)
        row = QHBoxLayout()
        row.addSpacing(24)
        self.url = QLineEdit(self.prefs.desktop().gateway_url)
        self.url.setPlaceholderText("Gateway URL, e.g. https://gateway.example.org")
        self.url.setAccessibleName("Gateway URL")
        self.url.setEnabled(False)
        row.addWidget(self.url)
        lay.addLayout(row)
        self.gateway.toggled.connect(self.url.setEnabled)
        self.gateway.toggled.connect(lambda on: on and self.url.setFocus())
        lay.addWidget(
            _text(
                "A gateway is run by you, your team or a friend (`wavry gateway`); you can "
                "change this later in Settings → Network."
            )
        )
        lay.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.next = QPushButton("&Continue")
        self.next.setDefault(True)
        self.next.clicked.connect(self.choose)
        self.url.returnPressed.connect(self.choose)
        buttons.addWidget(self.next)
        lay.addLayout(buttons)
        return page

    def _sign_in_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(title("Sign in"))
        lay.addWidget(
            _text(
                "Sign in to see your computers and to let the ones you share be reached by "
                "name. You can skip this and sign in later in Settings → Account."
            )
        )
        self.form = SignInForm(self.account)
        self.form.signed_in.connect(self._done)
        lay.addWidget(self.form)
        lay.addStretch(1)
        buttons = QHBoxLayout()
        back = QPushButton("&Back")
        back.clicked.connect(lambda: self.pages.setCurrentIndex(0))
        skip = QPushButton("S&kip signing in")
        skip.clicked.connect(self._done)
        buttons.addWidget(back)
        buttons.addStretch(1)
        buttons.addWidget(skip)
        lay.addLayout(buttons)
        return page

    def choose(self) -> None:
        if self.lan.isChecked():
            if self._save(NetworkMode.lan, self.prefs.desktop().gateway_url):
                self._done()
            return
        url = self.url.text().strip()
        if not url:
            self.banner.error("Enter the gateway's URL, or choose “This network only”.")
            self.url.setFocus()
            return
        url = normalize_url(url)
        if not self._save(NetworkMode.gateway, url):
            return
        self.banner.hide()
        self.form.url.setText(url)
        self.pages.setCurrentIndex(1)
        self.form.login.setFocus()

    def _save(self, mode: NetworkMode, url: str) -> bool:
        try:
            self.prefs.save(DesktopSettings, {"network": mode.value, "gateway_url": url})
        except ConfigError as exc:
            self.banner.error(f"cannot save the choice: {exc}")
            return False
        return True

    def _done(self) -> None:
        try:
            self.prefs.save(DesktopSettings, {"set_up": True})
        except ConfigError as exc:
            self.banner.error(f"cannot save the choice: {exc}")
            return
        self.completed.emit()
        self.accept()
