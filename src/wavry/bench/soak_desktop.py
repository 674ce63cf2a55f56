"""The desktops of `wavry bench soak`: two Xvfb displays (the host's picture, the client's
window), something moving on the host's, clipboard watchers on both, keys typed into the
client's window and the host display's keyboard state (a key held there is a stuck key)."""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

from wavry.platform.xvfb import XvfbServer

__all__ = ["Animator", "ClipboardProbe", "HeldKeys", "find_window", "xdotool"]


def _connect(server: XvfbServer) -> Any:
    from Xlib import display

    from wavry.platform.xdisplay import xauthority

    with xauthority(str(server.auth_file)):
        return display.Display(server.display)


class Animator:
    """A window covering the display with a bar that moves every `period_s`: the x11 source
    always has a change to capture (capture on change and on a clock alike)."""

    def __init__(self, server: XvfbServer, period_s: float = 1 / 15) -> None:
        from Xlib import X

        self._d = _connect(server)
        scr = self._d.screen()
        self._w, self._h = server.width, server.height
        self._win = scr.root.create_window(
            0, 0, self._w, self._h, 0, scr.root_depth,
            background_pixel=0x102030, override_redirect=True, event_mask=X.ExposureMask,
        )  # fmt: skip
        self._win.map()
        self._gc = self._win.create_gc()
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-animator", daemon=True)

    def start(self) -> Animator:
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self._period):
            x = (n * 7) % self._w
            self._gc.change(foreground=0x102030)
            self._win.fill_rectangle(self._gc, 0, 0, self._w, self._h)
            self._gc.change(foreground=(0x40 + n * 13) % 0xFFFFFF | 0x808080)
            self._win.fill_rectangle(self._gc, x, 0, max(8, self._w // 10), self._h)
            self._d.flush()
            n += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._d.close()


class HeldKeys:
    """Which keys the X server of a display has down (XQueryKeymap): none, unless stuck."""

    def __init__(self, server: XvfbServer) -> None:
        self._d = _connect(server)

    def held(self) -> list[int]:
        bits = self._d.query_keymap()
        return [i * 8 + b for i, byte in enumerate(bits) for b in range(8) if byte >> b & 1]

    def close(self) -> None:
        self._d.close()


class ClipboardProbe:
    """Copies text on one display and waits for it on the other (through the session)."""

    def __init__(self, server: XvfbServer) -> None:
        from wavry.platform.clipboard import ClipboardSync

        self._seen: list[str] = []
        self._cond = threading.Condition()
        self.sync = ClipboardSync(self._on_change, server.display, str(server.auth_file))
        self.sync.start()

    def _on_change(self, text: str) -> None:
        with self._cond:
            self._seen.append(text)
            del self._seen[:-4]
            self._cond.notify_all()

    def copy(self, text: str) -> bool:
        return bool(self.sync.set_remote_text(text))

    def wait_for(self, text: str, timeout: float) -> float | None:
        """Seconds until `text` was seen here, or None."""
        t0 = time.monotonic()
        with self._cond:
            while text not in self._seen:
                left = t0 + timeout - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            self._seen.clear()
        return time.monotonic() - t0

    def close(self) -> None:
        self.sync.close()


def find_window(server: XvfbServer, prefix: str, timeout: float) -> int | None:
    """Id of the top-level window whose name starts with `prefix`."""
    d = _connect(server)
    try:
        deadline = time.monotonic() + timeout
        net_name, utf8 = d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING")
        while time.monotonic() < deadline:
            for w in d.screen().root.query_tree().children:
                prop = w.get_full_property(net_name, utf8)
                name = prop.value.decode(errors="replace") if prop else w.get_wm_name()
                if name and str(name).startswith(prefix):
                    return int(w.id)
            time.sleep(0.2)
        return None
    finally:
        d.close()


def xdotool(server: XvfbServer, *args: str) -> bool:
    try:
        r = subprocess.run(
            ["xdotool", *args], env=server.env(), capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0
