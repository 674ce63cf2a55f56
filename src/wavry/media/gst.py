"""The one place that imports GStreamer (PyGObject), lazily, with an unwinder fix.

Debian's libgstreamer and several of its plugins link ``libunwind.so.8``, which exports the
``_Unwind_*`` functions C++ exceptions use. GStreamer opens plugins with global symbol
binding, so once a pipeline has loaded them, a C++ extension module loaded *later* in the same
process (matplotlib's ft2font, any pybind11 module) resolves ``_Unwind_Resume`` to libunwind
while libstdc++'s personality routine expects libgcc's unwinder: the first C++ exception then
crashes the process (seen: a segfault importing matplotlib after a PipeWire capture). Putting
``libgcc_s`` into the global scope *before* GStreamer loads makes every later lookup find
libgcc's unwinder first.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from typing import Any

__all__ = ["gst"]

_GST: Any = None


def _pin_libgcc_unwinder() -> None:
    name = ctypes.util.find_library("gcc_s") or "libgcc_s.so.1"
    # no shared libgcc (static toolchains): nothing to protect
    with contextlib.suppress(OSError):
        ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)


def gst() -> Any:
    """The initialised ``Gst`` module; raises ImportError/ValueError when it is missing."""
    global _GST
    if _GST is None:
        _pin_libgcc_unwinder()
        import gi  # type: ignore[import-untyped]

        gi.require_version("Gst", "1.0")
        gi.require_version("GstVideo", "1.0")
        from gi.repository import Gst  # type: ignore[import-untyped]

        Gst.init(None)
        _GST = Gst
    return _GST
