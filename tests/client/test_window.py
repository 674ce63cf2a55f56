"""The SDL video window on a real X server (Xvfb): picture, keyboard, mouse, letterboxing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from wavry.client.geometry import Rect, fit_rect, motion_scale, to_stream
from wavry.client.keymap import SDL_TO_EVDEV, evdev_from_scancode


def test_fit_rect_letterboxes() -> None:
    assert fit_rect(1920, 1080, 1280, 720) == Rect(0, 0, 1920, 1080)
    r = fit_rect(1000, 1000, 1600, 900)
    assert (r.w, r.h) == (1000, 562) and r.y == (1000 - 562) // 2 and r.x == 0
    assert to_stream(r.x + r.w / 2, r.y + r.h / 2, r) == pytest.approx((0.5, 0.5))
    assert to_stream(-50, 0, r) == (0.0, 0.0)  # bars clamp to the edge
    assert motion_scale(Rect(0, 0, 640, 360), 1280, 720) == (2.0, 2.0)


def test_keymap_covers_the_keyboard() -> None:
    assert evdev_from_scancode(4) == 30  # A -> KEY_A
    assert evdev_from_scancode(40) == 28  # RETURN -> KEY_ENTER
    assert evdev_from_scancode(224) == 29  # LCTRL -> KEY_LEFTCTRL
    assert evdev_from_scancode(82) == 103  # UP -> KEY_UP
    assert len(SDL_TO_EVDEV) > 120
    assert evdev_from_scancode(0) is None


@pytest.fixture(scope="module")
def xdisplay() -> Iterator[str]:
    if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
        pytest.skip("Xvfb/xdotool not installed (scripts/setup.sh installs them)")
    from wavry.platform.xvfb import XvfbServer

    server = XvfbServer(1024, 768).start()
    keys = ("DISPLAY", "XAUTHORITY", "SDL_VIDEODRIVER")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: v for k, v in server.env().items() if k in keys[:2]})
    os.environ["SDL_VIDEODRIVER"] = "x11"
    try:
        yield server.display
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _solid(w: int, h: int, y: int, u: int, v: int) -> object:
    """A decoded-like yuv420p picture of one colour."""
    import av
    import numpy as np

    buf = np.empty((h * 3 // 2, w), dtype=np.uint8)
    buf[:h] = y
    buf[h : h + h // 4] = u
    buf[h + h // 4 :] = v
    return av.VideoFrame.from_ndarray(buf, format="yuv420p")


def _pump(win: object, seconds: float) -> tuple[list, list]:  # type: ignore[type-arg]
    events, actions = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        b = win.poll()  # type: ignore[attr-defined]
        events += b.events
        actions += b.actions
        time.sleep(0.01)
    return events, actions


def _pixel(display: str, xid: int, x: int, y: int) -> tuple[int, int, int]:
    from Xlib import X
    from Xlib import display as xdisplay_mod

    d = xdisplay_mod.Display(display)
    try:
        img = d.create_resource_object("window", xid).get_image(x, y, 1, 1, X.ZPixmap, 0xFFFFFFFF)
        b, g, r = img.data[:3]
        return r, g, b
    finally:
        d.close()


def test_window_shows_frames_and_captures_input(xdisplay: str) -> None:
    from wavry.client.window import VideoWindow, WindowAction
    from wavry.runtime.messages import ButtonInput, KeyInput, PointerMove

    win = VideoWindow("wavry test", 320, 240, gamepads=False)
    try:
        assert win.presenter_name == "surface"  # no GPU here: the window surface path
        red = _solid(320, 240, 81, 90, 240)  # BT.601 red
        win.show_frame(red)
        xid = win.x11_window()
        assert xid is not None
        _pump(win, 0.3)
        win.show_frame(red)
        r, g, b = _pixel(xdisplay, xid, 160, 120)
        assert r > 200 and g < 60 and b < 60, (r, g, b)

        env = dict(os.environ, DISPLAY=xdisplay)
        subprocess.run(["xdotool", "windowfocus", "--sync", str(xid)], env=env, check=True)
        _pump(win, 0.2)
        subprocess.run(["xdotool", "key", "--delay", "20", "a", "Return"], env=env, check=True)
        subprocess.run(
            ["xdotool", "mousemove", "--window", str(xid), "160", "120", "click", "1"],
            env=env,
            check=True,
        )
        events, _ = _pump(win, 0.5)
        keys = [(e.keycode, e.pressed) for e in events if isinstance(e, KeyInput)]
        assert keys == [(30, True), (30, False), (28, True), (28, False)]
        moves = [e for e in events if isinstance(e, PointerMove)]
        assert moves and moves[-1].x == pytest.approx(0.5, abs=0.01)
        assert moves[-1].y == pytest.approx(0.5, abs=0.01)
        buttons = [(e.button, e.pressed) for e in events if isinstance(e, ButtonInput)]
        assert buttons == [(1, True), (1, False)]

        # the overlay hotkey is consumed locally: nothing of the chord reaches the host,
        # not the S and not Ctrl, Alt or Shift
        subprocess.run(["xdotool", "key", "--delay", "30", "ctrl+alt+shift+s"], env=env,
                       check=True)  # fmt: skip
        events, actions = _pump(win, 0.4)
        assert WindowAction.TOGGLE_OVERLAY in actions and win.overlay_visible
        assert [e for e in events if isinstance(e, KeyInput)] == []

        # Ctrl+C is no hotkey: both keys reach the host, Ctrl first
        subprocess.run(["xdotool", "key", "ctrl+c"], env=env, check=True)
        events, _ = _pump(win, 0.3)
        keys = [(e.keycode, e.pressed) for e in events if isinstance(e, KeyInput)]
        assert keys[:2] == [(29, True), (46, True)] and sorted(keys[2:]) == [
            (29, False),
            (46, False),
        ]

        # a key held when focus goes away is released
        subprocess.run(["xdotool", "keydown", "b"], env=env, check=True)
        _pump(win, 0.2)
        assert win.held
        released = win.release_all()
        assert [(e.keycode, e.pressed) for e in released] == [(48, False)]
        assert not win.held
        subprocess.run(["xdotool", "keyup", "b"], env=env, check=True)
    finally:
        win.close()


def test_window_updates_only_what_changed(xdisplay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The surface path hands the window system only the bands that changed since the picture
    it shows, and nothing for a picture that did not change; the pixels are right either way."""
    import numpy as np

    from wavry.client import present
    from wavry.client.window import VideoWindow

    win = VideoWindow("wavry test", 320, 240, gamepads=False)
    try:
        updates: list[list[tuple[int, int, int, int]]] = []
        real = present.sdl2.SDL_UpdateWindowSurfaceRects

        def spy(window: object, rects: object, n: int) -> int:
            updates.append([(r.x, r.y, r.w, r.h) for r in rects[:n]])  # type: ignore[index]
            return int(real(window, rects, n))

        monkeypatch.setattr(present.sdl2, "SDL_UpdateWindowSurfaceRects", spy)
        red = _solid(320, 240, 81, 90, 240)
        win.show_frame(red)
        xid = win.x11_window()
        assert xid is not None
        _pump(win, 0.3)
        win.show_frame(red)  # the same picture again: no update at all
        # (360, 320): 240 Y rows, then U and V with two 160-byte chroma rows in each row
        banded = red.to_ndarray()
        banded[100:116] = 145  # BT.601 green in rows 100..115: its Y, and chroma rows 50..57
        banded[240 + 25 : 240 + 29] = 54
        banded[300 + 25 : 300 + 29] = 34
        green = type(red).from_ndarray(banded, format="yuv420p")
        updates.clear()
        win.show_frame(red)
        assert updates == []
        win.show_frame(green)
        assert updates and all(w == 320 for _, _, w, _ in updates[0])
        rows = sorted((y, y + h) for _, y, _, h in updates[0])
        assert rows == [(96, 112), (112, 128)] or rows == [(96, 128)], rows
        r, g, b = _pixel(xdisplay, xid, 160, 108)
        assert g > 200 and r < 80, (r, g, b)
        r, g, b = _pixel(xdisplay, xid, 160, 20)
        assert r > 200 and g < 60, (r, g, b)
        win.show_frame(red)  # the band back to red: updated again
        r, g, b = _pixel(xdisplay, xid, 160, 108)
        assert r > 200 and g < 60, (r, g, b)
        assert np.array_equal(red.to_ndarray(), _solid(320, 240, 81, 90, 240).to_ndarray())
        # a picture that changes everywhere: the next ones are shown whole, uncompared
        blue = _solid(320, 240, 41, 240, 110)
        updates.clear()
        win.show_frame(blue)
        win.show_frame(green)
        assert len(updates) == 2 and updates[1] == [(0, 0, 320, 240)], updates
        r, g, b = _pixel(xdisplay, xid, 160, 20)  # green's picture is red there
        assert r > 200 and b < 60, (r, g, b)
    finally:
        win.close()


def test_fullscreen_without_a_window_manager_fits_the_real_window(xdisplay: str) -> None:
    """Without a window manager the X window keeps its size when SDL asks for fullscreen; the
    picture is laid out for the window the system gave, not the size SDL asked for."""
    from wavry.client.sdl import sdl2
    from wavry.client.window import VideoWindow, WindowAction, real_window_size

    win = VideoWindow("wavry fullscreen", 640, 360, gamepads=False)
    try:
        win.show_frame(_solid(640, 360, 81, 90, 240))
        _pump(win, 0.2)
        sdl2.SDL_PushEvent(_hotkey(sdl2, sdl2.SDL_SCANCODE_X))
        _, actions = _pump(win, 0.5)
        assert WindowAction.TOGGLE_FULLSCREEN in actions and win.fullscreen
        win.show_frame(_solid(640, 360, 81, 90, 240))
        real = real_window_size(win._window)
        rect = win.output_rect()
        assert rect.x + rect.w <= real[0] and rect.y + rect.h <= real[1], (rect, real)
        xid = win.x11_window()
        assert xid is not None
        r, g, b = _pixel(xdisplay, xid, rect.x + rect.w // 2, rect.y + rect.h // 2)
        assert r > 200 and g < 60, (r, g, b)  # the picture's centre is where we think
    finally:
        win.close()


def _hotkey(sdl2: object, scancode: int) -> object:
    s = sdl2  # type: ignore[assignment]
    e = s.SDL_Event()  # type: ignore[attr-defined]
    e.type = e.key.type = s.SDL_KEYDOWN  # type: ignore[attr-defined]
    e.key.state = s.SDL_PRESSED  # type: ignore[attr-defined]
    e.key.keysym.scancode = scancode
    e.key.keysym.mod = s.KMOD_LCTRL | s.KMOD_LALT | s.KMOD_LSHIFT  # type: ignore[attr-defined]
    return e
