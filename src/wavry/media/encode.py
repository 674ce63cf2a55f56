"""Video encoders (PyAV): low-latency H.264 (libx264), HEVC (libx265), AV1 (libsvtav1)."""

from __future__ import annotations

import contextlib
import enum
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from wavry.media.avopts import AvOptUnavailable, set_int_options
from wavry.media.types import ProbeResult
from wavry.media.yuv import PackedToI420

__all__ = [
    "Codec",
    "EncodedFrame",
    "Encoder",
    "EncoderError",
    "HardwareChoice",
    "normal_scheduling",
    "open_encoder",
    "probe_encoder",
    "probe_hardware_h264",
]


# SVT-AV1 prints its banner and settings at info level on every open; keep errors only.
os.environ.setdefault("SVT_LOG", "1")

#: encodes after an open during which new real-time threads are looked for (SVT-AV1 starts
#: two more workers with its first frame)
_RT_WATCH_FRAMES = 3


def _realtime_threads() -> set[int]:
    """This process's threads under a real-time policy (SCHED_FIFO/RR); empty where /proc
    cannot tell."""
    out: set[int] = set()
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            policy = os.sched_getscheduler(int(tid)) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        if policy in (os.SCHED_FIFO, os.SCHED_RR):
            out.add(int(tid))
    return out


@contextlib.contextmanager
def normal_scheduling(before: set[int] | None = None) -> Iterator[set[int]]:
    """At the end of the block, threads under a real-time policy that were not in ``before``
    (default: the real-time threads when the block starts, which it yields) go back under the
    normal policy (what opening SVT-AV1 as root needs: see `Encoder._open`)."""
    if before is None:
        before = _realtime_threads()
    try:
        yield before
    finally:
        for tid in _realtime_threads() - before:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))


class EncoderError(RuntimeError):
    """The encoder could not be opened or failed on a frame."""


class Codec(enum.Enum):
    H264 = "h264"
    HEVC = "hevc"
    AV1 = "av1"


_SOFTWARE = {Codec.H264: "libx264", Codec.HEVC: "libx265", Codec.AV1: "libsvtav1"}


@dataclass(frozen=True)
class EncodedFrame:
    """One access unit: Annex-B for H.264/HEVC (parameter sets on keyframes), a TU for AV1."""

    data: bytes
    keyframe: bool
    encode_us: int


def _software_options(codec: Codec, fps: float, gop_frames: int) -> dict[str, str]:
    keyint = str(gop_frames) if gop_frames > 0 else "infinite"
    if codec is Codec.H264:
        params = [
            "repeat-headers=1",  # SPS/PPS in front of every keyframe
            "annexb=1",
            "bframes=0",
            "sliced-threads=1",  # one packet per frame, slices encoded in parallel
            "rc-lookahead=0",
            "sync-lookahead=0",
            "scenecut=0",
            f"keyint={keyint}",
            "aud=0",
        ]
        return {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "forced-idr": "1",
            "x264-params": ":".join(params),
        }
    if codec is Codec.HEVC:
        k = str(gop_frames) if gop_frames > 0 else "-1"
        return {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "forced-idr": "1",
            "x265-params": (
                f"repeat-headers=1:annexb=1:bframes=0:keyint={k}:scenecut=0:log-level=error"
            ),
        }
    # SVT-AV1: fastest preset, low-delay prediction structure, no periodic keyframes unless asked.
    # Low delay needs CBR (rc=2) and a finite intra period in SVT-AV1; rtc=1 turns off the
    # hierarchical layers whose low-quality frames otherwise alternate with good ones.
    k = str(gop_frames) if gop_frames > 0 else str(int(fps * 3600))
    return {"preset": "11", "svtav1-params": f"pred-struct=1:rc=2:rtc=1:keyint={k}:scd=0:lp=2"}


class Encoder:
    """One encoder per stream. ``encode()`` returns one :class:`EncodedFrame` per input frame.

    The input is any ``av.VideoFrame`` (yuv420p passes straight through; bgr0/bgra from X11 are
    converted by libyuv (:mod:`wavry.media.yuv`) when the size is the encoder's, else, or
    without libyuv, by one reused swscale context). ``set_bitrate`` takes effect on the next frame
    without a keyframe for H.264 (x264_encoder_reconfig); HEVC and AV1 reopen the encoder, which
    costs a keyframe (FFmpeg's wrappers do not reconfigure them).
    """

    def __init__(
        self,
        codec: Codec | str = Codec.H264,
        width: int = 1280,
        height: int = 720,
        fps: float = 60.0,
        bitrate_kbps: int = 8000,
        *,
        encoder_name: str | None = None,
        gop_frames: int = 0,
        threads: int = 2,
        vbv_frames: float = 2.0,
    ) -> None:
        self.codec = Codec(codec)
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise EncoderError(f"frame size must be positive and even, got {width}x{height}")
        self.width, self.height, self.fps = width, height, float(fps)
        self.encoder_name = encoder_name or _SOFTWARE[self.codec]
        self.gop_frames = gop_frames
        self.threads = threads
        self._bitrate_kbps = int(bitrate_kbps)
        self.vbv_frames = float(vbv_frames)
        self.reconfigures_in_place = self.encoder_name == "libx264"
        self._reformatter = VideoReformatter()
        self._yuv = PackedToI420.open()  # None without libyuv: swscale converts
        self._force_key = False
        self._pending_kbps: int | None = None
        self.reconfig_fallback_reason = ""
        self._pts = 0
        self.frames_encoded = 0
        self._rt_watch = 0  # encodes left during which new real-time threads are reset
        self._rt_before: set[int] = set()  # the real-time threads before the last open
        self._ctx = self._open()

    def _open(self) -> Any:
        try:
            ctx: Any = av.CodecContext.create(self.encoder_name, "w")
        except (av.FFmpegError, ValueError) as exc:  # unknown encoder name
            raise EncoderError(f"encoder {self.encoder_name} is not available: {exc}") from exc
        ctx.width, ctx.height = self.width, self.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 1_000_000)
        ctx.framerate = Fraction(self.fps).limit_denominator(1001)
        ctx.bit_rate = self._bitrate_kbps * 1000
        ctx.thread_type = "SLICE"
        ctx.thread_count = self.threads
        if self.encoder_name.startswith("lib"):
            opts = _software_options(self.codec, self.fps, self.gop_frames)
            if self.encoder_name == "libx264":
                opts.update({k: str(v) for k, v in self._vbv().items()})
            ctx.options = opts
        elif "nvenc" in self.encoder_name:
            ctx.options = {"preset": "p1", "tune": "ull", "zerolatency": "1", "bf": "0"}
        elif "qsv" in self.encoder_name:
            ctx.options = {"preset": "veryfast", "async_depth": "1", "bf": "0", "low_power": "1"}
        # SVT-AV1 run as root makes the thread that opens it, and its own workers, SCHED_FIFO at
        # priority 99. A real-time thread that spins starves every normal one, and threads and
        # processes started later inherit the policy: a test run hung for good that way (the
        # pytest process, and the Chromium it started after an AV1 test, at FIFO 99 on two
        # cores). The encoder works the same under the normal policy, so whatever became
        # real-time while it opened (and during its first frames) goes back to it.
        try:
            with normal_scheduling() as before:
                ctx.open()
        except av.FFmpegError as exc:
            raise EncoderError(f"cannot open {self.encoder_name}: {exc}") from exc
        self._rt_before, self._rt_watch = before, _RT_WATCH_FRAMES
        return ctx

    def _vbv(self) -> dict[str, int]:
        # CBR-like VBV: max rate = target, buffer = ``vbv_frames`` frames. It caps every frame
        # (keyframes too) near the per-frame budget, and x264 only retargets its bitrate at run
        # time in this mode.
        bps = self._bitrate_kbps * 1000
        return {"b": bps, "maxrate": bps, "bufsize": int(bps * self.vbv_frames / self.fps)}

    @property
    def bitrate_kbps(self) -> int:
        """The target in force (or requested, when a change waits for the next frame)."""
        return self._pending_kbps or self._bitrate_kbps

    def set_bitrate(self, kbps: int) -> None:
        """Retarget rate control from the next frame on (DELTA, docs/spec/RIFT.md §8).

        Safe to call from another thread than the one encoding: the change is applied by
        ``encode()`` before its next frame.
        """
        kbps = int(kbps)
        if kbps <= 0:
            raise ValueError(f"bitrate must be positive, got {kbps}")
        self._pending_kbps = kbps

    def _apply_bitrate(self, kbps: int) -> None:
        if kbps == self._bitrate_kbps:
            return
        self._bitrate_kbps = kbps
        if self.reconfigures_in_place:
            try:
                # FFmpeg's libx264 wrapper sees the new b/maxrate/bufsize on the next frame and
                # calls x264_encoder_reconfig: no new stream, no keyframe.
                set_int_options(self._ctx, self._vbv())
                return
            except AvOptUnavailable as exc:
                self.reconfigures_in_place = False
                self.reconfig_fallback_reason = str(exc)
        self._ctx = self._open()
        self._force_key = True

    def request_keyframe(self) -> None:
        """Make the next frame an IDR (answer to ReferenceInvalidation)."""
        self._force_key = True

    def _to_yuv(self, frame: av.VideoFrame) -> av.VideoFrame:
        if (
            frame.format.name == "yuv420p"
            and frame.width == self.width
            and frame.height == self.height
        ):
            return frame
        if self._yuv is not None and (frame.width, frame.height) == (self.width, self.height):
            out = self._yuv.convert(frame)
            if out is not None:
                return out
        return self._reformatter.reformat(frame, self.width, self.height, "yuv420p")

    def encode(self, frame: Any, force_keyframe: bool = False) -> EncodedFrame:
        """Encode one picture; returns the whole access unit for it."""
        t0 = time.perf_counter_ns()
        pending, self._pending_kbps = self._pending_kbps, None
        if pending is not None:
            self._apply_bitrate(pending)
        yuv = self._to_yuv(frame)
        yuv.pts = self._pts
        self._pts += max(1, round(1_000_000 / self.fps))
        if force_keyframe or self._force_key:
            yuv.pict_type = PictureType.I
            self._force_key = False
        else:
            yuv.pict_type = PictureType.NONE
        watch: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if self._rt_watch:
            self._rt_watch -= 1
            watch = normal_scheduling(self._rt_before)
        try:
            with watch:
                packets = self._ctx.encode(yuv)
        except av.FFmpegError as exc:
            raise EncoderError(f"{self.encoder_name} failed on a frame: {exc}") from exc
        if not packets:
            raise EncoderError(
                f"{self.encoder_name} buffered a frame (encoder delay); "
                "expected one packet per frame"
            )
        data = b"".join(bytes(p) for p in packets)
        self.frames_encoded += 1
        key = any(p.is_keyframe for p in packets)
        return EncodedFrame(data, key, (time.perf_counter_ns() - t0) // 1000)

    def close(self) -> None:
        """Flush and drop the encoder (nothing is pending: one packet per frame)."""
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            with contextlib.suppress(av.FFmpegError):
                ctx.encode(None)


@dataclass(frozen=True)
class HardwareChoice:
    encoder_name: str
    probes: list[ProbeResult]

    @property
    def reason(self) -> str:
        return "; ".join(p.line() for p in self.probes)


def probe_encoder(name: str, width: int = 640, height: int = 360) -> ProbeResult:
    """Open ``name`` for real and encode one frame; report why it failed if it does."""
    codec = Codec.H264
    if "265" in name or "hevc" in name:
        codec = Codec.HEVC
    elif "av1" in name:
        codec = Codec.AV1
    try:
        enc = Encoder(codec, width, height, 30, 1000, encoder_name=name)
        enc.encode(av.VideoFrame(width, height, "yuv420p"))
        enc.close()
    except (EncoderError, av.FFmpegError) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, av.FFmpegError) else exc
        reason = getattr(cause, "strerror", None) or str(exc).splitlines()[0][:200]
        remedy = ""
        if "nvenc" in name:
            remedy = "needs an NVIDIA GPU with the proprietary driver (libnvidia-encode)"
        elif "qsv" in name:
            remedy = "needs an Intel GPU with oneVPL/libmfx runtime and /dev/dri access"
        return ProbeResult(name, False, f"opening {name} failed: {reason}", remedy)
    return ProbeResult(name, True, f"opened and encoded a {width}x{height} frame")


def probe_hardware_h264(
    candidates: tuple[str, ...] = ("h264_nvenc", "h264_qsv"),
    gst_elements: tuple[str, ...] | None = None,
) -> HardwareChoice:
    """Try the hardware H.264 encoders in order: FFmpeg's (``candidates``), then GStreamer's
    VA-API/NVENC/QSV elements (``gst:vah264enc`` …, each only when its element and device node
    exist); fall back to libx264 with the reasons."""
    probes: list[ProbeResult] = []
    for name in candidates:
        result = probe_encoder(name)
        probes.append(result)
        if result.ok:
            return HardwareChoice(name, probes)
    try:
        from wavry.media.gst_encode import GST_HW_ELEMENTS, probe_gst_encoder
    except ImportError:  # pragma: no cover - numpy/av missing would fail earlier
        elements: tuple[str, ...] = ()
    else:
        elements = GST_HW_ELEMENTS if gst_elements is None else gst_elements
    for element in elements:
        result = probe_gst_encoder(element)
        probes.append(result)
        if result.ok:
            return HardwareChoice(result.name, probes)
    probes.append(probe_encoder("libx264"))
    return HardwareChoice("libx264", probes)


def open_encoder(
    codec: Codec | str,
    width: int,
    height: int,
    fps: float,
    bitrate_kbps: int,
    encoder_name: str | None = None,
) -> Any:
    """An encoder by name: ``gst:ELEMENT`` is a GStreamer pipeline
    (:class:`wavry.media.gst_encode.GstEncoder`), anything else a PyAV :class:`Encoder`. Both
    have the same ``encode`` / ``set_bitrate`` / ``request_keyframe`` / ``close``."""
    if encoder_name and encoder_name.startswith("gst:"):
        from wavry.media.gst_encode import GstEncoder

        return GstEncoder(codec, width, height, fps, bitrate_kbps, element=encoder_name[4:])
    return Encoder(codec, width, height, fps, bitrate_kbps, encoder_name=encoder_name)
