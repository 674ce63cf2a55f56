"""Aspect-correct placement of the stream in a window, and pointer mapping back to it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


def fit_rect(win_w: int, win_h: int, src_w: int, src_h: int) -> Rect:
    """The largest rectangle of the source's aspect ratio centred in the window (letterbox)."""
    if win_w <= 0 or win_h <= 0 or src_w <= 0 or src_h <= 0:
        return Rect(0, 0, max(0, win_w), max(0, win_h))
    scale = min(win_w / src_w, win_h / src_h)
    w, h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    return Rect((win_w - w) // 2, (win_h - h) // 2, w, h)


def to_stream(px: float, py: float, rect: Rect) -> tuple[float, float]:
    """Window pixel → [0, 1] stream coordinates (clamped: the bars map to the nearest edge)."""
    if rect.w <= 0 or rect.h <= 0:
        return 0.0, 0.0
    x = (px - rect.x) / rect.w
    y = (py - rect.y) / rect.h
    return min(1.0, max(0.0, x)), min(1.0, max(0.0, y))


def motion_scale(rect: Rect, src_w: int, src_h: int) -> tuple[float, float]:
    """Window pixels per stream pixel, for relative motion in stream pixels."""
    return (src_w / rect.w if rect.w else 1.0, src_h / rect.h if rect.h else 1.0)
