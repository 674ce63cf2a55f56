"""The This computer view: Share on/off with what to share (monitor, codec, bitrate, frame rate,
audio source — the ``[host]`` table `wavry host` reads), this device's Wavry ID and name, the
pairing code when a client asks (with the client's name and ID), the connected clients with
their live figures and Disconnect, and the trusted devices (Remove)."""

from __future__ import annotations

import socket
import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wavry.config import ConfigError
from wavry.desktop.prefs import Prefs
from wavry.desktop.shareform import ShareSettingsForm
from wavry.desktop.sharing import ShareState, SharingController
from wavry.desktop.widgets import Banner, IdField, ago, run_task, short_id, title
from wavry.settings import HostSettings

__all__ = ["ThisComputerView"]


def _tree(headers: list[str], name: str) -> QTreeWidget:
    """A table whose columns fit their contents, the first taking what is left (no sideways
    scrolling at 1280 pixels)."""
    tree = QTreeWidget()
    tree.setHeaderLabels(headers)
    tree.setRootIsDecorated(False)
    tree.setAccessibleName(name)
    header = tree.header()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    header.setStretchLastSection(False)
    tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    return tree


class ThisComputerView(QWidget):
    def __init__(
        self, prefs: Prefs, sharing: SharingController, wavry_id: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.prefs, self.sharing = prefs, sharing
        outer = QVBoxLayout(self)
        outer.addWidget(title("This computer"))
        self.banner = Banner()
        outer.addWidget(self.banner)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        columns = QHBoxLayout(body)
        left, right = QVBoxLayout(), QVBoxLayout()
        columns.addLayout(left, 2)
        columns.addLayout(right, 3)  # the client table has the most to show
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        # sharing on/off and what is shared
        share = QGroupBox("Sharing")
        sl = QVBoxLayout(share)
        self.toggle = QPushButton()
        self.toggle.setCheckable(True)
        self.toggle.setObjectName("shareToggle")
        self.toggle.clicked.connect(self._toggle)
        sl.addWidget(self.toggle)
        self.state_text = QLabel()
        self.state_text.setWordWrap(True)
        self.state_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        sl.addWidget(self.state_text)
        self.form = ShareSettingsForm()
        sl.addWidget(self.form)
        self.settings_note = QLabel()
        self.settings_note.setWordWrap(True)
        sl.addWidget(self.settings_note)
        save = QPushButton("&Save these settings")
        save.clicked.connect(self._save_clicked)
        self.save_button = save
        sl.addWidget(save, 0, Qt.AlignmentFlag.AlignRight)
        left.addWidget(share)

        ident = QGroupBox("This device")
        il = QFormLayout(ident)
        self.name = QLineEdit()
        self.name.setPlaceholderText(socket.gethostname())
        self.name.setAccessibleName("Name shown to clients")
        self.name.editingFinished.connect(self._save_name)
        il.addRow("&Name", self.name)
        self.wavry_id = IdField()
        self.wavry_id.set_id(wavry_id)
        il.addRow("Wavry ID", self.wavry_id)
        self.addresses = QLabel("–")
        self.addresses.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.addresses.setWordWrap(True)
        il.addRow("Reach it at", self.addresses)
        left.addWidget(ident)
        left.addStretch(1)

        # pairing, clients, trusted devices
        self.pairing_box = QFrame()
        self.pairing_box.setObjectName("pairingBox")
        pl = QVBoxLayout(self.pairing_box)
        self.pairing_text = QLabel()
        self.pairing_text.setWordWrap(True)
        self.pairing_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pairing_code = QLabel()
        self.pairing_code.setObjectName("pairingCode")
        self.pairing_code.setAccessibleName("Pairing code")
        self.pairing_code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.refuse = QPushButton("&Refuse this device")
        self.refuse.clicked.connect(self.sharing.refuse_pairing)
        pl.addWidget(self.pairing_text)
        pl.addWidget(self.pairing_code, 0, Qt.AlignmentFlag.AlignHCenter)
        pl.addWidget(self.refuse, 0, Qt.AlignmentFlag.AlignRight)
        self.pairing_box.hide()
        right.addWidget(self.pairing_box)

        clients = QGroupBox("Connected clients")
        cl = QVBoxLayout(clients)
        self.clients = _tree(["Client", "Address", "Picture", "Latency p50 / max",
                              "Target bitrate", "RTT", "Since"], "Connected clients")  # fmt: skip
        cl.addWidget(self.clients)
        row = QHBoxLayout()
        self.show_code = QPushButton("Show a &pairing code")
        self.show_code.clicked.connect(self._show_code)
        self.disconnect_button = QPushButton("&Disconnect")
        self.disconnect_button.clicked.connect(self._disconnect)
        row.addWidget(self.show_code)
        row.addStretch(1)
        row.addWidget(self.disconnect_button)
        cl.addLayout(row)
        right.addWidget(clients, 1)

        trusted = QGroupBox("Trusted devices (connect without a code)")
        tl = QVBoxLayout(trusted)
        self.trusted = _tree(["Device", "Wavry ID", "Trusted since"], "Trusted devices")
        tl.addWidget(self.trusted)
        self.remove = QPushButton("Re&move")
        self.remove.clicked.connect(self._remove_trusted)
        tl.addWidget(self.remove, 0, Qt.AlignmentFlag.AlignRight)
        right.addWidget(trusted, 1)

        sharing.state_changed.connect(lambda _s: self.update_state())
        sharing.clients_changed.connect(self.update_clients)
        sharing.pairing_requested.connect(lambda _n: self.update_pairing())
        sharing.paired.connect(self._paired)
        sharing.failed.connect(self.banner.error)
        self.clients.currentItemChanged.connect(lambda *_: self._buttons())
        self.trusted.currentItemChanged.connect(lambda *_: self._buttons())
        self.load_settings()
        self.update_state()
        self.update_trusted()

    # ---- settings ([host]) --------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.sharing.state is ShareState.off:  # Settings → Host may have changed them
            self.load_settings()
        self.update_trusted()

    def load_settings(self) -> None:
        try:
            s = self.prefs.host()
        except ConfigError as exc:
            self.banner.error(f"the [host] settings cannot be used: {exc}")
            s = HostSettings.model_validate({})
        self.form.load(s)
        self.name.setText(s.name)

    def save_settings(self) -> bool:
        try:
            self.prefs.save(HostSettings, self.form.values())
        except ConfigError as exc:
            self.banner.error(f"not saved: {exc}")
            return False
        return True

    def _save_clicked(self) -> None:
        if self.save_settings():
            self.banner.show_message("Saved; sharing uses these settings when it starts.", "ok")

    def _save_name(self) -> None:
        try:
            self.prefs.save(HostSettings, {"name": self.name.text().strip() or None})
        except ConfigError as exc:
            self.banner.error(f"name not saved: {exc}")

    # ---- sharing ------------------------------------------------------------------------

    def _toggle(self) -> None:
        if self.sharing.state is ShareState.off:
            if self.save_settings():
                self.banner.hide()
                run_task(self.sharing.start(), self.banner, "cannot share this computer")
        elif self.sharing.state is ShareState.on:
            run_task(self.sharing.stop(), self.banner, "stopping sharing")
        self.update_state()

    def update_state(self) -> None:
        state = self.sharing.state
        on = state is ShareState.on
        self.toggle.setChecked(on)
        self.toggle.setEnabled(state in (ShareState.on, ShareState.off))
        self.toggle.setText({
            ShareState.off: "Share this computer: off  —  start sharing",
            ShareState.starting: "Starting…",
            ShareState.on: "Sharing this computer  —  stop sharing",
            ShareState.stopping: "Stopping…",
        }[state])  # fmt: skip
        self.toggle.setAccessibleName("Share this computer")
        for w in (self.form, self.save_button):
            w.setEnabled(state is ShareState.off)
        self.settings_note.setText(
            "Stop sharing to change these." if state is not ShareState.off else
            "Saved to [host] in config.toml: `wavry host` uses them too."
        )  # fmt: skip
        started = self.sharing.started
        if on and started is not None:
            picture = started.picture or f"no picture source ({started.picture_problem})"
            self.state_text.setText(
                f"Listening on {started.listen}. Picture: {picture}. Audio: {started.audio}. "
                + (
                    "Any device may connect (trust any)."
                    if started.trust_any
                    else "Unknown devices must enter a pairing code."
                )
            )
            self.addresses.setText("\n".join(started.connect_addresses) or started.listen)
        else:
            self.state_text.setText(self.sharing.last_error or "Not shared: nobody can connect.")
            self.addresses.setText("– (while sharing)")
        self.update_clients()
        self.update_pairing()
        self.update_trusted()

    # ---- pairing ------------------------------------------------------------------------

    def update_pairing(self) -> None:
        n = self.sharing.pairing
        if n is None or not self.sharing.sharing:
            self.pairing_box.hide()
            return
        from wavry.host.console import format_code

        if hasattr(n, "wavry_id"):  # PairingRequested
            who = f"<b>{n.name or 'A device'}</b> (Wavry ID {n.wavry_id}) at {n.address}"
            if n.code and self.sharing.asker_left:
                self.pairing_text.setText(
                    f"{who} asked to connect and will ask again with a code. If that is a "
                    "device you expect, this is the code to type on it."
                )
            elif n.code:
                self.pairing_text.setText(
                    f"{who} asks to connect. If that is a device you expect, type this code "
                    "on it; otherwise refuse it."
                )
            else:
                self.pairing_text.setText(f"{who} asks to connect, but {n.why_no_code}.")
            self.pairing_code.setText(format_code(n.code) if n.code else "")
            self.refuse.setVisible(not self.sharing.asker_left)
        else:  # PairingCodeShown: the owner asked for a code
            minutes = max(1, round(n.valid_s / 60))
            self.pairing_text.setText(
                f"Pairing code for a new device (valid {minutes} minutes, {n.attempts} "
                "attempts): type it on the device when it asks."
            )
            self.pairing_code.setText(format_code(n.code))
            self.refuse.hide()
        self.pairing_box.show()

    def _show_code(self) -> None:
        if self.sharing.show_pairing_code() is None:
            self.banner.error("No pairing code now: too many codes were issued or mistyped; "
                              "try again in a minute.")  # fmt: skip

    def _paired(self, notice: Any) -> None:
        self.banner.show_message(f"Paired: {notice.name or notice.wavry_id} is now trusted.", "ok")
        self.update_pairing()
        self.update_trusted()

    # ---- clients and trusted devices ----------------------------------------------------

    def update_clients(self) -> None:
        current = self.clients.currentItem()
        keep = current.data(0, Qt.ItemDataRole.UserRole) if current is not None else None
        self.clients.clear()
        for c in self.sharing.clients():
            s = c.stats
            latency = (
                "–" if s.latency_p50_ms is None else f"{s.latency_p50_ms:.1f} / "
                f"{(s.latency_max_ms or 0):.1f} ms"
            )  # fmt: skip
            rtt = "–" if s.rtt_ms is None else f"{s.rtt_ms:.1f} ms"
            item = QTreeWidgetItem([
                f"{c.name or '?'} ({short_id(c.wavry_id)})", c.address,
                f"{c.width}×{c.height}@{c.fps}", latency,
                f"{s.bitrate_target_kbps / 1000:.1f} Mbit/s", rtt, ago(c.since),
            ])  # fmt: skip
            item.setToolTip(0, c.wavry_id)
            item.setData(0, Qt.ItemDataRole.UserRole, c.peer)
            self.clients.addTopLevelItem(item)
            if c.peer == keep:
                self.clients.setCurrentItem(item)
        self._buttons()

    def update_trusted(self) -> None:
        self.trusted.clear()
        try:
            devices = self.sharing.trusted_devices()
        except Exception as exc:
            self.banner.error(f"cannot read the trusted devices: {exc}")
            devices = []
        for d in devices:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.added))
            item = QTreeWidgetItem([d.name or "?", short_id(d.wavry_id), when])
            item.setToolTip(1, d.wavry_id)
            item.setData(0, Qt.ItemDataRole.UserRole, d.wavry_id)
            self.trusted.addTopLevelItem(item)
        self._buttons()

    def _buttons(self) -> None:
        self.disconnect_button.setEnabled(self.clients.currentItem() is not None)
        self.remove.setEnabled(self.trusted.currentItem() is not None)
        self.show_code.setEnabled(self.sharing.sharing)

    def _disconnect(self) -> None:
        item = self.clients.currentItem()
        if item is not None:
            self.sharing.disconnect_client(int(item.data(0, Qt.ItemDataRole.UserRole)))

    def _remove_trusted(self) -> None:
        item = self.trusted.currentItem()
        if item is None:
            return
        wavry_id = str(item.data(0, Qt.ItemDataRole.UserRole))
        try:
            self.sharing.forget_device(wavry_id)
        except Exception as exc:
            self.banner.error(f"cannot remove the device: {exc}")
            return
        self.banner.show_message(
            f"{item.text(0)} is no longer trusted: it must pair again to connect.", "ok"
        )
        self.update_trusted()
