"""The app's look: Qt's Fusion style (the same on every desktop, and offscreen for the
screenshots) with a few rules for titles, the sidebar and the pairing code. Sizes are in points
and the layouts stretch, so a 4K screen scales it (Qt's high-DPI scaling) instead of shrinking
it."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QStyleFactory

__all__ = ["STYLE_SHEET", "apply_style"]

STYLE_SHEET = """
QLabel#title { font-size: 17pt; font-weight: 600; padding: 2px 0 6px 0; }
QLabel#subtitle { font-size: 12pt; font-weight: 600; }
QListWidget#sidebar { border: none; border-right: 1px solid palette(mid);
                      background: palette(window); font-size: 11pt; padding-top: 8px; }
QListWidget#sidebar::item { padding: 9px 14px; border-radius: 4px; margin: 1px 6px; }
QListWidget#sidebar::item:selected { background: palette(highlight);
                                     color: palette(highlighted-text); }
QPushButton#shareToggle { font-size: 12pt; font-weight: 600; padding: 10px; }
QPushButton#shareToggle:checked { background: #188038; color: white; }
QFrame#pairingBox { border: 2px solid #e8710a; border-radius: 6px; background: #fef7e0; }
QFrame#pairingBox QLabel { color: #3c2a00; }
QLabel#pairingCode { font-size: 28pt; font-weight: 700; letter-spacing: 4px; }
QLabel#error { color: #a50e0e; }
QGroupBox { font-weight: 600; }
QTreeView::item { padding: 3px 2px; }
"""


def apply_style(app: QApplication) -> None:
    style = QStyleFactory.create("Fusion")
    if style is not None:
        app.setStyle(style)
    app.setStyleSheet(STYLE_SHEET)
