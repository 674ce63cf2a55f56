"""Input injection through the xdg-desktop-portal RemoteDesktop interface (Wayland).

The portal takes the same evdev codes RIFT carries (docs/spec/RIFT.md §9): ``NotifyKeyboardKeycode``
with ``KEY_*`` codes, ``NotifyPointerButton`` with ``BTN_*`` codes,
``NotifyPointerMotionAbsolute`` in the cast stream's logical pixels (it needs the stream's
PipeWire node id, so absolute moves work on a session that also casts the screen),
``NotifyPointerMotion`` for relative moves and ``NotifyPointerAxisDiscrete`` for wheel notches.

Preferred: the session of :class:`wavry.media.wayland.WaylandCapture` when the portal granted
keyboard and pointer with the cast (one dialog). Otherwise a RemoteDesktop-only session of its
own (keys, buttons, relative motion, scroll; no absolute moves: there is no stream to map onto).
Calls go out without waiting for replies (in order, on one connection); failed calls are counted
in ``errors``. Every held key and button is released when the session ends (``release_all`` /
``close``), like the XTest and uinput injectors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from wavry.platform.input import InjectionError, InputInjector, ScrollAccumulator
from wavry.platform.portal import PortalError, PortalSession, RestoreTokenStore
from wavry.platform.uinput import EVDEV_BUTTON

__all__ = ["AXIS_HORIZONTAL", "AXIS_VERTICAL", "PortalInputInjector", "PortalTarget"]

AXIS_VERTICAL, AXIS_HORIZONTAL = 0, 1
KEY_MAX = 0x2FF

# (session, stream node id or None, stream size in logical pixels or None)
PortalTarget = tuple[PortalSession, int | None, tuple[int, int] | None]


class PortalInputInjector(InputInjector):
    """Inject through a RemoteDesktop portal session.

    ``target`` returns the session to use now (it follows a capture that reopened its session);
    ``owned`` is a session this injector opened itself and closes on ``close()``.
    """

    name = "portal"

    def __init__(
        self,
        target: Callable[[], PortalTarget | None],
        *,
        owned: PortalSession | None = None,
    ) -> None:
        super().__init__()
        self._target = target
        self._owned = owned
        self._session_seen: PortalSession | None = None
        self._wheel = ScrollAccumulator()
        self._closed = False

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def standalone(
        cls, *, bus_address: str | None = None, tokens: RestoreTokenStore | None = None
    ) -> PortalInputInjector:
        """Open a RemoteDesktop-only session (its own dialog) for keyboard and pointer."""
        session = PortalSession(screencast=False, bus_address=bus_address, tokens=tokens)
        try:
            session.open()
        except PortalError as exc:
            raise InjectionError(f"RemoteDesktop portal: {exc}") from exc
        return cls(lambda: (session, None, None), owned=session)

    @classmethod
    def for_capture(cls, capture: object, *, bus_address: str | None = None) -> PortalInputInjector:
        """Use the input grant of a running ``WaylandCapture``'s session, else a session of its
        own."""

        def target() -> PortalTarget | None:
            session = getattr(capture, "portal", None)
            if not isinstance(session, PortalSession) or not session.has_input:
                return None
            try:
                node = int(capture.node_id)  # type: ignore[attr-defined]
                size = capture.stream_size  # type: ignore[attr-defined]
            except Exception:
                return None
            return session, node, size

        if target() is not None:
            return cls(target)
        return cls.standalone(bus_address=bus_address)

    # ---- plumbing ----------------------------------------------------------------------

    def _session(self) -> PortalTarget:
        if self._closed:
            raise InjectionError("the portal injector is closed")
        t = self._target()
        if t is None or t[0].closed.is_set():
            raise InjectionError(
                "no RemoteDesktop portal session (the screen cast is not running or the "
                "portal closed it)"
            )
        if t[0] is not self._session_seen:
            # A new portal session: whatever was held went away with the old one.
            self._session_seen = t[0]
            self.held_keys.clear()
            self.held_buttons.clear()
        return t

    def _notify(self, member: str, signature: str, args: list[object]) -> None:
        session = self._session()[0]
        try:
            session.notify(member, signature, args)
        except PortalError as exc:
            raise InjectionError(str(exc)) from exc

    @property
    def errors(self) -> int:
        t = self._target()
        return t[0].log.errors if t is not None else 0

    def sync(self) -> None:
        """Wait until the portal answered every call sent so far (tests, shutdown)."""
        t = self._target()
        if t is not None and not t[0].closed.is_set():
            t[0].sync()

    # ---- InputInjector -----------------------------------------------------------------

    def _key(self, evdev_code: int, pressed: bool) -> None:
        if not 1 <= evdev_code <= KEY_MAX:
            raise InjectionError(f"evdev key code {evdev_code} is outside 1..{KEY_MAX}")
        self._notify("NotifyKeyboardKeycode", "iu", [int(evdev_code), 1 if pressed else 0])

    def _button(self, button: int, pressed: bool) -> None:
        self._notify("NotifyPointerButton", "iu", [EVDEV_BUTTON[button], 1 if pressed else 0])

    def pixel_for(self, x01: float, y01: float, size: tuple[int, int]) -> tuple[float, float]:
        w, h = size
        return x01 * (w - 1), y01 * (h - 1)

    def _move_abs(self, x01: float, y01: float) -> None:
        _session, node, size = self._session()
        if node is None or size is None:
            raise InjectionError(
                "absolute pointer moves need the RemoteDesktop session that also casts the "
                "screen (this portal gave input without a stream)"
            )
        x, y = self.pixel_for(x01, y01, size)
        self._notify("NotifyPointerMotionAbsolute", "udd", [node, float(x), float(y)])

    def _motion(self, dx: float, dy: float) -> None:
        if dx or dy:
            self._notify("NotifyPointerMotion", "dd", [float(dx), float(dy)])

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
            # the session is gone: the compositor dropped its emulated devices and what they held
            self.held_keys.clear()
            self.held_buttons.clear()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.release_all()
            with contextlib.suppress(PortalError):
                self.sync()
        finally:
            self._closed = True
            if self._owned is not None:
                self._owned.close()
                self._owned = None
