"""Video decoder (PyAV) with slice threading and no frame delay, optional hardware decode (PyAV
hwaccel, software fallback with the reason); PNG snapshots."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from av.codec.context import Flags

from wavry.media.encode import Codec

__all__ = [
    "DecodedFrame",
    "Decoder",
    "DecoderError",
    "decodable_codecs",
    "hw_device_types",
    "snapshot",
]

_log = logging.getLogger("wavry.decode")

_DECODERS = {Codec.H264: "h264", Codec.HEVC: "hevc", Codec.AV1: "libdav1d"}


class DecoderError(RuntimeError):
    """The decoder could not be opened."""


@dataclass
class DecodedFrame:
    """A decoded picture. ``frame`` is the ``av.VideoFrame`` (usually yuv420p)."""

    frame: Any
    decode_us: int

    @property
    def width(self) -> int:
        return int(self.frame.width)

    @property
    def height(self) -> int:
        return int(self.frame.height)

    @property
    def format(self) -> str:
        return str(self.frame.format.name)

    def planes(self) -> list[tuple[memoryview, int]]:
        """(buffer, pitch) per plane, e.g. for ``SDL_UpdateYUVTexture`` (IYUV) — no copy."""
        return [(memoryview(p), int(p.line_size)) for p in self.frame.planes]

    def yuv_arrays(self) -> list[npt.NDArray[np.uint8]]:
        """Plane views as (rows, width) numpy arrays cropped from their padded pitch (no copy)."""
        out = []
        for p in self.frame.planes:
            rows = np.frombuffer(p, dtype=np.uint8).reshape(p.height, p.line_size)
            out.append(rows[:, : p.width])
        return out

    def to_rgb(self) -> npt.NDArray[np.uint8]:
        return np.asarray(self.frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def decodable_codecs() -> list[Codec]:
    """The codecs this machine's FFmpeg can decode, best known first (each decoder is opened
    once: a build without, say, libdav1d simply lacks AV1)."""
    out = []
    for codec, name in _DECODERS.items():
        try:
            av.CodecContext.create(name, "r")
        except (ValueError, av.FFmpegError):
            continue
        out.append(codec)
    return out


# Hardware device types tried by ``hwaccel="auto"``, best first (only those FFmpeg has).
HW_PREFERENCE = ("cuda", "vaapi", "qsv", "videotoolbox", "d3d11va", "vulkan", "drm")


def hw_device_types() -> list[str]:
    """Hardware decode device types the loaded FFmpeg supports, in preference order."""
    try:
        from av.codec.hwaccel import hwdevices_available

        have = set(hwdevices_available())
    except ImportError:  # PyAV without hwaccel support
        return []
    return [t for t in HW_PREFERENCE if t in have] + sorted(have - set(HW_PREFERENCE))


class Decoder:
    """Decode one access unit at a time; returns the picture for it at once (no reordering).

    ``hwaccel``: None or ``"none"`` decodes in software; ``"auto"`` tries every hardware device
    type FFmpeg offers (:func:`hw_device_types`); a type name (``"cuda"``, ``"vaapi"``, ``"qsv"``
    …) tries only that one. A device that cannot be opened, has no decoder config for the codec,
    or fails on the first pictures falls back to software; ``hw_fallback_reason`` says why (and
    it is logged). Hardware pictures are downloaded and converted to yuv420p for the presenter.
    """

    def __init__(
        self, codec: Codec | str = Codec.H264, *, threads: int = 2, hwaccel: str | None = None
    ) -> None:
        self.codec = Codec(codec)
        self.threads = threads
        self.hwaccel_requested = hwaccel if hwaccel and hwaccel != "none" else ""
        self.hw_device = ""
        self.hw_fallback_reason = ""
        self._name = _DECODERS[self.codec]
        self._ctx: Any = None
        if self.hwaccel_requested:
            self._ctx = self._open_hardware(self.hwaccel_requested)
        if self._ctx is None:
            self._ctx = self._open(None)
        self._hw_ok = False  # a hardware picture came out
        self.frames_decoded = 0
        self.errors = 0

    def _open(self, hwaccel: Any) -> Any:
        try:
            ctx: Any = av.CodecContext.create(self._name, "r", hwaccel=hwaccel)
        except ValueError as exc:
            raise DecoderError(f"decoder {self._name} is not available: {exc}") from exc
        ctx.thread_type = "SLICE"
        ctx.thread_count = self.threads
        ctx.flags = int(ctx.flags) | int(Flags.low_delay)
        return ctx

    def _open_hardware(self, requested: str) -> Any:
        types = hw_device_types()
        candidates = types if requested == "auto" else [requested]
        reasons: list[str] = []
        if requested != "auto" and requested not in types:
            reasons.append(
                f"{requested}: not a hardware device type of this FFmpeg "
                f"(has: {', '.join(types) or 'none'})"
            )
            candidates = []
        for kind in candidates:
            try:
                from av.codec.hwaccel import HWAccel

                ctx = self._open(HWAccel(kind, allow_software_fallback=False))
            except (av.FFmpegError, DecoderError, OSError) as exc:
                reasons.append(f"{kind}: cannot open the device ({exc})")
                continue
            if not getattr(ctx, "is_hwaccel", False):
                reasons.append(f"{kind}: FFmpeg's {self._name} decoder has no {kind} config")
                continue
            self.hw_device = kind
            return ctx
        if not candidates and not reasons:
            reasons.append("this FFmpeg has no hardware device types")
        self._fall_back("; ".join(reasons))
        return None

    def _fall_back(self, reason: str) -> None:
        self.hw_device = ""
        self.hw_fallback_reason = reason
        _log.warning("hardware decode (%s) unavailable, decoding in software: %s",
                     self.hwaccel_requested, reason)  # fmt: skip

    def describe(self) -> dict[str, str]:
        """What decodes: for stats (``wavry connect --stats-json``)."""
        return {
            "codec": self.codec.value,
            "hwdecode": self.hwaccel_requested or "none",
            "device": self.hw_device or "software",
            "fallback_reason": self.hw_fallback_reason,
        }

    def decode(self, data: bytes) -> DecodedFrame | None:
        """Decode one access unit. None when it yields no picture (or is corrupt: ``errors``)."""
        t0 = time.perf_counter_ns()
        try:
            frames = self._ctx.decode(av.Packet(data))
        except av.FFmpegError as exc:
            if self.hw_device and not self._hw_ok:
                # the device opened but cannot decode this stream: software from here on
                self._fall_back(f"{self.hw_device}: decoding failed ({exc})")
                self._ctx = self._open(None)
                return self.decode(data)
            self.errors += 1
            return None
        if not frames:
            return None
        frame = frames[-1]
        if self.hw_device:
            self._hw_ok = True
            if frame.format.name != "yuv420p":
                frame = frame.reformat(format="yuv420p")
        self.frames_decoded += 1
        return DecodedFrame(frame, (time.perf_counter_ns() - t0) // 1000)


def snapshot(frame: DecodedFrame | Any, path_png: str | Path) -> Path:
    """Write a decoded picture (DecodedFrame or av.VideoFrame) as a PNG file."""
    vf = frame.frame if isinstance(frame, DecodedFrame) else frame
    path = Path(path_png)
    _write_png_with_av(vf, path)
    return path


def _write_png_with_av(vf: Any, path: Path) -> None:
    with av.open(str(path), "w", format="image2", options={"update": "1"}) as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = vf.width, vf.height, "rgb24"
        rgb = vf.reformat(format="rgb24")
        for pkt in stream.encode(rgb):
            out.mux(pkt)
        for pkt in stream.encode(None):
            out.mux(pkt)
