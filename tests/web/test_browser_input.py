"""Input from the page reaches the host's desktop: `wavry host --web --source x11` streams an
Xvfb display with an X application that records the key and button presses it gets (the one
tests/test_e2e_x11.py uses); keys typed in the page and a click on the picture must arrive
there, the click at the corresponding pixel.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wavry.platform.xvfb import XvfbServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        shutil.which("Xvfb") is None, reason="Xvfb is needed (scripts/setup.sh installs it)"
    ),
]


def _recording_app() -> Any:
    """The recording X application of tests/test_e2e_x11.py (one of each)."""
    path = Path(__file__).resolve().parents[1] / "test_e2e_x11.py"
    spec = importlib.util.spec_from_file_location("wavry_e2e_x11_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


E2E = _recording_app()
W, H = E2E.W, E2E.H


@pytest.fixture(scope="module")
def desktop() -> Iterator[tuple[XvfbServer, Any]]:
    server = XvfbServer(W, H).start()
    app = E2E.RecordingApp(server)
    try:
        yield server, app
    finally:
        app.close()
        server.stop()


def wait_key_state(server: XvfbServer, key: str, down: bool, timeout: float = 10.0) -> bool:
    """Poll the host display's keyboard state (XQueryKeymap) until ``key`` is (not) held."""
    from Xlib import XK, display

    from wavry.platform.xdisplay import xauthority

    with xauthority(str(server.auth_file)):
        d = display.Display(server.display)
    try:
        code = d.keysym_to_keycode(XK.string_to_keysym(key))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = bool(d.query_keymap()[code // 8] & (1 << (code % 8)))
            if held == down:
                return True
            time.sleep(0.05)
        return False
    finally:
        d.close()


def picture_point(page: Any, x: int, y: int) -> tuple[float, float]:
    """Where host pixel (x, y) is on the page (the canvas letterboxes the picture)."""
    r = page.evaluate(
        """() => {
        const c = document.getElementById("screen");
        const b = c.getBoundingClientRect();
        const s = Math.min(b.width / c.width, b.height / c.height);
        return { x: b.left + (b.width - c.width * s) / 2, y: b.top + (b.height - c.height * s) / 2,
                 s: s };
    }"""
    )
    return r["x"] + (x + 0.5) * r["s"], r["y"] + (y + 0.5) * r["s"]


def test_keys_and_click_in_page_reach_host_app(
    chromium: Any, web: Any, tmp_path: Path, desktop: tuple[XvfbServer, Any]
) -> None:
    server, app = desktop
    args = ("--source", "x11", "--display", server.display, "--fps", "30", "--trust", "any")
    env = {"XAUTHORITY": str(server.auth_file)}
    with web.host(tmp_path, *args, env=env) as host:
        page = web.open_page(chromium, host.link())
        try:
            # X11 is captured when it changes: a still desktop sends a picture, then nothing
            web.wait_stats(page, lambda s: s.get("framesDecoded", 0) >= 1 and s["width"] == W)
            app.clicks.clear()
            app.keys.clear()
            target = (W // 4 + 13, 3 * H // 4 - 7)  # inside the blue quadrant
            page.mouse.click(*picture_point(page, *target))
            deadline = time.monotonic() + 10
            while not app.clicks and time.monotonic() < deadline:
                time.sleep(0.05)
            assert app.clicks, f"no click reached the host app; host said:\n{host.output()}"
            button, x, y = app.clicks[0]
            assert button == 1
            assert abs(x - target[0]) <= 2 and abs(y - target[1]) <= 2, (x, y, target)

            page.keyboard.type("wavry web")
            page.keyboard.press("Shift+KeyA")
            # the app records every key press: Shift itself is keysym 0xffe1 (Shift_L)
            want = ["w", "a", "v", "r", "y", " ", "w", "e", "b", "<ffe1>", "A"]
            deadline = time.monotonic() + 10
            while len(app.keys) < len(want) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert app.keys == want, f"host app got {app.keys}"
            stats = page.evaluate("window.wavryStats()")
            assert stats["inputEvents"] >= 2 * len(want) + 2  # presses and releases, click

            # the wheel: DOM's negative deltaY (away from the user) is RIFT's positive dy, which
            # the host turns into X button 4 (scroll up)
            app.clicks.clear()
            page.mouse.move(*picture_point(page, *target))
            page.mouse.wheel(0, -100)
            deadline = time.monotonic() + 10
            while not app.clicks and time.monotonic() < deadline:
                time.sleep(0.05)
            assert app.clicks and app.clicks[0][0] == 4, app.clicks

            # a key held in the page is released on the host when the page loses focus
            page.keyboard.down("KeyQ")
            assert wait_key_state(server, "q", down=True), "the held key never went down"
            page.evaluate("window.dispatchEvent(new Event('blur'))")
            assert wait_key_state(server, "q", down=False), "the key stayed down after blur"
            page.keyboard.up("KeyQ")
        finally:
            page.context.close()
