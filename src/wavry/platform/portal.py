"""xdg-desktop-portal client (ScreenCast + RemoteDesktop) over D-Bus with dbus-fast.

The portal protocol: every interactive method (CreateSession, SelectSources, SelectDevices,
Start) returns the object path of an ``org.freedesktop.portal.Request`` at once; the answer
comes later as that object's ``Response(u code, a{sv} results)`` signal (code 0 success, 1 the
user cancelled, 2 the interaction ended some other way). The request path is predictable from
our unique bus name and the ``handle_token`` we pass, so we subscribe *before* calling and can
never miss the signal.

:class:`PortalSession` runs one dbus-fast connection on a private thread with its own event loop
and exposes a blocking API, so a capture thread, the host's asyncio loop and tests can all use
it. One session carries a screen cast and, when the portal offers it, remote-desktop input on the
same session (one permission dialog; pointer coordinates are relative to the cast stream).

Restore tokens (ScreenCast v4 / RemoteDesktop v2, ``persist_mode`` 2) are kept in
``$XDG_CONFIG_HOME/wavry/portal-restore-token.json`` (mode 0600), so the user is asked once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dbus_fast import Message, Variant

from wavry.atomicfile import atomic_write
from wavry.platform.dbus_thread import CallLog, DBusCallError, DBusThread
from wavry.platform.probe import ProbeResult

__all__ = [
    "CURSOR_EMBEDDED",
    "DEVICE_KEYBOARD",
    "DEVICE_POINTER",
    "PORTAL_BUS",
    "PORTAL_PATH",
    "PortalCancelled",
    "PortalError",
    "PortalSession",
    "PortalStream",
    "RestoreTokenStore",
    "probe_portal",
]

PORTAL_BUS = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SCREENCAST = "org.freedesktop.portal.ScreenCast"
REMOTE_DESKTOP = "org.freedesktop.portal.RemoteDesktop"
REQUEST = "org.freedesktop.portal.Request"
SESSION = "org.freedesktop.portal.Session"
PROPERTIES = "org.freedesktop.DBus.Properties"

SOURCE_MONITOR, SOURCE_WINDOW, SOURCE_VIRTUAL = 1, 2, 4
CURSOR_HIDDEN, CURSOR_EMBEDDED, CURSOR_METADATA = 1, 2, 4
DEVICE_KEYBOARD, DEVICE_POINTER, DEVICE_TOUCHSCREEN = 1, 2, 4
PERSIST_NONE, PERSIST_TRANSIENT, PERSIST_PERSISTENT = 0, 1, 2

_PORTAL_REMEDY = (
    "install xdg-desktop-portal and the backend for your desktop "
    "(xdg-desktop-portal-gnome, -kde or -wlr) and run wavry inside that desktop session"
)

T = TypeVar("T")


class PortalError(RuntimeError):
    """The portal is missing, refused, or failed; the message says what to do."""


class PortalCancelled(PortalError):
    """The user cancelled (code 1) or the portal ended (code 2) an interactive request."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PortalStream:
    """One PipeWire stream the portal granted: its node id and what the portal said about it."""

    node_id: int
    size: tuple[int, int] | None = None
    position: tuple[int, int] | None = None
    source_type: int = SOURCE_MONITOR
    stream_id: str = ""


@dataclass
class StartResult:
    streams: list[PortalStream]
    devices: int = 0
    restore_token: str = ""
    remote_desktop: bool = False


class RestoreTokenStore:
    """The portal restore tokens of the last session, per kind (screencast / remotedesktop)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from wavry.store import config_dir

            path = config_dir() / "portal-restore-token.json"
        self.path = path

    def load(self, kind: str) -> str:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return ""
        value = data.get(kind, "") if isinstance(data, dict) else ""
        return value if isinstance(value, str) else ""

    def save(self, kind: str, token: str) -> None:
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[kind] = token
        atomic_write(self.path, json.dumps(data).encode())


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Variant) else value


def _pair(value: Any) -> tuple[int, int] | None:
    v = _unwrap(value)
    if isinstance(v, list | tuple) and len(v) == 2:
        return int(v[0]), int(v[1])
    return None


def parse_streams(raw: Any) -> list[PortalStream]:
    """``a(ua{sv})`` from a Start response → streams."""
    out = []
    for item in _unwrap(raw) or []:
        node, props = int(item[0]), dict(item[1])
        out.append(
            PortalStream(
                node,
                _pair(props.get("size")),
                _pair(props.get("position")),
                int(_unwrap(props.get("source_type", Variant("u", SOURCE_MONITOR)))),
                str(_unwrap(props.get("id", Variant("s", "")))),
            )
        )
    return out


@dataclass
class _Pending:
    future: asyncio.Future[tuple[int, dict[str, Any]]]
    path: str


class PortalSession:
    """A portal session: screen cast (always) plus remote desktop input (when asked/available).

    ``remote_desktop``: True requires it, False never asks, None (default) uses it when the
    portal offers keyboard and pointer devices. ``open()`` runs the whole dialog and returns the
    granted streams; ``open_pipewire_remote()`` gives the PipeWire fd for them; ``notify()``
    sends a RemoteDesktop ``Notify*`` call; ``close()`` ends the session. ``closed`` is set when
    the portal closes the session (the user stopped sharing) or after ``close()``.
    """

    def __init__(
        self,
        *,
        remote_desktop: bool | None = None,
        screencast: bool = True,
        cursor_embedded: bool = True,
        tokens: RestoreTokenStore | None = None,
        bus_address: str | None = None,
        request_timeout: float = 300.0,
        call_timeout: float = 10.0,
        on_waiting: Callable[[str], None] | None = None,
        waiting_after: float = 1.0,
    ) -> None:
        self.want_remote_desktop = True if not screencast else remote_desktop
        self.want_screencast = screencast
        self.cursor_embedded = cursor_embedded
        self.tokens = tokens if tokens is not None else RestoreTokenStore()
        self.bus_address = bus_address or os.environ.get("DBUS_SESSION_BUS_ADDRESS") or ""
        self.request_timeout = request_timeout
        self.call_timeout = call_timeout
        self.on_waiting = on_waiting
        self.waiting_after = waiting_after
        self.waited = False
        self.session_handle = ""
        self.result: StartResult | None = None
        self.closed = threading.Event()
        self.closed_reason = ""
        self.on_closed: Callable[[str], None] | None = None
        self.dbus = DBusThread(
            self.bus_address,
            call_timeout=call_timeout,
            name="wavry-portal",
            on_signal=self._on_signal,
        )
        self._pending: dict[str, _Pending] = {}
        self._tokens = itertools.count(1)

    # ---- plumbing (DBusThread: one connection on a private loop) ------------------------

    @property
    def log(self) -> CallLog:
        """Input notifications sent and failed (``notify`` does not wait for replies)."""
        return self.dbus.log

    def _start_loop(self) -> None:
        self.dbus.start()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        try:
            return self.dbus.run(coro, timeout)
        except DBusCallError as exc:
            raise PortalError(str(exc).replace("on D-Bus", "from the portal")) from exc

    async def _connect(self) -> None:
        try:
            await self.dbus.connect()
        except DBusCallError as exc:
            raise PortalError(str(exc)) from exc

    async def _call(
        self,
        interface: str,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
        *,
        path: str = PORTAL_PATH,
        destination: str = PORTAL_BUS,
    ) -> Message:
        try:
            return await self.dbus.call(destination, path, interface, member, signature, body)
        except DBusCallError as exc:
            raise PortalError(str(exc)) from exc

    async def _add_match(self, rule: str) -> None:
        try:
            await self.dbus.add_match(rule)
        except DBusCallError as exc:
            raise PortalError(str(exc)) from exc

    async def _get_property(self, interface: str, name: str) -> Any:
        reply = await self._call(PROPERTIES, "Get", "ss", [interface, name])
        return _unwrap(reply.body[0])

    def _on_signal(self, msg: Message) -> None:
        if msg.interface == REQUEST and msg.member == "Response":
            pending = self._pending.pop(msg.path or "", None)
            if pending is not None and not pending.future.done():
                code, results = int(msg.body[0]), dict(msg.body[1])
                pending.future.set_result((code, results))
        elif (
            msg.interface == SESSION
            and msg.member == "Closed"
            and msg.path == self.session_handle
            and not self.closed.is_set()
        ):
            self.closed_reason = "the portal closed the session (sharing was stopped)"
            self.closed.set()
            if self.on_closed is not None:
                self.on_closed(self.closed_reason)

    def _request_path(self, token: str) -> str:
        bus = self.dbus.bus
        assert bus is not None and bus.unique_name is not None
        sender = bus.unique_name.lstrip(":").replace(".", "_")
        return f"{PORTAL_PATH}/request/{sender}/{token}"

    def _token(self, prefix: str) -> str:
        return f"wavry_{prefix}_{os.getpid()}_{next(self._tokens)}_{secrets.token_hex(4)}"

    async def _request(
        self,
        interface: str,
        member: str,
        signature: str,
        args: list[Any],
        options: dict[str, Variant],
        what: str,
    ) -> dict[str, Any]:
        """Call an interactive portal method and wait for its Response (code 0) results."""
        assert self.dbus.loop is not None
        token = self._token("req")
        path = self._request_path(token)
        options = {**options, "handle_token": Variant("s", token)}
        fut: asyncio.Future[tuple[int, dict[str, Any]]] = self.dbus.loop.create_future()
        self._pending[path] = _Pending(fut, path)
        returned = path
        try:
            await self._add_match(
                f"type='signal',interface='{REQUEST}',member='Response',path='{path}'"
            )
            reply = await self._call(interface, member, signature, [*args, options])
            returned = str(reply.body[0])
            if returned != path:  # very old portals: follow the path they chose
                self._pending[returned] = self._pending.pop(path)
                await self._add_match(
                    f"type='signal',interface='{REQUEST}',member='Response',path='{returned}'"
                )
            code, results = await self._answer(fut, what)
        finally:
            self._pending.pop(path, None)
            self._pending.pop(returned, None)
        if code == 1:
            raise PortalCancelled(
                f"the portal request to {what} was cancelled or denied by the user (response 1); "
                "accept the screen-sharing dialog on the host's desktop, then start again",
                1,
            )
        if code != 0:
            raise PortalCancelled(
                f"the portal ended the request to {what} without granting it (response {code}); "
                "the desktop refused or closed the dialog",
                code,
            )
        return results

    async def _answer(
        self, fut: asyncio.Future[tuple[int, dict[str, Any]]], what: str
    ) -> tuple[int, dict[str, Any]]:
        """The Response of one request; says once that a dialog waits when it takes long."""
        done, _ = await asyncio.wait({fut}, timeout=min(self.waiting_after, self.request_timeout))
        if not done:
            if self.on_waiting is not None and not self.waited:
                self.waited = True
                self.on_waiting(
                    f"waiting for the desktop's answer to {what}: approve the screen-sharing "
                    f"request on the host's screen (giving up in {self.request_timeout:.0f} s)"
                )
            try:
                await asyncio.wait_for(fut, self.request_timeout - self.waiting_after)
            except TimeoutError:
                raise PortalError(
                    f"nobody answered the request to {what} within "
                    f"{self.request_timeout:.0f} s: approve the screen-sharing request on the "
                    "host's screen when it appears (on GNOME without a person at the screen, "
                    "wavry uses Mutter's remote-desktop API instead, which needs no dialog)"
                ) from None
        return fut.result()

    # ---- the flow ----------------------------------------------------------------------

    async def _interfaces(self) -> tuple[dict[str, int], dict[str, int]]:
        """Properties of ScreenCast and (if present) RemoteDesktop; explains what is missing."""
        try:
            version = int(await self._get_property(SCREENCAST, "version"))
        except PortalError as exc:
            text = str(exc)
            if "ServiceUnknown" in text or "NameHasNoOwner" in text:
                raise PortalError(
                    f"no xdg-desktop-portal on the session bus ({PORTAL_BUS} is not owned); "
                    + _PORTAL_REMEDY
                ) from exc
            raise PortalError(
                f"the portal has no ScreenCast interface ({text}); install a portal backend with "
                "ScreenCast (xdg-desktop-portal-gnome, -kde or -wlr)"
            ) from exc
        sc = {
            "version": version,
            "sources": int(await self._get_property(SCREENCAST, "AvailableSourceTypes")),
            "cursors": int(await self._get_property(SCREENCAST, "AvailableCursorModes")),
        }
        rd: dict[str, int] = {}
        try:
            rd = {
                "version": int(await self._get_property(REMOTE_DESKTOP, "version")),
                "devices": int(await self._get_property(REMOTE_DESKTOP, "AvailableDeviceTypes")),
            }
        except PortalError:
            rd = {}
        return sc, rd

    async def _open(self) -> StartResult:
        await self._connect()
        if self.want_screencast:
            sc, rd = await self._interfaces()
        else:
            sc, rd = {"version": 0, "sources": SOURCE_MONITOR, "cursors": 0}, {}
            with contextlib.suppress(PortalError):
                rd = {
                    "version": int(await self._get_property(REMOTE_DESKTOP, "version")),
                    "devices": int(
                        await self._get_property(REMOTE_DESKTOP, "AvailableDeviceTypes")
                    ),
                }
        wanted_devices = DEVICE_KEYBOARD | DEVICE_POINTER
        use_rd = bool(rd) and (rd["devices"] & wanted_devices) == wanted_devices
        if self.want_remote_desktop is False:
            use_rd = False
        elif self.want_remote_desktop and not use_rd:
            raise PortalError(
                "the portal has no RemoteDesktop interface with keyboard and pointer; "
                "install xdg-desktop-portal-gnome or -kde"
            )
        if not sc["sources"] & SOURCE_MONITOR:
            raise PortalError("the portal's ScreenCast cannot share monitors")
        kind = "remotedesktop" if use_rd else "screencast"
        if not self.want_screencast:
            kind = "remotedesktop-input"
        token = self.tokens.load(kind)
        iface = REMOTE_DESKTOP if use_rd else SCREENCAST
        results = await self._request(
            iface,
            "CreateSession",
            "a{sv}",
            [],
            {"session_handle_token": Variant("s", self._token("session"))},
            "create a session",
        )
        self.session_handle = str(_unwrap(results.get("session_handle", "")))
        if not self.session_handle:
            raise PortalError("the portal created a session but returned no session_handle")
        await self._add_match(
            f"type='signal',interface='{SESSION}',member='Closed',path='{self.session_handle}'"
        )
        persist = {}
        if token:
            persist["restore_token"] = Variant("s", token)
        persist["persist_mode"] = Variant("u", PERSIST_PERSISTENT)
        if use_rd:
            dev_opts = {"types": Variant("u", wanted_devices)}
            if rd["version"] >= 2:
                dev_opts.update(persist)
            await self._request(
                REMOTE_DESKTOP,
                "SelectDevices",
                "oa{sv}",
                [self.session_handle],
                dev_opts,
                "choose input devices",
            )
        if self.want_screencast:
            await self._select_sources(sc, use_rd, persist)
        what = "start sharing the screen" if self.want_screencast else "start remote input"
        results = await self._request(
            iface, "Start", "osa{sv}", [self.session_handle, ""], {}, what
        )
        streams = parse_streams(results.get("streams", []))
        if not streams and self.want_screencast:
            raise PortalError("the portal started the session but granted no stream")
        new_token = str(_unwrap(results.get("restore_token", "")) or "")
        if new_token:
            self.tokens.save(kind, new_token)
        devices = int(_unwrap(results.get("devices", 0)) or 0) if use_rd else 0
        return StartResult(streams, devices, new_token, use_rd)

    async def _select_sources(
        self, sc: dict[str, int], use_rd: bool, persist: dict[str, Variant]
    ) -> None:
        src_opts: dict[str, Variant] = {
            "types": Variant("u", SOURCE_MONITOR),
            "multiple": Variant("b", False),
        }
        if self.cursor_embedded and sc["cursors"] & CURSOR_EMBEDDED:
            src_opts["cursor_mode"] = Variant("u", CURSOR_EMBEDDED)
        if not use_rd and sc["version"] >= 4:
            src_opts.update(persist)
        await self._request(
            SCREENCAST,
            "SelectSources",
            "oa{sv}",
            [self.session_handle],
            src_opts,
            "choose what to share",
        )

    def open(self) -> StartResult:
        """Create the session, select sources (and devices), start; returns the grant."""
        self._start_loop()
        try:
            self.result = self._run(self._open(), self.request_timeout * 4 + 30)
        except BaseException:
            self.close()
            raise
        return self.result

    async def _open_remote(self) -> int:
        reply = await self._call(
            SCREENCAST, "OpenPipeWireRemote", "oa{sv}", [self.session_handle, {}]
        )
        if not reply.unix_fds:
            raise PortalError("OpenPipeWireRemote returned no file descriptor")
        idx = int(reply.body[0])
        fd = reply.unix_fds[idx]
        for other in reply.unix_fds:
            if other != fd:
                os.close(other)
        return fd

    def open_pipewire_remote(self) -> int:
        """A new fd connected to PipeWire with access to this session's streams (caller closes)."""
        return self._run(self._open_remote(), self.call_timeout + 5)

    # ---- remote desktop input ------------------------------------------------------------

    @property
    def devices(self) -> int:
        return self.result.devices if self.result is not None else 0

    @property
    def has_input(self) -> bool:
        return self.result is not None and self.result.remote_desktop

    def notify(self, member: str, signature: str, args: list[Any]) -> None:
        """Send RemoteDesktop.``member``(session, {}, *args) without waiting for the reply.

        Calls go out in order on one connection; failures are counted in ``log``.
        """
        if self.closed.is_set():
            raise PortalError(self.closed_reason or "portal session is not open")
        body = [self.session_handle, {}, *args]
        try:
            self.dbus.send(
                PORTAL_BUS, PORTAL_PATH, REMOTE_DESKTOP, member, "oa{sv}" + signature, body
            )
        except DBusCallError as exc:
            raise PortalError("portal session is not open") from exc

    def sync(self) -> None:
        """Wait until every notification sent so far has been answered."""
        try:
            self.dbus.sync()
        except DBusCallError as exc:
            raise PortalError(str(exc)) from exc

    # ---- end -----------------------------------------------------------------------------

    async def _close(self) -> None:
        await self.dbus.drain()
        if self.session_handle and not self.closed.is_set():
            await self._call(SESSION, "Close", path=self.session_handle)

    def close(self) -> None:
        """Close the portal session (ends the cast and the input grant) and the connection."""
        if self.dbus.loop is None:
            self.closed.set()
            return
        if not self.closed.is_set():
            self.closed_reason = self.closed_reason or "the session was closed"
        try:
            self.dbus.stop(self._close())
        finally:
            self.closed.set()


def probe_portal(bus_address: str | None = None, timeout: float = 8.0) -> ProbeResult:
    """Is an xdg-desktop-portal with ScreenCast reachable on the session bus? (no dialog)"""
    address = bus_address or os.environ.get("DBUS_SESSION_BUS_ADDRESS") or ""
    if not address:
        return ProbeResult(
            "portal",
            False,
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)",
            _PORTAL_REMEDY,
        )
    session = PortalSession(bus_address=address, call_timeout=timeout)

    async def check() -> tuple[dict[str, int], dict[str, int]]:
        await session._connect()
        try:
            return await session._interfaces()
        finally:
            await session.dbus.disconnect()

    session._start_loop()
    try:
        sc, rd = session._run(check(), timeout * 6)
    except PortalError as exc:
        text = str(exc)
        remedy = _PORTAL_REMEDY
        if "ScreenCast" in text:
            remedy = "install a portal backend with ScreenCast (xdg-desktop-portal-gnome/-kde/-wlr)"
        return ProbeResult("portal", False, text, remedy)
    finally:
        session.close()
    detail = f"xdg-desktop-portal ScreenCast v{sc['version']}"
    if sc["cursors"] & CURSOR_EMBEDDED:
        detail += ", embedded cursor"
    if rd:
        detail += f"; RemoteDesktop v{rd['version']} (devices {rd['devices']:#x})"
    else:
        detail += "; no RemoteDesktop (input needs uinput)"
    return ProbeResult("portal", True, detail)
