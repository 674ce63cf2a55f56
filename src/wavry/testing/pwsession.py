"""A private, headless PipeWire session: D-Bus session bus, pipewire, wireplumber, pipewire-pulse.

Used by tests, benchmarks and `wavry host --virtual` style headless hosts that need audio or a
PipeWire video graph without a desktop. Everything lives in a fresh runtime directory (0700), so
it never touches a user's real session; ``env()`` gives the variables child processes need
(``XDG_RUNTIME_DIR``, ``DBUS_SESSION_BUS_ADDRESS``, ``PULSE_SERVER``, ``PIPEWIRE_REMOTE``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from wavry.platform.probe import ProbeResult

__all__ = ["PipeWireError", "PipeWireSession", "probe"]

_BINARIES = ("dbus-daemon", "pipewire", "wireplumber", "pipewire-pulse", "pactl")


_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class PipeWireError(RuntimeError):
    """PipeWire is missing or did not come up."""


def probe() -> ProbeResult:
    missing = [b for b in _BINARIES if shutil.which(b) is None]
    if missing:
        return ProbeResult(
            "pipewire",
            False,
            "missing: " + ", ".join(missing),
            "apt-get install pipewire pipewire-bin wireplumber pipewire-pulse pulseaudio-utils "
            "dbus-daemon",
        )
    return ProbeResult("pipewire", True, "pipewire, wireplumber, pipewire-pulse installed")


class PipeWireSession:
    """Start a headless PipeWire graph in a private runtime directory.

    ``start()`` returns once ``pactl info`` answers (the Pulse server is up and WirePlumber has
    created the default null sink). ``stop()`` terminates every process it started and removes
    the directory. Usable as a context manager.
    """

    def __init__(self, startup_timeout: float = 15.0) -> None:
        self.startup_timeout = startup_timeout
        self.runtime_dir: Path | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._owns_dir = False

    # -- environment -------------------------------------------------------------------------
    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        if self.runtime_dir is None:
            raise PipeWireError("session not started")
        env = dict(os.environ if base is None else base)
        env["XDG_RUNTIME_DIR"] = str(self.runtime_dir)
        env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={self.runtime_dir / 'bus'}"
        env["PULSE_SERVER"] = f"unix:{self.runtime_dir / 'pulse' / 'native'}"
        env["PIPEWIRE_REMOTE"] = str(self.runtime_dir / "pipewire-0")
        env.pop("PULSE_RUNTIME_PATH", None)
        return env

    def apply_to_os_environ(self) -> dict[str, str | None]:
        """Point this process at the session; returns the old values for ``restore_environ``."""
        new = self.env()
        keys = ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "PULSE_SERVER", "PIPEWIRE_REMOTE")
        old = {k: os.environ.get(k) for k in keys}
        for k in keys:
            os.environ[k] = new[k]
        return old

    @staticmethod
    def restore_environ(old: dict[str, str | None]) -> None:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def pactl(self, *args: str, timeout: float = 10.0) -> str:
        out = subprocess.run(
            ["pactl", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise PipeWireError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> PipeWireSession:
        if self._procs:
            return self
        result = probe()
        if not result.ok:
            raise PipeWireError(f"{result.detail} (fix: {result.remedy})")
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="wavry-pw-"))
        self._owns_dir = True
        os.chmod(self.runtime_dir, 0o700)
        env = self.env()
        log_dir = self.runtime_dir
        try:
            # a bus that activates nothing: an installed xdg-desktop-portal (or any other
            # desktop service) must not start on it behind a test's back
            config = self.runtime_dir / "bus.conf"
            config.write_text(_BUS_CONFIG.format(address=f"unix:path={self.runtime_dir / 'bus'}"))
            self._spawn(
                ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"],
                env,
                log_dir / "dbus.log",
            )
            self._wait_for(self.runtime_dir / "bus", "D-Bus session bus")
            self._spawn(["pipewire"], env, log_dir / "pipewire.log")
            self._wait_for(self.runtime_dir / "pipewire-0", "PipeWire socket")
            self._spawn(["wireplumber"], env, log_dir / "wireplumber.log")
            self._spawn(["pipewire-pulse"], env, log_dir / "pipewire-pulse.log")
            self._wait_pulse()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                argv, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._procs.append(proc)

    def _check_alive(self) -> None:
        for p in self._procs:
            if p.poll() is not None:
                name = p.args[0] if isinstance(p.args, list) else p.args
                raise PipeWireError(f"{name!s} exited with {p.returncode} during start-up")

    def _wait_for(self, path: Path, what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not path.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise PipeWireError(f"{what} did not appear at {path}")
            time.sleep(0.02)

    def _wait_pulse(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            out = subprocess.run(
                ["pactl", "info"], env=self.env(), capture_output=True, text=True, timeout=5
            )
            ready = "Default Sink:" in out.stdout and "@DEFAULT_SINK@" not in out.stdout
            if out.returncode == 0 and ready:
                return
            last = out.stderr.strip() or out.stdout.strip()
            time.sleep(0.05)
        raise PipeWireError(f"pipewire-pulse did not answer: {last}")

    def stop(self) -> None:
        for p in reversed(self._procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self._procs):
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=3)
        self._procs.clear()
        if self.runtime_dir is not None and self._owns_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        self.runtime_dir = None

    def __enter__(self) -> PipeWireSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
