"""The SDL video window on a real X server (Xvfb): picture, keyboard, mouse, letterboxing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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
    for n in range(140, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    display = f":{n}"
    proc = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip("Xvfb did not start")
        time.sleep(0.05)
    old = {k: os.environ.get(k) for k in ("DISPLAY", "SDL_VIDEODRIVER")}
    os.environ["DISPLAY"] = display
    os.environ["SDL_VIDEODRIVER"] = "x11"
    try:
        yield display
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(5)


def _i420(
    w: int, h: int, y: int, u: int, v: int
) -> tuple[tuple[bytes, bytes, bytes], tuple[int, int, int]]:
    return (bytes([y]) * (w * h), bytes([u]) * (w * h // 4), bytes([v]) * (w * h // 4)), (
        w,
        w // 2,
        w // 2,
    )


def _pump(win: object, seconds: float) -> tuple[list, list]:  # type: ignore[type-arg]
    events, actions = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        b = win.poll()  # type: ignore[attr-defined]
        events += b.events
        actions += b.actions
        time.sleep(0.01)
    return events, actions


def test_window_shows_frames_and_captures_input(xdisplay: str) -> None:
    from Xlib import X
    from Xlib import display as xdisplay_mod

    from wavry.client.window import VideoWindow, WindowAction

    win = VideoWindow("wavry test", 320, 240)
    try:
        planes, pitches = _i420(320, 240, 81, 90, 240)  # BT.601 red
        win.present_i420(320, 240, planes, pitches)
        xid = win.x11_window()
        assert xid is not None
        _pump(win, 0.3)
        win.present_i420(320, 240, planes, pitches)
        d = xdisplay_mod.Display(xdisplay)
        xw = d.create_resource_object("window", xid)
        img = xw.get_image(0, 0, 320, 240, X.ZPixmap, 0xFFFFFFFF)
        b, g, r = img.data[(120 * 320 + 160) * 4 : (120 * 320 + 160) * 4 + 3]
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
        keys = [(e.key.keycode, e.key.pressed) for e in events if e.HasField("key")]
        assert keys == [(30, True), (30, False), (28, True), (28, False)]
        moves = [e.mouse_move for e in events if e.HasField("mouse_move")]
        assert moves and moves[-1].x == pytest.approx(0.5, abs=0.01)
        assert moves[-1].y == pytest.approx(0.5, abs=0.01)
        buttons = [
            (e.mouse_button.button, e.mouse_button.pressed)
            for e in events
            if e.HasField("mouse_button")
        ]
        assert buttons == [(1, True), (1, False)]

        # the overlay hotkey is consumed locally, never sent
        subprocess.run(["xdotool", "key", "ctrl+alt+shift+s"], env=env, check=True)
        events, actions = _pump(win, 0.3)
        assert WindowAction.TOGGLE_OVERLAY in actions and win.overlay_visible
        assert not [e for e in events if e.HasField("key") and e.key.keycode == 31]

        # a key held when focus goes away is released
        subprocess.run(["xdotool", "keydown", "b"], env=env, check=True)
        _pump(win, 0.2)
        released = win.release_all()
        assert [(e.key.keycode, e.key.pressed) for e in released] == [(48, False)]
        subprocess.run(["xdotool", "keyup", "b"], env=env, check=True)
    finally:
        win.close()
