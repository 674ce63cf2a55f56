"""The app's icon, painted (a blue tile with a wave): no image files to ship or find."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QLinearGradient, QPainter, QPainterPath, QPen, QPixmap

__all__ = ["app_icon"]


def _tile(size: int, sharing: bool) -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    grad = QLinearGradient(0, 0, size, size)
    grad.setColorAt(0, QColor("#4285f4"))
    grad.setColorAt(1, QColor("#174ea6"))
    r = QRectF(size * 0.04, size * 0.04, size * 0.92, size * 0.92)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(grad)
    p.drawRoundedRect(r, size * 0.2, size * 0.2)
    wave = QPainterPath(QPointF(size * 0.16, size * 0.55))
    for i in range(4):
        x0 = size * (0.16 + 0.17 * i)
        up = size * (0.30 if i % 2 == 0 else 0.80)
        wave.quadTo(QPointF(x0 + size * 0.085, up), QPointF(x0 + size * 0.17, size * 0.55))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(QPen(QColor("white"), max(1.5, size * 0.09), Qt.PenStyle.SolidLine,
                  Qt.PenCapStyle.RoundCap))  # fmt: skip
    p.drawPath(wave)
    if sharing:  # a green dot: this computer is shared
        p.setPen(QPen(QColor("white"), max(1.0, size * 0.04)))
        p.setBrush(QColor("#34a853"))
        d = size * 0.36
        p.drawEllipse(QRectF(size - d - size * 0.02, size - d - size * 0.02, d, d))
    p.end()
    return pix


def app_icon(sharing: bool = False) -> QIcon:
    icon = QIcon()
    for size in (16, 22, 24, 32, 48, 64, 128, 256):
        icon.addPixmap(_tile(size, sharing))
    return icon
