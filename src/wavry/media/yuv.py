"""Colour conversion of packed 32-bit RGB pictures to I420 with libyuv (through ctypes).

libyuv (Google's, used by Chromium and WebRTC for exactly this) converts a 1280×720 BGRx
picture to I420 in 0.12 ms on this project's machine, where FFmpeg's swscale with a reused
context takes 1.5 ms (1920×1080: 0.36–0.46 against 3.7–4.7 ms; docs/benchmarks.md): swscale's
packed-RGB input path is generic C. No Python package wraps libyuv, and Debian ships it as a
plain shared library (``libyuv0``), hence ctypes; ctypes releases the GIL for the call.

The result is BT.601 limited range, what H.264 streams without colour metadata mean and what
swscale produces by default: luma agrees with swscale's within 1. For chroma libyuv takes the
mean of each 2×2 block (swscale does not, so the two differ at sharp colour edges). Where the
library is missing, :meth:`PackedToI420.open` returns None and the encoder keeps swscale.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

import av

__all__ = ["PackedToI420", "i420_to_packed", "libyuv", "packs_i420_to"]

_LIB: ctypes.CDLL | None = None
_LOADED = False
_LOCK = threading.Lock()

_u8p = ctypes.c_void_p
_int = ctypes.c_int
_TO_I420 = (_u8p, _int, _u8p, _int, _u8p, _int, _u8p, _int, _int, _int)
_FROM_I420 = _TO_I420  # y, u, v (pointer, stride each), then the packed picture, width, height

#: libyuv names a format by its 32-bit word, little-endian: "ARGB" is B, G, R, A in memory
_PACKED_TO_I420 = {
    "bgr0": "ARGBToI420",
    "bgra": "ARGBToI420",
    "rgb0": "ABGRToI420",
    "rgba": "ABGRToI420",
}
#: ... and back: I420 into a packed picture (the client's window surface)
_I420_TO_PACKED = {
    "bgr0": "I420ToARGB",
    "bgra": "I420ToARGB",
    "rgb0": "I420ToABGR",
    "rgba": "I420ToABGR",
}


def libyuv() -> ctypes.CDLL | None:
    """The loaded library with the prototypes set, or None when it is not installed."""
    global _LIB, _LOADED
    with _LOCK:
        if not _LOADED:
            _LOADED = True
            for name in (ctypes.util.find_library("yuv"), "libyuv.so.0", "libyuv.so"):
                if not name:
                    continue
                try:
                    lib = ctypes.CDLL(name)
                except OSError:
                    continue
                try:
                    for fn in set(_PACKED_TO_I420.values()):
                        getattr(lib, fn).argtypes = _TO_I420
                        getattr(lib, fn).restype = _int
                    for fn in set(_I420_TO_PACKED.values()):
                        getattr(lib, fn).argtypes = _FROM_I420
                        getattr(lib, fn).restype = _int
                except AttributeError:  # an unrelated library of that name
                    continue
                _LIB = lib
                break
        return _LIB


def _ptr(plane: Any, offset: int = 0) -> int:
    return int(plane.buffer_ptr) + offset


class PackedToI420:
    """Packed 32-bit RGB ``av.VideoFrame``s (bgr0/bgra/rgb0/rgba) to I420 frames of the same
    size. The output frames are reused (two, alternating), so a result is valid until the
    call after next: an encoder copies its input before ``encode`` returns."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._frames: list[av.VideoFrame] = []
        self._next = 0

    @classmethod
    def open(cls) -> PackedToI420 | None:
        lib = libyuv()
        return None if lib is None else cls(lib)

    def _out(self, width: int, height: int) -> av.VideoFrame:
        if not self._frames or (self._frames[0].width, self._frames[0].height) != (width, height):
            self._frames = [av.VideoFrame(width, height, "yuv420p") for _ in range(2)]
        out = self._frames[self._next]
        self._next ^= 1
        return out

    def convert(self, frame: av.VideoFrame) -> av.VideoFrame | None:
        """The I420 picture of ``frame``; None for a format this class does not convert."""
        fn = _PACKED_TO_I420.get(frame.format.name)
        if fn is None:
            return None
        out = self._out(frame.width, frame.height)
        src = frame.planes[0]
        y, u, v = out.planes
        rc = getattr(self._lib, fn)(
            _ptr(src), src.line_size,
            _ptr(y), y.line_size, _ptr(u), u.line_size, _ptr(v), v.line_size,
            frame.width, frame.height,
        )  # fmt: skip
        return out if rc == 0 else None


def packs_i420_to(fmt: str) -> bool:
    """:func:`i420_to_packed` can write ``fmt`` (a swscale name), libyuv being installed."""
    return fmt in _I420_TO_PACKED and libyuv() is not None


def i420_to_packed(
    frame: Any, fmt: str, dst: int, dst_stride: int, rows: tuple[int, int] | None = None
) -> bool:
    """Convert the ``yuv420p`` ``frame`` into the packed ``fmt`` picture at address ``dst``
    (``dst_stride`` bytes a row, room for the frame's width and height), in place: the
    client's window surface, without an intermediate picture. BT.601 limited range, as
    swscale's default. ``rows`` = (first, end), first even: only those rows (libyuv takes
    each chroma row for its two luma rows, no vertical filter, so a band converts exactly as
    in the whole picture). False when libyuv or the conversion is missing or it failed."""
    lib = libyuv()
    fn = _I420_TO_PACKED.get(fmt)
    if lib is None or fn is None or frame.format.name != "yuv420p":
        return False
    y, u, v = frame.planes
    first, end = rows if rows is not None else (0, frame.height)
    if first % 2 or not 0 <= first < end <= frame.height:
        raise ValueError(f"rows {first}..{end} of a picture {frame.height} high")
    c = first // 2
    rc = getattr(lib, fn)(
        _ptr(y, first * y.line_size), y.line_size,
        _ptr(u, c * u.line_size), u.line_size,
        _ptr(v, c * v.line_size), v.line_size,
        dst + first * dst_stride, dst_stride, frame.width, end - first,
    )  # fmt: skip
    return bool(rc == 0)
