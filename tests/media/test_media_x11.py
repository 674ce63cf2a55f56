"""X11 and virtual capture against private Xvfb servers with known pictures on them."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from wavry.media import wayland
from wavry.media.decode import Decoder
from wavry.media.encode import Codec, Encoder
from wavry.media.types import CaptureError
from wavry.media.virtual import VirtualCapture, parse_size
from wavry.media.x11 import X11Capture, bgr0_array, list_monitors, probe, xauthority
from wavry.platform.xvfb import XvfbServer

W, H = 640, 480
RED, BLUE, GREEN = 0xFF0000, 0x0000FF, 0x00FF00


@pytest.fixture(scope="module")
def xserver() -> Iterator[tuple[XvfbServer, Any]]:
    from Xlib import display

    server = XvfbServer(W, H).start()
    with xauthority(str(server.auth_file)):
        d = display.Display(server.display)
    try:
        scr = d.screen()
        for x, y, w, h, rgb in (
            (0, 0, 320, 480, RED),
            (320, 0, 320, 480, BLUE),
            (40, 40, 64, 64, GREEN),
        ):
            win = scr.root.create_window(
                x, y, w, h, 0, scr.root_depth, background_pixel=rgb, override_redirect=True
            )
            win.map()
        d.sync()
        time.sleep(0.1)
        yield server, d
    finally:
        d.close()
        server.stop()


def _pixel(img: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    b, g, r, _ = img[y, x]
    return int(r), int(g), int(b)


def test_probe_and_monitors(xserver: tuple[XvfbServer, Any]) -> None:
    server, _ = xserver
    result = probe(server.display, str(server.auth_file))
    assert result.ok, result.line()
    assert "MIT-SHM yes" in result.detail and "XFIXES" in result.detail
    mons = list_monitors(server.display, str(server.auth_file))
    assert mons and (mons[0].width, mons[0].height) == (W, H)


def test_probe_without_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    result = probe()
    assert not result.ok and "--virtual" in result.remedy
    with pytest.raises(CaptureError, match="DISPLAY"):
        X11Capture()


def test_capture_known_picture_with_cursor(xserver: tuple[XvfbServer, Any]) -> None:
    server, d = xserver
    d.screen().root.warp_pointer(480, 240)
    d.sync()
    cap = X11Capture(server.display, fps=30, auth=str(server.auth_file))
    with cap:
        assert cap.size == (W, H)
        shot = cap.grab()
        assert abs(shot.capture_ts - time.time_ns() // 1000) < 1_000_000
        img = bgr0_array(shot.image).copy()
        second = cap.grab()
        assert second.frame_index == shot.frame_index + 1 and second.capture_ts > shot.capture_ts
    assert _pixel(img, 10, 400) == (255, 0, 0)
    assert _pixel(img, 600, 10) == (0, 0, 255)
    assert _pixel(img, 70, 70) == (0, 255, 0)
    # The cursor is drawn in: the pixels around the pointer are no longer plain blue.
    around = img[236:252, 476:492, :3].reshape(-1, 3)
    assert any(tuple(p) != (255, 0, 0) for p in around)
    with X11Capture(server.display, fps=30, draw_mouse=False, auth=str(server.auth_file)) as bare:
        plain = bgr0_array(bare.grab().image)[236:252, 476:492, :3].reshape(-1, 3)
    assert all(tuple(p) == (255, 0, 0) for p in plain)  # BGR order: blue


def _set_monitor(
    d: Any, root: Any, atom: int, primary: bool, x: int, y: int, w: int, h: int
) -> None:
    """RRSetMonitor (python-xlib's own wrapper cannot pack its variable-size MonitorInfo)."""
    from Xlib.protocol import rq

    class SetMonitor(rq.Request):
        _request = rq.Struct(
            rq.Card8("opcode"),
            rq.Opcode(43),
            rq.RequestLength(),
            rq.Window("window"),
            rq.Card32("name"),
            rq.Bool("primary"),
            rq.Bool("automatic"),
            rq.Card16("ncrtcs"),
            rq.Int16("x"),
            rq.Int16("y"),
            rq.Card16("width"),
            rq.Card16("height"),
            rq.Card32("mm_width"),
            rq.Card32("mm_height"),
        )

    SetMonitor(
        display=d.display,
        opcode=d.display.get_extension_major("RANDR"),
        window=root,
        name=atom,
        primary=primary,
        automatic=False,
        ncrtcs=0,
        x=x,
        y=y,
        width=w,
        height=h,
        mm_width=w // 4,
        mm_height=h // 4,
    )


def test_monitor_switch_reopens_at_new_geometry(xserver: tuple[XvfbServer, Any]) -> None:
    server, d = xserver
    root = d.screen().root
    names = []
    for i, (x, name) in enumerate(((0, "WAVRY-LEFT"), (320, "WAVRY-RIGHT"))):
        atom = d.intern_atom(name)
        names.append(atom)
        _set_monitor(d, root, atom, i == 0, x, 0, 320, 480)
    d.sync()
    try:
        mons = list_monitors(server.display, str(server.auth_file))
        by_name = {m.name: m for m in mons}
        right = by_name["WAVRY-RIGHT"]
        left = by_name["WAVRY-LEFT"]
        assert (right.x, right.width, right.height) == (320, 320, 480)
        cap = X11Capture(
            server.display, monitor=right.id, fps=30, draw_mouse=False, auth=str(server.auth_file)
        )
        with cap:
            assert cap.geometry == (320, 0, 320, 480)
            img = bgr0_array(cap.grab().image)
            assert _pixel(img, 10, 10) == (0, 0, 255)
            assert cap.select_monitor(left.id) == (320, 480)
            img = bgr0_array(cap.grab().image)
            assert _pixel(img, 300, 300) == (255, 0, 0) and _pixel(img, 70, 70) == (0, 255, 0)
            with pytest.raises(CaptureError, match="no monitor 99"):
                cap.select_monitor(99)
    finally:
        for atom in names:
            root.xrandr_delete_monitor(atom)
        d.sync()


def test_captured_frame_encodes_and_decodes(xserver: tuple[XvfbServer, Any]) -> None:
    server, _ = xserver
    with X11Capture(server.display, fps=30, draw_mouse=False, auth=str(server.auth_file)) as cap:
        enc = Encoder(Codec.H264, W, H, 30, 2000)
        dec = Decoder(Codec.H264)
        out = None
        for _ in range(3):
            out = dec.decode(enc.encode(cap.grab().image).data)
    assert out is not None
    rgb = out.to_rgb()
    assert np.abs(rgb[400, 10].astype(int) - (255, 0, 0)).max() < 24
    assert np.abs(rgb[10, 600].astype(int) - (0, 0, 255)).max() < 24


PAINTER = """
import sys, time
from Xlib import display
d = display.Display()
s = d.screen()
w = s.root.create_window(0, 0, 4000, 4000, 0, s.root_depth, background_pixel=0x00ff00,
                         override_redirect=True)
w.map(); d.sync()
time.sleep(60)
"""


def test_virtual_display_outlives_a_stream_and_cleans_up_on_close() -> None:
    cap = VirtualCapture(320, 240, fps=30, run=[sys.executable, "-c", PAINTER], draw_mouse=False)
    cap.start()
    try:
        assert cap.size == (320, 240)
        server_pid = cap.server.pid if cap.server else None
        proc = cap.process
        assert proc is not None and server_pid is not None
        deadline = time.monotonic() + 10
        while True:
            img = bgr0_array(cap.grab().image)
            if _pixel(img, 160, 120) == (0, 255, 0):
                break
            assert time.monotonic() < deadline, "command's window never appeared"
            time.sleep(0.05)
        # the last viewer left: capturing stops, the display and its command go on
        cap.stop()
        assert proc.poll() is None and cap.server is not None and cap.server.running
        # the next stream: the same display, the same process, its window still there
        cap.start()
        assert cap.process is proc and cap.server.pid == server_pid
        img = bgr0_array(cap.grab().image)
        assert _pixel(img, 160, 120) == (0, 255, 0)
        cap.stop()
        cap.resize(320, 240)  # the same size: nothing restarts
        assert cap.process is proc and proc.poll() is None
        # the command exited while nobody watched: the next stream runs it again
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
        cap.start()
        again = cap.process
        assert again is not None and again is not proc and again.poll() is None
        assert cap.server.pid == server_pid
        cap.stop()
        # another size: the display and its command end, the next start makes new ones
        cap.resize(400, 300)
        assert again.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.kill(server_pid, 0)
        cap.start()
        assert cap.size == (400, 300) and cap.server is not None
        server_pid, proc = cap.server.pid, cap.process
        assert proc is not None
    finally:
        cap.close()
    assert proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)


def test_parse_size_and_wayland_probe() -> None:
    assert parse_size("1281x721") == (1280, 720)
    with pytest.raises(CaptureError):
        parse_size("big")
    # no portal on this bus address: the probe and the backend say so (tests/test_wayland_*.py
    # cover the working portal path against a fake portal)
    no_bus = "unix:path=/nonexistent/wavry-test-bus"
    result = wayland.probe(no_bus)
    assert not result.ok and "D-Bus session bus" in result.detail and result.remedy
    if not wayland.gstreamer_problem():
        with pytest.raises(CaptureError, match="D-Bus session bus"):
            wayland.WaylandCapture(fps=30, bus_address=no_bus).start()


def _grab_in_thread(cap: X11Capture) -> tuple[Any, list[Any]]:
    import threading

    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(cap.grab()), daemon=True)
    t.start()
    return t, got


def test_on_change_waits_for_a_change_and_takes_it_at_once() -> None:
    """A still screen gives its refresh pictures, then nothing; a drawn rectangle, a pointer move
    and a requested picture each wake the capture at once, with the new pixels in it."""
    from Xlib import X, display
    from Xlib.ext import xtest

    refresh_delays_s = (0.02, 0.05)  # short, to keep the test quick

    server = XvfbServer(320, 240).start()
    with xauthority(str(server.auth_file)):
        d = display.Display(server.display)
    cap = X11Capture(
        server.display,
        fps=60,
        draw_mouse=False,
        auth=str(server.auth_file),
        refresh_delays_s=refresh_delays_s,
    )
    try:
        cap.start()
        assert cap.on_change, cap.change_problem
        cap.grab()  # the first picture, whatever changes
        # nothing changes: only the refresh pictures, then grab() waits
        for _ in refresh_delays_s:
            cap.grab()
        t, got = _grab_in_thread(cap)
        t.join(0.5)
        assert not got, "a still screen must not be captured again"
        # a change: captured at once, with its pixels
        gc = d.screen().root.create_gc(foreground=0x00FF00)
        drawn = time.monotonic()
        d.screen().root.fill_rectangle(gc, 0, 0, 320, 240)
        d.sync()
        t.join(2)
        took = time.monotonic() - drawn
        assert got, "the change did not wake the capture"
        assert _pixel(bgr0_array(got[0].image), 100, 100) == (0, 255, 0)
        assert took < 0.2, took
        # a pointer move (the cursor is drawn in, not part of the pixels) wakes it too
        for _ in refresh_delays_s:
            cap.grab()
        t, got = _grab_in_thread(cap)
        time.sleep(0.1)
        assert not got
        xtest.fake_input(d, X.MotionNotify, x=50, y=60)
        d.sync()
        t.join(2)
        assert got, "a pointer move did not wake the capture"
        for _ in refresh_delays_s:
            cap.grab()
        # a requested picture (keyframe for a new client) is taken although nothing changed
        t, got = _grab_in_thread(cap)
        time.sleep(0.1)
        assert not got
        cap.request_frame()
        t.join(2)
        assert got, "request_frame did not wake the capture"
    finally:
        cap.close()
        d.close()
        server.stop()


def test_on_change_falls_back_to_clock_when_asked() -> None:
    server = XvfbServer(320, 240).start()
    try:
        with X11Capture(server.display, fps=30, on_change=False, auth=str(server.auth_file)) as cap:
            assert not cap.on_change
            t0 = time.monotonic()
            for _ in range(6):
                cap.grab()  # a still screen, captured every interval anyway
            assert time.monotonic() - t0 < 1.0
    finally:
        server.stop()


def test_display_going_away_is_capture_lost() -> None:
    from wavry.media.types import CaptureLost

    server = XvfbServer(320, 240).start()
    cap = X11Capture(server.display, fps=30, auth=str(server.auth_file))
    try:
        cap.start()
        cap.grab()
        server.stop()
        with pytest.raises(CaptureLost, match="went away"):
            for _ in range(10):
                try:
                    cap.grab()
                except CaptureLost:
                    raise
                except CaptureError:
                    continue
    finally:
        cap.close()
        server.stop()
