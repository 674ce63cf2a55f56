"""How a decoded picture reaches the window: two presenters behind one small interface.

Measured on this project's machine (no GPU, Xvfb, 1280×720; ``wavry bench present`` repeats it):
SDL's renderers take 9–17 ms per frame there (``software`` converts I420 and scales in one
thread; ``opengl``/``opengles2`` run on Mesa's llvmpipe and read the picture back for
``XPutImage``), while converting I420 to the window's own pixel format with swscale (SIMD,
multi-threaded) and handing that to the window surface (``XShmPutImage`` on X11, a ``wl_shm``
buffer on Wayland) takes about 1–2 ms. So:

- :class:`SurfacePresenter` (the CPU path, everywhere without a GPU): the decode thread converts
  and scales each frame to the window's pixel format and picture size (:meth:`prepare`, no SDL
  call, no GIL while swscale runs); the window thread copies it into the window surface and
  updates that rectangle (:meth:`show`).
- :class:`RendererPresenter` (the GPU path, where a DRM render node exists, and with
  ``--vsync``): an SDL renderer with an I420 streaming texture; the GPU converts and scales.

:func:`open_presenter` picks one. ``prepare`` may run on any thread; everything else runs on the
window's thread.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from wavry.client.geometry import Rect, fit_rect
from wavry.client.sdl import sdl2, sdl_error
from wavry.media.yuv import i420_to_packed, packs_i420_to

__all__ = [
    "Layout",
    "PreparedFrame",
    "PresentError",
    "Presenter",
    "RendererPresenter",
    "SurfacePresenter",
    "has_gpu",
    "open_presenter",
]

#: rows compared, converted and updated together (an H.264 macroblock's height)
BAND_ROWS = 16
#: a picture changed in more than this share of its rows makes the window show the next
#: `WHOLE_FOR_FRAMES` pictures whole without comparing them
WHOLE_SHARE = 0.9
WHOLE_FOR_FRAMES = 30


def _plane_bands(new: Any, old: Any, rows: int, width: int, band: int) -> np.ndarray:
    """Which bands of ``band`` rows differ between two planes of a picture (visible bytes
    only), as booleans; compared as 8-byte words where the width allows."""
    line = new.line_size
    if old.line_size != line:
        a = np.frombuffer(new, np.uint8, count=rows * line).reshape(rows, line)[:, :width]
        b = np.frombuffer(old, np.uint8, count=rows * old.line_size).reshape(rows, -1)[:, :width]
    else:
        a = np.frombuffer(new, np.uint8, count=rows * line).reshape(rows, line)
        b = np.frombuffer(old, np.uint8, count=rows * line).reshape(rows, line)
        if line != width:
            a, b = a[:, :width], b[:, :width]
    if width % 8 == 0:
        a, b = a.view(np.uint64), b.view(np.uint64)
    full = rows // band
    out = np.empty(-(-rows // band), dtype=bool)
    # whole bands at once (one comparison, one reduction per band: no per-row pass)
    out[:full] = (a[: full * band] != b[: full * band]).reshape(full, -1).any(axis=1)
    if full < len(out):
        out[full] = bool((a[full * band :] != b[full * band :]).any())
    return out


def changed_rows(frame: Any, before: Any) -> list[tuple[int, int]] | None:
    """Where the ``yuv420p`` picture ``frame`` differs from ``before``: row ranges (first,
    end) in bands of `BAND_ROWS`, in order; ``[]`` when it does not differ at all, None when
    the two cannot be compared (no earlier picture, another size or format). Exact: every
    byte of the three planes' visible part is compared, a chroma row counting for its two
    luma rows, so a band left out holds the same pixels in both (at 720p 0.15 ms, 0.35 ms when
    both pictures must come from memory rather than cache)."""
    w, h = frame.width, frame.height
    if (
        before is None
        or (before.width, before.height) != (w, h)
        or frame.format.name != "yuv420p"
        or before.format.name != "yuv420p"
    ):
        return None
    y, u, v = frame.planes
    by, bu, bv = before.planes
    ch, cw, half = (h + 1) // 2, (w + 1) // 2, BAND_ROWS // 2
    hit = _plane_bands(y, by, h, w, BAND_ROWS)
    hit |= _plane_bands(u, bu, ch, cw, half)  # chroma band i = luma band i (2 rows each)
    hit |= _plane_bands(v, bv, ch, cw, half)
    out: list[tuple[int, int]] = []
    for b in np.flatnonzero(hit).tolist():
        first, end = b * BAND_ROWS, min(h, (b + 1) * BAND_ROWS)
        if out and out[-1][1] == first:
            out[-1] = (out[-1][0], end)
        else:
            out.append((first, end))
    return out


# one swscale thread: 0.24 ms p50 for 1280×720 here, and its p95 stays at 0.4 ms with both cores
# busy, where two threads reach 12 ms (a slice thread preempted holds up the frame)
SWS_THREADS = 1


class PresentError(RuntimeError):
    """A presenter cannot work on this window (no surface, no renderer, unknown pixel format)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the picture goes: window size, picture rectangle (letterboxed), and the swscale
    format of the window's pixels. A new ``generation`` after every resize."""

    generation: int
    window_w: int
    window_h: int
    stream_w: int
    stream_h: int
    rect: Rect
    sws_format: str


@dataclass(slots=True)
class PreparedFrame:
    """A picture ready for :meth:`Presenter.show`; ``source`` is the decoded frame (kept so a
    resize can prepare it again), ``prepare_s`` the conversion time."""

    frame: Any  # av.VideoFrame in the presenter's format
    source: Any  # av.VideoFrame as decoded
    layout: Layout
    prepare_s: float
    #: nothing was converted: ``show`` writes the decoded I420 picture straight into the
    #: window surface (libyuv), saving the intermediate picture and its copy
    direct: bool = False


WindowSize = Callable[[], tuple[int, int]]
"""The window's real size in pixels (see :func:`wavry.client.window.real_window_size`)."""


class Presenter(Protocol):
    name: str

    def prepare(self, frame: Any) -> PreparedFrame: ...

    def show(self, prepared: PreparedFrame, overlay: Any | None) -> None: ...

    def resized(self) -> None: ...

    def layout(self) -> Layout: ...

    def close(self) -> None: ...


# SDL window-surface pixel formats → the swscale format with the same bytes in memory
_SWS_FORMATS = {
    sdl2.SDL_PIXELFORMAT_RGB888: "bgr0",  # XRGB8888 little-endian: B G R X
    sdl2.SDL_PIXELFORMAT_ARGB8888: "bgra",
    sdl2.SDL_PIXELFORMAT_BGR888: "rgb0",
    sdl2.SDL_PIXELFORMAT_ABGR8888: "rgba",
    sdl2.SDL_PIXELFORMAT_RGB565: "rgb565le",
    sdl2.SDL_PIXELFORMAT_RGB24: "rgb24",
    sdl2.SDL_PIXELFORMAT_BGR24: "bgr24",
}


def has_gpu() -> bool:
    """A DRM render node (a GPU Mesa or a vendor driver can use) and no forced software GL."""
    if os.environ.get("LIBGL_ALWAYS_SOFTWARE") not in (None, "", "0"):
        return False
    return bool(glob.glob("/dev/dri/renderD*"))


def _sdl_rect(r: Rect) -> Any:
    return sdl2.SDL_Rect(r.x, r.y, r.w, r.h)


class SurfacePresenter:
    """The CPU path: the picture in the window's pixel format, written into the window surface.
    A picture shown at its own size is converted by libyuv straight into the surface on the
    window thread (`I420ToARGB`: 0.2 ms at 720p here); a scaled one, or without libyuv, is
    converted and scaled by swscale on the decode thread and then copied in.

    A picture shown at its own size is compared with the one shown before it
    (:func:`changed_rows`, 0.15–0.35 ms at 720p): only the bands that differ are converted and
    handed to the window system, as a VNC viewer updates only what changed. On a desktop a
    typed letter or a moved window touches a few bands, and the window system copies those
    instead of the whole picture; a picture that did not change at all costs no update."""

    name = "surface"

    def __init__(
        self,
        window: Any,
        stream_w: int,
        stream_h: int,
        size: WindowSize | None = None,
        *,
        direct: bool = True,
    ) -> None:
        """``direct=False``: always swscale into a picture of the window's format, then copy
        (the path without libyuv; `wavry bench present` measures both)."""
        self._allow_direct = direct
        self._window = window
        self._size = size
        self._stream = (stream_w, stream_h)
        self._generation = 0
        self._lock = threading.Lock()
        self._surface: Any = None
        self._layout: Layout | None = None
        self._full_update = True
        self._box: Any = None  # the overlay's translucent background
        self._shown: Any = None  # the picture in the surface (direct path), for changed_rows
        self._compare_in = 0  # pictures shown whole before the next comparison
        self._acquire()

    def _acquire(self) -> None:
        # the window system's own surface (XShm, wl_shm), not SDL's GL-texture emulation of it
        sdl2.SDL_SetHint(sdl2.SDL_HINT_FRAMEBUFFER_ACCELERATION, b"0")
        surface = sdl2.SDL_GetWindowSurface(self._window)
        if not surface:
            raise PresentError(f"no window surface: {sdl_error()}")
        s = surface.contents
        fmt = s.format.contents.format
        sws = _SWS_FORMATS.get(fmt)
        if sws is None:
            name = sdl2.SDL_GetPixelFormatName(fmt).decode(errors="replace")
            raise PresentError(f"window surface format {name} has no swscale equivalent")
        self._surface = surface
        self._pitch = int(s.pitch)
        self._bpp = int(s.format.contents.BytesPerPixel)
        self._pixels = np.ctypeslib.as_array(
            ctypes.cast(s.pixels, ctypes.POINTER(ctypes.c_ubyte)), shape=(s.h, s.pitch)
        )
        self._pixels_ptr = int(self._pixels.ctypes.data)
        # libyuv writes the surface's format straight from I420 where it can
        self._direct = self._allow_direct and packs_i420_to(sws)
        sdl2.SDL_FillRect(surface, None, 0)
        self._full_update = True
        self._shown = None
        w, h = int(s.w), int(s.h)
        if self._size is not None:  # the window the system gave may be smaller than SDL thinks
            rw, rh = self._size()
            w, h = min(w, rw), min(h, rh)
        self._set_layout(w, h, sws)

    def _set_layout(self, w: int, h: int, sws: str) -> None:
        sw, sh = self._stream
        with self._lock:
            self._generation += 1
            self._layout = Layout(self._generation, w, h, sw, sh, fit_rect(w, h, sw, sh), sws)

    def layout(self) -> Layout:
        with self._lock:
            assert self._layout is not None
            return self._layout

    def prepare(self, frame: Any) -> PreparedFrame:
        """Convert (and scale) ``frame`` for the window; any thread, no SDL call. A picture
        shown at its own size needs nothing here: ``show`` converts it into the surface."""
        t0 = time.perf_counter()
        lay = self.layout()
        rect = fit_rect(lay.window_w, lay.window_h, frame.width, frame.height)
        if (
            self._direct
            and (rect.w, rect.h) == (frame.width, frame.height)
            and frame.format.name == "yuv420p"
        ):
            return PreparedFrame(frame, frame, lay, time.perf_counter() - t0, direct=True)
        out = frame.reformat(
            width=rect.w, height=rect.h, format=lay.sws_format, threads=SWS_THREADS
        )
        return PreparedFrame(out, frame, lay, time.perf_counter() - t0)

    def resized(self) -> None:
        """The window changed size: its surface is new."""
        self._acquire()

    def show(self, prepared: PreparedFrame, overlay: Any | None) -> None:
        src = prepared.source
        lay = self.layout()
        if (src.width, src.height) != (lay.stream_w, lay.stream_h):  # the stream changed size
            self._stream = (src.width, src.height)
            self.repaint_all()
            self._set_layout(lay.window_w, lay.window_h, lay.sws_format)
            lay = self.layout()
        if prepared.layout.generation != lay.generation:
            prepared = self.prepare(src)  # prepared for the old size: once more, for this one
        frame, rect = prepared.frame, lay.rect
        x0 = rect.x * self._bpp
        at = self._pixels_ptr + rect.y * self._pitch + x0
        # what changed since the picture in the surface (the whole picture after a clear, or
        # under the overlay, which is blended onto the picture each time)
        bands = None
        if self._compare_in:
            self._compare_in -= 1
        elif prepared.direct and not self._full_update and overlay is None:
            bands = changed_rows(frame, self._shown)
            if bands is not None and sum(b - a for a, b in bands) > WHOLE_SHARE * frame.height:
                # a picture that changes everywhere (a game, a video): comparing would cost
                # 0.15-0.35 ms a frame for nothing, so the next ones are shown whole, uncompared
                self._compare_in = WHOLE_FOR_FRAMES
        self._shown = None
        if bands is not None:
            fmt, pitch = lay.sws_format, self._pitch
            if all(i420_to_packed(frame, fmt, at, pitch, rows=b) for b in bands):
                self._shown = frame
                if bands:
                    dirty = [Rect(rect.x, rect.y + a, rect.w, b - a) for a, b in bands]
                    rects = (sdl2.SDL_Rect * len(dirty))(*(_sdl_rect(r) for r in dirty))
                    sdl2.SDL_UpdateWindowSurfaceRects(self._window, rects, len(dirty))
                return
        if not (prepared.direct and i420_to_packed(frame, lay.sws_format, at, self._pitch)):
            if prepared.direct:  # libyuv refused it: convert as without libyuv
                self._direct = False
                frame = self.prepare(src).frame
            plane = frame.planes[0]
            row = rect.w * self._bpp
            src_rows = np.frombuffer(plane, dtype=np.uint8).reshape(rect.h, plane.line_size)
            np.copyto(self._pixels[rect.y : rect.y + rect.h, x0 : x0 + row], src_rows[:, :row])
        elif overlay is None:
            self._shown = frame
        dirty = [rect]
        if overlay is not None:
            dirty.append(self._draw_overlay(overlay))
        if self._full_update:
            self._full_update = False
            sdl2.SDL_UpdateWindowSurface(self._window)
            return
        rects = (sdl2.SDL_Rect * len(dirty))(*(_sdl_rect(r) for r in dirty))
        sdl2.SDL_UpdateWindowSurfaceRects(self._window, rects, len(dirty))

    def _draw_overlay(self, overlay: Any) -> Rect:
        ow, oh = overlay.contents.w, overlay.contents.h
        box = Rect(8, 8, ow + 16, oh + 12)
        if self._box is None or (self._box.contents.w, self._box.contents.h) != (box.w, box.h):
            if self._box is not None:
                sdl2.SDL_FreeSurface(self._box)
            self._box = sdl2.SDL_CreateRGBSurfaceWithFormat(
                0, box.w, box.h, 32, sdl2.SDL_PIXELFORMAT_ARGB8888
            )
            if not self._box:
                return box
            sdl2.SDL_FillRect(self._box, None, 0xAA000000)
            sdl2.SDL_SetSurfaceBlendMode(self._box, sdl2.SDL_BLENDMODE_BLEND)
        dst = _sdl_rect(box)
        sdl2.SDL_BlitSurface(self._box, None, self._surface, ctypes.byref(dst))
        text = sdl2.SDL_Rect(16, 14, ow, oh)
        sdl2.SDL_BlitSurface(overlay, None, self._surface, ctypes.byref(text))
        return box

    def repaint_all(self) -> None:
        """Clear the window (the overlay went away, or the first show after a resize)."""
        sdl2.SDL_FillRect(self._surface, None, 0)
        self._full_update = True
        self._shown = None

    def close(self) -> None:
        if self._box is not None:
            sdl2.SDL_FreeSurface(self._box)
            self._box = None
        self._surface = None


class RendererPresenter:
    """The GPU path: an SDL renderer with an I420 streaming texture (colour conversion and
    scaling on the GPU). ``software=True`` forces SDL's software renderer (the fallback)."""

    def __init__(
        self,
        window: Any,
        stream_w: int,
        stream_h: int,
        *,
        vsync: bool = False,
        software: bool = False,
        size: WindowSize | None = None,
    ) -> None:
        self._window = window
        self._size = size
        flags = sdl2.SDL_RENDERER_SOFTWARE if software else sdl2.SDL_RENDERER_ACCELERATED
        if vsync:
            flags |= sdl2.SDL_RENDERER_PRESENTVSYNC
        self._renderer: Any = sdl2.SDL_CreateRenderer(window, -1, flags)
        if not self._renderer:
            raise PresentError(f"cannot create a renderer: {sdl_error()}")
        info = sdl2.SDL_RendererInfo()
        sdl2.SDL_GetRendererInfo(self._renderer, ctypes.byref(info))
        self.name = f"renderer:{info.name.decode(errors='replace')}"
        self._texture: Any = None
        self._tex_size = (0, 0)
        self._stream = (stream_w, stream_h)
        self._overlay_src: Any = None
        self._overlay_tex: Any = None
        self._generation = 0
        self._layout = self._make_layout()

    def _make_layout(self) -> Layout:
        w, h = ctypes.c_int(), ctypes.c_int()
        sdl2.SDL_GetRendererOutputSize(self._renderer, ctypes.byref(w), ctypes.byref(h))
        ww, wh = w.value, h.value
        if self._size is not None:
            rw, rh = self._size()
            ww, wh = min(ww, rw), min(wh, rh)
        self._generation += 1
        sw, sh = self._stream
        return Layout(self._generation, ww, wh, sw, sh, fit_rect(ww, wh, sw, sh), "yuv420p")

    def layout(self) -> Layout:
        return self._layout

    def prepare(self, frame: Any) -> PreparedFrame:
        t0 = time.perf_counter()
        out = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
        return PreparedFrame(out, frame, self._layout, time.perf_counter() - t0)

    def resized(self) -> None:
        self._layout = self._make_layout()

    def repaint_all(self) -> None:
        pass  # every show redraws the whole window

    def show(self, prepared: PreparedFrame, overlay: Any | None) -> None:
        f = prepared.frame
        if (f.width, f.height) != self._tex_size:
            if self._texture:
                sdl2.SDL_DestroyTexture(self._texture)
            self._texture = sdl2.SDL_CreateTexture(
                self._renderer,
                sdl2.SDL_PIXELFORMAT_IYUV,
                sdl2.SDL_TEXTUREACCESS_STREAMING,
                f.width,
                f.height,
            )
            if not self._texture:
                raise PresentError(f"cannot create a {f.width}x{f.height} texture: {sdl_error()}")
            self._tex_size = (f.width, f.height)
            self._stream = (f.width, f.height)
            self._layout = self._make_layout()
        ptrs = []
        for p in f.planes:
            mv = memoryview(p)
            ptrs.append((ctypes.c_ubyte * mv.nbytes).from_buffer(mv))
        y, u, v = f.planes
        sdl2.SDL_UpdateYUVTexture(
            self._texture, None, ptrs[0], y.line_size, ptrs[1], u.line_size, ptrs[2], v.line_size
        )
        r = self._renderer
        sdl2.SDL_SetRenderDrawColor(r, 0, 0, 0, 255)
        sdl2.SDL_RenderClear(r)
        dst = _sdl_rect(self._layout.rect)
        sdl2.SDL_RenderCopy(r, self._texture, None, ctypes.byref(dst))
        if overlay is not None:
            self._draw_overlay(overlay)
        sdl2.SDL_RenderPresent(r)

    def _draw_overlay(self, overlay: Any) -> None:
        r = self._renderer
        if overlay is not self._overlay_src:
            if self._overlay_tex:
                sdl2.SDL_DestroyTexture(self._overlay_tex)
            self._overlay_tex = sdl2.SDL_CreateTextureFromSurface(r, overlay)
            self._overlay_src = overlay
        ow, oh = overlay.contents.w, overlay.contents.h
        sdl2.SDL_SetRenderDrawBlendMode(r, sdl2.SDL_BLENDMODE_BLEND)
        sdl2.SDL_SetRenderDrawColor(r, 0, 0, 0, 170)
        box = sdl2.SDL_Rect(8, 8, ow + 16, oh + 12)
        sdl2.SDL_RenderFillRect(r, ctypes.byref(box))
        dst = sdl2.SDL_Rect(16, 14, ow, oh)
        sdl2.SDL_RenderCopy(r, self._overlay_tex, None, ctypes.byref(dst))

    def close(self) -> None:
        if self._overlay_tex:
            sdl2.SDL_DestroyTexture(self._overlay_tex)
        if self._texture:
            sdl2.SDL_DestroyTexture(self._texture)
        if self._renderer:
            sdl2.SDL_DestroyRenderer(self._renderer)
        self._overlay_tex = self._texture = self._renderer = None


def open_presenter(
    window: Any,
    stream_w: int,
    stream_h: int,
    *,
    mode: str = "auto",
    vsync: bool = False,
    size: WindowSize | None = None,
) -> SurfacePresenter | RendererPresenter:
    """The presenter for ``window``: ``gpu`` (SDL renderer), ``cpu`` (window surface) or
    ``auto`` (GPU when there is one or ``vsync`` is asked for, else the window surface; each
    falls back to the other when it cannot work here)."""
    if mode not in ("auto", "cpu", "gpu"):
        raise ValueError(f"presenter must be auto, cpu or gpu, got {mode!r}")
    want_gpu = mode == "gpu" or (mode == "auto" and (vsync or has_gpu()))
    if want_gpu:
        try:
            return RendererPresenter(window, stream_w, stream_h, vsync=vsync, size=size)
        except PresentError:
            if mode == "gpu":
                raise
    try:
        return SurfacePresenter(window, stream_w, stream_h, size)
    except PresentError:
        if mode == "cpu":
            raise
        return RendererPresenter(window, stream_w, stream_h, vsync=vsync, software=True, size=size)
