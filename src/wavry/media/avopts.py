"""Set AVCodecContext options on an *open* PyAV codec context (rate control retargeting).

PyAV exposes ``bit_rate`` as writable but ``rc_max_rate`` / ``rc_buffer_size`` only read-only, and
x264 retargets its bitrate at run time only in VBV (CBR-like) mode, where the maximum rate and
buffer have to change together with the bitrate. FFmpeg's libx264 wrapper reconfigures the
encoder on the next frame when it sees these fields change, so all we need is FFmpeg's own
``av_opt_set_int`` on the context PyAV holds.

The context pointer is read from PyAV's Cython object (``CodecContext.ptr``, the first field
after the vtable) and accepted only if it points at an ``AVClass`` named "AVCodecContext" and
the PyAV version is one whose layout was checked. Anything else raises :class:`AvOptUnavailable`
and callers fall back to reopening the encoder.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from typing import Any

import av

__all__ = ["AvOptUnavailable", "set_int_options"]

_CHECKED_PYAV = ("18.1.0",)
_PTR_OFFSET = 24  # PyObject_HEAD (16) + Cython vtable pointer (8)


class AvOptUnavailable(RuntimeError):
    """Options cannot be set on this PyAV build after open."""


@functools.cache
def _libavutil() -> Any:
    base = os.path.dirname(os.path.dirname(av.__file__))
    candidates = sorted(glob.glob(os.path.join(base, "av.libs", "libavutil*.so*")))
    name = candidates[0] if candidates else "libavutil.so"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise AvOptUnavailable(f"cannot load libavutil ({name}): {exc}") from exc
    fn = lib.av_opt_set_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def _context_pointer(ctx: Any) -> int:
    if av.__version__ not in _CHECKED_PYAV:
        raise AvOptUnavailable(f"PyAV {av.__version__} layout not verified")
    if type(ctx).__basicsize__ < _PTR_OFFSET + 8:
        raise AvOptUnavailable("unexpected CodecContext object layout")
    ptr = ctypes.c_void_p.from_address(id(ctx) + _PTR_OFFSET).value
    if not ptr:
        raise AvOptUnavailable("codec context has no AVCodecContext")
    av_class = ctypes.c_void_p.from_address(ptr).value
    name = ctypes.c_char_p.from_address(av_class).value if av_class else None
    if name != b"AVCodecContext":
        raise AvOptUnavailable(f"pointer check failed (class {name!r})")
    return ptr


def set_int_options(ctx: Any, values: dict[str, int]) -> None:
    """``av_opt_set_int`` each of ``values`` (e.g. ``b``, ``maxrate``, ``bufsize``) on ``ctx``."""
    ptr = _context_pointer(ctx)
    setter = _libavutil()
    for key, value in values.items():
        err = setter(ptr, key.encode(), int(value), 0)
        if err < 0:
            raise AvOptUnavailable(f"av_opt_set_int({key}={value}) failed with {err}")
