"""X11 capture through FFmpeg's x11grab (XCB + MIT-SHM), cursor drawn in, one monitor or all;
on change (DAMAGE, see :mod:`wavry.media.x11_changes`) or on a fixed clock."""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from wavry.media.pacing import REFRESH_DELAYS_S, ChangePacer
from wavry.media.types import Capture, CapturedFrame, CaptureError, CaptureLost, ProbeResult
from wavry.media.x11_changes import XChangeWatcher
from wavry.platform.xdisplay import XDisplayError, open_display, xauthority

__all__ = ["Monitor", "X11Capture", "bgr0_array", "list_monitors", "probe", "xauthority"]


@dataclass(frozen=True)
class Monitor:
    """A RandR 1.5 monitor (or the whole screen when RandR lists none)."""

    id: int
    name: str
    x: int
    y: int
    width: int
    height: int
    primary: bool = False


#: a picture waits until the damage has been quiet this long (see X11Capture._quiet) ...
QUIET_S = 0.0005
#: ... but never longer than this after the change that asked for it
QUIET_MAX_S = 0.003


def _open_display(display: str | None, auth: str | None = None) -> Any:
    try:
        return open_display(display, auth)
    except XDisplayError as exc:
        raise CaptureError(str(exc)) from exc


def list_monitors(display: str | None = None, auth: str | None = None) -> list[Monitor]:
    """Monitors of ``display`` in RandR order (ids are list positions)."""
    d = _open_display(display, auth)
    try:
        screen = d.screen()
        monitors: list[Monitor] = []
        if d.has_extension("RANDR"):
            reply = screen.root.xrandr_get_monitors(True)
            for i, m in enumerate(reply.monitors):
                name = d.get_atom_name(m.name) if m.name else f"monitor-{i}"
                monitors.append(
                    Monitor(
                        i,
                        name,
                        m.x,
                        m.y,
                        m.width_in_pixels,
                        m.height_in_pixels,
                        bool(m.primary),
                    )
                )
        if not monitors:
            monitors.append(
                Monitor(0, "screen", 0, 0, screen.width_in_pixels, screen.height_in_pixels, True)
            )
        return monitors
    finally:
        d.close()


def probe(display: str | None = None, auth: str | None = None) -> ProbeResult:
    name = display or os.environ.get("DISPLAY")
    if not name:
        return ProbeResult(
            "x11", False, "DISPLAY is not set", "pass --display :N, or use --virtual WxH"
        )
    if "x11grab" not in av.formats_available:
        return ProbeResult("x11", False, "FFmpeg in PyAV lacks x11grab", "install PyAV wheels")
    try:
        d = _open_display(name, auth)
    except CaptureError as exc:
        return ProbeResult("x11", False, str(exc), "check DISPLAY and XAUTHORITY")
    try:
        shm = d.query_extension("MIT-SHM") is not None
        fixes = d.query_extension("XFIXES") is not None
        damage = d.query_extension("DAMAGE") is not None
        scr = d.screen()
        size = f"{scr.width_in_pixels}x{scr.height_in_pixels}"
    finally:
        d.close()
    detail = f"display {name} {size}, MIT-SHM {'yes' if shm else 'no'}, "
    detail += f"cursor {'drawn (XFIXES)' if fixes else 'not drawn (no XFIXES)'}, "
    detail += "captures on change (DAMAGE)" if damage and fixes else "captures on a clock"
    return ProbeResult("x11", True, detail)


def bgr0_array(frame: Any) -> npt.NDArray[np.uint8]:
    """(height, width, 4) view of a packed bgr0/bgra ``av.VideoFrame`` (no copy)."""
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : frame.width * 4].reshape(frame.height, frame.width, 4)


#: x11grab's own pacing: never the limit (ChangePacer paces the capture, on change or a clock)
_UNPACED_FPS = 1000


class X11Capture(Capture):
    """Capture a display (or one RandR monitor, or a region), at most ``fps`` times a second.

    One x11grab reader stays open for the life of the capture and grabs on demand, so a slow
    consumer never builds a queue. With ``on_change`` (the default, when the server has DAMAGE
    and XFIXES) ``grab()`` waits until something in the area changed — pixels, the pointer, the
    cursor — or a picture was requested, then takes it at once while the pictures stay within
    the frame rate (:class:`~wavry.media.pacing.ChangePacer` with its
    :class:`~wavry.media.pacing.RateCap`; it also takes a few refresh pictures after the last
    change and then nothing). Without it a picture is
    taken every frame interval (a fixed clock). ``set_rate`` lowers or raises the cap (the
    stream's rate). ``select_monitor`` reopens the reader at the new geometry.
    Frames are bgr0 ``av.VideoFrame``s (the encoder converts them with libyuv, or its one
    reused swscale context without it). Width and height are rounded down to even numbers.
    """

    name = "x11"

    def __init__(
        self,
        display: str | None = None,
        *,
        monitor: int | None = None,
        region: tuple[int, int, int, int] | None = None,
        fps: float = 60.0,
        draw_mouse: bool = True,
        auth: str | None = None,
        on_change: bool = True,
        refresh_delays_s: tuple[float, ...] = REFRESH_DELAYS_S,
    ) -> None:
        self.auth = auth
        self.display = display or os.environ.get("DISPLAY") or ""
        if not self.display:
            raise CaptureError("no X display: set DISPLAY or pass --display :N")
        self._monitor = monitor
        self._region = region
        self._fps = float(fps)
        self.draw_mouse = draw_mouse
        self.want_on_change = on_change
        self.on_change = False  # True once started with change events
        #: why the capture runs on a clock although changes were wanted ("" otherwise)
        self.change_problem = ""
        self._geometry: tuple[int, int, int, int] | None = None
        self._container: Any = None
        self._packets: Iterator[Any] | None = None
        self._index = 0
        self._watcher: XChangeWatcher | None = None
        self._refresh_delays_s = refresh_delays_s
        self.pacer = ChangePacer(self._fps, refresh_delays_s)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._errors_in_row = 0

    @property
    def size(self) -> tuple[int, int]:
        if self._geometry is None:
            raise CaptureError("capture is not started")
        return self._geometry[2], self._geometry[3]

    @property
    def geometry(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the captured area on the X screen."""
        if self._geometry is None:
            raise CaptureError("capture is not started")
        return self._geometry

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def monitor(self) -> int | None:
        return self._monitor

    def _resolve(self) -> tuple[int, int, int, int]:
        if self._region is not None:
            x, y, w, h = self._region
        else:
            monitors = list_monitors(self.display, self.auth)
            if self._monitor is None:
                d = _open_display(self.display, self.auth)
                try:
                    scr = d.screen()
                    x, y, w, h = 0, 0, scr.width_in_pixels, scr.height_in_pixels
                finally:
                    d.close()
            else:
                found = [m for m in monitors if m.id == self._monitor]
                if not found:
                    ids = ", ".join(f"{m.id} ({m.name})" for m in monitors)
                    raise CaptureError(f"no monitor {self._monitor} on {self.display}; have {ids}")
                m = found[0]
                x, y, w, h = m.x, m.y, m.width, m.height
        w, h = w & ~1, h & ~1
        if w < 2 or h < 2:
            raise CaptureError(f"capture area {w}x{h} is too small")
        return x, y, w, h

    def start(self) -> None:
        if self._container is not None:
            return
        try:
            x, y, w, h = self._resolve()
        except CaptureError as exc:
            if self._geometry is not None and not self._display_answers():
                # it worked before and the server no longer answers: gone for good
                raise CaptureLost(f"the X display {self.display} went away") from exc
            raise
        watcher = None
        if self.want_on_change:
            try:
                watcher = XChangeWatcher(self.display, (x, y, w, h), self.auth)
            except CaptureLost:
                raise
            except CaptureError as exc:
                self.change_problem = str(exc)
        options = {
            "video_size": f"{w}x{h}",
            "framerate": str(_UNPACED_FPS),  # the pacer decides when (on change or a clock)
            "draw_mouse": "1" if self.draw_mouse else "0",
        }
        try:
            with xauthority(self.auth):
                url = f"{self.display}+{x},{y}"
                self._container = av.open(url, format="x11grab", options=options)
        except av.FFmpegError as exc:
            if watcher is not None:
                watcher.close()
            raise CaptureError(
                f"x11grab cannot open {self.display} at {w}x{h}+{x}+{y}: {exc}"
            ) from exc
        stream = self._container.streams.video[0]
        self._packets = self._container.demux(stream)
        self._geometry = (x, y, w, h)
        self._watcher = watcher
        self.on_change = watcher is not None
        self.pacer = ChangePacer(self._fps, self._refresh_delays_s)
        self.pacer.request()  # the first picture, whatever changes

    def stop(self) -> None:
        container, self._container = self._container, None
        self._packets = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()
        if container is not None:
            container.close()

    def close(self) -> None:
        """Stop and release the wake-up pipe (the capture cannot be started again)."""
        self.stop()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def set_rate(self, fps: float) -> None:
        self._fps = float(fps)
        self.pacer.set_fps(self._fps)

    def request_frame(self) -> None:
        # a full pipe (a request is already pending) or a closed one: nothing to add
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"k")

    def select_monitor(self, monitor: int | None) -> tuple[int, int]:
        """Switch to another monitor (None: whole screen); returns the new size."""
        self._monitor = monitor
        self._region = None
        was_running = self._container is not None
        self.stop()
        if was_running:
            self.start()
        else:
            self._geometry = self._resolve()
        return self.size

    def _wait_for_change(self, watcher: XChangeWatcher) -> int:
        """Block until a picture is due (a change, a request, a refresh); returns the wall
        clock (µs) before which a picture is stale."""
        pacer = self.pacer
        while True:
            if watcher.drain():
                pacer.changed()
            try:
                if os.read(self._wake_r, 64):
                    pacer.request()
            except BlockingIOError:
                pass
            wait = pacer.wait_s(time.monotonic())
            if wait == 0.0:
                self._quiet(watcher)
                break
            if pacer.pending:
                time.sleep(wait or 0.0)  # the frame-rate cap: changes meanwhile fold in
                continue
            ready, _, _ = select.select([watcher.fileno(), self._wake_r], [], [], wait)
            del ready
        watcher.settle()
        return time.time_ns() // 1000

    def _quiet(self, watcher: XChangeWatcher) -> None:
        """Let a burst of drawing finish before the picture (at most ``QUIET_MAX_S``).

        X11 has no frame boundaries: a client draws one frame in several requests (the
        `bench peers` animation: the old square's background, the new square, the marker), and
        their damage comes in a burst. A picture taken at the burst's first event misses the
        rest, and the rest asks for a second picture at once. Waiting until the damage has been
        quiet for ``QUIET_S`` keeps one frame in one picture; measured with `wavry bench peers`
        (60 Hz animation): 72 pictures a second without it, 60 with it, and glass-to-glass p95
        16.6-16.9 ms against 10.8-11.3.
        """
        end = time.monotonic() + QUIET_MAX_S
        fd = watcher.fileno()
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], min(QUIET_S, left))
            if not ready:
                return
            watcher.drain()

    def grab(self) -> CapturedFrame:
        packets = self._packets
        if packets is None:
            raise CaptureError("capture is not started")
        watcher = self._watcher
        if watcher is not None:
            not_before_us = self._wait_for_change(watcher)
        else:  # a fixed clock: a picture every frame interval, changed or not
            self.pacer.changed()
            time.sleep(self.pacer.wait_s(time.monotonic()) or 0.0)
            not_before_us = time.time_ns() // 1000
        try:
            packet = next(packets)
            # x11grab hands out what it read while probing the stream first: not this picture
            while packet.pts is not None and packet.pts < not_before_us:
                packet = next(packets)
            frames = packet.decode()
        except (StopIteration, av.FFmpegError) as exc:
            self._errors_in_row += 1
            raise self._failure(exc) from exc
        self._errors_in_row = 0
        self.pacer.taken(time.monotonic())
        now_us = time.time_ns() // 1000
        # x11grab stamps each packet with the wall clock (µs) taken just before it copies the
        # picture, after its pacing wait; the copy (and rawvideo wrap) is the capture cost.
        ts = int(packet.pts) if packet.pts is not None else now_us
        index = self._index
        self._index += 1
        return CapturedFrame(frames[0], ts, max(0, now_us - ts), index)

    def _failure(self, exc: BaseException) -> CaptureError:
        """A failed grab: CaptureLost when the display itself is gone (checked after a few
        failures in a row), else a CaptureError worth retrying."""
        if self._errors_in_row >= 3 and not self._display_answers():
            return CaptureLost(f"the X display {self.display} went away")
        return CaptureError(f"X11 capture of {self.display} failed: {exc}")

    def _display_answers(self) -> bool:
        try:
            _open_display(self.display, self.auth).close()
        except CaptureError:
            return False
        return True
