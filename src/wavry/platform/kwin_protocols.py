"""KWin's own Wayland protocols, declared for pywayland's client side.

pywayland's scanner turns protocol XML into modules like this one; these two are small and
declared by hand from plasma-wayland-protocols 1.10 (``fake-input.xml``,
``zkde-screencast-unstable-v1.xml``) so that wavry needs neither the XML nor a build step at run
time. Every request and event is declared in the XML's order: libwayland checks a message against
the entry at its opcode. Only the client side (proxies) is used.

- ``org_kde_kwin_fake_input`` v4: keys by evdev code, pointer motion (relative and absolute, in
  global logical pixels), buttons (``BTN_*``), axes.
- ``zkde_screencast_unstable_v1`` v3: ``stream_output`` / ``stream_window`` → a stream object
  that answers ``created(node)`` (a PipeWire node on the session's daemon) or ``failed(text)``.
"""

from __future__ import annotations

from typing import Any

from pywayland.protocol.wayland import WlOutput
from pywayland.protocol_core.argument import Argument
from pywayland.protocol_core.globals import Global
from pywayland.protocol_core.interface import Interface
from pywayland.protocol_core.proxy import Proxy
from pywayland.protocol_core.resource import Resource
from pywayland.scanner.argument import ArgumentType

__all__ = [
    "CURSOR_EMBEDDED",
    "CURSOR_HIDDEN",
    "CURSOR_METADATA",
    "FakeInput",
    "Screencast",
    "ScreencastStream",
]

CURSOR_HIDDEN, CURSOR_EMBEDDED, CURSOR_METADATA = 1, 2, 4


def _finish(iface: Any, proxy: type, resource: type, global_: type) -> None:
    iface._gen_c()
    iface.proxy_class = proxy
    iface.resource_class = resource
    iface.global_class = global_


# ---- org_kde_kwin_fake_input (v4) -------------------------------------------------------


class FakeInput(Interface):
    name = "org_kde_kwin_fake_input"
    version = 4


_U, _F, _S = ArgumentType.Uint, ArgumentType.Fixed, ArgumentType.String


class FakeInputProxy(Proxy[FakeInput]):
    interface = FakeInput

    @FakeInput.request(Argument(_S), Argument(_S))
    def authenticate(self, application: str, reason: str) -> None:
        self._marshal(0, application, reason)

    @FakeInput.request(Argument(_F), Argument(_F))
    def pointer_motion(self, delta_x: float, delta_y: float) -> None:
        self._marshal(1, delta_x, delta_y)

    @FakeInput.request(Argument(_U), Argument(_U))
    def button(self, button: int, state: int) -> None:
        self._marshal(2, button, state)

    @FakeInput.request(Argument(_U), Argument(_F))
    def axis(self, axis: int, value: float) -> None:
        self._marshal(3, axis, value)

    @FakeInput.request(Argument(_U), Argument(_F), Argument(_F), version=2)
    def touch_down(self, id: int, x: float, y: float) -> None:
        self._marshal(4, id, x, y)

    @FakeInput.request(Argument(_U), Argument(_F), Argument(_F), version=2)
    def touch_motion(self, id: int, x: float, y: float) -> None:
        self._marshal(5, id, x, y)

    @FakeInput.request(Argument(_U), version=2)
    def touch_up(self, id: int) -> None:
        self._marshal(6, id)

    @FakeInput.request(version=2)
    def touch_cancel(self) -> None:
        self._marshal(7)

    @FakeInput.request(version=2)
    def touch_frame(self) -> None:
        self._marshal(8)

    @FakeInput.request(Argument(_F), Argument(_F), version=3)
    def pointer_motion_absolute(self, x: float, y: float) -> None:
        self._marshal(9, x, y)

    @FakeInput.request(Argument(_U), Argument(_U), version=4)
    def keyboard_key(self, button: int, state: int) -> None:
        self._marshal(10, button, state)


class _FakeInputResource(Resource[FakeInput]):
    interface = FakeInput


class _FakeInputGlobal(Global[FakeInput]):
    interface = FakeInput


_finish(FakeInput, FakeInputProxy, _FakeInputResource, _FakeInputGlobal)


# ---- zkde_screencast_unstable_v1 (v3) ---------------------------------------------------


class ScreencastStream(Interface):
    name = "zkde_screencast_stream_unstable_v1"
    version = 3


class Screencast(Interface):
    name = "zkde_screencast_unstable_v1"
    version = 3


class _ScreencastStreamResource(Resource[ScreencastStream]):
    """Declares the stream's events (the client dispatches them by this order)."""

    interface = ScreencastStream

    @ScreencastStream.event()
    def closed(self) -> None:
        self._post_event(0)

    @ScreencastStream.event(Argument(_U))
    def created(self, node: int) -> None:
        self._post_event(1, node)

    @ScreencastStream.event(Argument(_S))
    def failed(self, error: str) -> None:
        self._post_event(2, error)


class ScreencastStreamProxy(Proxy[ScreencastStream]):
    interface = ScreencastStream

    @ScreencastStream.request()
    def close(self) -> None:
        self._marshal(0)
        self._destroy()


class ScreencastProxy(Proxy[Screencast]):
    interface = Screencast

    @Screencast.request(
        Argument(ArgumentType.NewId, interface=ScreencastStream),
        Argument(ArgumentType.Object, interface=WlOutput),
        Argument(_U),
    )
    def stream_output(self, output: Any, pointer: int) -> Any:
        return self._marshal_constructor(0, ScreencastStream, output, pointer)

    @Screencast.request(
        Argument(ArgumentType.NewId, interface=ScreencastStream), Argument(_S), Argument(_U)
    )
    def stream_window(self, window_uuid: str, pointer: int) -> Any:
        return self._marshal_constructor(1, ScreencastStream, window_uuid, pointer)

    @Screencast.request()
    def destroy(self) -> None:
        self._marshal(2)
        self._destroy()

    @Screencast.request(
        Argument(ArgumentType.NewId, interface=ScreencastStream),
        Argument(_S),
        Argument(ArgumentType.Int),
        Argument(ArgumentType.Int),
        Argument(_F),
        Argument(_U),
        version=2,
    )
    def stream_virtual_output(
        self, name: str, width: int, height: int, scale: float, pointer: int
    ) -> Any:
        return self._marshal_constructor(3, ScreencastStream, name, width, height, scale, pointer)

    @Screencast.request(
        Argument(ArgumentType.NewId, interface=ScreencastStream),
        Argument(ArgumentType.Int),
        Argument(ArgumentType.Int),
        Argument(_U),
        Argument(_U),
        Argument(_F),
        Argument(_U),
        version=3,
    )
    def stream_region(
        self, x: int, y: int, width: int, height: int, scale: float, pointer: int
    ) -> Any:
        return self._marshal_constructor(4, ScreencastStream, x, y, width, height, scale, pointer)


class _ScreencastResource(Resource[Screencast]):
    interface = Screencast


class _ScreencastGlobal(Global[Screencast]):
    interface = Screencast


class _ScreencastStreamGlobal(Global[ScreencastStream]):
    interface = ScreencastStream


_finish(ScreencastStream, ScreencastStreamProxy, _ScreencastStreamResource, _ScreencastStreamGlobal)
_finish(Screencast, ScreencastProxy, _ScreencastResource, _ScreencastGlobal)
