"""End to end on two X servers: the host's display in the client, the client's input on the host.

Host display A shows a known picture and an X application that records the input it gets; the
host streams A with the x11 source. A headless client's snapshot must match A (PSNR ≥ 30 dB);
text typed (xdotool) into the client's *window* on display B must arrive in the application on
A, and a click in that window must land at the corresponding pixel of A. A monitor switch in the
middle of a session must not end it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wavry.platform.xvfb import XvfbServer

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "Xvfb", "xdotool"], capture_output=True).returncode != 0,
    reason="Xvfb and xdotool are needed (scripts/setup.sh installs them)",
)

W, H = 640, 480
HOST_LOG: list[list[str]] = []


class RecordingApp:
    """An X window covering display A: coloured quadrants; records key and button presses."""

    def __init__(self, server: XvfbServer) -> None:
        from Xlib import XK, X, display

        from wavry.platform.xdisplay import xauthority

        with xauthority(str(server.auth_file)):
            self.d = display.Display(server.display)
        scr = self.d.screen()
        self.win = scr.root.create_window(
            0, 0, W, H, 0, scr.root_depth,
            background_pixel=0x202020,
            event_mask=X.KeyPressMask | X.ButtonPressMask | X.ExposureMask,
            override_redirect=True,
        )  # fmt: skip
        self.win.map()
        gc = self.win.create_gc()
        hw, hh = W // 2, H // 2
        self._draw = [
            (gc, 0xD03030, (0, 0, hw, hh)),
            (gc, 0x30D030, (hw, 0, hw, hh)),
            (gc, 0x3030D0, (0, hh, hw, hh)),
            (gc, 0xE0E040, (hw, hh, hw, hh)),
        ]
        self.paint()
        self.win.set_input_focus(X.RevertToParent, X.CurrentTime)
        self.d.sync()
        self.keys: list[str] = []
        self.clicks: list[tuple[int, int, int]] = []
        self._X, self._XK = X, XK
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def paint(self) -> None:
        for gc, color, (x, y, w, h) in self._draw:
            gc.change(foreground=color)
            self.win.fill_rectangle(gc, x, y, w, h)
        self.d.flush()

    def _run(self) -> None:
        X = self._X
        while not self._stop:
            while self.d.pending_events():
                e = self.d.next_event()
                if e.type == X.KeyPress:
                    sym = self.d.keycode_to_keysym(e.detail, 1 if e.state & X.ShiftMask else 0)
                    self.keys.append(self._XK.keysym_to_string(sym) or f"<{sym:x}>")
                elif e.type == X.ButtonPress:
                    self.clicks.append((e.detail, e.event_x, e.event_y))
                elif e.type == X.Expose:
                    self.paint()
            time.sleep(0.01)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.d.close()


@pytest.fixture(scope="module")
def displays() -> Iterator[tuple[XvfbServer, XvfbServer, RecordingApp]]:
    a = XvfbServer(W, H).start()
    b = XvfbServer(1024, 768).start()
    app = RecordingApp(a)
    try:
        yield a, b, app
    finally:
        app.close()
        a.stop()
        b.stop()


def _env(server: XvfbServer, home: Path) -> dict[str, str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(home), PYTHONUNBUFFERED="1", SDL_VIDEODRIVER="x11")
    env.update(server.env())
    return env


@pytest.fixture(scope="module")
def host(
    displays: tuple[XvfbServer, XvfbServer, RecordingApp], tmp_path_factory: Any
) -> Iterator[int]:
    a, _, _ = displays
    home = tmp_path_factory.mktemp("host")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wavry", "host", "--listen", "127.0.0.1:0", "--trust", "any",
         "--source", "x11", "--display", a.display, "--fps", "30"],
        env=_env(a, home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    port = None
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if m := re.search(r"listening on udp://127\.0\.0\.1:(\d+)", line):
            port = int(m.group(1))
            break
    if port is None:
        proc.kill()
        raise AssertionError("host did not start: " + "".join(lines))

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=drain, daemon=True).start()
    HOST_LOG[:] = [lines]
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def _find_window(server: XvfbServer, prefix: str, timeout: float) -> str | None:
    """Id of the top-level window whose name starts with `prefix` (python-xlib query)."""
    from Xlib import display

    from wavry.platform.xdisplay import xauthority

    with xauthority(str(server.auth_file)):
        d = display.Display(server.display)
    try:
        deadline = time.monotonic() + timeout
        net_name, utf8 = d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING")
        while time.monotonic() < deadline:
            for w in d.screen().root.query_tree().children:
                prop = w.get_full_property(net_name, utf8)  # SDL titles are UTF-8
                name = prop.value.decode(errors="replace") if prop else w.get_wm_name()
                if name and str(name).startswith(prefix):
                    return str(w.id)
            time.sleep(0.1)
        return None
    finally:
        d.close()


def _screen_rgb(server: XvfbServer) -> np.ndarray:
    from Xlib import X, display

    from wavry.platform.xdisplay import xauthority

    with xauthority(str(server.auth_file)):
        d = display.Display(server.display)
    try:
        raw = d.screen().root.get_image(0, 0, W, H, X.ZPixmap, 0xFFFFFFFF).data
    finally:
        d.close()
    bgra = np.frombuffer(raw, dtype=np.uint8).reshape(H, W, 4)
    return bgra[:, :, 2::-1].astype(np.float64)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_headless_snapshot_matches_host_display(
    displays: tuple[XvfbServer, XvfbServer, RecordingApp], host: int, tmp_path: Path
) -> None:
    a, _, _ = displays
    snap = tmp_path / "snap.png"
    stats = tmp_path / "stats.json"
    r = subprocess.run(
        [sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{host}", "--headless",
         "--seconds", "3", "--snapshot", str(snap), "--stats-json", str(stats)],
        env=dict(os.environ, XDG_CONFIG_HOME=str(tmp_path)), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    import av

    with av.open(str(snap)) as c:
        got = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(np.float64)
    assert got.shape == (H, W, 3)
    psnr = _psnr(got, _screen_rgb(a))
    assert psnr >= 30.0, f"PSNR {psnr:.1f} dB"
    # display A is still: the host sends its picture and the refreshes after it, not 30 fps
    from wavry.media.pacing import REFRESH_DELAYS_S

    presented = json.loads(stats.read_text())["frames_presented"]
    assert 1 <= presented <= 2 + len(REFRESH_DELAYS_S), presented


def test_input_in_client_window_reaches_host_app(
    displays: tuple[XvfbServer, XvfbServer, RecordingApp], host: int, tmp_path: Path
) -> None:
    _, b, app = displays
    env = _env(b, tmp_path)
    client = subprocess.Popen(
        [sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{host}", "--seconds", "25"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wid = _find_window(b, "Wavry", timeout=20)
        if wid is None:
            client.kill()
            _, err = client.communicate()
            host_log = "".join(HOST_LOG[0]) if HOST_LOG else ""
            raise AssertionError(f"no client window; client said: {err}\nhost said: {host_log}")
        subprocess.run(["xdotool", "windowfocus", "--sync", wid], env=env, check=True, timeout=10)
        geo = subprocess.run(
            ["xdotool", "getwindowgeometry", wid], env=env, capture_output=True, text=True
        ).stdout
        m = re.search(r"Geometry: (\d+)x(\d+)", geo)
        assert m, geo
        ww, wh = int(m.group(1)), int(m.group(2))
        time.sleep(1.0)  # first frames, window mapped
        app.keys.clear()
        app.clicks.clear()
        subprocess.run(["xdotool", "type", "--delay", "40", "hi"], env=env, check=True)
        # a click at 3/4 width, 1/4 height of the (letterboxed, same-aspect) window
        cx, cy = round(ww * 0.75), round(wh * 0.25)
        subprocess.run(
            ["xdotool", "mousemove", "--window", wid, str(cx), str(cy), "click", "1"],
            env=env, check=True,
        )  # fmt: skip
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (len(app.keys) < 2 or not app.clicks):
            time.sleep(0.05)
        assert "".join(app.keys[:2]) == "hi", app.keys
        button, x, y = app.clicks[0]
        assert button == 1
        assert abs(x - round(0.75 * (W - 1))) <= 3 and abs(y - round(0.25 * (H - 1))) <= 3, (x, y)
    finally:
        client.terminate()
        client.wait(10)


def _key_down_on(server: XvfbServer, keysym_name: str) -> bool:
    """Whether the X server holds the key down now (XQueryKeymap)."""
    from Xlib import XK, display

    from wavry.platform.xdisplay import xauthority

    with xauthority(str(server.auth_file)):
        d = display.Display(server.display)
    try:
        code = d.keysym_to_keycode(XK.string_to_keysym(keysym_name))
        return bool(d.query_keymap()[code // 8] & (1 << (code % 8)))
    finally:
        d.close()


def test_key_held_in_a_killed_client_is_released_within_a_second(
    displays: tuple[XvfbServer, XvfbServer, RecordingApp], host: int, tmp_path: Path
) -> None:
    """issue 15 item 6: hold a key in the client window, SIGKILL the client; the key is up on
    the host's display within 1 s (the host hears nothing from the session for 0.9 s while it
    holds a key: gone for input)."""
    a, b, _ = displays
    env = _env(b, tmp_path)
    client = subprocess.Popen(
        [sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{host}", "--seconds", "30"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wid = _find_window(b, "Wavry", timeout=20)
        assert wid is not None, "no client window"
        subprocess.run(["xdotool", "windowfocus", "--sync", wid], env=env, check=True, timeout=10)
        time.sleep(1.0)  # the session is up and the window has the keyboard
        subprocess.run(["xdotool", "keydown", "x"], env=env, check=True, timeout=10)
        deadline = time.monotonic() + 5
        while not _key_down_on(a, "x"):
            assert time.monotonic() < deadline, "the key never went down on the host"
            time.sleep(0.01)
        time.sleep(0.3)  # held for a while (autorepeat on the host) before the client dies
        assert _key_down_on(a, "x")
        client.kill()
        killed = time.monotonic()
        while _key_down_on(a, "x"):
            assert time.monotonic() - killed < 3.0, "the key stayed down on the host"
            time.sleep(0.005)
        released_after = time.monotonic() - killed
        print(f"released {released_after:.3f} s after the kill")
        assert released_after < 1.0, f"released {released_after:.3f} s after the kill"
    finally:
        client.kill()
        client.wait(10)
        subprocess.run(["xdotool", "keyup", "x"], env=env, timeout=10)
    host_log = "".join(HOST_LOG[0]) if HOST_LOG else ""
    assert "released 1 key(s): quiet for" in host_log, host_log


def test_session_survives_monitor_switch(host: int, tmp_path: Path) -> None:
    """Select monitor 0 mid-session (a reopen of the capture and a keyframe): the session goes
    on, and the switch shows at once although the screen is still (the keyframe asks the
    capture for a picture)."""
    import asyncio

    from wavry.rift import rift_pb2
    from wavry.rift.config import ClientConfig
    from wavry.rift.transport import FrameReady
    from wavry.runtime.session import establish

    async def run() -> tuple[int, int]:
        est = await establish("127.0.0.1", host, ClientConfig(), config_dir=tmp_path)
        before = after = 0
        # 3.5 s: the still screen's refreshes are over, the capture waits for a change
        t_end = time.monotonic() + 3.5
        while time.monotonic() < t_end:
            with __import__("contextlib").suppress(TimeoutError):
                if isinstance(await est.conn.next_event(0.2), FrameReady):
                    before += 1
        sel = rift_pb2.SelectMonitor(monitor_id=0)
        est.conn.send(rift_pb2.Message(control=rift_pb2.ControlMessage(select_monitor=sel)))
        t_end = time.monotonic() + 2.0
        keyframes = 0
        while time.monotonic() < t_end:
            with __import__("contextlib").suppress(TimeoutError):
                e = await est.conn.next_event(0.2)
                if isinstance(e, FrameReady):
                    after += 1
                    keyframes += e.frame.keyframe
        await est.conn.close()
        assert keyframes >= 1  # the switch forces a keyframe
        return before, after

    before, after = asyncio.run(run())
    assert before >= 1 and after >= 1


def test_clipboard_crosses_the_session(
    displays: tuple[XvfbServer, XvfbServer, RecordingApp], host: int, tmp_path: Path
) -> None:
    """Text copied on the host display shows up in the client's X clipboard, and back."""
    from wavry.platform.clipboard import ClipboardSync

    a, b, _ = displays
    env = _env(b, tmp_path)
    client = subprocess.Popen(
        [sys.executable, "-m", "wavry", "connect", f"127.0.0.1:{host}", "--seconds", "20"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen_b: list[tuple[float, str]] = []
    seen_a: list[tuple[float, str]] = []
    # independent X clients: one copies on A, one watches B (and the reverse)
    writer_a = ClipboardSync(lambda t: seen_a.append((time.monotonic(), t)), a.display,
                             str(a.auth_file)).start()  # fmt: skip
    watcher_b = ClipboardSync(lambda t: seen_b.append((time.monotonic(), t)), b.display,
                              str(b.auth_file)).start()  # fmt: skip
    try:
        assert _find_window(b, "Wavry", timeout=20) is not None
        time.sleep(1.5)  # session up, both sides' clipboard watchers running
        t0 = time.monotonic()
        assert writer_a.set_remote_text("copied on the host")
        deadline = t0 + 5
        while time.monotonic() < deadline and not any(t == "copied on the host" for _, t in seen_b):
            time.sleep(0.01)
        got = [(when, t) for when, t in seen_b if t == "copied on the host"]
        if not got:
            client.kill()
            _, err = client.communicate()
            host_log = "".join(HOST_LOG[0]) if HOST_LOG else ""
            raise AssertionError(f"client clipboard unchanged: client: {err}; host: {host_log}")
        latency_ms = (got[0][0] - t0) * 1000
        assert latency_ms < 1000, latency_ms  # the 200 ms target is a benchmark figure
        t1 = time.monotonic()
        assert watcher_b.set_remote_text("copied on the client")
        deadline = t1 + 5
        while time.monotonic() < deadline and not any(
            t == "copied on the client" for _, t in seen_a
        ):
            time.sleep(0.01)
        assert any(t == "copied on the client" for _, t in seen_a), seen_a
    finally:
        writer_a.close()
        watcher_b.close()
        client.terminate()
        client.wait(10)
