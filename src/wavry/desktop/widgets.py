"""Small pieces every view uses: the message banner, section titles, a copyable Wavry ID, the
async task runner that turns failures into banner lines, and time/size formatting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from wavry.desktop.errors import describe

__all__ = [
    "Banner",
    "IdField",
    "ago",
    "run_task",
    "short_id",
    "title",
]

_KIND_STYLE = {
    "info": ("#e8f0fe", "#174ea6"),
    "ok": ("#e6f4ea", "#0d652d"),
    "warn": ("#fef7e0", "#7a4f01"),
    "error": ("#fce8e6", "#a50e0e"),
}


class Banner(QFrame):
    """One line of news at the top of a view (an error, a result); closes with its button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.kind = "info"
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        close = QPushButton("Dismiss")
        close.setAccessibleName("Dismiss message")
        close.clicked.connect(self.hide)
        lay.addWidget(self.label)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    @property
    def text(self) -> str:
        parent = self.parentWidget()
        shown = self.isVisibleTo(parent) if parent is not None else self.isVisible()
        return self.label.text() if shown else ""

    def show_message(self, text: str, kind: str = "info") -> None:
        self.kind = kind
        bg, fg = _KIND_STYLE.get(kind, _KIND_STYLE["info"])
        self.setStyleSheet(
            f"QFrame#banner {{ background: {bg}; border: 1px solid {fg}; border-radius: 4px; }}"
            f"QFrame#banner QLabel {{ color: {fg}; }}"
        )
        self.label.setText(text)
        self.show()

    def error(self, text: str) -> None:
        self.show_message(text, "error")


def title(text: str, level: int = 1) -> QLabel:
    label = QLabel(text)
    label.setObjectName("title" if level == 1 else "subtitle")
    label.setAccessibleName(text)
    return label


def short_id(wavry_id: str) -> str:
    return f"{wavry_id[:8]}…{wavry_id[-4:]}" if len(wavry_id) > 14 else wavry_id


class IdField(QWidget):
    """A Wavry ID shown whole (read-only, selectable) with a Copy button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setReadOnly(True)
        self.edit.setAccessibleName("Wavry ID")
        self.edit.setMinimumWidth(self.fontMetrics().horizontalAdvance("M" * 30))
        copy = QPushButton("Copy")
        copy.setAccessibleName("Copy the Wavry ID")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.edit.text()))
        lay.addWidget(self.edit, 1)
        lay.addWidget(copy)

    def set_id(self, wavry_id: str) -> None:
        self.edit.setText(wavry_id)
        self.edit.setCursorPosition(0)


def run_task(
    coro: Coroutine[Any, Any, Any],
    banner: Banner | None = None,
    doing: str = "",
    done: Callable[[Any], None] | None = None,
) -> asyncio.Future[Any]:
    """Run ``coro`` on the app's loop; a failure becomes one banner line (never a traceback),
    a result goes to ``done``."""
    task = asyncio.ensure_future(coro)

    def finished(t: asyncio.Future[Any]) -> None:
        if t.cancelled():
            return
        exc = t.exception()
        if exc is not None:
            if banner is not None:
                banner.error(describe(exc, doing))
            else:
                describe(exc, doing)  # logged
            return
        if done is not None:
            done(t.result())

    task.add_done_callback(finished)
    return task


def ago(t: float | None, now: float | None = None) -> str:
    if not t:
        return "never"
    s = max(0, int((time.time() if now is None else now) - t))
    if s < 60:
        return "just now" if s < 5 else f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400 * 2:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"
