"""The client's video window (PySDL2): YUV streaming texture, input capture, stats overlay.

The GPU (or SDL's software renderer) converts colour: frames are uploaded as I420 planes.
Frames are presented as soon as they are decoded; vsync only when asked for.
Hotkeys (Ctrl+Alt+Shift + key, as in Moonlight): S stats overlay, X fullscreen, Z pointer lock
(relative mouse for games), P pause/resume outgoing file transfers, C cancel them, Q quit.
Hotkeys are never sent to the host.
Files dropped on the window (SDL_DROPFILE) are reported in ``InputBatch.dropped_files``; the
client sends them to the host like ``--send-file``.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import sdl2
import sdl2.sdlttf as ttf

from wavry.client.geometry import Rect, fit_rect, motion_scale, to_stream
from wavry.client.keymap import evdev_from_scancode
from wavry.rift import rift_pb2

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
)
_HOTKEY_MOD_GROUPS = (sdl2.KMOD_CTRL, sdl2.KMOD_ALT, sdl2.KMOD_SHIFT)  # either side of each
# SDL mouse buttons → docs/spec/RIFT.md §9 buttons (1 left, 2 middle, 3 right, 4 back, 5 forward)
_BUTTONS = {
    sdl2.SDL_BUTTON_LEFT: 1,
    sdl2.SDL_BUTTON_MIDDLE: 2,
    sdl2.SDL_BUTTON_RIGHT: 3,
    sdl2.SDL_BUTTON_X1: 4,
    sdl2.SDL_BUTTON_X2: 5,
}


class WindowError(RuntimeError):
    """SDL could not open a window (no display, no renderer)."""


class WindowAction(Enum):
    QUIT = "quit"
    TOGGLE_OVERLAY = "toggle_overlay"
    TOGGLE_FULLSCREEN = "toggle_fullscreen"
    TOGGLE_POINTER_LOCK = "toggle_pointer_lock"
    TOGGLE_FILE_PAUSE = "toggle_file_pause"
    CANCEL_FILES = "cancel_files"


_HOTKEYS = {
    sdl2.SDL_SCANCODE_S: WindowAction.TOGGLE_OVERLAY,
    sdl2.SDL_SCANCODE_X: WindowAction.TOGGLE_FULLSCREEN,
    sdl2.SDL_SCANCODE_Z: WindowAction.TOGGLE_POINTER_LOCK,
    sdl2.SDL_SCANCODE_Q: WindowAction.QUIT,
    sdl2.SDL_SCANCODE_P: WindowAction.TOGGLE_FILE_PAUSE,
    sdl2.SDL_SCANCODE_C: WindowAction.CANCEL_FILES,
}


@dataclass(slots=True)
class InputBatch:
    events: list[rift_pb2.InputMessage] = field(default_factory=list)
    actions: list[WindowAction] = field(default_factory=list)
    dropped_files: list[str] = field(default_factory=list)  # local paths dropped on the window


def _plane_pointer(buf: bytes | memoryview) -> Any:
    """A ctypes pointer to a plane's bytes, without copying writable buffers (numpy, PyAV)."""
    if isinstance(buf, bytes):
        return ctypes.cast(ctypes.c_char_p(buf), ctypes.POINTER(ctypes.c_ubyte))
    mv = memoryview(buf)
    if mv.readonly or not mv.c_contiguous:
        return ctypes.cast(ctypes.c_char_p(mv.tobytes()), ctypes.POINTER(ctypes.c_ubyte))
    return (ctypes.c_ubyte * mv.nbytes).from_buffer(mv)


def _take_drop_file(e: sdl2.SDL_Event) -> str | None:
    """The path of an SDL_DROPFILE event; frees SDL's copy of it (the event owns it)."""
    slot = ctypes.c_void_p.from_address(ctypes.addressof(e.drop) + sdl2.SDL_DropEvent.file.offset)
    if not slot.value:
        return None
    raw = ctypes.string_at(slot.value)
    sdl2.SDL_free(slot.value)
    slot.value = None
    return os.fsdecode(raw)


def _sdl_error() -> str:
    return sdl2.SDL_GetError().decode(errors="replace") or "unknown SDL error"


class VideoWindow:
    def __init__(
        self,
        title: str,
        stream_width: int,
        stream_height: int,
        *,
        fullscreen: bool = False,
        vsync: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        sdl2.SDL_SetHint(sdl2.SDL_HINT_RENDER_SCALE_QUALITY, b"linear")
        sdl2.SDL_SetHint(sdl2.SDL_HINT_VIDEO_ALLOW_SCREENSAVER, b"0")
        if sdl2.SDL_Init(sdl2.SDL_INIT_VIDEO) != 0:
            raise WindowError(f"cannot initialise SDL video: {_sdl_error()}")
        self._clock = clock
        self.stream_w, self.stream_h = stream_width, stream_height
        flags = sdl2.SDL_WINDOW_RESIZABLE | sdl2.SDL_WINDOW_ALLOW_HIGHDPI
        if fullscreen:
            flags |= sdl2.SDL_WINDOW_FULLSCREEN_DESKTOP
        self._window: Any = sdl2.SDL_CreateWindow(
            title.encode(),
            sdl2.SDL_WINDOWPOS_CENTERED,
            sdl2.SDL_WINDOWPOS_CENTERED,
            stream_width,
            stream_height,
            flags,
        )
        if not self._window:
            raise WindowError(f"cannot open a window: {_sdl_error()}")
        rflags = sdl2.SDL_RENDERER_ACCELERATED | (sdl2.SDL_RENDERER_PRESENTVSYNC if vsync else 0)
        self._renderer: Any = sdl2.SDL_CreateRenderer(self._window, -1, rflags)
        if not self._renderer:  # no GPU: SDL's software renderer
            self._renderer = sdl2.SDL_CreateRenderer(self._window, -1, sdl2.SDL_RENDERER_SOFTWARE)
        if not self._renderer:
            raise WindowError(f"cannot create a renderer: {_sdl_error()}")
        self._texture: Any = self._make_texture(stream_width, stream_height)
        self.fullscreen = fullscreen
        self.pointer_locked = False
        self.overlay_visible = False
        self._overlay_lines: list[str] = []
        self._overlay_texture: Any = None
        self._overlay_size = (0, 0)
        self._font: Any = self._open_font()
        self._held_keys: set[int] = set()
        self._held_buttons: set[int] = set()
        self.frames_presented = 0
        self.gamepads: Any = None
        try:
            from wavry.client.gamepad import GamepadError, GamepadManager

            try:
                self.gamepads = GamepadManager(clock=clock)
            except GamepadError:
                self.gamepads = None  # no game controller support here: keyboard/mouse only
        except ImportError:
            self.gamepads = None

    # ---- video ---------------------------------------------------------------------

    def _make_texture(self, w: int, h: int) -> Any:
        tex = sdl2.SDL_CreateTexture(
            self._renderer, sdl2.SDL_PIXELFORMAT_IYUV, sdl2.SDL_TEXTUREACCESS_STREAMING, w, h
        )
        if not tex:
            raise WindowError(f"cannot create a {w}x{h} YUV texture: {_sdl_error()}")
        return tex

    def output_rect(self) -> Rect:
        w, h = ctypes.c_int(), ctypes.c_int()
        sdl2.SDL_GetRendererOutputSize(self._renderer, ctypes.byref(w), ctypes.byref(h))
        return fit_rect(w.value, h.value, self.stream_w, self.stream_h)

    def _window_rect(self) -> Rect:
        w, h = ctypes.c_int(), ctypes.c_int()
        sdl2.SDL_GetWindowSize(self._window, ctypes.byref(w), ctypes.byref(h))
        return fit_rect(w.value, h.value, self.stream_w, self.stream_h)

    def present_i420(
        self,
        width: int,
        height: int,
        planes: tuple[bytes | memoryview, bytes | memoryview, bytes | memoryview],
        pitches: tuple[int, int, int],
    ) -> None:
        """Upload one I420 frame and present it at once (no queueing, vsync only if asked)."""
        if (width, height) != (self.stream_w, self.stream_h):
            sdl2.SDL_DestroyTexture(self._texture)
            self.stream_w, self.stream_h = width, height
            self._texture = self._make_texture(width, height)
        y, u, v = (_plane_pointer(p) for p in planes)
        sdl2.SDL_UpdateYUVTexture(self._texture, None, y, pitches[0], u, pitches[1], v, pitches[2])
        self._render()

    def _render(self) -> None:
        r = self._renderer
        sdl2.SDL_SetRenderDrawColor(r, 0, 0, 0, 255)
        sdl2.SDL_RenderClear(r)
        rect = self.output_rect()
        dst = sdl2.SDL_Rect(rect.x, rect.y, rect.w, rect.h)
        sdl2.SDL_RenderCopy(r, self._texture, None, ctypes.byref(dst))
        if self.overlay_visible and self._overlay_texture is not None:
            ow, oh = self._overlay_size
            sdl2.SDL_SetRenderDrawBlendMode(r, sdl2.SDL_BLENDMODE_BLEND)
            sdl2.SDL_SetRenderDrawColor(r, 0, 0, 0, 170)
            box = sdl2.SDL_Rect(8, 8, ow + 16, oh + 12)
            sdl2.SDL_RenderFillRect(r, ctypes.byref(box))
            odst = sdl2.SDL_Rect(16, 14, ow, oh)
            sdl2.SDL_RenderCopy(r, self._overlay_texture, None, ctypes.byref(odst))
        sdl2.SDL_RenderPresent(r)
        self.frames_presented += 1

    # ---- overlay -------------------------------------------------------------------

    def _open_font(self) -> Any:
        if ttf.TTF_WasInit() == 0 and ttf.TTF_Init() != 0:
            return None
        path = os.environ.get("WAVRY_OVERLAY_FONT") or next(
            (p for p in FONT_CANDIDATES if Path(p).exists()), None
        )
        if path is None:
            return None
        font = ttf.TTF_OpenFont(path.encode(), 14)
        return font if font else None

    def set_overlay(self, lines: list[str]) -> None:
        """Replace the stats overlay text (rendered once per change, drawn on every present)."""
        if lines == self._overlay_lines or self._font is None:
            return
        self._overlay_lines = list(lines)
        if self._overlay_texture is not None:
            sdl2.SDL_DestroyTexture(self._overlay_texture)
            self._overlay_texture = None
        text = "\n".join(lines) or " "
        color = sdl2.SDL_Color(230, 255, 230, 255)
        surface = ttf.TTF_RenderUTF8_Blended_Wrapped(self._font, text.encode(), color, 900)
        if not surface:
            return
        self._overlay_size = (surface.contents.w, surface.contents.h)
        self._overlay_texture = sdl2.SDL_CreateTextureFromSurface(self._renderer, surface)
        sdl2.SDL_FreeSurface(surface)

    # ---- input ---------------------------------------------------------------------

    def poll(self) -> InputBatch:
        """Drain SDL events into RIFT input messages and window actions."""
        batch = InputBatch()
        event = sdl2.SDL_Event()
        pads = self.gamepads
        while sdl2.SDL_PollEvent(ctypes.byref(event)):
            self._handle(event, batch)
            if pads is not None:
                batch.events.extend(pads.handle_event(event))
        if pads is not None:
            batch.events.extend(pads.flush())
        for action in batch.actions:
            self._apply(action, batch)
        return batch

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    def _handle(self, e: sdl2.SDL_Event, batch: InputBatch) -> None:
        t = e.type
        if t == sdl2.SDL_QUIT:
            batch.actions.append(WindowAction.QUIT)
        elif t == sdl2.SDL_DROPFILE:
            path = _take_drop_file(e)
            if path:
                batch.dropped_files.append(path)
        elif t == sdl2.SDL_WINDOWEVENT:
            if e.window.event == sdl2.SDL_WINDOWEVENT_FOCUS_LOST:
                batch.events.extend(self.release_all())
            elif e.window.event in (
                sdl2.SDL_WINDOWEVENT_EXPOSED,
                sdl2.SDL_WINDOWEVENT_SIZE_CHANGED,
            ):
                self._render()
        elif t in (sdl2.SDL_KEYDOWN, sdl2.SDL_KEYUP):
            self._key(e.key, t == sdl2.SDL_KEYDOWN, batch)
        elif t == sdl2.SDL_MOUSEMOTION:
            self._motion(e.motion, batch)
        elif t in (sdl2.SDL_MOUSEBUTTONDOWN, sdl2.SDL_MOUSEBUTTONUP):
            button = _BUTTONS.get(e.button.button)
            if button is None:
                return
            pressed = t == sdl2.SDL_MOUSEBUTTONDOWN
            if pressed:
                self._move_to(e.button.x, e.button.y, batch)
                self._held_buttons.add(button)
            elif button not in self._held_buttons:
                return
            else:
                self._held_buttons.discard(button)
            msg = rift_pb2.MouseButton(button=button, pressed=pressed)
            batch.events.append(
                rift_pb2.InputMessage(timestamp_us=self._now_us(), mouse_button=msg)
            )
        elif t == sdl2.SDL_MOUSEWHEEL:
            w = e.wheel
            dx = float(getattr(w, "preciseX", w.x))
            dy = float(getattr(w, "preciseY", w.y))
            if w.direction == sdl2.SDL_MOUSEWHEEL_FLIPPED:
                dx, dy = -dx, -dy
            if dx or dy:
                scroll = rift_pb2.Scroll(dx=dx, dy=dy)
                batch.events.append(
                    rift_pb2.InputMessage(timestamp_us=self._now_us(), scroll=scroll)
                )

    def _key(self, k: sdl2.SDL_KeyboardEvent, pressed: bool, batch: InputBatch) -> None:
        scancode = k.keysym.scancode
        mod = k.keysym.mod
        if pressed and scancode in _HOTKEYS and all(mod & g for g in _HOTKEY_MOD_GROUPS):
            batch.actions.append(_HOTKEYS[scancode])
            return
        if pressed and k.repeat:
            return  # the host's own key repeat applies
        code = evdev_from_scancode(scancode)
        if code is None:
            return
        if pressed:
            self._held_keys.add(code)
        elif code in self._held_keys:
            self._held_keys.discard(code)
        else:
            return  # release of a key we never sent (e.g. the hotkey's letter)
        key = rift_pb2.Key(keycode=code, pressed=pressed)
        batch.events.append(rift_pb2.InputMessage(timestamp_us=self._now_us(), key=key))

    def _motion(self, m: sdl2.SDL_MouseMotionEvent, batch: InputBatch) -> None:
        if self.pointer_locked:
            sx, sy = motion_scale(self._window_rect(), self.stream_w, self.stream_h)
            dx, dy = round(m.xrel * sx), round(m.yrel * sy)
            if dx or dy:
                motion = rift_pb2.MouseMotion(dx=dx, dy=dy)
                batch.events.append(
                    rift_pb2.InputMessage(timestamp_us=self._now_us(), mouse_motion=motion)
                )
            return
        self._move_to(m.x, m.y, batch)

    def _move_to(self, px: int, py: int, batch: InputBatch) -> None:
        if self.pointer_locked:
            return
        x, y = to_stream(px, py, self._window_rect())
        move = rift_pb2.MouseMove(x=x, y=y)
        batch.events.append(rift_pb2.InputMessage(timestamp_us=self._now_us(), mouse_move=move))

    def release_all(self) -> list[rift_pb2.InputMessage]:
        """Key-up and button-up for everything held (focus loss, pointer-lock change, close)."""
        now = self._now_us()
        out = [
            rift_pb2.InputMessage(timestamp_us=now, key=rift_pb2.Key(keycode=c, pressed=False))
            for c in sorted(self._held_keys)
        ]
        out += [
            rift_pb2.InputMessage(
                timestamp_us=now, mouse_button=rift_pb2.MouseButton(button=b, pressed=False)
            )
            for b in sorted(self._held_buttons)
        ]
        self._held_keys.clear()
        self._held_buttons.clear()
        if self.gamepads is not None:
            out += self.gamepads.release_all()
        return out

    def _apply(self, action: WindowAction, batch: InputBatch) -> None:
        if action is WindowAction.TOGGLE_OVERLAY:
            self.overlay_visible = not self.overlay_visible
            self._render()
        elif action is WindowAction.TOGGLE_FULLSCREEN:
            self.fullscreen = not self.fullscreen
            flag = sdl2.SDL_WINDOW_FULLSCREEN_DESKTOP if self.fullscreen else 0
            sdl2.SDL_SetWindowFullscreen(self._window, flag)
        elif action is WindowAction.TOGGLE_POINTER_LOCK:
            self.pointer_locked = not self.pointer_locked
            batch.events.extend(self.release_all())
            sdl2.SDL_SetRelativeMouseMode(sdl2.SDL_TRUE if self.pointer_locked else sdl2.SDL_FALSE)

    def window_id(self) -> int:
        return int(sdl2.SDL_GetWindowID(self._window))

    def x11_window(self) -> int | None:
        """The X11 window id (for tests and tools), when running on X11."""
        info = sdl2.SDL_SysWMinfo()
        sdl2.SDL_VERSION(info.version)
        if not sdl2.SDL_GetWindowWMInfo(self._window, ctypes.byref(info)):
            return None
        if info.subsystem != sdl2.SDL_SYSWM_X11:
            return None
        return int(info.info.x11.window)

    def close(self) -> None:
        if self.gamepads is not None:
            self.gamepads.close()
            self.gamepads = None
        if self._overlay_texture is not None:
            sdl2.SDL_DestroyTexture(self._overlay_texture)
            self._overlay_texture = None
        if self._font is not None:
            ttf.TTF_CloseFont(self._font)
            self._font = None
        if self._texture:
            sdl2.SDL_DestroyTexture(self._texture)
        if self._renderer:
            sdl2.SDL_DestroyRenderer(self._renderer)
        if self._window:
            sdl2.SDL_DestroyWindow(self._window)
        self._window = self._renderer = self._texture = None
        sdl2.SDL_QuitSubSystem(sdl2.SDL_INIT_VIDEO)
