"""Host media pipeline: capture thread → encode thread → session (asyncio loop).

Hand-offs are one-slot overwrite buffers (LatestFrameSlot): a frame that waited while a newer one
arrived is dropped and counted, never queued. The encoder follows DELTA (bitrate without a
keyframe), answers ReferenceInvalidation with a keyframe, skips frames on request and, through
``skip_gate``, while the frames before are still leaving. A keyframe request also asks a source
that captures on change for a picture (a still screen produces none by itself). A source that is
gone for good (``CaptureLost``) ends the capture thread and is reported once through
``on_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wavry.media.encode import (
    Codec,
    EncodedFrame,
    EncoderError,
    open_encoder,
    probe_hardware_h264,
)
from wavry.media.handoff import LatestFrameSlot, SlotClosed
from wavry.media.pacing import CAPTURE_HEADROOM, RateCap
from wavry.media.types import Capture, CapturedFrame, CaptureError, CaptureLost
from wavry.rift import rift_pb2

log = logging.getLogger(__name__)

CODEC_FROM_RIFT = {rift_pb2.H264: Codec.H264, rift_pb2.HEVC: Codec.HEVC, rift_pb2.AV1: Codec.AV1}


@dataclass(slots=True)
class StreamerStats:
    captured: int = 0
    encoded: int = 0
    sent: int = 0
    dropped_stale: int = 0
    dropped_rate: int = 0
    skipped: int = 0
    skipped_backlog: int = 0
    keyframes: int = 0
    capture_errors: int = 0
    encode_errors: int = 0
    #: encoded frames the sender failed on (a bug: the first is logged with its traceback)
    deliver_errors: int = 0
    last_error: str = ""
    encode_us_sum: int = 0


@dataclass(slots=True)
class _Control:
    bitrate_kbps: int | None = None
    keyframe: bool = False
    skip: int = 0
    monitor: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


SendFrame = Callable[[CapturedFrame, EncodedFrame], None]
SkipGate = Callable[[], bool]

_HW_CHOICE: str | None = None

#: a source that ignores set_rate is held to the capture's own cap (the stream's rate with its
#: headroom) with this much burst (pictures): deeper than the capture's bucket
#: (``wavry.media.pacing.BURST_PICTURES``), so a source that honours it never loses a picture
SOURCE_BURST_PICTURES = 3.0


def hardware_h264_choice() -> str:
    """The H.264 encoder to stream with, probed once per process (`probe_hardware_h264`:
    FFmpeg's NVENC/QSV, GStreamer's VA-API/NVENC/QSV, each actually opened; else libx264)."""
    global _HW_CHOICE
    if _HW_CHOICE is None:
        _HW_CHOICE = probe_hardware_h264().encoder_name
    return _HW_CHOICE


class Streamer:
    """Runs capture and encode threads; delivers encoded frames to `on_frame` on the loop."""

    def __init__(
        self,
        capture: Capture,
        codec: Codec,
        width: int,
        height: int,
        fps: float,
        bitrate_kbps: int,
        on_frame: SendFrame,
        loop: asyncio.AbstractEventLoop,
        *,
        skip_gate: SkipGate | None = None,
        on_lost: Callable[[str], None] | None = None,
        deliver_on_thread: bool = False,
    ) -> None:
        self.capture = capture
        #: H.264: the hardware encoder the probe found (NVENC, QSV, GStreamer VA-API …), else
        #: libx264; other codecs: PyAV's default for the codec
        self.encoder_name = hardware_h264_choice() if codec is Codec.H264 else None
        name = None if self.encoder_name == "libx264" else self.encoder_name
        self.encoder = open_encoder(codec, width, height, fps, bitrate_kbps, encoder_name=name)
        self.stats = StreamerStats()
        self._on_frame = on_frame
        self._loop = loop
        self._slot: LatestFrameSlot[CapturedFrame] = LatestFrameSlot()
        self._control = _Control(keyframe=True)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._skip_gate = skip_gate
        self._on_lost = on_lost
        #: `on_frame` runs on the encode thread (it must be thread-safe), not on the loop
        self._deliver_on_thread = deliver_on_thread
        self._fps = float(fps)
        #: the stream's negotiated frame rate: set_fps never goes above it
        self.max_fps = float(fps)
        #: a frame from a source faster than the stream (it ignored set_rate) is dropped when it
        #: comes too early for the stream's average rate
        self._cap = RateCap(max(1.0, self._fps) * CAPTURE_HEADROOM, burst=SOURCE_BURST_PICTURES)
        #: why the source is gone for good ("" while it works)
        self.lost = ""

    def start(self) -> None:
        self.capture.start()
        self.capture.set_rate(self._fps)
        for target, name in ((self._capture_loop, "capture"), (self._encode_loop, "encode")):
            t = threading.Thread(target=target, name=f"wavry-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self.capture.request_frame()  # wakes a capture waiting for the screen to change
        self._slot.close()
        for t in self._threads:
            t.join(timeout=3)
        self._threads.clear()
        with contextlib.suppress(CaptureError):
            self.capture.stop()
        self.encoder.close()

    # ---- control (any thread) ----------------------------------------------------

    def request_keyframe(self) -> None:
        with self._control.lock:
            self._control.keyframe = True
        self.capture.request_frame()  # a still screen gives no picture by itself

    def set_bitrate(self, kbps: int) -> None:
        with self._control.lock:
            self._control.bitrate_kbps = max(100, int(kbps))

    def set_fps(self, fps: float) -> None:
        """The congestion controller's (or the client's) frame rate, at most the stream's own:
        the capture takes fewer pictures instead of the sender dropping encoded ones."""
        fps = max(1.0, min(float(fps), self.max_fps))
        if fps == self._fps:
            return
        self._fps = fps
        self._cap.set_fps(fps * CAPTURE_HEADROOM)
        self.capture.set_rate(fps)

    def select_monitor(self, monitor_id: int) -> None:
        """Switch the captured monitor between two grabs (capture thread), then a keyframe."""
        with self._control.lock:
            self._control.monitor = monitor_id
        self.capture.request_frame()  # a capture waiting for a change must get to the switch

    def skip_frames(self, n: int) -> None:
        with self._control.lock:
            self._control.skip = max(self._control.skip, min(2, n))

    # ---- threads -------------------------------------------------------------------

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            with self._control.lock:
                monitor, self._control.monitor = self._control.monitor, None
            if monitor is not None:
                self._switch_monitor(monitor)
            try:
                frame = self.capture.grab()
            except CaptureLost as exc:
                self._lose(str(exc))
                return
            except CaptureError as exc:
                self.stats.capture_errors += 1
                self.stats.last_error = str(exc)
                time.sleep(0.05)
                continue
            self.stats.captured += 1
            now = time.monotonic()
            if not self._cap.allows(now):
                self.stats.dropped_rate += 1  # faster than the stream's frame rate
                continue
            self._cap.taken(now)
            try:
                if not self._slot.put(frame):
                    self.stats.dropped_stale += 1
            except SlotClosed:
                return

    def _lose(self, why: str) -> None:
        self.lost = why
        self.stats.last_error = why
        if self._on_lost is not None and not self._stop.is_set():
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self._loop.call_soon_threadsafe(self._on_lost, why)

    def _switch_monitor(self, monitor_id: int) -> None:
        switch = getattr(self.capture, "select_monitor", None)
        if switch is None:
            self.stats.last_error = f"this source has one monitor; cannot select {monitor_id}"
            return
        try:
            switch(monitor_id)
        except (CaptureError, ValueError, KeyError) as exc:
            self.stats.last_error = f"monitor {monitor_id}: {exc}"
            return
        self.request_keyframe()

    def _encode_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._slot.get(timeout=0.2)
            except SlotClosed:
                return
            if frame is None:
                continue
            with self._control.lock:
                ctl = self._control
                bitrate, ctl.bitrate_kbps = ctl.bitrate_kbps, None
                keyframe, ctl.keyframe = ctl.keyframe, False
                skip = ctl.skip > 0 and not keyframe
                if skip:
                    ctl.skip -= 1
            try:
                if bitrate is not None:
                    self.encoder.set_bitrate(bitrate)  # also when this frame is skipped
                if skip:
                    self.stats.skipped += 1
                    continue
                if not keyframe and self._skip_gate is not None and self._skip_gate():
                    self.stats.skipped_backlog += 1
                    continue
                encoded = self.encoder.encode(frame.image, force_keyframe=keyframe)
            except (EncoderError, ValueError) as exc:
                self.stats.encode_errors += 1
                self.stats.last_error = str(exc)
                self.request_keyframe()
                continue
            self.stats.encoded += 1
            self.stats.encode_us_sum += encoded.encode_us
            if encoded.keyframe:
                self.stats.keyframes += 1
            if self._deliver_on_thread:
                try:
                    self._deliver(frame, encoded)
                except Exception as exc:  # a bug in the sender: the stream goes on, counted
                    self.stats.deliver_errors += 1
                    self.stats.last_error = f"sending a frame failed: {exc!r}"
                    if self.stats.deliver_errors == 1:
                        log.exception("sending an encoded frame failed")
                continue
            try:
                self._loop.call_soon_threadsafe(self._deliver, frame, encoded)
            except RuntimeError:  # loop closed
                return

    def _deliver(self, frame: CapturedFrame, encoded: EncodedFrame) -> None:
        self.stats.sent += 1
        self._on_frame(frame, encoded)
