"""H.264 through a GStreamer encoder element: VA-API (vah264enc / vaapih264enc), NVENC
(nvh264enc), Quick Sync (qsvh264enc), or software x264enc.

Same interface as :class:`wavry.media.encode.Encoder` (``encode``, ``set_bitrate``,
``request_keyframe``, ``close``; one Annex-B access unit per frame, SPS/PPS in front of every
keyframe)::

    appsrc (I420) ! videoconvert ! ENCODER (low-latency settings)
      ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au
      ! appsink

Each ``encode()`` pushes one picture and waits for its access unit. Keyframes on demand are
GstVideo force-key-unit events; the bitrate changes through the element's ``bitrate`` property
(mutable while playing: no new stream, no keyframe). Hardware elements are used only when the
element exists and its device node does (``probe_gst_encoder``); x264enc makes the same code
path testable on any machine with gstreamer1.0-plugins-ugly.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from av.video.reformatter import VideoReformatter

from wavry.media.encode import Codec, EncodedFrame, EncoderError
from wavry.media.types import ProbeResult

__all__ = [
    "GST_HW_ELEMENTS",
    "GstEncoder",
    "gst_element_available",
    "probe_gst_encoder",
]

# Tried in this order by media.encode.probe_hardware_h264 (after the FFmpeg nvenc/qsv wrappers).
GST_HW_ELEMENTS = ("vah264enc", "vaapih264enc", "nvh264enc", "qsvh264enc")


@dataclass(frozen=True)
class _ElementSpec:
    device: str  # glob of the device node it needs ('' none)
    device_help: str
    properties: tuple[tuple[str, str], ...]  # low-latency settings, as strings


def _specs(fps: float) -> dict[str, _ElementSpec]:
    long_gop = str(max(1, int(fps * 3600)))  # keyframes come on request, not on a timer
    vbv_ms = str(max(1, round(2000 / fps)))  # two frames of buffer, like the libx264 Encoder
    dri = "/dev/dri/renderD*"
    dri_help = "needs a VA-API GPU: a /dev/dri/renderD* node and its VA driver (intel/mesa)"
    return {
        "x264enc": _ElementSpec(
            "",
            "",
            (
                ("speed-preset", "ultrafast"),
                ("tune", "zerolatency"),
                ("bframes", "0"),
                ("sliced-threads", "true"),
                ("threads", "2"),
                ("rc-lookahead", "0"),
                ("sync-lookahead", "0"),
                ("key-int-max", long_gop),
                ("byte-stream", "true"),
                ("aud", "false"),
                ("pass", "cbr"),
                ("vbv-buf-capacity", vbv_ms),
            ),
        ),
        "vah264enc": _ElementSpec(
            dri,
            dri_help,
            (
                ("rate-control", "cbr"),
                ("b-frames", "0"),
                ("ref-frames", "1"),
                ("target-usage", "7"),
                ("key-int-max", "1024"),
                ("cpb-size", "0"),
            ),
        ),
        "vaapih264enc": _ElementSpec(
            dri,
            dri_help,
            (
                ("rate-control", "cbr"),
                ("max-bframes", "0"),
                ("keyframe-period", "0"),
                ("quality-level", "7"),
                ("refs", "1"),
            ),
        ),
        "nvh264enc": _ElementSpec(
            "/dev/nvidia[0-9]*",
            "needs an NVIDIA GPU with the proprietary driver (/dev/nvidia0, libnvidia-encode)",
            (
                ("preset", "low-latency-hq"),
                ("zerolatency", "true"),
                ("bframes", "0"),
                ("rc-mode", "cbr"),
                ("gop-size", "-1"),
            ),
        ),
        "qsvh264enc": _ElementSpec(
            dri,
            "needs an Intel GPU with the oneVPL runtime and a /dev/dri/renderD* node",
            (
                ("low-latency", "true"),
                ("b-frames", "0"),
                ("target-usage", "7"),
                ("rate-control", "cbr"),
                ("gop-size", "0"),
            ),
        ),
    }


def _gst() -> Any:
    """The initialised Gst module (see wavry.media.gst for why it is loaded there)."""
    from wavry.media.gst import gst

    return gst()


def gst_element_available(element: str) -> str:
    """'' when GStreamer has ``element``; otherwise why not."""
    try:
        Gst = _gst()
    except (ImportError, ValueError) as exc:
        return f"GStreamer for Python is not usable: {exc}"
    if Gst.ElementFactory.find(element) is None:
        return f"GStreamer has no {element} element"
    return ""


def probe_gst_encoder(element: str, width: int = 640, height: int = 360) -> ProbeResult:
    """Device node and element present, then open the pipeline and encode one frame for real."""
    name = f"gst:{element}"
    spec = _specs(30).get(element)
    if spec is None:
        return ProbeResult(name, False, f"{element} is not a supported GStreamer H.264 encoder")
    if spec.device and not glob.glob(spec.device):
        if "dri" in spec.device:
            state = "exists" if os.path.isdir("/dev/dri") else "does not exist"
            detail = f"no /dev/dri render node (/dev/dri {state})"
        else:
            detail = f"no NVIDIA device node ({spec.device})"
        return ProbeResult(name, False, detail, spec.device_help)
    problem = gst_element_available(element)
    if problem:
        remedy = {
            "x264enc": "apt install gstreamer1.0-plugins-ugly",
            "vah264enc": "apt install gstreamer1.0-plugins-bad (va plugin) and the VA driver "
            "(intel-media-va-driver or mesa-va-drivers)",
            "vaapih264enc": "apt install gstreamer1.0-vaapi and the VA driver",
            "nvh264enc": "apt install gstreamer1.0-plugins-bad with the NVIDIA driver",
            "qsvh264enc": "apt install gstreamer1.0-plugins-bad (qsv) and libvpl2",
        }.get(element, "install the GStreamer plugin that provides it")
        if gst_element_available("h264parse"):
            remedy += "; h264parse: apt install gstreamer1.0-plugins-bad"
        return ProbeResult(name, False, problem, remedy)
    try:
        enc = GstEncoder(Codec.H264, width, height, 30, 1000, element=element)
        import av

        enc.encode(av.VideoFrame(width, height, "yuv420p"))
        enc.close()
    except EncoderError as exc:
        return ProbeResult(name, False, f"opening {element} failed: {exc}", spec.device_help)
    return ProbeResult(name, True, f"opened and encoded a {width}x{height} frame")


class GstEncoder:
    """One GStreamer H.264 encoder pipeline per stream (interface of ``media.encode.Encoder``)."""

    def __init__(
        self,
        codec: Codec | str = Codec.H264,
        width: int = 1280,
        height: int = 720,
        fps: float = 60.0,
        bitrate_kbps: int = 8000,
        *,
        element: str = "x264enc",
        timeout_s: float = 2.0,
    ) -> None:
        self.codec = Codec(codec)
        if self.codec is not Codec.H264:
            raise EncoderError(
                f"the GStreamer encoder path does H.264 only, not {self.codec.value}"
            )
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise EncoderError(f"frame size must be positive and even, got {width}x{height}")
        spec = _specs(fps).get(element)
        if spec is None:
            raise EncoderError(f"{element} is not a supported GStreamer H.264 encoder")
        for needed in (element, "h264parse", "appsrc", "appsink", "videoconvert"):
            problem = gst_element_available(needed)
            if problem:
                raise EncoderError(problem)
        self.width, self.height, self.fps = width, height, float(fps)
        self.element = element
        self.encoder_name = f"gst:{element}"
        self.timeout_s = timeout_s
        self._bitrate_kbps = int(bitrate_kbps)
        self._pending_kbps: int | None = None
        self.reconfigures_in_place = True  # the bitrate property is mutable while playing
        self.reconfig_fallback_reason = ""
        self._force_key = False
        self._reformatter = VideoReformatter()
        self.frames_encoded = 0
        self._pts = 0
        self._duration = max(1, round(1_000_000_000 / self.fps))
        Gst = _gst()
        from gi.repository import GstVideo  # type: ignore[import-untyped]

        self._GstVideo = GstVideo
        fps_frac = f"{max(1, round(self.fps))}/1"
        caps = f"video/x-raw,format=I420,width={width},height={height},framerate={fps_frac}"
        desc = (
            f"appsrc name=src is-live=true format=time do-timestamp=false caps={caps} "
            f"! videoconvert ! {element} name=enc ! h264parse config-interval=-1 "
            "! video/x-h264,stream-format=byte-stream,alignment=au "
            "! appsink name=sink sync=false emit-signals=false"
        )
        try:
            self._pipeline = Gst.parse_launch(desc)
        except Exception as exc:  # GLib.Error
            raise EncoderError(f"cannot build the {element} pipeline: {exc}") from exc
        self._src = self._pipeline.get_by_name("src")
        self._enc = self._pipeline.get_by_name("enc")
        self._sink = self._pipeline.get_by_name("sink")
        for prop, value in spec.properties:
            if self._enc.find_property(prop) is not None:
                Gst.util_set_object_arg(self._enc, prop, value)
        self._set_bitrate_property(self._bitrate_kbps)
        self._info = GstVideo.VideoInfo.new_from_caps(Gst.Caps.from_string(caps))
        ret = self._pipeline.set_state(Gst.State.PLAYING)
        if ret == Gst.StateChangeReturn.FAILURE:
            problem = self._bus_error()
            self._pipeline.set_state(Gst.State.NULL)
            raise EncoderError(f"the {element} pipeline did not start: {problem}")

    # ---- Encoder interface -------------------------------------------------------------

    @property
    def bitrate_kbps(self) -> int:
        return self._pending_kbps or self._bitrate_kbps

    def set_bitrate(self, kbps: int) -> None:
        kbps = int(kbps)
        if kbps <= 0:
            raise ValueError(f"bitrate must be positive, got {kbps}")
        self._pending_kbps = kbps

    def request_keyframe(self) -> None:
        self._force_key = True

    def _set_bitrate_property(self, kbps: int) -> None:
        if self._enc.find_property("bitrate") is not None:
            self._enc.set_property("bitrate", int(kbps))

    def _bus_error(self) -> str:
        Gst = _gst()
        msg = self._pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        if msg is None:
            return "no error message"
        err, _debug = msg.parse_error()
        return str(err.message)

    def _i420_bytes(self, frame: Any) -> bytes:
        if not (
            frame.format.name == "yuv420p"
            and frame.width == self.width
            and frame.height == self.height
        ):
            frame = self._reformatter.reformat(frame, self.width, self.height, "yuv420p")
        info = self._info
        out = np.empty(info.size, dtype=np.uint8)
        dims = ((self.width, self.height), (self.width // 2, self.height // 2))
        for i in range(3):
            w, h = dims[0] if i == 0 else dims[1]
            plane = frame.planes[i]
            src = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)[:h, :w]
            stride, offset = info.stride[i], info.offset[i]
            dst = out[offset : offset + stride * h].reshape(h, stride)
            dst[:, :w] = src
        return out.tobytes()

    def encode(self, frame: Any, force_keyframe: bool = False) -> EncodedFrame:
        Gst = _gst()
        t0 = time.perf_counter_ns()
        pending, self._pending_kbps = self._pending_kbps, None
        if pending is not None and pending != self._bitrate_kbps:
            self._bitrate_kbps = pending
            self._set_bitrate_property(pending)
        data = self._i420_bytes(frame)
        buf = Gst.Buffer.new_allocate(None, len(data), None)
        buf.fill(0, data)
        buf.pts = self._pts
        buf.dts = self._pts
        buf.duration = self._duration
        if force_keyframe or self._force_key:
            self._force_key = False
            event = self._GstVideo.video_event_new_downstream_force_key_unit(
                self._pts, self._pts, self._pts, True, self.frames_encoded
            )
            self._enc.get_static_pad("sink").send_event(event)
        self._pts += self._duration
        if self._src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            raise EncoderError(f"{self.element} refused a frame: {self._bus_error()}")
        sample = self._sink.emit("try-pull-sample", int(self.timeout_s * Gst.SECOND))
        if sample is None:
            raise EncoderError(
                f"{self.element} gave no access unit within {self.timeout_s:.1f} s "
                f"(encoder delay or error: {self._bus_error()})"
            )
        out = sample.get_buffer()
        ok, info = out.map(Gst.MapFlags.READ)
        if not ok:
            raise EncoderError("cannot map an encoded buffer")
        try:
            payload = bytes(info.data)
        finally:
            out.unmap(info)
        key = not out.has_flags(Gst.BufferFlags.DELTA_UNIT)
        self.frames_encoded += 1
        return EncodedFrame(payload, key, (time.perf_counter_ns() - t0) // 1000)

    def close(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.set_state(_gst().State.NULL)
