"""The app's questions: the pairing code a host asks for, a host whose identity changed since
it was pinned, and a QR code for an authenticator. Every dialog is window-modal and opened with
``open()`` (never a nested event loop under the asyncio loop)."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QRegularExpression, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

__all__ = ["IdentityChangedDialog", "PairingCodeDialog", "QrCode", "normalize_code"]

_SEPARATORS = re.compile(r"[\s\-]+")


def normalize_code(text: str) -> str | None:
    """A pairing code as typed ("054 270", "054-270") → 6 digits, or None."""
    code = _SEPARATORS.sub("", text)
    return code if len(code) == 6 and code.isascii() and code.isdigit() else None


def _wrap(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class PairingCodeDialog(QDialog):
    """The host asks for its pairing code: the user reads it on the host and types it here."""

    def __init__(self, ask: dict[str, Any], host_label: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Wavry: pairing code")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.code: str | None = None
        self.setMinimumWidth(480)
        address = str(ask.get("address", "?"))
        who = host_label if host_label == address else f"{host_label} ({address})"
        lay = QVBoxLayout(self)
        lay.addWidget(
            _wrap(
                f"<b>{who}</b> does not know this computer "
                "yet and asks for its pairing code. The host shows a 6-digit code: in Wavry's "
                "<i>This computer</i> view, or in the terminal of <code>wavry host</code>."
            )
        )
        if ask.get("host_message"):
            lay.addWidget(_wrap(f"The host says: {ask['host_message']}"))
        self.error = _wrap(str(ask.get("error") or ""))
        self.error.setObjectName("error")
        self.error.setVisible(bool(ask.get("error")))
        lay.addWidget(self.error)
        form = QFormLayout()
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("123 456")
        self.edit.setAccessibleName("Pairing code")
        self.edit.setValidator(
            QRegularExpressionValidator(QRegularExpression(r"[0-9 \-]{0,9}"), self.edit)
        )
        form.addRow("Pairing &code", self.edit)
        lay.addLayout(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("&Pair")
        self.ok.setEnabled(False)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.edit.textChanged.connect(lambda t: self.ok.setEnabled(normalize_code(t) is not None))

    def _accept(self) -> None:
        self.code = normalize_code(self.edit.text())
        if self.code is not None:
            self.accept()


class IdentityChangedDialog(QDialog):
    """A host presents another identity than the one pinned for its address. Retrying with the
    new identity is possible only after the user confirms they compared it."""

    def __init__(self, ask: dict[str, Any], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Wavry: the host's identity changed")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        address = ask.get("address", "?")
        lay.addWidget(
            _wrap(
                f"<b>The computer at {address} is not the one this computer connected to "
                "before.</b><br>It presents another Wavry ID than the one remembered for that "
                "address. That happens when the host was reinstalled or its identity was reset, "
                "but it is also what someone intercepting the connection would look like."
            )
        )
        form = QFormLayout()
        for label, key in (("Remembered ID", "pinned"), ("ID presented now", "presented")):
            edit = QLineEdit(str(ask.get(key, "")))
            edit.setReadOnly(True)
            edit.setAccessibleName(label)
            edit.setMinimumWidth(edit.fontMetrics().horizontalAdvance("M" * 32))
            form.addRow(label, edit)
        lay.addLayout(form)
        lay.addWidget(
            _wrap(
                "Compare the new ID with the one the host shows (Wavry's <i>This computer</i> "
                "view there, or <code>wavry id</code>). Only if they match, forget the old "
                "identity and retry."
            )
        )
        self.confirm = QCheckBox("I &compared the IDs: the new one is the host's own")
        lay.addWidget(self.confirm)
        buttons = QDialogButtonBox()
        self.retry = buttons.addButton(
            "&Forget the old identity and retry", QDialogButtonBox.ButtonRole.AcceptRole
        )
        cancel = buttons.addButton("Do &not connect", QDialogButtonBox.ButtonRole.RejectRole)
        self.retry.setEnabled(False)
        cancel.setDefault(True)
        self.confirm.toggled.connect(self.retry.setEnabled)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def _accept(self) -> None:
        if self.confirm.isChecked():
            self.accept()


class QrCode(QWidget):
    """A QR code of ``text`` (the `qrcode` package makes the matrix; this only paints it)."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import qrcode  # type: ignore[import-untyped]

        qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
        qr.add_data(text)
        qr.make(fit=True)
        self.matrix: list[list[bool]] = qr.get_matrix()
        self.setAccessibleName("QR code for an authenticator app")
        self.setMinimumSize(self.sizeHint())

    def sizeHint(self) -> QSize:
        n = len(self.matrix)
        return QSize(n * 5, n * 5)

    def paintEvent(self, event: QPaintEvent) -> None:
        n = len(self.matrix)
        side = min(self.width(), self.height())
        cell = max(1, side // n)
        x0 = (self.width() - cell * n) // 2
        y0 = (self.height() - cell * n) // 2
        p = QPainter(self)
        p.fillRect(x0, y0, cell * n, cell * n, QColor("white"))
        for r, row in enumerate(self.matrix):
            for c, dark in enumerate(row):
                if dark:
                    p.fillRect(x0 + c * cell, y0 + r * cell, cell, cell, QColor("black"))
        p.end()
