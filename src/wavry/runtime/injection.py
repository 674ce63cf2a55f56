"""Applying a client's RIFT input on the host (docs/spec/RIFT.md §9) through an InputInjector
backend."""

from __future__ import annotations

import os
from collections.abc import Callable

from wavry.media.types import Capture, CaptureError
from wavry.platform.input import InjectionError, InputInjector
from wavry.rift import rift_pb2

Region = tuple[int, int, int, int]


class InjectorSink:
    """RIFT InputMessage → injector calls. Errors are counted, never raised into the session."""

    def __init__(
        self, injector: InputInjector, region: Callable[[], Region | None] | None = None
    ) -> None:
        self.injector = injector
        self._region = region
        self._last_region: Region | None = None
        self.errors = 0
        self.last_error = ""
        self.applied = 0

    def handle(self, event: rift_pb2.InputMessage) -> None:
        inj = self.injector
        try:
            kind = event.WhichOneof("event")
            if kind == "key":
                inj.key(event.key.keycode, event.key.pressed)
            elif kind == "mouse_move":
                self._follow_region()
                x, y = event.mouse_move.x, event.mouse_move.y
                inj.mouse_move_abs(min(1.0, max(0.0, x)), min(1.0, max(0.0, y)))
            elif kind == "mouse_motion":
                inj.mouse_motion(event.mouse_motion.dx, event.mouse_motion.dy)
            elif kind == "mouse_button":
                inj.button(event.mouse_button.button, event.mouse_button.pressed)
            elif kind == "scroll":
                inj.scroll(event.scroll.dx, event.scroll.dy)
            else:
                return  # gamepads: not on this backend
            self.applied += 1
        except (InjectionError, ValueError, KeyError, OSError) as exc:
            self.errors += 1
            self.last_error = str(exc)

    def _follow_region(self) -> None:
        if self._region is None:
            return
        region = self._region()
        if region is not None and region != self._last_region:
            self._last_region = region
            set_region = getattr(self.injector, "set_region", None)
            if set_region is not None:
                set_region(region)

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
    if source == "wayland":
        from wavry.platform.portal_input import PortalInputInjector

        # the RemoteDesktop grant of the capture's portal session (else a session of its own)
        return InjectorSink(PortalInputInjector.for_capture(capture))
    return None
