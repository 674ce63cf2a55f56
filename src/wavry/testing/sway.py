"""A private headless sway (wlroots headless backend, pixman renderer) for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time

__all__ = ["HeadlessSway", "SwayError"]


class SwayError(RuntimeError):
    """sway is missing or did not start."""


SWAY_CONFIG = "output HEADLESS-1 resolution 1024x768\n"


class HeadlessSway:
    """A private headless sway (wlroots headless backend, pixman renderer) for tests and
    benchmarks: its own XDG_RUNTIME_DIR, no input devices, no GPU.

    sway refuses to run as root ("Unable to drop root"), so as root it runs as ``nobody``
    (``setpriv``), owning the runtime dir; root clients can still connect to its socket.
    """

    def __init__(self) -> None:
        self.runtime_dir = ""
        self.wayland_display = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: str | None = None
        self.log_path = ""

    def env(self) -> dict[str, str]:
        return {"WAYLAND_DISPLAY": self.wayland_display, "XDG_RUNTIME_DIR": self.runtime_dir}

    def start(self, timeout: float = 10.0) -> HeadlessSway:
        import tempfile

        if shutil.which("sway") is None:
            raise SwayError("sway is not installed")
        self._tmp = tempfile.mkdtemp(prefix="wavry-sway-")
        os.chmod(self._tmp, 0o755)
        self.runtime_dir = os.path.join(self._tmp, "run")
        os.mkdir(self.runtime_dir, 0o700)
        cfg = os.path.join(self._tmp, "config")
        with open(cfg, "w") as f:
            f.write(SWAY_CONFIG)
        os.chmod(cfg, 0o644)
        cmd = ["sway", "-c", cfg]
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                raise SwayError("sway cannot run as root and setpriv is missing")
            os.chown(self.runtime_dir, 65534, 65534)
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        env = dict(
            os.environ,
            XDG_RUNTIME_DIR=self.runtime_dir,
            HOME=self._tmp,
            WLR_BACKENDS="headless",
            WLR_LIBINPUT_NO_DEVICES="1",
            WLR_RENDERER="pixman",
        )
        for k in ("WAYLAND_DISPLAY", "DISPLAY", "SWAYSOCK"):
            env.pop(k, None)
        self.log_path = os.path.join(self._tmp, "sway.log")
        with open(self.log_path, "wb") as log_file:
            self._proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            names = sorted(
                n
                for n in os.listdir(self.runtime_dir)
                if n.startswith("wayland-") and not n.endswith(".lock")
            )
            if names:
                self.wayland_display = names[0]
                return self
            time.sleep(0.05)
        tail = ""
        with contextlib.suppress(OSError), open(self.log_path, errors="replace") as f:
            tail = f.read()[-400:]
        self.stop()
        raise SwayError(f"headless sway did not start: {tail.strip()}")

    def stop(self) -> None:
        p, self._proc = self._proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> HeadlessSway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
