"""Video decoder (PyAV) with slice threading and no frame delay; PNG snapshots."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from av.codec.context import Flags

from wavry.media.encode import Codec

__all__ = ["DecodedFrame", "Decoder", "DecoderError", "snapshot"]

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


class Decoder:
    """Decode one access unit at a time; returns the picture for it at once (no reordering)."""

    def __init__(self, codec: Codec | str = Codec.H264, *, threads: int = 2) -> None:
        self.codec = Codec(codec)
        name = _DECODERS[self.codec]
        try:
            ctx: Any = av.CodecContext.create(name, "r")
        except (av.FFmpegError, ValueError) as exc:
            raise DecoderError(f"decoder {name} is not available: {exc}") from exc
        ctx.thread_type = "SLICE"
        ctx.thread_count = threads
        ctx.flags = int(ctx.flags) | int(Flags.low_delay)
        self._ctx = ctx
        self.frames_decoded = 0
        self.errors = 0

    def decode(self, data: bytes) -> DecodedFrame | None:
        """Decode one access unit. None when it yields no picture (or is corrupt: ``errors``)."""
        t0 = time.perf_counter_ns()
        try:
            frames = self._ctx.decode(av.Packet(data))
        except av.FFmpegError:
            self.errors += 1
            return None
        if not frames:
            return None
        self.frames_decoded += 1
        return DecodedFrame(frames[-1], (time.perf_counter_ns() - t0) // 1000)


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
