"""Settings, persisted in config.toml (shared with the CLI): the client (``[connect]``), the host
(``[host]``), the network (gateway), the stream window's hotkeys (shown), the account (devices,
two-factor sign-in, sign out) and the app itself (``[desktop]``)."""

from __future__ import annotations

import socket
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wavry.account.client import normalize_url
from wavry.config import CommandSettings, ConfigError
from wavry.desktop.accounts import AccountService
from wavry.desktop.errors import log_file
from wavry.desktop.prefs import Prefs
from wavry.desktop.shareform import ShareSettingsForm, select
from wavry.desktop.signin import SignInForm, TotpSetup
from wavry.desktop.widgets import Banner, run_task, short_id, title
from wavry.settings import (
    DEFAULT_PORT,
    CloseAction,
    ConnectSettings,
    DesktopSettings,
    HostSettings,
    NetworkMode,
)

__all__ = ["HOTKEYS", "SettingsView"]

#: the stream window's hotkeys (wavry.client.window; a test keeps the two in step)
HOTKEYS = (
    ("Ctrl+Alt+Shift+S", "show or hide the statistics overlay"),
    ("Ctrl+Alt+Shift+X", "fullscreen on or off"),
    ("Ctrl+Alt+Shift+Z", "pointer lock (relative mouse, for games)"),
    ("Ctrl+Alt+Shift+P", "pause or resume outgoing file transfers"),
    ("Ctrl+Alt+Shift+C", "cancel outgoing file transfers"),
    ("Ctrl+Alt+Shift+Q", "end the stream"),
)
DECODERS = ((None, "Software (every machine)"), ("auto", "Hardware when available (auto)"))
MICS = (("off", "Off"), ("default", "Default microphone"))


def _form_page(tabs: QTabWidget, name: str, intro: str) -> QFormLayout:
    outer = QWidget()
    row = QHBoxLayout(outer)
    page = QWidget()
    page.setMaximumWidth(760)  # forms stay readable on a wide or 4K window
    row.addWidget(page, 1)
    row.addStretch(0)
    lay = QVBoxLayout(page)
    text = QLabel(intro)
    text.setWordWrap(True)
    lay.addWidget(text)
    form = QFormLayout()
    lay.addLayout(form)
    lay.addStretch(1)
    tabs.addTab(outer, name)
    return form


class SettingsView(QWidget):
    def __init__(self, prefs: Prefs, account: AccountService, parent: QWidget | None = None):
        super().__init__(parent)
        self.prefs, self.account = prefs, account
        lay = QVBoxLayout(self)
        lay.addWidget(title("Settings"))
        self.banner = Banner()
        lay.addWidget(self.banner)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Settings sections")
        lay.addWidget(self.tabs, 1)
        self._client_tab()
        self._host_tab()
        self._network_tab()
        self._hotkeys_tab()
        self._account_tab()
        self._app_tab()
        account.changed.connect(self.update_account)
        self.load()

    # ---- pages ------------------------------------------------------------------------------

    def _apply_row(self, form: QFormLayout, apply: Any, name: str) -> None:
        button = QPushButton(f"&Apply {name} settings")
        button.clicked.connect(apply)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(button)
        form.addRow(row)

    def _client_tab(self) -> None:
        form = _form_page(self.tabs, "&Client", "How streams from other computers open "
                          "([connect] in config.toml; `wavry connect` reads it too).")  # fmt: skip
        self.overlay = QCheckBox("Show the statistics overlay when a stream opens")
        self.fullscreen = QCheckBox("Open streams full screen")
        self.client_fps = QSpinBox()
        self.client_fps.setRange(0, 240)
        self.client_fps.setSpecialValueText("the host's rate")
        self.client_fps.setSuffix(" fps")
        self.decoder = QComboBox()
        for value, label in DECODERS:
            self.decoder.addItem(label, value)
        self.play_audio = QCheckBox("Play the host's sound")
        self.mic = QComboBox()
        self.mic.setEditable(False)
        for value, label in MICS:
            self.mic.addItem(label, value)
        if "overlay" in ConnectSettings.model_fields:
            form.addRow("", self.overlay)
        form.addRow("", self.fullscreen)
        form.addRow("Highest &frame rate", self.client_fps)
        form.addRow("&Decoder", self.decoder)
        form.addRow("", self.play_audio)
        form.addRow("&Microphone to the host", self.mic)
        self._apply_row(form, self.apply_client, "client")

    def _host_tab(self) -> None:
        form = _form_page(self.tabs, "&Host", "How this computer is shared ([host] in "
                          "config.toml; `wavry host` reads it too).")  # fmt: skip
        self.host_name = QLineEdit()
        self.host_name.setPlaceholderText(socket.gethostname())
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        form.addRow("&Name shown to clients", self.host_name)
        form.addRow("UDP &port", self.port)
        self.share_form = ShareSettingsForm()
        form.addRow(self.share_form)
        self._apply_row(form, self.apply_host, "host")

    def _network_tab(self) -> None:
        form = _form_page(self.tabs, "&Network", "Where other computers are found: this network "
                          "(LAN discovery, addresses) and, with a gateway, by name from "
                          "anywhere.")  # fmt: skip
        self.lan_only = QRadioButton("This network only")
        self.use_gateway = QRadioButton("Use a gateway")
        self.gateway_url = QLineEdit()
        self.gateway_url.setPlaceholderText("https://gateway.example.org")
        self.gateway_url.setAccessibleName("Gateway URL")
        self.use_gateway.toggled.connect(self.gateway_url.setEnabled)
        form.addRow("", self.lan_only)
        form.addRow("", self.use_gateway)
        form.addRow("&Gateway URL", self.gateway_url)
        self._apply_row(form, self.apply_network, "network")

    def _hotkeys_tab(self) -> None:
        page = QWidget()
        lay = QVBoxLayout(page)
        text = QLabel("In a stream's window (these keys are never sent to the host):")
        lay.addWidget(text)
        tree = QTreeWidget()
        tree.setHeaderLabels(["Keys", "What they do"])
        tree.setRootIsDecorated(False)
        tree.setAccessibleName("Stream window hotkeys")
        for keys, what in HOTKEYS:
            tree.addTopLevelItem(QTreeWidgetItem([keys, what]))
        tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(tree, 1)
        self.tabs.addTab(page, "Hot&keys")

    def _account_tab(self) -> None:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.account_text = QLabel()
        self.account_text.setWordWrap(True)
        self.account_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.account_text)
        self.signed_in_box = QWidget()
        sl = QVBoxLayout(self.signed_in_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(QLabel("Devices on this account:"))
        self.devices = QTreeWidget()
        self.devices.setHeaderLabels(["Device", "Kind", "State", "Wavry ID"])
        self.devices.setRootIsDecorated(False)
        self.devices.setAccessibleName("Devices on this account")
        self.devices.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        sl.addWidget(self.devices, 1)
        row = QHBoxLayout()
        self.remove_device = QPushButton("&Remove the device")
        self.remove_device.clicked.connect(self._remove_device)
        self.totp_button = QPushButton("Turn on &two-factor sign-in")
        self.totp_button.clicked.connect(self._totp)
        self.sign_out = QPushButton("Sign &out")
        self.sign_out.clicked.connect(self._sign_out)
        for b in (self.remove_device, self.totp_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.sign_out)
        sl.addLayout(row)
        self.totp_slot = QVBoxLayout()
        sl.addLayout(self.totp_slot)
        lay.addWidget(self.signed_in_box, 1)
        self.sign_in_form = SignInForm(self.account)
        self.sign_in_form.signed_in.connect(self.update_account)
        lay.addWidget(self.sign_in_form)
        lay.addStretch(0)
        self.tabs.addTab(page, "&Account")

    def _app_tab(self) -> None:
        form = _form_page(self.tabs, "A&pp", "The app itself ([desktop] in config.toml).")
        self.close_action = QComboBox()
        for value, label in (
            (CloseAction.ask, "Ask"),
            (CloseAction.tray, "Keep sharing in the tray"),
            (CloseAction.quit, "Stop sharing and quit"),
        ):
            self.close_action.addItem(label, value.value)
        form.addRow("&Closing the window while sharing", self.close_action)
        where = QLabel(f"Settings file: {self.prefs.path}\nApp log: {log_file()}")
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Files", where)
        self._apply_row(form, self.apply_app, "app")

    # ---- load and apply ---------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.load()  # what This computer, the first run or the CLI changed since

    def load(self) -> None:
        c = self.prefs.connect()
        self.overlay.setChecked(bool(getattr(c, "overlay", False)))
        self.fullscreen.setChecked(c.fullscreen)
        self.client_fps.setValue(c.fps or 0)
        select(self.decoder, c.hwdecode, str(c.hwdecode))
        self.play_audio.setChecked(c.audio)
        select(self.mic, c.mic, c.mic)
        try:
            h = self.prefs.host()
        except ConfigError as exc:
            self.banner.error(f"the [host] settings cannot be used: {exc}")
            h = HostSettings.model_validate({})
        self.host_name.setText(h.name)
        self.port.setValue(h.listen_addr[1] or DEFAULT_PORT)
        self.share_form.load(h)
        d = self.prefs.desktop()
        (self.use_gateway if d.network is NetworkMode.gateway else self.lan_only).setChecked(True)
        self.gateway_url.setText(d.gateway_url)
        self.gateway_url.setEnabled(d.network is NetworkMode.gateway)
        select(self.close_action, d.close_while_sharing.value, d.close_while_sharing.value)
        self.update_account()

    def _save(self, cls: type[CommandSettings], values: dict[str, Any], what: str) -> bool:
        try:
            self.prefs.save(cls, values)
        except ConfigError as exc:
            self.banner.error(f"{what} settings not saved: {exc}")
            return False
        self.banner.show_message(f"{what.capitalize()} settings saved.", "ok")
        return True

    def apply_client(self) -> bool:
        values: dict[str, Any] = {
            "fullscreen": self.fullscreen.isChecked() or None,
            "fps": self.client_fps.value() or None,
            "hwdecode": self.decoder.currentData(),
            "audio": None if self.play_audio.isChecked() else False,
            "mic": self.mic.currentData() if self.mic.currentData() != "off" else None,
        }
        if "overlay" in ConnectSettings.model_fields:
            values["overlay"] = self.overlay.isChecked() or None
        return self._save(ConnectSettings, values, "client")

    def apply_host(self) -> bool:
        host = self.prefs.host().listen_addr[0] if self._host_ok() else "0.0.0.0"
        port = self.port.value()
        listen = None if port == DEFAULT_PORT and host == "0.0.0.0" else f"{host}:{port}"
        values = {"name": self.host_name.text().strip() or None, "listen": listen}
        return self._save(HostSettings, values | self.share_form.values(), "host")

    def _host_ok(self) -> bool:
        try:
            self.prefs.host()
        except ConfigError:
            return False
        return True

    def apply_network(self) -> bool:
        gateway = self.use_gateway.isChecked()
        url = self.gateway_url.text().strip()
        if gateway and not url:
            self.banner.error("Enter the gateway's URL, or choose “This network only”.")
            return False
        values = {
            "network": (NetworkMode.gateway if gateway else NetworkMode.lan).value,
            "gateway_url": normalize_url(url) if url else "",
        }
        ok = self._save(DesktopSettings, values, "network")
        if ok and gateway:
            self.sign_in_form.url.setText(values["gateway_url"])
        return ok

    def apply_app(self) -> bool:
        return self._save(DesktopSettings, {"close_while_sharing": self.close_action.currentData()},
                          "app")  # fmt: skip

    # ---- the account ------------------------------------------------------------------------

    def update_account(self) -> None:
        a = self.account
        signed_in = a.signed_in
        where = a.store.token_location() if signed_in else ""
        text = a.summary() + (f". Session token stored in: {where}." if where else ".")
        if a.load_problem and not signed_in:
            text += f" ({a.load_problem})"
        self.account_text.setText(text)
        self.signed_in_box.setVisible(signed_in)
        self.sign_in_form.setVisible(not signed_in)
        if not signed_in:
            self.sign_in_form.url.setText(self.prefs.desktop().gateway_url)
            self.devices.clear()
            return
        self.refresh_devices()

    def refresh_devices(self) -> None:
        def show(devices: list[Any]) -> None:
            self.devices.clear()
            for d in devices:
                state = "online" if d.online else "offline"
                name = d.name + (" (this computer)" if d.this_device else "")
                item = QTreeWidgetItem([name, d.kind, state, short_id(d.wavry_id)])
                item.setToolTip(3, d.wavry_id)
                item.setData(0, Qt.ItemDataRole.UserRole, d.wavry_id)
                self.devices.addTopLevelItem(item)

        run_task(self.account.devices(), self.banner, "listing the account's devices", show)

    def _remove_device(self) -> None:
        item = self.devices.currentItem()
        if item is None:
            return
        wavry_id = str(item.data(0, Qt.ItemDataRole.UserRole))
        run_task(self.account.remove_device(wavry_id), self.banner, "removing the device",
                 lambda _r: self.refresh_devices())  # fmt: skip

    def _totp(self) -> None:
        setup = TotpSetup(self.account)
        self.totp_slot.addWidget(setup)
        self.totp_button.setEnabled(False)
        setup.password.setFocus()
        setup.done.connect(lambda: self.totp_button.setEnabled(True))

    def _sign_out(self) -> None:
        def done(note: str) -> None:
            self.banner.show_message(note or "Signed out.", "info")

        run_task(self.account.sign_out(), self.banner, "signing out", done)
