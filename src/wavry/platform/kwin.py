"""KDE Plasma without its portal dialogs: KWin's own Wayland protocols (no person needed).

KWin offers ``zkde_screencast_unstable_v1`` (a PipeWire node per output or window) and
``org_kde_kwin_fake_input`` (keys, pointer, buttons, axes) only to clients that a ``.desktop``
file allows: ``X-KDE-Wayland-Interfaces=zkde_screencast_unstable_v1,org_kde_kwin_fake_input`` with
``Exec=`` naming the client's executable (KWin compares it with ``/proc/PID/exe``). For wavry that
executable is the Python interpreter, so :func:`install_allowance` writes
``$XDG_DATA_HOME/applications/wavry-kwin.desktop`` naming it; KWin picks a new file up within
seconds (its service cache is rebuilt on change).

KWin 5.27 reads the interfaces of only the *first* entry whose ``Exec`` names the executable,
in the service cache's order, which is arbitrary. Debian's ``python3.11`` package ships
``python3.11.desktop`` with ``Exec=/usr/bin/python3.11`` and no interfaces, so whether
``wavry-kwin.desktop`` is honoured depended on the cache (measured: refused in a freshly
debootstrapped root, honoured on the machine it was developed on). So every other entry naming
the same executable gets a user copy of the same desktop id in ``$XDG_DATA_HOME/applications``
(which shadows the system's) with the interfaces added: every entry KWin can pick then allows.

:class:`KWinConnection` is one Wayland connection (pywayland over libwayland-client) whose events
are read on a private thread; requests may be sent from any thread (libwayland serialises them).
:class:`KWinScreenCast` asks for one stream and waits for its PipeWire node; the same connection
carries the fake-input requests of :class:`wavry.platform.kwin_input.KWinInputInjector`.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.platform.probe import ProbeResult

__all__ = [
    "FAKE_INPUT",
    "SCREENCAST",
    "KWinConnection",
    "KWinError",
    "KWinOutput",
    "KWinScreenCast",
    "allowance_path",
    "client_executable",
    "competing_entries",
    "install_allowance",
    "kwin_state",
    "probe_kwin",
]

SCREENCAST = "zkde_screencast_unstable_v1"
FAKE_INPUT = "org_kde_kwin_fake_input"
ALLOWED = (SCREENCAST, FAKE_INPUT)
# globals every KWin offers to every client: how a Wayland session is recognised as KWin's
_KWIN_MARKERS = ("org_kde_kwin_", "org_kde_plasma_", "kde_output_")
DESKTOP_FILE = "wavry-kwin.desktop"


class KWinError(RuntimeError):
    """KWin's protocols are missing, not allowed, or the stream failed; says what to do."""


def client_executable() -> str:
    """The executable KWin sees for this process (what the ``.desktop`` file's Exec must name)."""
    try:
        return os.readlink("/proc/self/exe")
    except OSError:
        return os.path.realpath(sys.executable)


def allowance_path() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(data) / "applications" / DESKTOP_FILE


def desktop_entry(executable: str) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=Wavry host (KWin screen cast and input)\n"
        "Comment=Lets wavry host record the screen and inject input on KDE Plasma\n"
        f"Exec={executable}\n"
        "NoDisplay=true\n"
        f"X-KDE-Wayland-Interfaces={','.join(ALLOWED)}\n"
    )


def _data_dirs() -> list[Path]:
    """``$XDG_DATA_HOME`` then ``$XDG_DATA_DIRS``: where desktop entries live, in the order
    their ids shadow each other (the XDG base-directory spec)."""
    dirs = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [allowance_path().parent.parent] + [Path(d) for d in dirs.split(":") if d]


def _exec_target(text: str) -> str:
    """The canonical path of an entry's ``Exec`` program, as KWin compares it ("" if none)."""
    in_entry = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            in_entry = line == "[Desktop Entry]"
        elif in_entry and line.startswith("Exec="):
            try:
                words = shlex.split(line[5:])
            except ValueError:
                return ""
            # KWin takes QFileInfo(first word).canonicalFilePath(): absolute paths only matter
            if words and words[0].startswith("/"):
                return os.path.realpath(words[0])
            return ""
    return ""


def _with_interfaces(text: str) -> str:
    """``text`` (a desktop entry) whose ``[Desktop Entry]`` group also allows :data:`ALLOWED`."""
    lines = text.splitlines()
    key = "X-KDE-Wayland-Interfaces="
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "[Desktop Entry]"), None)
    if start is None:
        return text  # not a desktop entry: competing_entries never picks one
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("[")), len(lines)
    )
    for i in range(start + 1, end):
        if lines[i].startswith(key):
            have = [x for x in lines[i][len(key) :].split(",") if x]
            lines[i] = key + ",".join(have + [x for x in ALLOWED if x not in have])
            break
    else:
        lines.insert(end, key + ",".join(ALLOWED))
    return "\n".join(lines) + "\n"


def competing_entries(executable: str) -> list[tuple[Path, Path]]:
    """Desktop entries other than wavry's whose ``Exec`` names ``executable``, as
    (the file in effect, the user copy that shadows it); a user's own file is its own copy."""
    target = os.path.realpath(executable)
    seen: set[str] = {DESKTOP_FILE}
    found: list[tuple[Path, Path]] = []
    home_apps = allowance_path().parent
    for base in _data_dirs():
        apps = base / "applications"
        try:
            files = sorted(apps.rglob("*.desktop"))
        except OSError:
            continue
        for f in files:
            rel = f.relative_to(apps)
            desktop_id = "-".join(rel.parts)
            if desktop_id in seen:
                continue  # shadowed by an earlier directory's file of the same id
            seen.add(desktop_id)
            try:
                text = f.read_text(errors="replace")
            except OSError:
                continue
            if _exec_target(text) == target:
                found.append((f, home_apps / rel))
    return found


def install_allowance(executable: str | None = None) -> tuple[Path, list[Path]]:
    """Write the ``.desktop`` file that lets ``executable`` (this interpreter) use KWin's
    screencast and fake-input protocols, and shadow every other entry naming the same program
    with one that allows them too (see the module docstring); returns the path of wavry's file
    and the files written (none when all were already in place)."""
    from wavry.atomicfile import atomic_write

    exe = executable or client_executable()
    path = allowance_path()
    writes = [(path, desktop_entry(exe))]
    for source, copy in competing_entries(exe):
        try:
            text = source.read_text(errors="replace")
        except OSError:
            continue
        if source != copy:
            text = (
                f"# wavry: {source} with X-KDE-Wayland-Interfaces added, because KWin reads only "
                f"one entry naming {exe} (delete this file to undo)\n" + text
            )
        writes.append((copy, _with_interfaces(text)))
    written: list[Path] = []
    for target, text in writes:
        with contextlib.suppress(OSError):
            if target.read_text() == text:
                continue
        try:
            atomic_write(target, text.encode(), mode=0o644, dir_mode=0o755)
        except OSError as exc:
            raise KWinError(f"cannot write the KWin allowance {target}: {exc}") from exc
        written.append(target)
    return path, written


@dataclass
class KWinOutput:
    """A ``wl_output`` as KWin describes it (logical position and size)."""

    name: str = ""
    x: int = 0
    y: int = 0
    mode: tuple[int, int] = (0, 0)
    scale: int = 1
    proxy: Any = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.mode[0] // max(1, self.scale), self.mode[1] // max(1, self.scale)


def _display_name(display: str | None) -> str:
    name = display or os.environ.get("WAYLAND_DISPLAY") or ""
    if not name:
        raise KWinError("no Wayland session (WAYLAND_DISPLAY is unset)")
    return name


class KWinConnection:
    """One Wayland connection to KWin; events are read on a private thread after ``start()``."""

    def __init__(self, display: str | None = None) -> None:
        self.display_name = _display_name(display)
        self.globals: dict[str, tuple[int, int]] = {}
        self.outputs: list[KWinOutput] = []
        self.lost = threading.Event()
        self.on_lost: Callable[[str], None] | None = None
        self._display: Any = None
        self._registry: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    # ---- set-up ----------------------------------------------------------------------------

    def connect(self) -> None:
        try:
            from pywayland.client.display import Display
        except ImportError as exc:
            raise KWinError(
                f"pywayland is not installed ({exc}): pip install 'wavry[wayland]'"
            ) from exc
        display = Display(self.display_name)
        try:
            display.connect()
        except Exception as exc:  # pywayland raises ValueError/RuntimeError
            raise KWinError(
                f"cannot connect to Wayland display {self.display_name}: {exc}"
            ) from exc
        self._display = display
        self._registry = display.get_registry()
        self._registry.dispatcher["global"] = self._on_global
        self._registry.dispatcher["global_remove"] = lambda *_: None
        display.roundtrip()

    def _on_global(self, _reg: Any, name: int, interface: str, version: int) -> None:
        self.globals[interface] = (name, version)
        if interface == "wl_output":
            self._bind_output(name, version)

    def _bind_output(self, name: int, version: int) -> None:
        from pywayland.protocol.wayland import WlOutput

        out = KWinOutput(name=f"output-{name}")
        proxy = self._registry.bind(name, WlOutput, min(version, 4))

        def geometry(_p: Any, x: int, y: int, *_rest: Any) -> None:
            out.x, out.y = x, y

        def mode(_p: Any, flags: int, w: int, h: int, _refresh: int) -> None:
            if flags & 1:  # WL_OUTPUT_MODE_CURRENT
                out.mode = (w, h)

        def scale(_p: Any, factor: int) -> None:
            out.scale = factor

        def set_name(_p: Any, text: str) -> None:
            out.name = text

        proxy.dispatcher["geometry"] = geometry
        proxy.dispatcher["mode"] = mode
        proxy.dispatcher["scale"] = scale
        proxy.dispatcher["name"] = set_name
        out.proxy = proxy
        self.outputs.append(out)

    def roundtrip(self) -> None:
        """Only before ``start()`` (afterwards the reader thread owns reading)."""
        assert self._reader is None
        if self._display.roundtrip() < 0:
            raise KWinError("the Wayland connection to KWin failed")

    @property
    def is_kwin(self) -> bool:
        return any(i.startswith(_KWIN_MARKERS) for i in self.globals)

    def bind(self, interface: str, cls: Any, max_version: int) -> Any:
        if interface not in self.globals:
            raise KWinError(f"KWin does not offer {interface} to this program")
        name, version = self.globals[interface]
        return self._registry.bind(name, cls, min(version, max_version))

    def start(self) -> None:
        self._reader = threading.Thread(target=self._read, name="wavry-kwin", daemon=True)
        self._reader.start()

    # ---- running ---------------------------------------------------------------------------

    def _read(self) -> None:
        display = self._display
        fd = display.get_fd()
        reason = ""
        try:
            while not self._stop.is_set():
                with self._lock:
                    display.flush()
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready and not self._stop.is_set() and display.dispatch(block=True) < 0:
                    reason = "KWin closed the Wayland connection"
                    break
        except (RuntimeError, OSError, ValueError) as exc:
            reason = f"the Wayland connection to KWin failed: {exc}"
        if reason and not self._stop.is_set():
            self.lost.set()
            if self.on_lost is not None:
                self.on_lost(reason)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Send requests (``fn`` marshals them) from any thread; they go out at once."""
        if self.lost.is_set() or self._display is None:
            raise KWinError("the Wayland connection to KWin is gone")
        with self._lock:
            result = fn()
            self._display.flush()
        return result

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)
        if self._display is not None:
            with contextlib.suppress(Exception):
                self._display.flush()
                self._display.disconnect()
        self._display = None


# ---- the screen cast -------------------------------------------------------------------


class KWinScreenCast:
    """One KWin screen-cast stream (an output, by index; or a window by KWin's UUID) and the
    fake-input device on the same connection. ``open()`` returns the PipeWire node."""

    def __init__(
        self,
        *,
        monitor: int | None = None,
        window: str | None = None,
        cursor: bool = True,
        display: str | None = None,
        allow: bool = True,
        allow_wait: float = 8.0,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.monitor = monitor
        self.window = window
        self.cursor = cursor
        self.display = display
        self.allow = allow
        self.allow_wait = allow_wait
        self.notice = notice
        self.conn: KWinConnection | None = None
        self.fake_input: Any = None
        self.output: KWinOutput | None = None
        self.node_id = 0
        self.closed = threading.Event()
        self.closed_reason = ""
        self.on_closed: Callable[[str], None] | None = None
        self._screencast: Any = None
        self._stream: Any = None
        self._answer = threading.Event()
        self._failed = ""

    def _connect_allowed(self) -> KWinConnection:
        conn = KWinConnection(self.display)
        conn.connect()
        if all(i in conn.globals for i in ALLOWED):
            return conn
        conn.close()
        if not conn.is_kwin:
            raise KWinError(f"the Wayland compositor on {conn.display_name} is not KWin")
        exe = client_executable()
        if not self.allow:
            raise KWinError(_not_allowed(exe))
        path, written = install_allowance(exe)
        if written and self.notice is not None:
            self.notice(
                f"wrote {', '.join(map(str, written))}: lets {exe} use KWin's screen cast and "
                "fake input"
            )
        deadline = time.monotonic() + self.allow_wait
        while time.monotonic() < deadline:
            time.sleep(0.5)
            conn = KWinConnection(self.display)
            conn.connect()
            if all(i in conn.globals for i in ALLOWED):
                return conn
            conn.close()
        raise KWinError(_not_allowed(exe, path))

    def open(self, timeout: float = 10.0) -> tuple[int, tuple[int, int]]:
        """Start the stream; returns (PipeWire node, logical size)."""
        from wavry.platform.kwin_protocols import (
            CURSOR_EMBEDDED,
            CURSOR_HIDDEN,
            FakeInput,
            Screencast,
        )

        conn = self._connect_allowed()
        self.conn = conn
        try:
            conn.roundtrip()  # the outputs' geometry, mode and name
            self._screencast = conn.bind(SCREENCAST, Screencast, 3)
            self.fake_input = conn.bind(FAKE_INPUT, FakeInput, 4)
            self.fake_input.authenticate("wavry", "remote desktop: input from the viewer")
            pointer = CURSOR_EMBEDDED if self.cursor else CURSOR_HIDDEN
            if self.window is not None:
                stream = self._screencast.stream_window(self.window, pointer)
                size = (0, 0)
            else:
                self.output = self._pick_output(conn)
                stream = self._screencast.stream_output(self.output.proxy, pointer)
                size = self.output.size
            stream.dispatcher["created"] = self._on_created
            stream.dispatcher["failed"] = self._on_failed
            stream.dispatcher["closed"] = self._on_stream_closed
            self._stream = stream
            conn.on_lost = self._end
            conn.start()
            conn.call(lambda: None)  # flush
            if not self._answer.wait(timeout):
                raise KWinError(f"KWin did not answer the screen-cast request within {timeout} s")
            if self._failed:
                raise KWinError(f"KWin refused the screen cast: {self._failed}")
        except BaseException:
            self.close()
            raise
        return self.node_id, size

    def _pick_output(self, conn: KWinConnection) -> KWinOutput:
        outputs = [o for o in conn.outputs if o.mode != (0, 0)]
        if not outputs:
            raise KWinError("KWin lists no output to record")
        index = self.monitor or 0
        if not 0 <= index < len(outputs):
            raise KWinError(f"monitor {index} does not exist (KWin has {len(outputs)} outputs)")
        return outputs[index]

    def _on_created(self, _s: Any, node: int) -> None:
        self.node_id = node
        self._answer.set()

    def _on_failed(self, _s: Any, error: str) -> None:
        self._failed = error or "no reason given"
        self._answer.set()

    def _on_stream_closed(self, _s: Any) -> None:
        self._end("KWin stopped the screen cast")

    def _end(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.closed_reason = reason
        self.closed.set()
        self._answer.set()
        if self.on_closed is not None:
            self.on_closed(reason)

    def close(self) -> None:
        """Close the stream and the connection (KWin drops the fake-input device with it)."""
        conn, self.conn = self.conn, None
        if not self.closed.is_set():
            self.closed_reason = self.closed_reason or "the session was closed"
            self.closed.set()
        if conn is None:
            return
        stream, self._stream = self._stream, None
        screencast, self._screencast = self._screencast, None
        with contextlib.suppress(KWinError, RuntimeError):
            if stream is not None:
                conn.call(stream.close)
            if screencast is not None:
                conn.call(screencast.destroy)
        conn.close()


def _not_allowed(exe: str, path: Path | None = None) -> str:
    where = path or allowance_path()
    return (
        f"KWin does not let {exe} use {SCREENCAST} and {FAKE_INPUT}: a .desktop file must allow "
        f"it ({where} with Exec={exe} and X-KDE-Wayland-Interfaces={','.join(ALLOWED)}; "
        "`wavry host` writes it; if KWin still refuses, log out and in again or run kbuildsycoca5)"
    )


# ---- probing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KWinState:
    kwin: bool  # the session's compositor is KWin
    allowed: bool  # it offers both protocols to this program
    detail: str


def kwin_state(display: str | None = None) -> KWinState:
    """Which KWin protocols this program is offered (one short connection, nothing bound)."""
    try:
        conn = KWinConnection(display)
        conn.connect()
    except KWinError as exc:
        return KWinState(False, False, str(exc))
    try:
        offered = [i for i in ALLOWED if i in conn.globals]
        versions = ", ".join(f"{i} v{conn.globals[i][1]}" for i in offered)
        if not conn.is_kwin:
            return KWinState(False, False, f"{conn.display_name} is not KWin")
        if len(offered) == len(ALLOWED):
            return KWinState(True, True, f"KWin offers {versions}: no dialog")
        return KWinState(True, False, _not_allowed(client_executable()))
    finally:
        conn.close()


def probe_kwin(display: str | None = None) -> ProbeResult:
    state = kwin_state(display)
    if state.allowed:
        return ProbeResult("kwin", True, state.detail)
    if state.kwin:
        return ProbeResult(
            "kwin",
            False,
            state.detail.split(":")[0],
            f"`wavry host` writes {allowance_path()} (Exec={client_executable()}) on first use",
        )
    return ProbeResult("kwin", False, state.detail, "KDE Plasma only: run wavry in its session")
