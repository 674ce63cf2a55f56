"""GNOME without a person at the screen: Mutter's own remote-desktop D-Bus interfaces.

GNOME's remote desktop (gnome-remote-desktop) does not go through xdg-desktop-portal: it talks to
``org.gnome.Mutter.RemoteDesktop`` and ``org.gnome.Mutter.ScreenCast`` on the session bus, which
show no dialog (they are there for the desktop's own services, so anything running as the user in
that session may use them). Wavry does the same:

1. ``RemoteDesktop.CreateSession()`` → a session object; its ``SessionId`` property links a
   screen cast to it: ``ScreenCast.CreateSession({"remote-desktop-session-id": id})``.
2. ``ScreenCast.Session.RecordMonitor(connector, {"cursor-mode": embedded})`` for a real monitor
   (the connector comes from ``org.gnome.Mutter.DisplayConfig.GetCurrentState``), or
   ``RecordVirtual({...})`` for a virtual monitor that takes the size the PipeWire consumer asks
   for (the Wayland form of ``wavry host --virtual``).
3. ``RemoteDesktop.Session.Start()`` starts both; the stream object then emits
   ``PipeWireStreamAdded(u node_id)`` — a node on the user's PipeWire daemon (no portal fd).
4. Input goes to the remote-desktop session: ``NotifyKeyboardKeycode`` (evdev codes),
   ``NotifyPointerMotionAbsolute(stream, x, y)`` in the stream's logical pixels,
   ``NotifyPointerMotionRelative``, ``NotifyPointerButton`` (``BTN_*``),
   ``NotifyPointerAxisDiscrete``.
5. ``Stop()`` ends both (the virtual input devices go away with whatever they held); Mutter also
   stops a session whose D-Bus connection closed, so a crashed host leaves nothing behind.
   ``Closed`` signals tell us when Mutter ended it.

The remote-desktop session also carries the clipboard (``EnableClipboard``, ``SetSelection``,
``SelectionRead``/``SelectionWrite``): see :mod:`wavry.platform.mutter_clipboard`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, Variant

from wavry.platform.dbus_thread import DBusCallError, DBusThread, unwrap
from wavry.platform.probe import ProbeResult

__all__ = [
    "CURSOR_EMBEDDED",
    "CURSOR_HIDDEN",
    "CURSOR_METADATA",
    "MutterError",
    "MutterSession",
    "MutterStream",
    "probe_mutter",
]

SC_BUS = "org.gnome.Mutter.ScreenCast"
SC_PATH = "/org/gnome/Mutter/ScreenCast"
SC_IFACE = "org.gnome.Mutter.ScreenCast"
SC_SESSION = "org.gnome.Mutter.ScreenCast.Session"
SC_STREAM = "org.gnome.Mutter.ScreenCast.Stream"
RD_BUS = "org.gnome.Mutter.RemoteDesktop"
RD_PATH = "/org/gnome/Mutter/RemoteDesktop"
RD_IFACE = "org.gnome.Mutter.RemoteDesktop"
RD_SESSION = "org.gnome.Mutter.RemoteDesktop.Session"
DC_BUS = "org.gnome.Mutter.DisplayConfig"
DC_PATH = "/org/gnome/Mutter/DisplayConfig"

CURSOR_HIDDEN, CURSOR_EMBEDDED, CURSOR_METADATA = 0, 1, 2
DEVICE_KEYBOARD, DEVICE_POINTER = 1, 2

_REMEDY = (
    "run wavry inside the GNOME session (the user's session bus, where gnome-shell owns "
    "org.gnome.Mutter.ScreenCast and org.gnome.Mutter.RemoteDesktop)"
)


class MutterError(RuntimeError):
    """Mutter's interfaces are missing or refused; the message says what to do."""


@dataclass(frozen=True)
class MutterStream:
    """The screen cast stream Mutter started: PipeWire node, D-Bus path, logical geometry."""

    node_id: int
    path: str
    size: tuple[int, int] | None
    position: tuple[int, int] | None
    connector: str  # "" for a virtual monitor


@dataclass(frozen=True)
class MutterMonitor:
    connector: str
    size: tuple[int, int]
    position: tuple[int, int]
    primary: bool


def _pair(value: Any) -> tuple[int, int] | None:
    v = unwrap(value)
    if isinstance(v, list | tuple) and len(v) == 2:
        return int(v[0]), int(v[1])
    return None


def parse_monitors(state: list[Any]) -> list[MutterMonitor]:
    """``DisplayConfig.GetCurrentState`` → the active monitors, primary first."""
    _serial, monitors, logical, _props = state[:4]
    modes: dict[str, tuple[int, int]] = {}
    for spec, mode_list, _mprops in monitors:
        for mode in mode_list:
            if unwrap(mode[6].get("is-current", Variant("b", False))):
                modes[str(spec[0])] = (int(mode[1]), int(mode[2]))
    out = []
    for x, y, scale, _transform, primary, specs, _lprops in logical:
        for spec in specs:
            connector = str(spec[0])
            w, h = modes.get(connector, (0, 0))
            if scale and scale != 1:
                w, h = round(w / scale), round(h / scale)
            out.append(MutterMonitor(connector, (w, h), (int(x), int(y)), bool(primary)))
    out.sort(key=lambda m: (not m.primary, m.position))
    return out


class MutterSession:
    """One Mutter remote-desktop session, with its linked screen cast when ``screencast``.

    ``virtual``: None records a real monitor (``monitor`` index into the active monitors,
    primary first; None = primary); a (w, h) records a virtual monitor of that size.
    ``open()`` returns the stream (None without a screen cast); ``notify()`` sends an input
    call; ``close()`` stops the session. ``closed`` is set when Mutter ended it or after
    ``close()``; ``on_closed(reason)`` is called from the D-Bus thread.
    """

    def __init__(
        self,
        *,
        screencast: bool = True,
        monitor: int | None = None,
        virtual: tuple[int, int] | None = None,
        cursor_mode: int = CURSOR_EMBEDDED,
        bus_address: str | None = None,
        call_timeout: float = 10.0,
        stream_timeout: float = 10.0,
    ) -> None:
        self.screencast = screencast
        self.monitor = monitor
        self.virtual = virtual
        self.cursor_mode = cursor_mode
        self.stream_timeout = stream_timeout
        address = bus_address or os.environ.get("DBUS_SESSION_BUS_ADDRESS") or ""
        self.dbus = DBusThread(
            address, call_timeout=call_timeout, name="wavry-mutter", on_signal=self._on_signal
        )
        self.rd_path = ""
        self.sc_path = ""
        self.stream: MutterStream | None = None
        self.closed = threading.Event()
        self.closed_reason = ""
        self.on_closed: Callable[[str], None] | None = None
        self.signal_handlers: list[Callable[[Message], None]] = []
        self._stream_path = ""
        self._node: asyncio.Future[int] | None = None
        self._closing = False

    # ---- signals (on the D-Bus thread) -------------------------------------------------

    def _on_signal(self, msg: Message) -> None:
        if msg.member == "PipeWireStreamAdded" and msg.path == self._stream_path:
            if self._node is not None and not self._node.done():
                self._node.set_result(int(msg.body[0]))
        elif (
            msg.member == "Closed"
            and msg.path
            and msg.path in (self.rd_path, self.sc_path)
            and not self._closing
        ):
            self._ended("GNOME ended the remote-desktop session")
        for handler in list(self.signal_handlers):
            handler(msg)

    def _ended(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.closed_reason = reason
        self.closed.set()
        if self._node is not None and not self._node.done():
            self._node.set_exception(MutterError(reason))
        if self.on_closed is not None:
            self.on_closed(reason)

    # ---- the flow ----------------------------------------------------------------------

    async def _monitors(self) -> list[MutterMonitor]:
        reply = await self.dbus.call(
            DC_BUS, DC_PATH, "org.gnome.Mutter.DisplayConfig", "GetCurrentState"
        )
        return parse_monitors(reply.body)

    async def _open(self) -> MutterStream | None:
        d = self.dbus
        await d.connect()
        for name in (RD_BUS, SC_BUS) if self.screencast else (RD_BUS,):
            if not await d.name_has_owner(name):
                raise MutterError(f"{name} is not on the session bus (not a GNOME session?)")
        reply = await d.call(RD_BUS, RD_PATH, RD_IFACE, "CreateSession")
        self.rd_path = str(reply.body[0])
        await d.add_match(f"type='signal',sender='{RD_BUS}',path='{self.rd_path}'")
        if not self.screencast:
            await d.call(RD_BUS, self.rd_path, RD_SESSION, "Start")
            return None
        session_id = str(await d.get_property(RD_BUS, self.rd_path, RD_SESSION, "SessionId"))
        reply = await d.call(
            SC_BUS,
            SC_PATH,
            SC_IFACE,
            "CreateSession",
            "a{sv}",
            [{"remote-desktop-session-id": Variant("s", session_id)}],
        )
        self.sc_path = str(reply.body[0])
        await d.add_match(f"type='signal',sender='{SC_BUS}',path='{self.sc_path}'")
        props = {"cursor-mode": Variant("u", self.cursor_mode)}
        connector = ""
        if self.virtual is not None:
            reply = await d.call(
                SC_BUS, self.sc_path, SC_SESSION, "RecordVirtual", "a{sv}", [props]
            )
        else:
            monitors = await self._monitors()
            if not monitors:
                raise MutterError("GNOME reports no active monitor to record")
            index = self.monitor or 0
            if not 0 <= index < len(monitors):
                names = ", ".join(f"{i}: {m.connector}" for i, m in enumerate(monitors))
                raise MutterError(f"no monitor {index} (GNOME has {names})")
            connector = monitors[index].connector
            reply = await d.call(
                SC_BUS, self.sc_path, SC_SESSION, "RecordMonitor", "sa{sv}", [connector, props]
            )
        self._stream_path = str(reply.body[0])
        assert d.loop is not None
        self._node = d.loop.create_future()
        await d.add_match(f"type='signal',sender='{SC_BUS}',path='{self._stream_path}'")
        await d.call(RD_BUS, self.rd_path, RD_SESSION, "Start")
        try:
            node = await asyncio.wait_for(self._node, self.stream_timeout)
        except TimeoutError:
            raise MutterError(
                f"GNOME started the screen cast but announced no PipeWire stream within "
                f"{self.stream_timeout:.0f} s (is PipeWire running in the session?)"
            ) from None
        params: dict[str, Any] = {}
        try:
            params = dict(await d.get_property(SC_BUS, self._stream_path, SC_STREAM, "Parameters"))
        except DBusCallError:
            params = {}
        return MutterStream(
            node,
            self._stream_path,
            _pair(params.get("size")),
            _pair(params.get("position")),
            connector,
        )

    def open(self) -> MutterStream | None:
        """Create, link and start the sessions; returns the stream (None without a cast)."""
        self.dbus.start()
        try:
            self.stream = self.dbus.run(self._open(), self.dbus.call_timeout * 8 + 30)
        except DBusCallError as exc:
            self.close()
            raise MutterError(f"Mutter remote desktop: {exc}") from exc
        except BaseException:
            self.close()
            raise
        return self.stream

    # ---- input -------------------------------------------------------------------------

    def notify(self, member: str, signature: str, args: list[Any]) -> None:
        """Send RemoteDesktop.Session.``member``(*args) without waiting for the reply."""
        if self.closed.is_set() or not self.rd_path:
            raise MutterError(self.closed_reason or "the Mutter session is not open")
        try:
            self.dbus.send(RD_BUS, self.rd_path, RD_SESSION, member, signature, args)
        except DBusCallError as exc:
            raise MutterError(str(exc)) from exc

    def call(self, member: str, signature: str = "", args: list[Any] | None = None) -> Message:
        """Call RemoteDesktop.Session.``member`` and wait for the reply (clipboard)."""
        if self.closed.is_set() or not self.rd_path:
            raise MutterError(self.closed_reason or "the Mutter session is not open")
        try:
            return self.dbus.run(
                self.dbus.call(RD_BUS, self.rd_path, RD_SESSION, member, signature, args or []),
                self.dbus.call_timeout + 5,
            )
        except DBusCallError as exc:
            raise MutterError(str(exc)) from exc

    def sync(self) -> None:
        """Wait until Mutter answered every input call sent so far."""
        try:
            self.dbus.sync()
        except DBusCallError as exc:
            raise MutterError(str(exc)) from exc

    # ---- end ---------------------------------------------------------------------------

    async def _stop(self) -> None:
        await self.dbus.drain()
        if self.rd_path and not self.closed.is_set():
            await self.dbus.call(RD_BUS, self.rd_path, RD_SESSION, "Stop")

    def close(self) -> None:
        """Stop the session (cast and input devices) and disconnect. Idempotent."""
        self._closing = True
        if not self.closed.is_set():
            self.closed_reason = self.closed_reason or "the session was closed"
        closing = self._stop() if self.dbus.loop is not None else None
        self.dbus.stop(closing)
        self.closed.set()


def probe_mutter(bus_address: str | None = None, timeout: float = 3.0) -> ProbeResult:
    """Are Mutter's ScreenCast and RemoteDesktop on the session bus? (no session is made)"""
    address = bus_address or os.environ.get("DBUS_SESSION_BUS_ADDRESS") or ""
    if not address:
        return ProbeResult(
            "mutter", False, "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)", _REMEDY
        )
    d = DBusThread(address, call_timeout=timeout, name="wavry-mutter-probe")

    async def check() -> tuple[int, int, int]:
        await d.connect()
        for name in (SC_BUS, RD_BUS):
            if not await d.name_has_owner(name):
                raise MutterError(f"{name} is not on the session bus")
        sc = int(await d.get_property(SC_BUS, SC_PATH, SC_IFACE, "Version"))
        rd = int(await d.get_property(RD_BUS, RD_PATH, RD_IFACE, "Version"))
        devices = int(await d.get_property(RD_BUS, RD_PATH, RD_IFACE, "SupportedDeviceTypes"))
        return sc, rd, devices

    d.start()
    try:
        sc, rd, devices = d.run(check(), timeout * 6)
    except (DBusCallError, MutterError) as exc:
        return ProbeResult("mutter", False, str(exc), _REMEDY)
    finally:
        d.stop()
    wanted = DEVICE_KEYBOARD | DEVICE_POINTER
    if devices & wanted != wanted:
        return ProbeResult(
            "mutter",
            False,
            f"Mutter RemoteDesktop offers devices {devices:#x}, not keyboard and pointer",
            "use the portal path (--wayland-path portal)",
        )
    return ProbeResult(
        "mutter",
        True,
        f"GNOME Mutter ScreenCast v{sc} + RemoteDesktop v{rd}: no dialog, keyboard and pointer",
    )
