"""A private Xvfb server: free display number, cookie auth, no TCP, clean shutdown."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from wavry.platform.probe import ProbeResult

__all__ = ["XvfbError", "XvfbServer", "probe"]

XVFB = "/usr/bin/Xvfb"


class XvfbError(RuntimeError):
    """Xvfb is missing or did not come up."""


def probe() -> ProbeResult:
    path = shutil.which("Xvfb") or (XVFB if os.path.exists(XVFB) else None)
    if path is None:
        return ProbeResult("xvfb", False, "Xvfb not found", "apt-get install xvfb")
    return ProbeResult("xvfb", True, f"{path}")


def _xauth_entry(family: int, address: bytes, cookie: bytes) -> bytes:
    """One Xauthority record; an empty display number matches any display (libXau, Xlib)."""

    def field(b: bytes) -> bytes:
        return struct.pack(">H", len(b)) + b

    return (
        struct.pack(">H", family)
        + field(address)
        + field(b"")
        + field(b"MIT-MAGIC-COOKIE-1")
        + field(cookie)
    )


_FAMILY_LOCAL = 256
_FAMILY_WILD = 0xFFFF


class XvfbServer:
    """Start ``Xvfb :N -screen 0 WxHxD`` on a display number Xvfb picks itself (``-displayfd``).

    Access is limited to a random MIT-MAGIC-COOKIE in a private Xauthority file; TCP is off.
    Use as a context manager or call ``start()``/``stop()``; ``env()`` gives DISPLAY/XAUTHORITY
    for child processes.
    """

    def __init__(self, width: int = 1280, height: int = 720, depth: int = 24) -> None:
        self.width, self.height, self.depth = width, height, depth
        self.display_number: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.auth_file: Path | None = None

    @property
    def display(self) -> str:
        if self.display_number is None:
            raise XvfbError("Xvfb is not running")
        return f":{self.display_number}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env["XAUTHORITY"] = str(self.auth_file)
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def start(self, timeout: float = 10.0) -> XvfbServer:
        if self.running:
            return self  # `with XvfbServer(...).start() as s:` must not start a second server
        result = probe()
        if not result.ok:
            raise XvfbError(f"{result.detail}; {result.remedy}")
        self._dir = tempfile.TemporaryDirectory(prefix="wavry-xvfb-")
        self.auth_file = Path(self._dir.name) / "Xauthority"
        cookie = secrets.token_bytes(16)
        # The display number is only known once Xvfb has chosen it: entries without a number
        # match any. FamilyWild serves libxcb (FFmpeg, xdotool); python-xlib wants FamilyLocal.
        host = socket.gethostname().encode()
        self.auth_file.write_bytes(
            _xauth_entry(_FAMILY_WILD, b"", cookie) + _xauth_entry(_FAMILY_LOCAL, host, cookie)
        )
        os.chmod(self.auth_file, 0o600)
        rfd, wfd = os.pipe()
        cmd = [
            shutil.which("Xvfb") or XVFB,
            "-displayfd",
            str(wfd),
            "-screen",
            "0",
            f"{self.width}x{self.height}x{self.depth}",
            "-nolisten",
            "tcp",
            "-auth",
            str(self.auth_file),
            "-noreset",
            "+extension",
            "RANDR",
        ]
        try:
            self._proc = subprocess.Popen(
                cmd,
                pass_fds=(wfd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        finally:
            os.close(wfd)
        try:
            self.display_number = self._read_display(rfd, timeout)
        except Exception:
            self.stop()
            raise
        finally:
            os.close(rfd)
        self._wait_socket(timeout)
        return self

    def _read_display(self, rfd: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        data = b""
        os.set_blocking(rfd, False)
        while time.monotonic() < deadline:
            try:
                chunk = os.read(rfd, 64)
            except BlockingIOError:
                chunk = None
            if chunk:
                data += chunk
                if data.endswith(b"\n"):
                    return int(data.strip())
            elif chunk == b"" or (self._proc is not None and self._proc.poll() is not None):
                break
            time.sleep(0.01)
        err = b""
        if self._proc is not None and self._proc.poll() is not None and self._proc.stderr:
            err = self._proc.stderr.read()[-400:]
        raise XvfbError(
            f"Xvfb did not report a display within {timeout}s: {err.decode(errors='replace')}"
        )

    def _wait_socket(self, timeout: float) -> None:
        path = f"/tmp/.X11-unix/X{self.display_number}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(path)
                    return
                except OSError:
                    time.sleep(0.02)
        self.stop()
        raise XvfbError(f"Xvfb socket {path} did not accept connections within {timeout}s")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            if proc.stderr:
                proc.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        self.display_number = None

    def __enter__(self) -> XvfbServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
