"""Input injection through GNOME Mutter's remote-desktop session (no dialog).

Same evdev codes as RIFT (docs/spec/RIFT.md §9): ``NotifyKeyboardKeycode(u code, b pressed)``,
``NotifyPointerButton(i BTN_*, b)``, ``NotifyPointerMotionAbsolute(s stream, d x, d y)`` in the
recorded stream's logical pixels, ``NotifyPointerMotionRelative(d, d)`` and
``NotifyPointerAxisDiscrete(u axis, i steps)``. The session is the one of the running
:class:`wavry.media.wayland.WaylandCapture` (the screen cast is linked to it, so absolute
coordinates map onto exactly what the client sees). Calls go out in order without waiting for
replies; failures are counted (``errors``). Held keys and buttons are released on
``release_all()`` / ``close()``; when Mutter ends the session its virtual devices go away with
whatever they held, so the held state is dropped then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from wavry.platform.input import InjectionError, InputInjector, ScrollAccumulator
from wavry.platform.mutter import MutterError, MutterSession
from wavry.platform.uinput import EVDEV_BUTTON

__all__ = ["MutterInputInjector", "MutterTarget"]

AXIS_VERTICAL, AXIS_HORIZONTAL = 0, 1
KEY_MAX = 0x2FF

# (session, stream object path, stream size in logical pixels)
MutterTarget = tuple[MutterSession, str, tuple[int, int]]


class MutterInputInjector(InputInjector):
    """Inject through the Mutter session ``target()`` returns now (it follows a capture that
    reopened its session for a new stream)."""

    name = "mutter"

    def __init__(self, target: Callable[[], MutterTarget | None]) -> None:
        super().__init__()
        self._target = target
        self._session_seen: MutterSession | None = None
        self._wheel = ScrollAccumulator()
        self._closed = False

    @classmethod
    def for_capture(cls, capture: Any) -> MutterInputInjector:
        """Follow the Mutter session of a running ``WaylandCapture`` (mutter path)."""

        def target() -> MutterTarget | None:
            session = getattr(capture, "mutter", None)
            if not isinstance(session, MutterSession) or session.stream is None:
                return None
            try:
                size = capture.stream_size
            except Exception:
                return None
            return session, session.stream.path, size

        return cls(target)

    def _session(self) -> MutterTarget:
        if self._closed:
            raise InjectionError("the Mutter injector is closed")
        t = self._target()
        if t is None or t[0].closed.is_set():
            raise InjectionError(
                "no Mutter remote-desktop session (the screen cast is not running or GNOME "
                "ended it)"
            )
        if t[0] is not self._session_seen:
            self._session_seen = t[0]
            self.held_keys.clear()
            self.held_buttons.clear()
        return t

    def _notify(self, member: str, signature: str, args: list[object]) -> None:
        session = self._session()[0]
        try:
            session.notify(member, signature, args)
        except MutterError as exc:
            raise InjectionError(str(exc)) from exc

    @property
    def errors(self) -> int:
        t = self._target()
        return t[0].dbus.log.errors if t is not None else 0

    def sync(self) -> None:
        """Wait until Mutter answered every call sent so far (tests, shutdown)."""
        t = self._target()
        if t is not None and not t[0].closed.is_set():
            t[0].sync()

    # ---- InputInjector -----------------------------------------------------------------

    def _key(self, evdev_code: int, pressed: bool) -> None:
        if not 1 <= evdev_code <= KEY_MAX:
            raise InjectionError(f"evdev key code {evdev_code} is outside 1..{KEY_MAX}")
        self._notify("NotifyKeyboardKeycode", "ub", [int(evdev_code), bool(pressed)])

    def _button(self, button: int, pressed: bool) -> None:
        self._notify("NotifyPointerButton", "ib", [EVDEV_BUTTON[button], bool(pressed)])

    def _move_abs(self, x01: float, y01: float) -> None:
        _session, stream, (w, h) = self._session()
        x, y = x01 * (w - 1), y01 * (h - 1)
        self._notify("NotifyPointerMotionAbsolute", "sdd", [stream, float(x), float(y)])

    def _motion(self, dx: float, dy: float) -> None:
        if dx or dy:
            self._notify("NotifyPointerMotionRelative", "dd", [float(dx), float(dy)])

    def _scroll(self, dx: float, dy: float) -> None:
        # RIFT: +dy is up/away, +dx right. Wayland axes: +vertical is down, +horizontal right.
        nx, ny = self._wheel.add(dx, dy)
        if ny:
            self._notify("NotifyPointerAxisDiscrete", "ui", [AXIS_VERTICAL, -ny])
        if nx:
            self._notify("NotifyPointerAxisDiscrete", "ui", [AXIS_HORIZONTAL, nx])

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
            self.release_all()
            with contextlib.suppress(MutterError):
                self.sync()
        finally:
            self._closed = True
