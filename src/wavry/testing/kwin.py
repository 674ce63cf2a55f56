"""A private headless KWin (``kwin_wayland --virtual``) for tests (no GPU, no Plasma, no person).

Each session lives in a fresh runtime directory (0700) with its own home: a D-Bus session bus,
PipeWire and WirePlumber (the screen-cast streams), then KWin 5.27's virtual back-end on llvmpipe.
KWin runs from a copy of its binary: the installed one carries a file capability
(``cap_sys_resource``) that this kind of sandbox refuses to execute.

No ``.desktop`` allowance is installed: the product writes its own (see
:mod:`wavry.platform.kwin`) into this session's ``XDG_DATA_HOME``. ``windows()`` lists KWin's
windows (UUID, resource class) through a KWin script loaded over D-Bus, which prints into the
log this fixture keeps. ``stop()`` ends every process group it started and anything still
running with this runtime directory, then removes it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wavry.platform.probe import ProbeResult
from wavry.testing.gnome import MarkerClient, processes_in
from wavry.testing.pwsession import _BUS_CONFIG

__all__ = ["HeadlessKWin", "KWinSessionError", "probe"]

_BINARIES = ("kwin_wayland", "dbus-daemon", "pipewire", "wireplumber", "gdbus")

_LIST_WINDOWS = """const ws = workspace.clientList();
for (let i = 0; i < ws.length; i++) {
    print("WAVRY-WINDOW " + ws[i].internalId + " " + ws[i].resourceClass);
}
"""


class KWinSessionError(RuntimeError):
    """KWin is missing or did not come up."""


def probe() -> ProbeResult:
    missing = [b for b in _BINARIES if shutil.which(b) is None]
    if missing:
        return ProbeResult(
            "kwin-headless",
            False,
            "missing: " + ", ".join(missing),
            "apt-get install kwin-wayland pipewire wireplumber dbus-daemon libglib2.0-bin",
        )
    return ProbeResult("kwin-headless", True, "kwin_wayland, PipeWire and D-Bus installed")


class HeadlessKWin:
    """Start ``kwin_wayland --virtual`` in a private runtime directory (see module docstring)."""

    def __init__(self, width: int = 640, height: int = 480, startup_timeout: float = 30.0) -> None:
        self.width, self.height = width, height
        self.startup_timeout = startup_timeout
        self.runtime_dir: Path | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self.clients: list[MarkerClient] = []
        self._scripts = 0

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        if self.runtime_dir is None:
            raise KWinSessionError("session not started")
        env = dict(os.environ if base is None else base)
        for k in ("DISPLAY", "PULSE_SERVER", "PIPEWIRE_REMOTE", "XAUTHORITY"):
            env.pop(k, None)
        env.pop("XDG_CURRENT_DESKTOP", None)
        r = self.runtime_dir
        env.update(
            XDG_RUNTIME_DIR=str(r),
            DBUS_SESSION_BUS_ADDRESS=f"unix:path={r / 'bus'}",
            WAYLAND_DISPLAY="wayland-0",
            XDG_SESSION_TYPE="wayland",
            HOME=str(r / "home"),
            XDG_DATA_HOME=str(r / "home" / ".local" / "share"),
            XDG_CONFIG_HOME=str(r / "home" / ".config"),
            XDG_CACHE_HOME=str(r / "home" / ".cache"),
        )
        return env

    def start(self) -> HeadlessKWin:
        result = probe()
        if not result.ok:
            raise KWinSessionError(f"{result.detail} (fix: {result.remedy})")
        self.runtime_dir = r = Path(tempfile.mkdtemp(prefix="wavry-kwin-"))
        os.chmod(r, 0o700)
        (r / "home").mkdir()
        env = self.env()
        try:
            kwin = r / "kwin_wayland"
            shutil.copy(shutil.which("kwin_wayland") or "kwin_wayland", kwin)  # no file caps
            # a private bus that activates nothing (no portal, no helper starts behind our back)
            config = r / "bus.conf"
            config.write_text(_BUS_CONFIG.format(address=f"unix:path={r / 'bus'}"))
            self._spawn(
                ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"],
                env, "dbus",
            )  # fmt: skip
            self._wait_for(r / "bus", "D-Bus session bus")
            self._spawn(["pipewire"], env, "pipewire")
            self._wait_for(r / "pipewire-0", "PipeWire socket")
            self._spawn(["wireplumber"], env, "wireplumber")
            kwin_env = dict(env, QT_LOGGING_RULES="kwin_screencast.debug=true")
            self._spawn(
                [str(kwin), "--virtual", "--width", str(self.width), "--height",
                 str(self.height), "--no-lockscreen", "--socket", "wayland-0"],
                kwin_env, "kwin",
            )  # fmt: skip
            self._wait_for(r / "wayland-0", "KWin's Wayland socket")
            self._wait_dbus()
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

    def log(self, name: str = "kwin") -> str:
        if self.runtime_dir is None:
            return ""
        with contextlib.suppress(OSError):
            return (self.runtime_dir / f"{name}.log").read_text(errors="replace")
        return ""

    def alive(self) -> bool:
        return all(p.poll() is None for p in self._procs)

    def _check_alive(self) -> None:
        for p in self._procs:
            if p.poll() is not None:
                name = p.args[0] if isinstance(p.args, list) else p.args
                raise KWinSessionError(f"{name!s} exited with {p.returncode}: {self.log()[-600:]}")

    def _wait_for(self, path: Path, what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not path.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise KWinSessionError(f"{what} did not appear at {path}")
            time.sleep(0.05)

    def _gdbus(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["gdbus", "call", "--session", "-d", "org.kde.KWin", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=10,
        )

    def _wait_dbus(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while self._gdbus("-o", "/KWin", "-m", "org.kde.KWin.currentDesktop").returncode != 0:
            self._check_alive()
            if time.monotonic() > deadline:
                raise KWinSessionError("KWin did not answer on D-Bus")
            time.sleep(0.1)

    def windows(self) -> list[tuple[str, str]]:
        """(UUID, resource class) of every window KWin manages, through a KWin script."""
        assert self.runtime_dir is not None
        self._scripts += 1
        name = f"wavry-list-{self._scripts}"
        script = self.runtime_dir / f"{name}.js"
        script.write_text(_LIST_WINDOWS)
        before = len(self.log())
        load = "org.kde.kwin.Scripting.loadScript"
        self._gdbus("-o", "/Scripting", "-m", load, str(script), name)
        self._gdbus("-o", "/Scripting", "-m", "org.kde.kwin.Scripting.start")
        deadline = time.monotonic() + 5
        found: list[tuple[str, str]] = []
        while time.monotonic() < deadline and not found:
            time.sleep(0.1)
            found = re.findall(r"WAVRY-WINDOW (\{[0-9a-f-]+\}) (\S*)", self.log()[before:])
        self._gdbus("-o", "/Scripting", "-m", "org.kde.kwin.Scripting.unloadScript", name)
        return found

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
        except Exception:
            client.stop()
            raise
        return client

    def leftovers(self) -> list[int]:
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
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 3
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        self.runtime_dir = None

    def __enter__(self) -> HeadlessKWin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
