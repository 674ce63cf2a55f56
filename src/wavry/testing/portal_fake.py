"""A test double of xdg-desktop-portal (ScreenCast + RemoteDesktop) on a private D-Bus bus.

Only the D-Bus boundary is fake: it owns ``org.freedesktop.portal.Desktop`` on the bus it is
given (normally the private bus of :class:`wavry.testing.pwsession.PipeWireSession`), answers
the real methods with the real Request/Response signal protocol, records every call, and on
Start publishes a real PipeWire video node: the project's synthetic marker pattern pushed
through ``appsrc ! pipewiresink mode=provide``. ``OpenPipeWireRemote`` returns an fd connected
to that PipeWire daemon, so the code under test (``wavry.media.wayland``,
``wavry.platform.portal_input``) runs exactly as against a desktop's portal.

Used by tests and by anyone who wants to try the Wayland path on a headless machine::

    with PipeWireSession() as pw, FakePortal(pw) as portal:
        env = pw.env()  # DBUS_SESSION_BUS_ADDRESS points at the fake
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.constants import NameFlag, RequestNameReply

from wavry.platform.portal import (
    CURSOR_EMBEDDED,
    CURSOR_HIDDEN,
    DEVICE_KEYBOARD,
    DEVICE_POINTER,
    PORTAL_BUS,
    PORTAL_PATH,
    PROPERTIES,
    REMOTE_DESKTOP,
    REQUEST,
    SCREENCAST,
    SESSION,
    SOURCE_MONITOR,
    SOURCE_WINDOW,
)

__all__ = ["FakePortal", "PortalCall", "SyntheticNode"]


@dataclass(frozen=True)
class PortalCall:
    interface: str
    member: str
    args: tuple[Any, ...]
    sender: str


def _plain(value: Any) -> Any:
    """Variants and containers → plain Python values (for easy assertions)."""
    if isinstance(value, Variant):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _connect_unix(path: Path, timeout: float = 5.0) -> socket.socket:
    """Connect to a unix socket, retrying while a busy daemon refuses (full listen backlog)."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except (ConnectionRefusedError, BlockingIOError):
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        except BaseException:
            sock.close()
            raise


class SyntheticNode:
    """A PipeWire Video/Source node showing the synthetic marker pattern (frame ids count up).

    ``appsrc ! compositor ! video/x-raw,format=BGRx ! pipewiresink mode=provide`` connected to
    ``pipewire_socket``: BGRx like a compositor's shared-memory buffers. The compositor element
    renders into buffers from the sink's own PipeWire pool; pipewiresink 0.3.65 crashes when
    it has to copy buffers from elsewhere (appsrc or videoconvert straight into it). A feeder
    thread pushes ``SyntheticCapture`` frames (I420) at ``fps``; ``node_id`` is looked up with
    pw-dump.
    """

    def __init__(
        self,
        pipewire_socket: Path,
        width: int = 640,
        height: int = 480,
        fps: float = 60.0,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        if width % 8 or height % 2:
            raise ValueError("the synthetic node needs width % 8 == 0 and an even height")
        self.socket = pipewire_socket
        self.width, self.height, self.fps = width, height, fps
        self.env = env
        self.node_name = f"wavry-fake-screen-{os.getpid()}-{id(self):x}"
        self.node_id = -1
        self.frames_pushed = 0
        self._pipeline: Any = None
        self._src: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self, timeout: float = 10.0) -> SyntheticNode:
        from wavry.media.gst import gst

        Gst = gst()
        self._Gst = Gst
        self._sock = _connect_unix(self.socket)
        fps_frac = f"{round(self.fps)}/1"
        desc = (
            "appsrc name=src is-live=true format=time do-timestamp=true "
            f"caps=video/x-raw,format=I420,width={self.width},height={self.height},"
            f"framerate={fps_frac} ! compositor latency=30000000 start-time-selection=first "
            f"! video/x-raw,format=BGRx,width={self.width},height={self.height},"
            f"framerate={fps_frac} ! valve name=valve drop=false "
            "! pipewiresink name=sink mode=provide "
            f"fd={self._sock.fileno()} client-name=wavry-fake-portal "
            f'stream-properties="props,node.name={self.node_name},media.class=Video/Source"'
        )
        self._pipeline = Gst.parse_launch(desc)
        self._src = self._pipeline.get_by_name("src")
        self._pipeline.set_state(Gst.State.PLAYING)
        self._thread = threading.Thread(target=self._feed, name="wavry-fake-node", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self.node_id < 0:
            self.node_id = self._find_node()
            if self.node_id >= 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the PipeWire node {self.node_name} did not appear")
            time.sleep(0.1)
        return self

    def _find_node(self) -> int:
        env = dict(self.env or os.environ)
        env["PIPEWIRE_REMOTE"] = str(self.socket)
        out = subprocess.run(["pw-dump"], env=env, capture_output=True, text=True, timeout=10)
        try:
            objects = json.loads(out.stdout or "[]")
        except ValueError:
            return -1
        for obj in objects:
            props = (obj.get("info") or {}).get("props") or {}
            if obj.get("type") == "PipeWire:Interface:Node" and (
                props.get("node.name") == self.node_name
            ):
                return int(obj["id"])
        return -1

    def _feed(self) -> None:
        from wavry.media.synthetic import SyntheticCapture

        Gst = self._Gst
        cap = SyntheticCapture(self.width, self.height, self.fps)
        cap.start()
        while not self._stop.is_set():
            frame = cap.grab()
            data = frame.image.to_ndarray().tobytes()
            buf = Gst.Buffer.new_allocate(None, len(data), None)
            buf.fill(0, data)
            ret = self._src.emit("push-buffer", buf)
            if ret != Gst.FlowReturn.OK:
                if ret == Gst.FlowReturn.FLUSHING:
                    return
                time.sleep(0.01)
                continue
            self.frames_pushed += 1

    def pause(self) -> None:
        """The picture stands still: no new buffers reach PipeWire (a still desktop)."""
        self._pipeline.get_by_name("valve").set_property("drop", True)

    def resume(self) -> None:
        self._pipeline.get_by_name("valve").set_property("drop", False)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)
            self._thread = None
        if self._pipeline is not None:
            with contextlib.suppress(Exception):
                self._src.emit("end-of-stream")
            self._pipeline.set_state(self._Gst.State.NULL)
            self._pipeline = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass
class _FakeSession:
    handle: str
    sender: str
    kind: str  # screencast | remotedesktop
    devices: int = 0
    sources: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    node: SyntheticNode | None = None


class FakePortal:
    """Owns ``org.freedesktop.portal.Desktop`` on ``bus_address`` and plays the portal.

    ``response_codes`` maps a method name (``"Start"``, ``"SelectSources"`` …) to the Response
    code to answer with (0 granted, 1 cancelled, 2 ended). ``remote_desktop`` False leaves the
    RemoteDesktop interface out. ``calls`` records every method call in order.
    """

    def __init__(
        self,
        pipewire: Any,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 60.0,
        remote_desktop: bool = True,
        screencast: bool = True,
        cursor_modes: int = CURSOR_HIDDEN | CURSOR_EMBEDDED,
        response_codes: dict[str, int] | None = None,
        response_delay: float = 0.0,
    ) -> None:
        env = pipewire.env()
        self.bus_address = env["DBUS_SESSION_BUS_ADDRESS"]
        self.pipewire_socket = Path(env["PIPEWIRE_REMOTE"])
        self.env = env
        self.width, self.height, self.fps = width, height, fps
        self.remote_desktop = remote_desktop
        self.screencast = screencast
        self.cursor_modes = cursor_modes
        self.response_codes = dict(response_codes or {})
        self.response_delay = response_delay
        self.calls: list[PortalCall] = []
        self.sessions: dict[str, _FakeSession] = {}
        self.tokens_issued: list[str] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._bus: MessageBus | None = None
        self._fds: list[int] = []
        self._n = 0

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakePortal:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-portal", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), loop).result(10)
        return self

    async def _connect(self) -> None:
        bus = MessageBus(bus_address=self.bus_address, negotiate_unix_fd=True)
        await bus.connect()
        bus.add_message_handler(self._handle)
        reply = await bus.request_name(PORTAL_BUS, NameFlag.DO_NOT_QUEUE)
        if reply != RequestNameReply.PRIMARY_OWNER:
            raise RuntimeError(f"cannot own {PORTAL_BUS} on {self.bus_address}: {reply}")
        self._bus = bus

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for s in list(self.sessions.values()):
            if s.node is not None:
                s.node.stop()
                s.node = None

        async def down() -> None:
            if self._bus is not None:
                self._bus.disconnect()
                self._bus = None

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(down(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def __enter__(self) -> FakePortal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- helpers for tests ---------------------------------------------------------------

    def members(self, interface: str | None = None) -> list[str]:
        with self._lock:
            return [c.member for c in self.calls if interface is None or c.interface == interface]

    def calls_of(self, member: str) -> list[PortalCall]:
        with self._lock:
            return [c for c in self.calls if c.member == member]

    def notifications(self) -> list[tuple[str, list[Any]]]:
        """RemoteDesktop Notify* calls as (member, arguments after session and options)."""
        with self._lock:
            return [
                (c.member, list(c.args[2:]))
                for c in self.calls
                if c.interface == REMOTE_DESKTOP and c.member.startswith("Notify")
            ]

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return bool(predicate())

    def close_session_from_portal(self, handle: str | None = None) -> None:
        """Play the user pressing "stop sharing": stop the node, emit Session.Closed."""
        assert self._loop is not None

        async def close() -> None:
            for s in list(self.sessions.values()):
                if handle is None or s.handle == handle:
                    self._end(s)
                    self._emit(s.handle, SESSION, "Closed", "a{sv}", [{}])

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)

    # ---- D-Bus ---------------------------------------------------------------------------

    def _emit(
        self, path: str, interface: str, member: str, signature: str, body: list[Any]
    ) -> None:
        assert self._bus is not None
        self._bus.send(Message.new_signal(path, interface, member, signature, body))

    def _record(self, msg: Message) -> None:
        with self._lock:
            self.calls.append(
                PortalCall(
                    msg.interface or "", msg.member or "", tuple(_plain(msg.body)), msg.sender or ""
                )
            )

    def _error(self, msg: Message, name: str, text: str) -> Message:
        return Message.new_error(msg, name, text)

    def _handle(self, msg: Message) -> Message | bool:
        if msg.message_type != MessageType.METHOD_CALL:
            return False
        if msg.path == PORTAL_PATH and msg.interface == PROPERTIES:
            return self._properties(msg)
        if msg.path == PORTAL_PATH and msg.interface in (SCREENCAST, REMOTE_DESKTOP):
            if msg.interface == SCREENCAST and not self.screencast:
                return self._error(
                    msg, "org.freedesktop.DBus.Error.UnknownMethod", "No such interface"
                )
            if msg.interface == REMOTE_DESKTOP and not self.remote_desktop:
                return self._error(
                    msg, "org.freedesktop.DBus.Error.UnknownMethod", "No such interface"
                )
            self._record(msg)
            try:
                return self._portal_method(msg)
            except _Refused as exc:
                return self._error(msg, "org.freedesktop.DBus.Error.AccessDenied", str(exc))
        if msg.interface == SESSION and msg.member == "Close":
            self._record(msg)
            s = self.sessions.get(msg.path or "")
            if s is not None:
                self._end(s)
                self.sessions.pop(s.handle, None)
            return Message.new_method_return(msg)
        if msg.interface == REQUEST and msg.member == "Close":
            self._record(msg)
            return Message.new_method_return(msg)
        return False

    def _properties(self, msg: Message) -> Message:
        if msg.member != "Get":
            return self._error(msg, "org.freedesktop.DBus.Error.NotSupported", "Get only")
        iface, name = msg.body
        values: dict[str, dict[str, Variant]] = {}
        if self.screencast:
            values[SCREENCAST] = {
                "version": Variant("u", 4),
                "AvailableSourceTypes": Variant("u", SOURCE_MONITOR | SOURCE_WINDOW),
                "AvailableCursorModes": Variant("u", self.cursor_modes),
            }
        if self.remote_desktop:
            values[REMOTE_DESKTOP] = {
                "version": Variant("u", 2),
                "AvailableDeviceTypes": Variant("u", DEVICE_KEYBOARD | DEVICE_POINTER),
            }
        if iface not in values:
            return self._error(
                msg, "org.freedesktop.DBus.Error.UnknownInterface", f"No such interface {iface}"
            )
        if name not in values[iface]:
            return self._error(
                msg, "org.freedesktop.DBus.Error.UnknownProperty", f"No such property {name}"
            )
        return Message.new_method_return(msg, "v", [values[iface][name]])

    def _request_path(self, msg: Message, options: dict[str, Any]) -> str:
        sender = (msg.sender or "").lstrip(":").replace(".", "_")
        token = options.get("handle_token")
        token = token.value if isinstance(token, Variant) else None
        if not token:
            self._n += 1
            token = f"fake{self._n}"
        return f"{PORTAL_PATH}/request/{sender}/{token}"

    def _respond(self, path: str, member: str, results: dict[str, Variant]) -> None:
        code = self.response_codes.get(member, 0)
        body = [code, results if code == 0 else {}]
        assert self._loop is not None
        self._loop.call_later(
            self.response_delay, self._emit, path, REQUEST, "Response", "ua{sv}", body
        )

    def _session(self, msg: Message, handle: str) -> _FakeSession:
        s = self.sessions.get(handle)
        if s is None:
            raise _Refused(f"no session {handle}")
        if s.sender != msg.sender:
            raise _Refused("the session belongs to another connection")
        return s

    def _portal_method(self, msg: Message) -> Message:
        member, iface = msg.member or "", msg.interface or ""
        body = list(msg.body)
        if member == "CreateSession":
            options = body[0]
            path = self._request_path(msg, options)
            token = options.get("session_handle_token")
            self._n += 1
            name = token.value if isinstance(token, Variant) else f"s{self._n}"
            sender = (msg.sender or "").lstrip(":").replace(".", "_")
            handle = f"{PORTAL_PATH}/session/{sender}/{name}"
            kind = "remotedesktop" if iface == REMOTE_DESKTOP else "screencast"
            if self.response_codes.get(member, 0) == 0:
                self.sessions[handle] = _FakeSession(handle, msg.sender or "", kind)
            self._respond(path, member, {"session_handle": Variant("s", handle)})
            return Message.new_method_return(msg, "o", [path])
        if member in ("SelectSources", "SelectDevices"):
            handle, options = body
            s = self._session(msg, handle)
            if member == "SelectDevices":
                if s.kind != "remotedesktop":
                    raise _Refused("SelectDevices on a screen cast session")
                s.devices = int(_plain(options.get("types", Variant("u", 3))))
            else:
                s.sources = _plain(options)
            path = self._request_path(msg, options)
            self._respond(path, member, {})
            return Message.new_method_return(msg, "o", [path])
        if member == "Start":
            handle, _parent, options = body
            s = self._session(msg, handle)
            path = self._request_path(msg, options)
            results: dict[str, Variant] = {}
            if self.response_codes.get(member, 0) == 0 and not s.sources:
                s.started = True  # remote desktop without a screen cast: devices only
                results = {"devices": Variant("u", s.devices)}
            elif self.response_codes.get(member, 0) == 0:
                node = SyntheticNode(
                    self.pipewire_socket, self.width, self.height, self.fps, env=self.env
                ).start()
                s.node, s.started = node, True
                stream = [
                    node.node_id,
                    {
                        "size": Variant("(ii)", [self.width, self.height]),
                        "position": Variant("(ii)", [0, 0]),
                        "source_type": Variant("u", SOURCE_MONITOR),
                        "id": Variant("s", "0"),
                    },
                ]
                self._n += 1
                token = f"fake-restore-{self._n}"
                self.tokens_issued.append(token)
                results = {
                    "streams": Variant("a(ua{sv})", [stream]),
                    "restore_token": Variant("s", token),
                }
                if s.kind == "remotedesktop":
                    results["devices"] = Variant("u", s.devices)
            self._respond(path, member, results)
            return Message.new_method_return(msg, "o", [path])
        if member == "OpenPipeWireRemote":
            s = self._session(msg, body[0])
            if not s.started:
                raise _Refused("OpenPipeWireRemote before Start")
            fd = _connect_unix(self.pipewire_socket).detach()
            # our copy: closed once the reply (which carries a duplicate) has surely been sent
            self._fds.append(fd)
            assert self._loop is not None
            self._loop.call_later(5.0, self._close_fd, fd)
            return Message.new_method_return(msg, "h", [0], unix_fds=[fd])
        if member.startswith("Notify"):
            s = self._session(msg, body[0])
            if not s.started or s.kind != "remotedesktop":
                raise _Refused(f"{member} on a session without granted devices")
            needs = DEVICE_KEYBOARD if "Keyboard" in member else DEVICE_POINTER
            if not s.devices & needs:
                raise _Refused(f"{member}: device type {needs} was not granted")
            return Message.new_method_return(msg)
        return self._error(
            msg, "org.freedesktop.DBus.Error.UnknownMethod", f"{iface}.{member} is not faked"
        )

    def _close_fd(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.remove(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

    def _end(self, s: _FakeSession) -> None:
        if s.node is not None:
            s.node.stop()
            s.node = None
        s.started = False


class _Refused(Exception):
    pass
