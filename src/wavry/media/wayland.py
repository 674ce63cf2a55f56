"""Wayland capture: xdg-desktop-portal ScreenCast → PipeWire → GStreamer appsink.

``start()`` runs the portal dialog through :class:`wavry.platform.portal.PortalSession`
(CreateSession → SelectSources (monitor, embedded cursor, persist_mode 2 with the last restore
token) → Start), then ``OpenPipeWireRemote`` gives a PipeWire fd and this pipeline consumes the
granted node::

    pipewiresrc fd=FD path=NODE do-timestamp=true ! videoconvert
      ! video/x-raw,format=I420 ! appsink drop=true max-buffers=1 sync=false

I420 is what the encoder takes without another conversion (``yuv420p`` passes straight through
:class:`wavry.media.encode.Encoder`); the colour conversion from the compositor's BGRx runs in
GStreamer's streaming thread, next to (not inside) the encode thread. The appsink keeps only the
newest picture: a slow consumer drops, never queues.

Compositors send a frame only when something changed, so ``grab()`` re-sends the last picture
after ``idle_repeat_s`` without news (a static desktop still answers keyframe requests and new
viewers); after ``reconnect_after_s`` of silence it reconnects the PipeWire stream (same portal
session, no dialog), which also recovers a stream that stopped moving buffers. When the portal
closes the session (the user pressed "stop sharing") or the stream
ends, ``grab()`` raises :class:`CaptureError` saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np

from wavry.media.types import Capture, CapturedFrame, CaptureError, ProbeResult
from wavry.platform.portal import PortalSession, RestoreTokenStore, StartResult
from wavry.platform.screencast import (
    CastError,
    CastStream,
    KWinCast,
    MutterCast,
    PortalCast,
    ScreenCastBackend,
    select_wayland_path,
)

__all__ = ["WaylandCapture", "gstreamer_problem", "probe"]


def _gst() -> Any:
    """The initialised Gst module (see wavry.media.gst for why it is loaded there)."""
    from wavry.media.gst import gst

    return gst()


def gstreamer_problem(
    elements: tuple[str, ...] = ("pipewiresrc", "videoconvert", "appsink"),
) -> str:
    """Why GStreamer cannot build the capture pipeline here ('' when it can)."""
    try:
        Gst = _gst()
    except (ImportError, ValueError) as exc:
        return f"GStreamer for Python (PyGObject + gir1.2-gstreamer-1.0) is not usable: {exc}"
    missing = [e for e in elements if Gst.ElementFactory.find(e) is None]
    if missing:
        return "GStreamer elements missing: " + ", ".join(missing)
    return ""


def probe(bus_address: str | None = None) -> ProbeResult:
    """Can portal capture run here? Says exactly what is missing and what to install/do."""
    problems: list[str] = []
    remedies: list[str] = []
    gst = gstreamer_problem()
    if gst:
        problems.append(gst)
        remedies.append(
            "apt install gstreamer1.0-pipewire gstreamer1.0-plugins-base gir1.2-gstreamer-1.0"
        )
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    remote = os.environ.get("PIPEWIRE_REMOTE") or (
        os.path.join(runtime, "pipewire-0") if runtime else ""
    )
    if not shutil.which("pipewire"):
        problems.append("PipeWire is not installed")
        remedies.append("apt install pipewire wireplumber")
    elif not remote:
        problems.append("no PipeWire socket to use (XDG_RUNTIME_DIR and PIPEWIRE_REMOTE unset)")
        remedies.append("run inside the user's login session, where XDG_RUNTIME_DIR is set")
    elif not os.path.exists(remote):
        problems.append(f"no PipeWire daemon (no socket at {remote})")
        remedies.append("start PipeWire in the session (systemctl --user start pipewire)")
    try:
        choice = select_wayland_path(bus_address)
    except CastError as exc:
        problems.insert(0, str(exc))
        remedies.insert(0, "unset WAVRY_WAYLAND_PATH or set it to mutter, portal or kwin")
        choice = None
    if choice is not None:
        by_name = {r.name: r for r in choice.probes}
        chosen = by_name.get(choice.name)
        if chosen is not None and not chosen.ok:
            mutter = by_name.get("mutter")
            problems.insert(0, chosen.detail)
            remedies.insert(0, chosen.remedy)
            if mutter is not None:
                problems.insert(1, f"GNOME's Mutter API: {mutter.detail}")
    if problems:
        return ProbeResult(
            "wayland",
            False,
            "; ".join(problems),
            "; ".join(dict.fromkeys(r for r in remedies if r)),
        )
    assert choice is not None
    session = os.environ.get("WAYLAND_DISPLAY") or "no WAYLAND_DISPLAY"
    return ProbeResult(
        "wayland", True, f"{choice.name} path: {choice.reason}; PipeWire at {remote} ({session})"
    )


PACING_SLACK = 0.95
"""The next picture may be taken this fraction of a frame interval after the last one (the
compositor's clock and ours drift; waiting a full interval would leave its pictures in the slot
for part of a frame). At most 1/0.95 of the stream's frame rate reaches the encoder."""


def _print_notice(text: str) -> None:
    print(f"wavry: {text}", file=sys.stderr, flush=True)


def _even(n: int) -> int:
    return max(2, n & ~1)


class WaylandCapture(Capture):
    """Capture a Wayland desktop through the best available path (see
    :mod:`wavry.platform.screencast`): Mutter's remote-desktop API on GNOME (no dialog), else the
    portal (the monitor the user picks, or the restored one).

    ``path`` forces "mutter", "portal" or "kwin" (None: choose by probe at ``start()``).
    ``virtual`` (Mutter only) records a virtual monitor of that size instead of a real one;
    ``monitor`` picks a real one (index, primary first); ``window`` (KWin only) records one
    window, by KWin's window UUID, instead of an output. ``input``: portal RemoteDesktop input on
    the same session (None: when offered). ``notice`` gets one-line messages for the person
    running the host (the portal's waiting dialog); the default prints them on stderr.
    """

    name = "wayland"

    def __init__(
        self,
        fps: float = 60.0,
        *,
        path: str | None = None,
        monitor: int | None = None,
        virtual: tuple[int, int] | None = None,
        window: str | None = None,
        input: bool | None = None,
        cursor: bool = True,
        tokens: RestoreTokenStore | None = None,
        bus_address: str | None = None,
        idle_repeat_s: float = 0.25,
        reconnect_after_s: float = 3.0,
        first_frame_timeout: float = 10.0,
        dialog_timeout: float = 120.0,
        pixel_format: str = "I420",
        notice: Callable[[str], None] | None = None,
    ) -> None:
        if fps <= 0:
            raise CaptureError(f"fps must be positive, got {fps}")
        if pixel_format not in ("I420", "BGRx"):
            raise CaptureError(f"pixel_format must be I420 or BGRx, got {pixel_format!r}")
        if path not in (None, "mutter", "portal", "kwin"):
            raise CaptureError(f"unknown Wayland path {path!r} (mutter, portal or kwin)")
        if window is not None and path not in (None, "kwin"):
            raise CaptureError("recording one window needs KWin's screen-cast protocol")
        if virtual is not None and path == "portal":
            raise CaptureError("a virtual monitor needs GNOME's Mutter API (not the portal)")
        problem = gstreamer_problem()
        if problem:
            raise CaptureError(
                f"{problem} (fix: apt install gstreamer1.0-pipewire gstreamer1.0-plugins-base)"
            )
        self._fps = float(fps)
        self._path = path
        self._monitor = monitor
        self._virtual = virtual
        self._window = window
        self._input = input
        self._cursor = cursor
        self._tokens = tokens
        self._bus_address = bus_address
        self.idle_repeat_s = idle_repeat_s
        self.first_frame_timeout = first_frame_timeout
        self.dialog_timeout = dialog_timeout
        self.pixel_format = pixel_format
        self.notice = notice or _print_notice
        self.path_reason = ""
        self.cast: ScreenCastBackend | None = None
        self.stream: CastStream | None = None
        self._pipeline: Any = None
        self._sink: Any = None
        self._fd = -1
        self._size: tuple[int, int] | None = None
        self._last: CapturedFrame | None = None
        self._next_due = 0.0
        self._index = 0
        self._ended = ""
        self.frames_received = 0
        self.frames_delivered = 0  # pictures the compositor sent (taken or dropped)
        self.frames_repeated = 0
        self.reconnects = 0
        self.reconnect_after_s = reconnect_after_s
        self._last_new = 0.0

    # ---- Capture -------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        if self._size is None:
            raise CaptureError("wayland capture is not started (size comes from the compositor)")
        return self._size

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def path(self) -> str:
        """The path in use ("mutter", "portal" or "kwin"; "" before the first start)."""
        return self.cast.name if self.cast is not None else (self._path or "")

    @property
    def portal(self) -> PortalSession | None:
        """The open portal session (portal path), for RemoteDesktop input."""
        return self.cast.session if isinstance(self.cast, PortalCast) else None

    @property
    def mutter(self) -> Any:
        """The open Mutter session (mutter path), for input."""
        return self.cast.session if isinstance(self.cast, MutterCast) else None

    @property
    def kwin(self) -> Any:
        """The open KWin screen cast (kwin path), whose connection carries fake input."""
        return self.cast.session if isinstance(self.cast, KWinCast) else None

    @property
    def grant(self) -> StartResult | None:
        portal = self.portal
        return portal.result if portal is not None else None

    @property
    def node_id(self) -> int:
        if self.stream is None:
            raise CaptureError("wayland capture is not started")
        return self.stream.node_id

    @property
    def stream_size(self) -> tuple[int, int]:
        """The stream's size in the compositor's logical coordinates (pointer coordinates)."""
        if self.stream is not None and self.stream.size:
            return self.stream.size
        return self.size

    def _make_cast(self) -> ScreenCastBackend:
        path = self._path
        if path is None:
            try:
                choice = select_wayland_path(self._bus_address)
            except CastError as exc:
                raise CaptureError(str(exc)) from exc
            path, self.path_reason = choice.name, choice.reason
            if not choice.probes or any(r.ok for r in choice.probes):
                self.notice(f"Wayland screen cast through {path}: {choice.reason}")
            if self._virtual is not None and path != "mutter":
                raise CaptureError(
                    "a Wayland virtual monitor needs GNOME's Mutter API, which is not here "
                    f"({choice.probes[0].detail if choice.probes else choice.reason})"
                )
            self._path = path  # the next start (each stream) takes the same path
        if self._window is not None and path != "kwin":
            raise CaptureError("recording one window needs KWin's screen-cast protocol")
        if path == "kwin":
            if self._virtual is not None:
                raise CaptureError("a virtual monitor needs GNOME's Mutter API (not KWin)")
            return KWinCast(
                monitor=self._monitor, window=self._window, cursor=self._cursor, notice=self.notice
            )
        if path == "mutter":
            return MutterCast(
                monitor=self._monitor,
                virtual=self._virtual,
                cursor=self._cursor,
                bus_address=self._bus_address,
            )
        return PortalCast(
            input=self._input,
            cursor=self._cursor,
            bus_address=self._bus_address,
            tokens=self._tokens,
            dialog_timeout=self.dialog_timeout,
            on_waiting=self.notice,
        )

    def start(self) -> None:
        if self._pipeline is not None:
            return
        self._ended = ""
        cast = self._make_cast()
        try:
            self.stream = cast.open()
        except CastError as exc:
            raise CaptureError(str(exc)) from exc
        self.cast = cast
        cast.on_closed = self._cast_closed
        try:
            fd = cast.pipewire_fd()
            self._fd = -1 if fd is None else fd
            self._start_pipeline(self.stream.node_id)
            first = self._pull(self.first_frame_timeout)
            if first is None:
                raise CaptureError(
                    f"no picture from PipeWire node {self.node_id} within "
                    f"{self.first_frame_timeout:.0f} s ({self._bus_problem() or 'no error'})"
                )
            self._last = first
        except CastError as exc:
            self.stop()
            raise CaptureError(str(exc)) from exc
        except BaseException:
            self.stop()
            raise
        self._next_due = self._last_new = time.monotonic()

    def _cast_closed(self, reason: str) -> None:
        self._ended = reason

    def _start_pipeline(self, node: int) -> None:
        Gst = _gst()
        desc = (
            f"pipewiresrc name=src {self._fd_arg()}path={node} do-timestamp=true "
            f"always-copy=true ! {self._source_caps()} ! videoconvert ! "
            f"video/x-raw,format={self.pixel_format} ! "
            "appsink name=sink drop=true max-buffers=1 sync=false emit-signals=false"
        )
        try:
            pipeline = Gst.parse_launch(desc)
        except Exception as exc:  # GLib.Error
            raise CaptureError(f"cannot build the PipeWire pipeline: {exc}") from exc
        self._pipeline = pipeline
        self._sink = pipeline.get_by_name("sink")
        # count what the compositor delivers (the appsink keeps only the newest of them)
        src_pad = pipeline.get_by_name("src").get_static_pad("src")
        src_pad.add_probe(Gst.PadProbeType.BUFFER, self._delivered)
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise CaptureError(
                f"the PipeWire pipeline for node {node} did not start: {self._bus_problem()}"
            )

    def _delivered(self, _pad: Any, _info: Any) -> Any:
        self.frames_delivered += 1
        return _gst().PadProbeReturn.OK

    def _fd_arg(self) -> str:
        return f"fd={self._fd} " if self._fd >= 0 else ""

    def _source_caps(self) -> str:
        """What we ask the compositor for: raw video at most at our frame rate (Mutter skips
        frames that come sooner, so a busy desktop costs no more than ``fps``), and for a
        virtual monitor its size (Mutter sizes the monitor to what the consumer asks)."""
        num, den = Fraction(self._fps).limit_denominator(1001).as_integer_ratio()
        caps = f"video/x-raw,max-framerate={num}/{den}"
        if self._virtual is not None:
            w, h = self._virtual
            caps += f",width={_even(w)},height={_even(h)}"
        return caps

    def _bus_problem(self) -> str:
        """First error/EOS on the pipeline bus ('' when none)."""
        if self._pipeline is None:
            return ""
        Gst = _gst()
        bus = self._pipeline.get_bus()
        while True:
            msg = bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
            if msg is None:
                return ""
            if msg.type == Gst.MessageType.EOS:
                return "the PipeWire stream ended (EOS)"
            err, _debug = msg.parse_error()
            return f"PipeWire stream error: {err.message}"

    def _pull(self, timeout_s: float) -> CapturedFrame | None:
        Gst = _gst()
        sample = self._sink.emit("try-pull-sample", int(timeout_s * Gst.SECOND))
        if sample is None:
            return None
        now_us = time.time_ns() // 1000
        buf = sample.get_buffer()
        # do-timestamp: pts is the running time at which pipewiresrc received the picture;
        # the difference to the running time now is how long conversion + hand-off took.
        age_us = 0
        clock = self._pipeline.get_clock()
        if clock is not None and buf.pts != Gst.CLOCK_TIME_NONE:
            running = clock.get_time() - self._pipeline.get_base_time()
            age_us = max(0, (running - buf.pts) // 1000)
        image = self._to_frame(sample)
        self.frames_received += 1
        index = self._index
        self._index += 1
        return CapturedFrame(image, now_us - age_us, age_us, index)

    def _to_frame(self, sample: Any) -> Any:
        from gi.repository import GstVideo  # type: ignore[import-untyped]

        Gst = _gst()
        info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        w, h = _even(info.width), _even(info.height)
        buf = sample.get_buffer()
        ok, mapinfo = buf.map(Gst.MapFlags.READ)
        if not ok:
            raise CaptureError("cannot map a PipeWire buffer")
        try:
            data = np.frombuffer(mapinfo.data, dtype=np.uint8)
            frame: Any
            if self.pixel_format == "I420":
                frame = av.VideoFrame(w, h, "yuv420p")
                for i, (pw, ph) in enumerate(((w, h), (w // 2, h // 2), (w // 2, h // 2))):
                    stride, offset = info.stride[i], info.offset[i]
                    src = np.lib.stride_tricks.as_strided(
                        data[offset:], shape=(ph, pw), strides=(stride, 1)
                    )
                    plane = frame.planes[i]
                    dst = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
                    dst[:ph, :pw] = src
            else:
                frame = av.VideoFrame(w, h, "bgr0")
                stride = info.stride[0]
                src = np.lib.stride_tricks.as_strided(data, shape=(h, w * 4), strides=(stride, 1))
                plane = frame.planes[0]
                dst = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
                dst[:h, : w * 4] = src
        finally:
            buf.unmap(mapinfo)
        if self._size is None:
            self._size = (w, h)
        return frame

    def grab(self) -> CapturedFrame:
        if self._pipeline is None:
            raise CaptureError("wayland capture is not started")
        # Pace to fps from when the last new picture was taken, then take the newest one (older
        # ones were dropped). Pacing from the pictures rather than from a fixed tick means a
        # compositor that already sends at most ``fps`` (Mutter with max-framerate) has its
        # pictures taken the moment they arrive instead of waiting in the slot for our tick.
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_due = time.monotonic() + 1.0 / self._fps
        deadline = time.monotonic() + self.idle_repeat_s
        while True:
            if self._ended:
                raise CaptureError(self._ended)
            frame = self._pull(min(0.05, max(0.0, deadline - time.monotonic())))
            if frame is not None:
                self._last = frame
                self._last_new = time.monotonic()
                self._next_due = self._last_new + PACING_SLACK / self._fps
                return frame
            problem = self._bus_problem()
            if problem:
                self._ended = f"{problem}; restart the host to share again"
                raise CaptureError(self._ended)
            if time.monotonic() >= deadline:
                break
        last = self._last
        if last is None:
            raise CaptureError("no picture from the compositor yet")
        if self.reconnect_after_s and time.monotonic() - self._last_new > self.reconnect_after_s:
            self._reconnect()
        # Nothing changed on screen: the last picture is still what is shown now.
        self.frames_repeated += 1
        index = self._index
        self._index += 1
        return CapturedFrame(last.image, time.time_ns() // 1000, 0, index)

    def _reconnect(self) -> None:
        """Reconnect the PipeWire stream (same portal session) after a long silence.

        A connected stream that has gone quiet is either a still desktop or a stream that
        stopped moving buffers (seen with pipewiresrc 0.3.65 under load); reconnecting costs
        one picture and brings the current one either way.
        """
        cast, stream = self.cast, self.stream
        if cast is None or stream is None or cast.closed.is_set():
            return
        self._last_new = time.monotonic()
        self._stop_pipeline()
        try:
            fd = cast.pipewire_fd()
            self._fd = -1 if fd is None else fd
            self._start_pipeline(stream.node_id)
        except (CastError, CaptureError) as exc:
            self._ended = f"the PipeWire stream could not be reconnected: {exc}"
            raise CaptureError(self._ended) from exc
        self.reconnects += 1

    def _stop_pipeline(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        self._sink = None
        if pipeline is not None:
            pipeline.set_state(_gst().State.NULL)
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def stop(self) -> None:
        self._stop_pipeline()
        cast, self.cast = self.cast, None
        if cast is not None:
            cast.close()
        self._last = None
