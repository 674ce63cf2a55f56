"""Synthetic capture: a moving test pattern carrying a machine-readable per-frame marker."""

from __future__ import annotations

import time
from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt

from wavry.media.marker import MIN_WIDTH, draw_marker, marker_layout
from wavry.media.types import Capture, CapturedFrame, CaptureError, ProbeResult

__all__ = ["SyntheticCapture", "probe"]


def probe() -> ProbeResult:
    return ProbeResult("synthetic", True, "test pattern with frame-id/timestamp marker (numpy)")


class SyntheticCapture(Capture):
    """A moving pattern (scrolling gradient, colour bars, bouncing box) at any size and rate.

    Each frame is a yuv420p ``av.VideoFrame`` with the marker of :mod:`wavry.media.marker` in its
    top-left corner. ``noise`` (0..127) adds fresh grain below the marker band each frame, so the
    encoder has real detail to spend bits on (rate-control tests, benches). ``grab()`` paces
    to ``fps`` (``paced=False`` returns at once, for benches).
    ``clock_us`` (default: wall clock) stamps the marker and ``capture_ts``.
    """

    name = "synthetic"

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 60.0,
        *,
        paced: bool = True,
        noise: int = 0,
        clock_us: Callable[[], int] | None = None,
    ) -> None:
        if width < MIN_WIDTH or height < 64 or width % 2 or height % 2:
            raise CaptureError(
                f"synthetic source needs an even size of at least {MIN_WIDTH}x64, "
                f"got {width}x{height}"
            )
        if fps <= 0:
            raise CaptureError(f"fps must be positive, got {fps}")
        self._w, self._h, self._fps = width, height, float(fps)
        self._paced = paced
        self._clock_us = clock_us or (lambda: time.time_ns() // 1000)
        self._index = 0
        self._next_due = 0.0
        self._running = False
        self._band = marker_layout(width).height
        self._noise: list[npt.NDArray[np.uint8]] = []
        if noise:
            rng = np.random.default_rng(1)
            amp = max(1, min(127, int(noise)))
            lo = self._band + 8
            for _ in range(5):
                grain = rng.integers(128 - amp, 128 + amp, (height - lo, width), dtype=np.int16)
                self._noise.append(grain.astype(np.uint8))
        # Precomputed pattern sources, sliced per frame (no per-frame allocation beyond the frame).
        x = np.arange(2 * width, dtype=np.int32)
        self._ramp = ((x * 255) // max(1, width - 1) % 256).astype(np.uint8)
        cw = width // 2
        bars = np.array([90, 54, 240, 34, 202, 166, 16, 128], dtype=np.uint8)
        cx = np.arange(2 * cw)
        self._u_row = bars[(cx * 8 // max(1, cw)) % 8]
        self._v_row = bars[::-1][(cx * 8 // max(1, cw)) % 8]

    @property
    def size(self) -> tuple[int, int]:
        return (self._w, self._h)

    @property
    def fps(self) -> float:
        return self._fps

    def start(self) -> None:
        self._running = True
        self._next_due = time.monotonic()

    def stop(self) -> None:
        self._running = False

    def grab(self) -> CapturedFrame:
        if not self._running:
            raise CaptureError("synthetic capture is not started")
        if self._paced:
            delay = self._next_due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_due = max(self._next_due + 1.0 / self._fps, time.monotonic() - 1.0)
        t0 = time.perf_counter_ns()
        ts = self._clock_us()
        frame = self.make_frame(self._index, ts)
        index = self._index
        self._index += 1
        return CapturedFrame(frame, ts, (time.perf_counter_ns() - t0) // 1000, index)

    def make_frame(self, index: int, timestamp_us: int) -> av.VideoFrame:
        """The picture for frame ``index`` stamped with ``timestamp_us`` (yuv420p)."""
        w, h = self._w, self._h
        buf: npt.NDArray[np.uint8] = np.empty((h * 3 // 2, w), dtype=np.uint8)
        y = buf[:h]
        shift = (index * 4) % w
        y[:] = self._ramp[shift : shift + w]
        # A bouncing box gives motion vectors something to follow.
        box = max(16, h // 6)
        span_x, span_y = max(1, w - box), max(1, h - self._band - box)
        bx = abs((index * 7) % (2 * span_x) - span_x)
        by = self._band + abs((index * 5) % (2 * span_y) - span_y)
        y[by : by + box, bx : bx + box] = 235
        if self._noise:
            grain = self._noise[index % len(self._noise)]
            lo = h - grain.shape[0]
            y[lo:] = (y[lo:] >> 1) + (grain >> 1)
        draw_marker(y, index, timestamp_us)
        cw, ch = w // 2, h // 2
        chroma = buf[h:].reshape(2, ch, cw)
        cshift = (index * 2) % cw
        chroma[0] = self._u_row[cshift : cshift + cw]
        chroma[1] = self._v_row[cshift : cshift + cw]
        mb = -(-self._band // 2)
        chroma[:, :mb, :] = 128
        frame = av.VideoFrame.from_ndarray(buf, format="yuv420p")
        frame.pts = index
        return frame
