"""The end-to-end latency plot of the live session panel: p50 and p95 of each second over the
last minute, drawn with QPainter (PySide6-Essentials has no QtCharts, and two lines on a grid
do not need it)."""

from __future__ import annotations

import math
from collections import deque

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["LatencyPlot", "nice_ceiling"]

WINDOW_S = 60.0
P50_COLOR = QColor("#1a73e8")
P95_COLOR = QColor("#e8710a")


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 × 10^n at or above ``value`` (at least 10 ms)."""
    value = max(10.0, value)
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        if m * exp >= value:
            return float(m * exp)
    return float(10 * exp)


class LatencyPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: deque[tuple[float, float | None, float | None]] = deque()
        self.now = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("End-to-end latency over the last minute")
        self.setMinimumHeight(160)

    def sizeHint(self) -> QSize:
        return QSize(600, 220)

    def clear(self) -> None:
        self.points.clear()
        self.update()

    def add(self, t: float, p50: float | None, p95: float | None) -> None:
        """One second's figures at monotonic time ``t`` (None: no frame that second)."""
        self.now = t
        self.points.append((t, p50, p95))
        while self.points and self.points[0][0] < t - WINDOW_S:
            self.points.popleft()
        self.setToolTip(self.describe())
        self.update()

    def describe(self) -> str:
        vals = [p for _, p, _ in self.points if p is not None]
        if not vals:
            return "no frames in the last minute"
        last = next((p for _, p, _ in reversed(self.points) if p is not None), None)
        return (
            f"p50 now {last:.1f} ms; range {min(vals):.1f}–{max(vals):.1f} ms over the last minute"
        )

    def top_ms(self) -> float:
        highs = [v for _, a, b in self.points for v in (a, b) if v is not None]
        return nice_ceiling(max(highs) * 1.15 if highs else 10.0)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fm = self.fontMetrics()
        left = fm.horizontalAdvance("1000 ms") + 8
        bottom = fm.height() + 8
        area = QRectF(left, 8 + fm.height(), self.width() - left - 10, 0)
        area.setBottom(self.height() - bottom)
        p.fillRect(self.rect(), pal.base())
        top = self.top_ms()
        grid = QPen(pal.mid().color())
        grid.setStyle(Qt.PenStyle.DotLine)
        text = pal.text().color()
        for i in range(5):
            ms = top * i / 4
            y = area.bottom() - area.height() * i / 4
            p.setPen(grid)
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            p.setPen(text)
            right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            p.drawText(QRectF(0, y - fm.height() / 2, left - 6, fm.height()), right, f"{ms:g} ms")
        for s in (60, 45, 30, 15, 0):
            x = area.right() - area.width() * s / WINDOW_S
            p.setPen(text)
            label = "now" if s == 0 else f"-{s} s"
            w = fm.horizontalAdvance(label)
            p.drawText(QPointF(min(x - w / 2, self.width() - w - 2), self.height() - 4), label)
        self._line(p, area, top, 2, P95_COLOR)
        self._line(p, area, top, 1, P50_COLOR)
        self._legend(p, area)
        p.end()

    def _line(self, p: QPainter, area: QRectF, top: float, index: int, color: QColor) -> None:
        path = QPainterPath()
        started = False
        for point in self.points:
            value = point[index]
            if value is None:
                started = False  # a gap: a second without a frame shown
                continue
            x = area.right() - area.width() * (self.now - point[0]) / WINDOW_S
            y = area.bottom() - area.height() * min(value, top) / top
            if started:
                path.lineTo(x, y)
            else:
                path.moveTo(x, y)
                started = True
        pen = QPen(color, 2)
        p.setPen(pen)
        p.drawPath(path)

    def _legend(self, p: QPainter, area: QRectF) -> None:
        fm = self.fontMetrics()
        x = area.left() + 6
        y = 4
        for color, name in ((P50_COLOR, "p50"), (P95_COLOR, "p95")):
            p.fillRect(QRectF(x, y + fm.height() / 2 - 2, 16, 4), color)
            p.setPen(self.palette().text().color())
            p.drawText(QPointF(x + 20, y + fm.ascent()), f"{name} end-to-end")
            x += 24 + fm.horizontalAdvance(f"{name} end-to-end") + 12
