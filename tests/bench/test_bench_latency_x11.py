"""The X11 capture bench's painter draws a marker the capture reads back (its draw time)."""

from __future__ import annotations

import shutil
import time

import pytest

from wavry.bench.latency_x11 import H, MarkerPainter, W
from wavry.media.marker import read_marker
from wavry.media.x11 import X11Capture
from wavry.platform.xvfb import XvfbServer


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is needed")
def test_painted_marker_is_captured_with_its_draw_time() -> None:
    server = XvfbServer(W, H).start()
    painter = MarkerPainter(server)
    cap = X11Capture(server.display, fps=60, draw_mouse=False, auth=str(server.auth_file))
    try:
        cap.start()
        cap.grab()
        before = time.time_ns() // 1000
        painter.paint()
        frame = cap.grab()  # woken by the change
        mark = read_marker(frame.image)
        assert mark is not None
        frame_id, drawn_us = mark
        assert frame_id == painter.frame_id
        assert before <= drawn_us <= frame.capture_ts
    finally:
        cap.close()
        painter.close()
        server.stop()
