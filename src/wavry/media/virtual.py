"""Virtual display capture: a private Xvfb at the requested size, captured with x11grab."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Sequence

from wavry.media.types import Capture, CapturedFrame, CaptureError, ProbeResult
from wavry.media.x11 import X11Capture
from wavry.platform import xvfb
from wavry.platform.xvfb import XvfbError, XvfbServer

__all__ = ["VirtualCapture", "parse_size", "probe"]


def probe() -> ProbeResult:
    result = xvfb.probe()
    if not result.ok:
        return ProbeResult("virtual", False, result.detail, result.remedy)
    return ProbeResult("virtual", True, f"private Xvfb ({result.detail}) captured with x11grab")


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' → (1280, 720), with a message a user can act on."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CaptureError(f"virtual display size must look like 1280x720, got {text!r}") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise CaptureError(f"virtual display size {w}x{h} is out of range 64..8192")
    return w & ~1, h & ~1


class VirtualCapture(Capture):
    """Start Xvfb at ``width``x``height``, optionally run ``run`` on it, capture it.

    The display and its command outlive a stream, as a remote desktop session does: ``stop()``
    (the last viewer left) stops capturing only, and the next ``start()`` captures the same
    display with the same application in the state the user left it (the command is run again
    only if it has exited meanwhile). ``close()`` ends the command's process group and the
    server, and so does a ``resize`` to another size. ``display`` and ``env()`` let a host
    runtime point an input injector (XTest) at the same display.
    """

    name = "virtual"

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 60.0,
        *,
        run: str | Sequence[str] | None = None,
        draw_mouse: bool = True,
        on_change: bool = True,
    ) -> None:
        self._w, self._h = width & ~1, height & ~1
        self._fps = float(fps)
        self._run = run
        self._draw_mouse = draw_mouse
        self._on_change = on_change
        self.server: XvfbServer | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._x11: X11Capture | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self._w, self._h

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def want_on_change(self) -> bool:
        """Whether the capture is asked to take pictures on change (as `X11Capture`)."""
        return self._on_change

    @property
    def on_change(self) -> bool:  # type: ignore[override]
        return self._x11 is not None and self._x11.on_change

    def resize(self, width: int, height: int) -> None:
        """Use this size from the next ``start()`` (a stopped capture only). A display kept from
        an earlier stream at another size is closed (its command ends with it): Xvfb's screen
        cannot change size."""
        if self._x11 is not None:
            raise CaptureError("cannot resize a virtual display while it is captured")
        size = (width & ~1, height & ~1)
        if size != (self._w, self._h):
            self.close()
            self._w, self._h = size

    def request_frame(self) -> None:
        if self._x11 is not None:
            self._x11.request_frame()

    def set_rate(self, fps: float) -> None:
        self._fps = float(fps)
        if self._x11 is not None:
            self._x11.set_rate(fps)

    @property
    def display(self) -> str:
        if self.server is None:
            raise CaptureError("virtual display is not started")
        return self.server.display

    def env(self) -> dict[str, str]:
        if self.server is None:
            raise CaptureError("virtual display is not started")
        return self.server.env()

    def open(self) -> bool:
        """Start the display and its command if they are not running (no capture yet): a host
        at a fixed size starts its desktop session with itself, so the application runs from
        the start and the first client's picture comes without the display's start-up. True
        when the X server is new."""
        if self.server is not None and not self.server.running:
            self.close()  # the X server died while nobody watched: a new one
        fresh = self.server is None
        if fresh:
            try:
                self.server = XvfbServer(self._w, self._h).start()
            except XvfbError as exc:
                self.server = None
                raise CaptureError(f"cannot start the virtual display: {exc}") from exc
        assert self.server is not None
        try:
            if self._run and (self.process is None or self.process.poll() is not None):
                self._start_command(self.server.env())
        except CaptureError:
            if fresh:
                self.close()
            raise
        return fresh

    def start(self) -> None:
        if self._x11 is not None:
            return
        fresh = self.open()
        assert self.server is not None
        try:
            self._x11 = X11Capture(
                self.server.display,
                fps=self._fps,
                draw_mouse=self._draw_mouse,
                auth=str(self.server.auth_file),
                on_change=self._on_change,
            )
            self._x11.start()
        except Exception:
            if fresh:
                self.close()
            else:
                self.stop()
            raise

    def _start_command(self, env: dict[str, str]) -> None:
        assert self._run
        argv = shlex.split(self._run) if isinstance(self._run, str) else list(self._run)
        try:
            self.process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as exc:
            raise CaptureError(f"cannot run {argv[0]!r} on the virtual display: {exc}") from exc

    def grab(self) -> CapturedFrame:
        if self._x11 is None:
            raise CaptureError("virtual display is not started")
        return self._x11.grab()

    def stop(self) -> None:
        """Stop capturing; the display and its command go on (``close()`` ends them)."""
        if self._x11 is not None:
            self._x11.close()
            self._x11 = None

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the capture, the command's process group and the X server."""
        self.stop()
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(3)
        if self.server is not None:
            self.server.stop()
            self.server = None
