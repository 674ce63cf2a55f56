"""Input injection into an X server through the XTEST extension (python-xlib)."""

from __future__ import annotations

import contextlib
import math
import os

from wavry.platform.input import InjectionError, InputInjector, ScrollAccumulator
from wavry.platform.keymap import EVDEV_TO_KEYSYM
from wavry.platform.probe import ProbeResult
from wavry.platform.xdisplay import XDisplayError, open_display

__all__ = ["XTestInjector", "probe"]

# docs/spec/RIFT.md §9 buttons → X core buttons (4..7 are the wheel in X; back/forward are 8/9).
X_BUTTON = {1: 1, 2: 2, 3: 3, 4: 8, 5: 9}
WHEEL_UP, WHEEL_DOWN, WHEEL_LEFT, WHEEL_RIGHT = 4, 5, 6, 7


def probe(display: str | None = None, auth: str | None = None) -> ProbeResult:
    name = display or os.environ.get("DISPLAY")
    if not name:
        return ProbeResult("xtest", False, "DISPLAY is not set", "pass --display :N")
    try:
        d = open_display(name, auth)
    except XDisplayError as exc:
        return ProbeResult("xtest", False, str(exc), "check DISPLAY and XAUTHORITY")
    try:
        if d.query_extension("XTEST") is None:
            return ProbeResult(
                "xtest", False, f"{name} has no XTEST extension", "enable XTEST in the X server"
            )
    finally:
        d.close()
    return ProbeResult("xtest", True, f"XTEST on {name}")


class XTestInjector(InputInjector):
    """Fake key, button and pointer events on ``display`` with XTEST.

    Keys go through keysyms (``keymap.EVDEV_TO_KEYSYM``) to whatever keycode the server's keymap
    uses; a keysym the keymap lacks is bound to a spare keycode first. Absolute moves map
    [0, 1] onto ``region`` (x, y, w, h; default the whole screen, or set it to the captured
    monitor with ``set_region``). Each event is flushed at once.
    """

    name = "xtest"

    def __init__(
        self,
        display: str | None = None,
        *,
        auth: str | None = None,
        region: tuple[int, int, int, int] | None = None,
    ) -> None:
        super().__init__()
        try:
            self._d = open_display(display, auth)
        except XDisplayError as exc:
            raise InjectionError(str(exc)) from exc
        from Xlib import X
        from Xlib import error as xerror

        try:
            has_xtest = self._d.query_extension("XTEST") is not None
        except (xerror.ConnectionClosedError, OSError) as exc:
            raise InjectionError(f"the X display went away: {exc}") from exc
        if not has_xtest:
            self._d.close()
            raise InjectionError("the X server has no XTEST extension")
        from Xlib.ext import xtest

        self._X = X
        self._xtest = xtest
        self._name = display or os.environ.get("DISPLAY") or "?"
        self._closed_errors: tuple[type[BaseException], ...] = (
            xerror.ConnectionClosedError,
            OSError,
        )
        scr = self._d.screen()
        self.screen_size = (int(scr.width_in_pixels), int(scr.height_in_pixels))
        self.region = region or (0, 0, *self.screen_size)
        self._keycodes: dict[int, int] = {}
        self._spare: list[int] | None = None
        self._motion_rem = [0.0, 0.0]
        self._wheel = ScrollAccumulator()
        self._closed = False

    def set_region(self, region: tuple[int, int, int, int]) -> None:
        """Map absolute moves onto this (x, y, width, height) area (monitor switch)."""
        self.region = region

    def keycode_for(self, evdev_code: int) -> int:
        """The X keycode that produces the keysym of ``evdev_code`` (binding one if needed)."""
        cached = self._keycodes.get(evdev_code)
        if cached is not None:
            return cached
        keysym = EVDEV_TO_KEYSYM.get(evdev_code)
        if keysym is None:
            # Unknown to the table: the evdev-based X convention is the best remaining guess.
            code = evdev_code + 8
            if not (self._d.display.info.min_keycode <= code <= self._d.display.info.max_keycode):
                raise InjectionError(f"no X keycode for evdev key {evdev_code}")
        else:
            code = int(self._d.keysym_to_keycode(keysym))
            if code == 0:
                code = self._bind_spare(keysym)
        self._keycodes[evdev_code] = code
        return code

    def _bind_spare(self, keysym: int) -> int:
        if self._spare is None:
            lo = self._d.display.info.min_keycode
            hi = self._d.display.info.max_keycode
            mapping = self._d.get_keyboard_mapping(lo, hi - lo + 1)
            self._spare = [lo + i for i, syms in enumerate(mapping) if not any(syms)]
        if not self._spare:
            raise InjectionError(f"no free X keycode to bind keysym {keysym:#x}")
        code = self._spare.pop()
        self._d.change_keyboard_mapping(code, [(keysym, keysym)])
        self._d.sync()
        return code

    def _fake(self, event_type: int, detail: int = 0, x: int = 0, y: int = 0) -> None:
        try:
            self._xtest.fake_input(self._d, event_type, detail, x=x, y=y)
        except self._closed_errors as exc:
            raise InjectionError(f"the X display {self._name} went away ({exc})") from exc

    def _flush(self) -> None:
        try:
            self._d.flush()
        except self._closed_errors as exc:
            raise InjectionError(f"the X display {self._name} went away ({exc})") from exc

    def _key(self, evdev_code: int, pressed: bool) -> None:
        X = self._X
        try:
            code = self.keycode_for(evdev_code)  # may ask the server (keymap, spare keycode)
        except self._closed_errors as exc:
            raise InjectionError(f"the X display {self._name} went away ({exc})") from exc
        self._fake(X.KeyPress if pressed else X.KeyRelease, code)
        self._flush()

    def _button(self, button: int, pressed: bool) -> None:
        X = self._X
        self._fake(X.ButtonPress if pressed else X.ButtonRelease, X_BUTTON[button])
        self._flush()

    def pixel_for(self, x01: float, y01: float) -> tuple[int, int]:
        """Screen pixel an absolute move to (x01, y01) lands on."""
        rx, ry, rw, rh = self.region
        return rx + round(x01 * (rw - 1)), ry + round(y01 * (rh - 1))

    def _move_abs(self, x01: float, y01: float) -> None:
        x, y = self.pixel_for(x01, y01)
        self._fake(self._X.MotionNotify, 0, x, y)
        self._flush()

    def _motion(self, dx: float, dy: float) -> None:
        self._motion_rem[0] += dx
        self._motion_rem[1] += dy
        ix, iy = math.trunc(self._motion_rem[0]), math.trunc(self._motion_rem[1])
        self._motion_rem[0] -= ix
        self._motion_rem[1] -= iy
        if ix or iy:
            self._fake(self._X.MotionNotify, 1, ix, iy)  # detail=1: relative
            self._flush()

    def _scroll(self, dx: float, dy: float) -> None:
        X = self._X
        nx, ny = self._wheel.add(dx, dy)
        for count, pos, neg in ((ny, WHEEL_UP, WHEEL_DOWN), (nx, WHEEL_RIGHT, WHEEL_LEFT)):
            b = pos if count > 0 else neg
            for _ in range(abs(count)):
                self._fake(X.ButtonPress, b)
                self._fake(X.ButtonRelease, b)
        if nx or ny:
            self._flush()

    def flush(self) -> None:
        if not self._closed:
            self._flush()

    def close(self) -> None:
        if self._closed:
            return
        try:
            # the display may be gone: then nothing is held there any more
            with contextlib.suppress(InjectionError, *self._closed_errors):
                self.release_all()
                self._d.sync()
        finally:
            self._closed = True
            with contextlib.suppress(*self._closed_errors):
                self._d.close()
