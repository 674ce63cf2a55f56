"""Signing in to a gateway: sign in (with the TOTP step when the account has two-factor sign-in)
or create an account (then, optionally, turn two-factor sign-in on). Used by the first run and
by Settings → Account."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wavry.desktop.accounts import AccountService, TotpRequired
from wavry.desktop.dialogs import QrCode
from wavry.desktop.widgets import Banner, run_task

__all__ = ["SignInForm", "TotpSetup"]


def _password() -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    return edit


class TotpSetup(QWidget):
    """Turn two-factor sign-in on: password → a new secret (typed or scanned into an
    authenticator) → a code from it confirms. Emits ``done`` when it is on."""

    done = Signal()

    def __init__(self, account: AccountService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.account = account
        self.secret = ""
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.banner = Banner()
        lay.addWidget(self.banner)
        self.steps = QStackedWidget()
        lay.addWidget(self.steps)
        # step 1: the password
        first = QWidget()
        f1 = QFormLayout(first)
        f1.addRow(QLabel("Two-factor sign-in asks for a code from an authenticator app "
                         "each time you sign in on a new device."))  # fmt: skip
        self.password = _password()
        self.password.setAccessibleName("Account password")
        f1.addRow("Account &password", self.password)
        self.begin = QPushButton("&Next")
        self.begin.clicked.connect(self._begin)
        self.password.returnPressed.connect(self._begin)
        f1.addRow("", self.begin)
        self.steps.addWidget(first)
        # step 2: the secret and a code made from it
        second = QWidget()
        f2 = QFormLayout(second)
        self.qr_slot = QVBoxLayout()
        f2.addRow(self.qr_slot)
        self.secret_edit = QLineEdit()
        self.secret_edit.setReadOnly(True)
        self.secret_edit.setAccessibleName("TOTP secret")
        f2.addRow("Secret", self.secret_edit)
        self.code = QLineEdit()
        self.code.setPlaceholderText("6 digits from the authenticator")
        self.code.setAccessibleName("TOTP code")
        f2.addRow("&Code", self.code)
        self.enable = QPushButton("&Turn on")
        self.enable.clicked.connect(self._enable)
        self.code.returnPressed.connect(self._enable)
        f2.addRow("", self.enable)
        self.steps.addWidget(second)

    def _begin(self) -> None:
        def shown(result: tuple[str, str]) -> None:
            self.secret, uri = result
            self.secret_edit.setText(self.secret)
            while self.qr_slot.count():
                item = self.qr_slot.takeAt(0)
                old = item.widget() if item is not None else None
                if old is not None:
                    old.deleteLater()
            self.qr_slot.addWidget(QrCode(uri), 0, Qt.AlignmentFlag.AlignHCenter)
            self.steps.setCurrentIndex(1)
            self.code.setFocus()

        run_task(self.account.totp_setup(self.password.text()), self.banner, "", shown)

    def _enable(self) -> None:
        def enabled(_: Any) -> None:
            self.banner.show_message("Two-factor sign-in is on for this account.", "ok")
            self.done.emit()

        run_task(self.account.totp_enable(self.secret, self.code.text()), self.banner, "", enabled)


class SignInForm(QWidget):
    """Sign in or create an account on the gateway at ``url``; ``signed_in`` when done."""

    signed_in = Signal()

    def __init__(self, account: AccountService, url: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.account = account
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.banner = Banner()
        lay.addWidget(self.banner)
        top = QFormLayout()
        self.url = QLineEdit(url)
        self.url.setPlaceholderText("https://gateway.example.org")
        self.url.setAccessibleName("Gateway URL")
        top.addRow("&Gateway", self.url)
        lay.addLayout(top)
        self.tabs = QTabWidget()
        lay.addWidget(self.tabs)
        self.tabs.addTab(self._sign_in_page(), "&Sign in")
        self.tabs.addTab(self._register_page(), "Create an &account")
        self.after = QStackedWidget()  # after registering: offer two-factor sign-in
        self.after.hide()
        lay.addWidget(self.after)

    # ---- pages ----------------------------------------------------------------------------

    def _sign_in_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.login = QLineEdit()
        self.login.setAccessibleName("Username or e-mail")
        self.password = _password()
        self.password.setAccessibleName("Password")
        self.totp_label = QLabel("&Two-factor code")
        self.totp = QLineEdit()
        self.totp.setAccessibleName("Two-factor code")
        self.totp.setPlaceholderText("6 digits from your authenticator app")
        self.totp_label.setBuddy(self.totp)
        form.addRow("&Username or e-mail", self.login)
        form.addRow("&Password", self.password)
        form.addRow(self.totp_label, self.totp)
        self.totp_label.hide()
        self.totp.hide()
        self.sign_in_button = QPushButton("Sign &in")
        self.sign_in_button.setDefault(True)
        self.sign_in_button.clicked.connect(self.submit_sign_in)
        for edit in (self.login, self.password, self.totp):
            edit.returnPressed.connect(self.submit_sign_in)
        form.addRow("", self.sign_in_button)
        return page

    def _register_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.r_user = QLineEdit()
        self.r_user.setAccessibleName("Username")
        self.r_user.setPlaceholderText("3–32 of A-Z a-z 0-9 _ . -")
        self.r_email = QLineEdit()
        self.r_email.setAccessibleName("E-mail")
        self.r_name = QLineEdit()
        self.r_name.setAccessibleName("Display name")
        self.r_name.setPlaceholderText("optional: the username")
        self.r_password = _password()
        self.r_password.setAccessibleName("New password")
        self.r_confirm = _password()
        self.r_confirm.setAccessibleName("Repeat the password")
        form.addRow("&Username", self.r_user)
        form.addRow("&E-mail", self.r_email)
        form.addRow("&Display name", self.r_name)
        form.addRow("Pass&word", self.r_password)
        form.addRow("&Repeat it", self.r_confirm)
        self.register_button = QPushButton("&Create the account")
        self.register_button.clicked.connect(self.submit_register)
        self.r_confirm.returnPressed.connect(self.submit_register)
        form.addRow("", self.register_button)
        return page

    # ---- actions --------------------------------------------------------------------------

    def _busy(self, busy: bool) -> None:
        self.sign_in_button.setEnabled(not busy)
        self.register_button.setEnabled(not busy)

    def _check_url(self) -> str | None:
        url = self.url.text().strip()
        if not url:
            self.banner.error("Enter the gateway's address (its owner gives it to you).")
            self.url.setFocus()
            return None
        return url

    def submit_sign_in(self) -> None:
        url = self._check_url()
        if url is None or not self.sign_in_button.isEnabled():
            return
        if not self.login.text().strip() or not self.password.text():
            self.banner.error("Enter your username (or e-mail) and password.")
            return
        self._busy(True)

        async def go() -> None:
            try:
                await self.account.sign_in(
                    url, self.login.text(), self.password.text(), self.totp.text()
                )
            except TotpRequired:
                self.totp_label.show()
                self.totp.show()
                self.totp.setFocus()
                self.banner.show_message(
                    "This account has two-factor sign-in: enter the code from your "
                    "authenticator app.",
                    "info",
                )
                return
            finally:
                self._busy(False)
            self.banner.hide()
            self.signed_in.emit()

        run_task(go(), self.banner, "cannot sign in")

    def submit_register(self) -> None:
        url = self._check_url()
        if url is None or not self.register_button.isEnabled():
            return
        if self.r_password.text() != self.r_confirm.text():
            self.banner.error("The two passwords differ.")
            return
        self._busy(True)

        async def go() -> None:
            try:
                await self.account.register(
                    url,
                    self.r_email.text(),
                    self.r_user.text(),
                    self.r_password.text(),
                    self.r_name.text(),
                )
            finally:
                self._busy(False)
            self._offer_totp()

        run_task(go(), self.banner, "cannot create the account")

    def _offer_totp(self) -> None:
        """After registering: two-factor sign-in now, or later (Settings → Account)."""
        self.tabs.hide()
        self.banner.show_message(
            "Account created; this computer is signed in. Turn on two-factor sign-in now "
            "(recommended), or later in Settings → Account.",
            "ok",
        )
        box = QWidget()
        lay = QVBoxLayout(box)
        setup = TotpSetup(self.account)
        setup.password.setText(self.r_password.text())
        lay.addWidget(setup)
        later = QPushButton("&Not now")
        later.clicked.connect(self.signed_in.emit)
        setup.done.connect(self.signed_in.emit)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(later)
        lay.addLayout(row)
        self.after.addWidget(box)
        self.after.setCurrentWidget(box)
        self.after.show()
        setup.begin.setFocus()
