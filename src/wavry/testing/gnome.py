"""A private headless GNOME Shell session for tests and benchmarks (no GPU, no logind, no person).

What a GNOME Shell 43 needs to run headless, each in a fresh runtime directory (0700) that never
touches a user's session: a D-Bus session bus, a second bus standing in for the system bus
(gnome-shell's start-up fails without one; logind is not needed), PipeWire and WirePlumber (the
screen cast streams), then ``gnome-shell --headless --virtual-monitor WxH --wayland --no-x11`` on
llvmpipe. GNOME starts in the overview; ``start()`` leaves it (``org.gnome.Shell.OverviewActive``)
so a client window fills the monitor.

``client()`` starts :mod:`wavry.testing.wayland_client` (the animated marker window) in it.
``stop()`` ends every process group it started and anything else still running with this
session's runtime directory (D-Bus-activated helpers: the portal, the calendar server, the
accessibility bus), then removes the directory; ``leftovers()`` lists such processes.
"""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from wavry.platform.probe import ProbeResult

__all__ = ["GnomeError", "HeadlessGnome", "MarkerClient", "probe", "processes_in"]

_BINARIES = ("gnome-shell", "dbus-daemon", "pipewire", "wireplumber")


class GnomeError(RuntimeError):
    """GNOME Shell is missing or did not come up."""


def probe() -> ProbeResult:
    missing = [b for b in _BINARIES if shutil.which(b) is None]
    if missing:
        return ProbeResult(
            "gnome-headless",
            False,
            "missing: " + ", ".join(missing),
            "apt-get install gnome-shell pipewire wireplumber dbus-daemon",
        )
    return ProbeResult("gnome-headless", True, "gnome-shell, PipeWire and D-Bus installed")


def processes_in(runtime_dir: Path | str) -> list[int]:
    """PIDs of processes (other than this one) whose XDG_RUNTIME_DIR is ``runtime_dir``."""
    needle = f"XDG_RUNTIME_DIR={runtime_dir}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


class MarkerClient:
    """The animated marker window running in a session (see wavry.testing.wayland_client)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float = 10.0) -> str:
        """The next output line starting with ``prefix`` (other lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GnomeError(f"the marker client printed no {prefix!r} within {timeout} s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                return out

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def copy(self, text: str) -> None:
        self.send("copy " + base64.b64encode(text.encode("utf-8")).decode("ascii"))

    def paste(self, timeout: float = 5.0) -> str:
        self.drain()
        self.send("paste")
        line = self.expect("clipboard ", timeout)
        return base64.b64decode(line.split(" ", 1)[1]).decode("utf-8")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.send("quit")
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(3)


class HeadlessGnome:
    """Start a headless GNOME Shell in a private runtime directory (see module docstring)."""

    def __init__(
        self, width: int = 1280, height: int = 720, startup_timeout: float = 120.0
    ) -> None:
        # 120 s: on llvmpipe a busy (or slowed) 2-core machine has taken over 60 s before the
        # shell answered on D-Bus (a fresh-clone CI run, 2026-12-07)
        self.width, self.height = width, height
        self.startup_timeout = startup_timeout
        self.runtime_dir: Path | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self.clients: list[MarkerClient] = []

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        if self.runtime_dir is None:
            raise GnomeError("session not started")
        env = dict(os.environ if base is None else base)
        for k in ("DISPLAY", "WAYLAND_DISPLAY", "PULSE_SERVER", "PIPEWIRE_REMOTE", "XAUTHORITY"):
            env.pop(k, None)
        r = self.runtime_dir
        env.update(
            XDG_RUNTIME_DIR=str(r),
            DBUS_SESSION_BUS_ADDRESS=f"unix:path={r / 'bus'}",
            DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={r / 'system-bus'}",
            WAYLAND_DISPLAY="wayland-0",
            XDG_SESSION_TYPE="wayland",
            XDG_CURRENT_DESKTOP="GNOME",
            HOME=str(r / "home"),
        )
        return env

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> HeadlessGnome:
        result = probe()
        if not result.ok:
            raise GnomeError(f"{result.detail} (fix: {result.remedy})")
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="wavry-gnome-"))
        os.chmod(self.runtime_dir, 0o700)
        (self.runtime_dir / "home").mkdir()
        env = self.env()
        r = self.runtime_dir
        try:
            for name, sock in (("dbus", "bus"), ("system-dbus", "system-bus")):
                self._spawn(
                    ["dbus-daemon", "--session", "--nofork", "--nopidfile",
                     f"--address=unix:path={r / sock}"],
                    env, name,
                )  # fmt: skip
            self._wait_for(r / "bus", "D-Bus session bus")
            self._wait_for(r / "system-bus", "stand-in system bus")
            # no notification banners over the picture (GNOME warns a root session with one)
            subprocess.run(
                ["gsettings", "set", "org.gnome.desktop.notifications", "show-banners", "false"],
                env=env, capture_output=True, timeout=20, check=False,
            )  # fmt: skip
            self._spawn(["pipewire"], env, "pipewire")
            self._wait_for(r / "pipewire-0", "PipeWire socket")
            self._spawn(["wireplumber"], env, "wireplumber")
            size = f"{self.width}x{self.height}"
            self._spawn(
                ["gnome-shell", "--headless", "--virtual-monitor", size, "--wayland", "--no-x11"],
                env,
                "gnome-shell",
            )
            self._wait_for(r / "wayland-0", "gnome-shell's Wayland socket")
            self._wait_shell()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, argv: list[str], env: dict[str, str], name: str) -> None:
        assert self.runtime_dir is not None
        with open(self.runtime_dir / f"{name}.log", "wb") as fh:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append(proc)

    def log(self, name: str = "gnome-shell") -> str:
        if self.runtime_dir is None:
            return ""
        with contextlib.suppress(OSError):
            return (self.runtime_dir / f"{name}.log").read_text(errors="replace")
        return ""

    def _check_alive(self) -> None:
        for p in self._procs:
            if p.poll() is not None:
                name = p.args[0] if isinstance(p.args, list) else p.args
                tail = self.log()[-600:] if name == "gnome-shell" else ""
                raise GnomeError(f"{name!s} exited with {p.returncode} during start-up {tail}")

    def _wait_for(self, path: Path, what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not path.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise GnomeError(f"{what} did not appear at {path}")
            time.sleep(0.05)

    def _gdbus(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """One D-Bus call; a call that does not return within ``timeout`` (a shell still busy
        starting on a loaded machine) is a failed call the callers retry, not an exception."""
        argv = ["gdbus", "call", "--session", *args]
        try:
            return subprocess.run(
                argv, env=self.env(), capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"no answer within {timeout:g} s")

    def _wait_shell(self) -> None:
        """Until Mutter's ScreenCast answers and the shell left its start-up overview."""
        deadline = time.monotonic() + self.startup_timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            r = self._gdbus(
                "-d", "org.gnome.Shell", "-o", "/org/gnome/Shell", "-m",
                "org.freedesktop.DBus.Properties.Set", "org.gnome.Shell", "OverviewActive",
                "<false>",
            )  # fmt: skip
            sc = self._gdbus(
                "-d", "org.gnome.Mutter.ScreenCast", "-o", "/org/gnome/Mutter/ScreenCast", "-m",
                "org.freedesktop.DBus.Properties.Get", "org.gnome.Mutter.ScreenCast", "Version",
            )  # fmt: skip
            if r.returncode == 0 and sc.returncode == 0:
                return
            last = (r.stderr or sc.stderr).strip()
            time.sleep(0.2)
        raise GnomeError(f"gnome-shell did not answer on D-Bus: {last}")

    def leave_overview(self) -> bool:
        """Close the overview (GNOME opens it at start-up, sometimes after the shell answers
        on D-Bus already); True when it is closed."""
        self._gdbus(
            "-d", "org.gnome.Shell", "-o", "/org/gnome/Shell", "-m",
            "org.freedesktop.DBus.Properties.Set", "org.gnome.Shell", "OverviewActive", "<false>",
        )  # fmt: skip
        r = self._gdbus(
            "-d", "org.gnome.Shell", "-o", "/org/gnome/Shell", "-m",
            "org.freedesktop.DBus.Properties.Get", "org.gnome.Shell", "OverviewActive",
        )  # fmt: skip
        return r.returncode == 0 and "false" in r.stdout

    def client(self, timeout: float = 30.0) -> MarkerClient:
        """Start the animated marker window; returns once it drew its first frame."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "wavry.testing.wayland_client"],
            env=self.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        client = MarkerClient(proc)
        self.clients.append(client)
        try:
            client.expect("ready", timeout)
        except GnomeError:
            client.stop()
            raise
        self.leave_overview()
        return client

    def leftovers(self) -> list[int]:
        """PIDs of processes still running with this session's runtime directory."""
        return processes_in(self.runtime_dir) if self.runtime_dir is not None else []

    def stop(self) -> None:
        for c in self.clients:
            c.stop()
        self.clients.clear()
        for p in reversed(self._procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self._procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=3)
        self._procs.clear()
        # helpers the buses started on demand (they inherit the runtime directory)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 3
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        self.runtime_dir = None

    def __enter__(self) -> HeadlessGnome:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
