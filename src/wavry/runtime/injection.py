"""Applying a client's input on the host (docs/spec/RIFT.md §9) through an InputInjector
backend. Input arrives as typed events (:mod:`wavry.runtime.messages`), never protobuf."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from wavry.media.types import Capture, CaptureError
from wavry.platform.input import InjectionError, InputInjector
from wavry.runtime.messages import (
    ButtonInput,
    InputEvent,
    KeyInput,
    PointerMotion,
    PointerMove,
    ScrollInput,
)

Region = tuple[int, int, int, int]


class InjectorSink:
    """Input events → injector calls. Errors are counted, never raised into the session."""

    def __init__(
        self, injector: InputInjector, region: Callable[[], Region | None] | None = None
    ) -> None:
        self.injector = injector
        self._region = region
        self._last_region: Region | None = None
        self.errors = 0
        self.last_error = ""
        self.applied = 0

    def handle(self, event: InputEvent) -> bool:
        """Apply one event; False when it failed (counted) or is not for this backend."""
        inj = self.injector
        try:
            if isinstance(event, KeyInput):
                inj.key(event.keycode, event.pressed)
            elif isinstance(event, PointerMove):
                self._follow_region()
                inj.mouse_move_abs(min(1.0, max(0.0, event.x)), min(1.0, max(0.0, event.y)))
            elif isinstance(event, PointerMotion):
                inj.mouse_motion(event.dx, event.dy)
            elif isinstance(event, ButtonInput):
                inj.button(event.button, event.pressed)
            elif isinstance(event, ScrollInput):
                inj.scroll(event.dx, event.dy)
            else:
                return False  # gamepads: not on this backend
            self.applied += 1
            return True
        except (InjectionError, ValueError, KeyError, OSError) as exc:
            self.errors += 1
            self.last_error = str(exc)
            return False

    def _follow_region(self) -> None:
        if self._region is None:
            return
        region = self._region()
        if region is not None and region != self._last_region:
            self._last_region = region
            set_region = getattr(self.injector, "set_region", None)
            if set_region is not None:
                set_region(region)

    def release(self, keys: Iterable[int] = (), buttons: Iterable[int] = ()) -> None:
        """Release these keys and buttons (those the injector holds), nothing else."""
        try:
            for code in keys:
                self.injector.key(code, False)
            for button in buttons:
                self.injector.button(button, False)
            self.injector.flush()
        except (InjectionError, ValueError, OSError) as exc:
            self.errors += 1
            self.last_error = str(exc)

    def release_all(self) -> None:
        try:
            self.injector.release_all()
        except (InjectionError, OSError) as exc:
            self.errors += 1
            self.last_error = str(exc)

    def close(self) -> None:
        self.release_all()
        self.injector.close()


def injector_for(source: str, capture: Capture, display: str | None) -> InjectorSink | None:
    """The injector matching a started capture source, or None (synthetic: nothing to control).
    Raises InjectionError with the reason when the source should be controllable but is not."""
    if source == "x11":
        from wavry.platform.xtest import XTestInjector

        def region() -> Region | None:
            try:
                return capture.geometry  # type: ignore[attr-defined, no-any-return]
            except (CaptureError, AttributeError):
                return None

        return InjectorSink(XTestInjector(display or os.environ.get("DISPLAY")), region)
    if source == "virtual":
        from wavry.platform.xtest import XTestInjector

        env = capture.env()  # type: ignore[attr-defined]
        return InjectorSink(XTestInjector(env["DISPLAY"], auth=env.get("XAUTHORITY")))
    if source == "wayland" and getattr(capture, "mutter", None) is not None:
        from wavry.platform.mutter_input import MutterInputInjector

        # GNOME: the remote-desktop session the screen cast is linked to (no dialog)
        return InjectorSink(MutterInputInjector.for_capture(capture))
    if source == "wayland" and getattr(capture, "kwin", None) is not None:
        from wavry.platform.kwin_input import KWinInputInjector

        # KDE Plasma: KWin's fake-input device on the screen cast's own connection
        return InjectorSink(KWinInputInjector.for_capture(capture))
    if source == "wayland":
        from wavry.platform.portal_input import PortalInputInjector

        # the RemoteDesktop grant of the capture's portal session (else a session of its own)
        return InjectorSink(PortalInputInjector.for_capture(capture))
    return None
