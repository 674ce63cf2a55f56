"""XTest injection under a private Xvfb: events arrive in a real X window we read them from."""

from __future__ import annotations

import select
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from Xlib import XK, X

from wavry.platform.input import InjectionError
from wavry.platform.keymap import EVDEV_TO_KEYSYM, KEYSYM_TO_EVDEV, evdev_code
from wavry.platform.xdisplay import open_display
from wavry.platform.xtest import XTestInjector, probe
from wavry.platform.xvfb import XvfbServer

W, H = 640, 480


class Target:
    """An X client with a full-screen focused window that records the events it receives."""

    def __init__(self, server: XvfbServer) -> None:
        self.d = open_display(server.display, str(server.auth_file))
        scr = self.d.screen()
        self.win = scr.root.create_window(
            0,
            0,
            W,
            H,
            0,
            scr.root_depth,
            background_pixel=scr.white_pixel,
            override_redirect=True,
            event_mask=X.KeyPressMask
            | X.KeyReleaseMask
            | X.ButtonPressMask
            | X.ButtonReleaseMask
            | X.PointerMotionMask,
        )
        self.win.map()
        self.d.sync()
        self.win.set_input_focus(X.RevertToParent, X.CurrentTime)
        self.d.sync()
        self.drain(0.1)

    def drain(self, wait: float = 0.3) -> list[Any]:
        events: list[Any] = []
        deadline = time.monotonic() + wait
        while True:
            while self.d.pending_events():
                e = self.d.next_event()
                if e.type == X.MappingNotify:
                    self.d.refresh_keyboard_mapping(e)  # keycodes the injector bound
                events.append(e)
            left = deadline - time.monotonic()
            if left <= 0:
                return events
            select.select([self.d.fileno()], [], [], left)

    def keysym(self, keycode: int) -> list[int]:
        return [self.d.keycode_to_keysym(keycode, i) for i in range(4)]


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[XvfbServer, Target, XTestInjector]]:
    server = XvfbServer(W, H).start()
    try:
        target = Target(server)
        inj = XTestInjector(server.display, auth=str(server.auth_file))
        yield server, target, inj
        inj.close()
        target.d.close()
    finally:
        server.stop()


def test_probe(env: tuple[XvfbServer, Target, XTestInjector]) -> None:
    server, _, _ = env
    assert probe(server.display, str(server.auth_file)).ok
    bad = probe(":4093")
    assert not bad.ok and bad.remedy


def test_typed_text_arrives_with_shift(env: tuple[XvfbServer, Target, XTestInjector]) -> None:
    _, t, inj = env
    shift = evdev_code("LEFTSHIFT")
    for ch in "hello":
        inj.key(evdev_code(ch), True)
        inj.key(evdev_code(ch), False)
    inj.key(shift, True)
    inj.key(evdev_code("1"), True)
    inj.key(evdev_code("1"), False)
    inj.key(shift, False)
    events = [e for e in t.drain() if e.type == X.KeyPress]
    typed = []
    for e in events:
        col = 1 if e.state & X.ShiftMask else 0
        sym = t.d.keycode_to_keysym(e.detail, col)
        typed.append(XK.keysym_to_string(sym) or XK.keysym_to_string(t.keysym(e.detail)[0]))
    assert "".join(s for s in typed if s and len(s) == 1) == "hello!"


def test_every_mapped_key_produces_its_keysym(
    env: tuple[XvfbServer, Target, XTestInjector],
) -> None:
    _, t, inj = env
    skip = {evdev_code(n) for n in ("CAPSLOCK", "NUMLOCK", "SCROLLLOCK")}
    codes = [c for c in sorted(EVDEV_TO_KEYSYM) if c not in skip]
    for code in codes:
        inj.key(code, True)
        inj.key(code, False)
    presses = [e for e in t.drain(0.5) if e.type == X.KeyPress]
    assert len(presses) == len(codes)
    for code, e in zip(codes, presses, strict=True):
        syms = t.keysym(e.detail)
        assert EVDEV_TO_KEYSYM[code] in syms, (code, hex(EVDEV_TO_KEYSYM[code]), syms)
        assert KEYSYM_TO_EVDEV[EVDEV_TO_KEYSYM[code]] in (code, 95)  # KPCOMMA shares KP_Separator


def test_click_lands_on_pixel(env: tuple[XvfbServer, Target, XTestInjector]) -> None:
    server, t, inj = env
    inj.mouse_move_abs(0.25, 0.75)
    inj.button(1, True)
    inj.button(1, False)
    presses = [e for e in t.drain() if e.type == X.ButtonPress]
    assert [(e.detail, e.event_x, e.event_y) for e in presses] == [(1, 160, 359)]
    out = subprocess.run(
        ["xdotool", "getmouselocation"],
        env=server.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("x:160 y:359")


def _pointer_reaches(t: Target, want: tuple[int, int], timeout: float = 2.0) -> tuple[int, int]:
    """Where the pointer is once it got to ``want`` (XTEST events pass the input queue)."""
    deadline = time.monotonic() + timeout
    while True:
        p = t.d.screen().root.query_pointer()
        got = (p.root_x, p.root_y)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


def test_relative_motion_and_region(env: tuple[XvfbServer, Target, XTestInjector]) -> None:
    _, t, inj = env
    inj.mouse_move_abs(0.5, 0.5)
    start = inj.pixel_for(0.5, 0.5)
    assert _pointer_reaches(t, start) == start == (320, 240)
    inj.mouse_motion(10.6, -5.0)
    inj.mouse_motion(0.6, 0.0)  # fractions accumulate: 11 px in all
    assert _pointer_reaches(t, (331, 235)) == (331, 235)
    inj.set_region((320, 0, 320, 480))  # e.g. the right-hand monitor
    inj.mouse_move_abs(0.0, 0.0)
    assert _pointer_reaches(t, (320, 0)) == (320, 0)
    inj.set_region((0, 0, W, H))
    t.drain(0.05)


def test_buttons_and_scroll_notches(env: tuple[XvfbServer, Target, XTestInjector]) -> None:
    _, t, inj = env
    for b in (2, 3, 4, 5):
        inj.button(b, True)
        inj.button(b, False)
    inj.scroll(0, 1)  # up
    inj.scroll(0, -2)  # down twice
    inj.scroll(0.5, 0)
    inj.scroll(0.5, 0)  # one notch right from two halves
    inj.scroll(-1, 0)  # left
    presses = [e.detail for e in t.drain() if e.type == X.ButtonPress]
    assert presses == [2, 3, 8, 9, 4, 5, 5, 7, 6]
    with pytest.raises(InjectionError):
        inj.button(6, True)


def test_release_all_releases_everything_held(
    env: tuple[XvfbServer, Target, XTestInjector],
) -> None:
    _, t, inj = env
    inj.key(evdev_code("LEFTCTRL"), True)
    inj.key(evdev_code("A"), True)
    inj.button(1, True)
    inj.key(evdev_code("B"), False)  # never pressed by us: not sent
    assert inj.held_keys == {29, 30} and inj.held_buttons == {1}
    inj.release_all()
    events = t.drain()
    releases = [e for e in events if e.type in (X.KeyRelease, X.ButtonRelease)]
    assert len(releases) == 3
    assert inj.held_keys == set() and inj.held_buttons == set()
    assert not any(t.d.query_keymap())
    assert not t.d.screen().root.query_pointer().mask & X.Button1Mask


def test_a_display_that_goes_away_while_opening_is_one_clear_error() -> None:
    """An X server that accepts the connection and closes it (it is stopping: the host's display
    went away mid-session) is an InjectionError, never a python-xlib traceback."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    assert port > 6000  # an ephemeral port: a TCP display number

    def accept_and_close() -> None:
        conn, _ = srv.accept()
        conn.recv(64)
        conn.close()

    t = threading.Thread(target=accept_and_close, daemon=True)
    t.start()
    try:
        with pytest.raises(InjectionError, match=r"cannot open X display 127\.0\.0\.1:"):
            XTestInjector(f"127.0.0.1:{port - 6000}")
    finally:
        t.join(5)
        srv.close()
