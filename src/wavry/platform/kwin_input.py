"""Input injection through KWin's ``org_kde_kwin_fake_input`` (KDE Plasma, no dialog).

Same evdev codes as RIFT (docs/spec/RIFT.md §9): ``keyboard_key(code, state)``,
``button(BTN_*, state)``, ``pointer_motion_absolute(x, y)`` in KWin's global logical pixels (the
recorded output's position plus the point on it), ``pointer_motion(dx, dy)`` and
``axis(axis, value)`` — one wheel notch is 15 axis units, as libinput reports a wheel click.
Requests go out on the capture's own Wayland connection without waiting (the protocol has no
replies). Held keys and buttons are released on ``release_all()`` / ``close()``; KWin also drops
the fake device, and what it held, when the connection ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from wavry.platform.input import InjectionError, InputInjector, ScrollAccumulator
from wavry.platform.kwin import KWinError, KWinScreenCast
from wavry.platform.uinput import EVDEV_BUTTON

__all__ = ["KWinInputInjector"]

AXIS_VERTICAL, AXIS_HORIZONTAL = 0, 1
NOTCH = 15.0  # axis units per wheel click (libinput's wheel angle)
KEY_MAX = 0x2FF
PRESSED, RELEASED = 1, 0


class KWinInputInjector(InputInjector):
    """Inject through the fake-input device of the KWin session ``target()`` returns now."""

    name = "kwin"

    def __init__(self, target: Callable[[], KWinScreenCast | None]) -> None:
        super().__init__()
        self._target = target
        self._session_seen: KWinScreenCast | None = None
        self._wheel = ScrollAccumulator()
        self._closed = False
        self.errors = 0

    @classmethod
    def for_capture(cls, capture: Any) -> KWinInputInjector:
        """Follow the KWin session of a running ``WaylandCapture`` (kwin path)."""
        return cls(lambda: getattr(capture, "kwin", None))

    def _session(self) -> KWinScreenCast:
        if self._closed:
            raise InjectionError("the KWin injector is closed")
        s = self._target()
        if s is None or s.closed.is_set() or s.fake_input is None or s.conn is None:
            raise InjectionError(
                "no KWin fake-input device (the screen cast is not running or KWin ended it)"
            )
        if s is not self._session_seen:
            self._session_seen = s
            self.held_keys.clear()
            self.held_buttons.clear()
        return s

    def _send(self, request: str, *args: float | int) -> None:
        s = self._session()
        device, conn = s.fake_input, s.conn
        assert conn is not None
        try:
            conn.call(lambda: getattr(device, request)(*args))
        except (KWinError, RuntimeError) as exc:
            self.errors += 1
            raise InjectionError(f"KWin fake input failed: {exc}") from exc

    # ---- InputInjector -----------------------------------------------------------------

    def _key(self, evdev_code: int, pressed: bool) -> None:
        if not 1 <= evdev_code <= KEY_MAX:
            raise InjectionError(f"evdev key code {evdev_code} is outside 1..{KEY_MAX}")
        self._send("keyboard_key", int(evdev_code), PRESSED if pressed else RELEASED)

    def _button(self, button: int, pressed: bool) -> None:
        self._send("button", EVDEV_BUTTON[button], PRESSED if pressed else RELEASED)

    def _move_abs(self, x01: float, y01: float) -> None:
        s = self._session()
        if s.output is not None:
            (w, h), ox, oy = s.output.size, s.output.x, s.output.y
        else:
            raise InjectionError("absolute pointer moves need an output stream (not a window)")
        self._send("pointer_motion_absolute", ox + x01 * (w - 1), oy + y01 * (h - 1))

    def _motion(self, dx: float, dy: float) -> None:
        if dx or dy:
            self._send("pointer_motion", float(dx), float(dy))

    def _scroll(self, dx: float, dy: float) -> None:
        # RIFT: +dy is up/away, +dx right. Wayland axes: +vertical is down, +horizontal right.
        nx, ny = self._wheel.add(dx, dy)
        if ny:
            self._send("axis", AXIS_VERTICAL, -ny * NOTCH)
        if nx:
            self._send("axis", AXIS_HORIZONTAL, nx * NOTCH)

    def release_all(self) -> None:
        try:
            super().release_all()
        except InjectionError:
            self.held_keys.clear()
            self.held_buttons.clear()

    def close(self) -> None:
        if self._closed:
            return
        try:
            with contextlib.suppress(InjectionError):
                self.release_all()
        finally:
            self._closed = True
