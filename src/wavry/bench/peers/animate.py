"""The animation every system streams in `wavry bench peers` (run as a process on display A).

A window covering the screen shows a textured background, a patterned square that moves every
frame, and the frame-counter marker of :mod:`wavry.media.marker` (frame id + the wall-clock time
of drawing, µs) in the top-left corner, redrawn at ``--fps`` on a monotonic schedule. Ticks the
process misses are skipped, not caught up (the id jumps), so a frame is never drawn late with an
old time stamp. The marker is the last thing drawn in a frame, in one PutImage request (the
X server applies a request atomically: no capture sees half a marker).

    python -m wavry.bench.peers.animate --width 1280 --height 720 --fps 60

(DISPLAY/XAUTHORITY from the environment). On SIGTERM it prints one JSON line: frames drawn,
ticks skipped.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from wavry.media.marker import draw_marker, marker_layout

SQUARE = 128
STEP_PX = 6  # how far the square moves per frame


def _background(width: int, height: int) -> npt.NDArray[np.uint8]:
    """A desktop-like static picture: soft diagonal gradient with a fine grid (BGRX)."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 4), dtype=np.uint8)
    img[..., 0] = (60 + 80 * x / width).astype(np.uint8)
    img[..., 1] = (50 + 60 * y / height).astype(np.uint8)
    img[..., 2] = (40 + 40 * (x + y) / (width + height)).astype(np.uint8)
    grid = ((x % 32) == 0) | ((y % 32) == 0)
    img[grid, :3] = 120
    return img


def _square(frame: int) -> npt.NDArray[np.uint8]:
    """A checkered square whose colours change with the frame."""
    y, x = np.mgrid[0:SQUARE, 0:SQUARE]
    checker = ((x // 16 + y // 16) % 2).astype(np.uint8)
    img = np.zeros((SQUARE, SQUARE, 4), dtype=np.uint8)
    hue = frame % 256
    img[..., 0] = np.where(checker, hue, 255 - hue)
    img[..., 1] = np.where(checker, 200, 40)
    img[..., 2] = np.where(checker, 255 - hue, hue)
    return img


class Animation:
    """The drawing state on one X display (python-xlib)."""

    def __init__(self, width: int, height: int) -> None:
        from Xlib import X, display

        self._x = X
        self.d = display.Display()
        screen = self.d.screen()
        self.width, self.height = width, height
        self.win = screen.root.create_window(
            0,
            0,
            width,
            height,
            0,
            screen.root_depth,
            X.InputOutput,
            X.CopyFromParent,
            override_redirect=1,
            background_pixel=0,
            event_mask=X.ExposureMask,
        )
        self.gc = self.win.create_gc(foreground=0)
        self.layout = marker_layout(width)
        self._marker_luma = np.zeros((self.layout.height, width), dtype=np.uint8)
        self.bg = _background(width, height)
        self.win.map()
        self.d.sync()
        self._draw_background(0, 0, width, height)
        self._last_square: tuple[int, int] | None = None

    def _put(self, x: int, y: int, img: npt.NDArray[np.uint8]) -> None:
        h, w = img.shape[:2]
        # PutImage must fit one request (256 KiB without BIG-REQUESTS): send in row strips
        rows = max(1, (200_000 // (w * 4)))
        for r in range(0, h, rows):
            strip = np.ascontiguousarray(img[r : r + rows])
            self.win.put_image(
                self.gc, x, y + r, w, strip.shape[0], self._x.ZPixmap, 24, 0, strip.tobytes()
            )

    def _draw_background(self, x: int, y: int, w: int, h: int) -> None:
        self._put(x, y, self.bg[y : y + h, x : x + w])

    def square_at(self, frame: int) -> tuple[int, int]:
        span_x = self.width - SQUARE
        span_y = self.height - SQUARE - self.layout.height - 8
        pos = (frame * STEP_PX) % (2 * span_x)
        x = pos if pos < span_x else 2 * span_x - pos
        y = self.layout.height + 8 + int((np.sin(frame / 37.0) * 0.5 + 0.5) * span_y)
        return x, y

    def draw(self, frame: int) -> int:
        """Draw frame ``frame``; returns the time stamp written into the marker (µs)."""
        if self._last_square is not None:
            ox, oy = self._last_square
            self._draw_background(ox, oy, SQUARE, SQUARE)
        sx, sy = self.square_at(frame)
        self._put(sx, sy, _square(frame))
        self._last_square = (sx, sy)
        lay = self.layout
        now_us = time.time_ns() // 1000
        # one PutImage for the whole band: the X server applies a request atomically, so no
        # capture can see half of a marker (1280×32×4 bytes fit one request; so does 1080p's)
        luma = self._marker_luma
        draw_marker(luma, frame, now_us)
        band = np.repeat(luma[:, : lay.width, None], 4, axis=2)
        self.win.put_image(
            self.gc, 0, 0, lay.width, lay.height, self._x.ZPixmap, 24, 0, band.tobytes()
        )
        self.d.flush()
        return now_us

    def handle_events(self) -> None:
        while self.d.pending_events():
            e = self.d.next_event()
            if e.type == self._x.Expose:
                self._draw_background(e.x, e.y, e.width, e.height)


def run(width: int, height: int, fps: float) -> dict[str, Any]:
    anim = Animation(width, height)
    stop = False

    def on_term(signum: int, frame: object) -> None:
        del signum, frame
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    period = 1.0 / fps
    start = time.monotonic()
    tick = drawn = skipped = 0
    while not stop:
        anim.handle_events()
        anim.draw(tick)
        drawn += 1
        nxt = tick + 1
        now = time.monotonic()
        due = start + nxt * period
        if now > due + period:  # missed a whole tick: skip to the current one
            behind = int((now - start) / period) + 1
            skipped += behind - nxt
            nxt = behind
            due = start + nxt * period
        tick = nxt
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return {"frames_drawn": drawn, "ticks_skipped": skipped, "seconds": time.monotonic() - start}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=float, default=60.0)
    a = p.parse_args(argv)
    facts = run(a.width, a.height, a.fps)
    print(json.dumps(facts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
