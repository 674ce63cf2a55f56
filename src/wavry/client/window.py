"""The client's video window (PySDL2): picture, input capture, stats overlay.

Pictures reach the window through a presenter (:mod:`wavry.client.present`): the decode thread
prepares each frame (:meth:`VideoWindow.prepare`, thread-safe), the window's thread shows the
newest one (:meth:`VideoWindow.show`), at once and without vsync unless asked for.

Input leaves as typed events (:mod:`wavry.runtime.messages`), never protobuf. Hotkeys
(Ctrl+Alt+Shift + key, as in Moonlight): S stats overlay, X fullscreen, Z pointer lock (relative
mouse for games), P pause/resume outgoing file transfers, C cancel them, Q quit. A hotkey sends
nothing to the host, its modifiers included (:class:`wavry.client.keys.KeyFilter`).
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

from wavry.client.geometry import Rect, motion_scale, to_stream
from wavry.client.keymap import evdev_from_scancode
from wavry.client.keys import KeyFilter
from wavry.client.present import (
    PreparedFrame,
    PresentError,
    RendererPresenter,
    SurfacePresenter,
    open_presenter,
)
from wavry.client.sdl import sdl2, sdl_error, ttf, window_size
from wavry.runtime.messages import (
    ButtonInput,
    InputEvent,
    KeyInput,
    PointerMotion,
    PointerMove,
    ScrollInput,
)

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
    events: list[InputEvent] = field(default_factory=list)
    actions: list[WindowAction] = field(default_factory=list)
    dropped_files: list[str] = field(default_factory=list)  # local paths dropped on the window


def _take_drop_file(e: sdl2.SDL_Event) -> str | None:
    """The path of an SDL_DROPFILE event; frees SDL's copy of it (the event owns it)."""
    slot = ctypes.c_void_p.from_address(ctypes.addressof(e.drop) + sdl2.SDL_DropEvent.file.offset)
    if not slot.value:
        return None
    raw = ctypes.string_at(slot.value)
    sdl2.SDL_free(slot.value)
    slot.value = None
    return os.fsdecode(raw)


def init_video() -> tuple[int, int]:
    """Initialise SDL video (checks that a display can be opened) and return the size of the
    desktop the window will live on. Raises WindowError with the reason."""
    sdl2.SDL_SetHint(sdl2.SDL_HINT_VIDEO_ALLOW_SCREENSAVER, b"0")
    explicit = os.environ.get("SDL_VIDEODRIVER")  # e.g. dummy, for tests
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or explicit):
        raise WindowError("no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY)")
    if sdl2.SDL_InitSubSystem(sdl2.SDL_INIT_VIDEO) != 0:
        raise WindowError(f"cannot open the display: {sdl_error()}")
    mode = sdl2.SDL_DisplayMode()
    if sdl2.SDL_GetDesktopDisplayMode(0, ctypes.byref(mode)) != 0:
        return 0, 0
    return int(mode.w), int(mode.h)


_XLIB: Any = None


def real_window_size(window: Any) -> tuple[int, int]:
    """The size the window system actually gave the window. Without a window manager, SDL
    reports the fullscreen size it asked for while the X window keeps its old size; X11 is
    asked directly then (``XGetWindowAttributes``), SDL otherwise."""
    global _XLIB
    info = sdl2.SDL_SysWMinfo()
    sdl2.SDL_VERSION(info.version)
    if sdl2.SDL_GetWindowWMInfo(window, ctypes.byref(info)) and (
        info.subsystem == sdl2.SDL_SYSWM_X11
    ):
        if _XLIB is None:
            _XLIB = ctypes.CDLL("libX11.so.6")
            _XLIB.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p]
        attrs = (ctypes.c_int * 64)()  # XWindowAttributes starts with int x, y, width, height
        x11 = info.info.x11
        if _XLIB.XGetWindowAttributes(ctypes.cast(x11.display, ctypes.c_void_p), x11.window, attrs):
            return int(attrs[2]), int(attrs[3])
    return window_size(window)


class VideoWindow:
    def __init__(
        self,
        title: str,
        stream_width: int,
        stream_height: int,
        *,
        fullscreen: bool = False,
        vsync: bool = False,
        presenter: str = "auto",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        gamepads: bool = True,
    ) -> None:
        sdl2.SDL_SetHint(sdl2.SDL_HINT_RENDER_SCALE_QUALITY, b"linear")
        init_video()
        self._clock = clock
        self._mono = monotonic
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
            raise WindowError(f"cannot open a window: {sdl_error()}")
        try:
            self.presenter: SurfacePresenter | RendererPresenter = open_presenter(
                self._window,
                stream_width,
                stream_height,
                mode=presenter,
                vsync=vsync,
                size=lambda: real_window_size(self._window),
            )
        except PresentError as exc:
            sdl2.SDL_DestroyWindow(self._window)
            raise WindowError(str(exc)) from exc
        self.fullscreen = fullscreen
        self.pointer_locked = False
        self.overlay_visible = False
        self._overlay_lines: list[str] = []
        self._overlay: Any = None  # SDL_Surface* of the rendered overlay text
        self._font: Any = self._open_font()
        self.keys = KeyFilter()
        self._held_buttons: set[int] = set()
        self._last: PreparedFrame | None = None
        self.frames_presented = 0
        self.gamepads: Any = None
        if gamepads:
            from wavry.client.gamepad import GamepadError, GamepadManager

            try:
                self.gamepads = GamepadManager(clock=clock)
            except GamepadError:
                self.gamepads = None  # no game controller support here: keyboard/mouse only

    # ---- video ---------------------------------------------------------------------

    @property
    def presenter_name(self) -> str:
        return self.presenter.name

    def prepare(self, frame: Any) -> PreparedFrame:
        """Make a decoded ``av.VideoFrame`` ready to show: any thread (the decode thread)."""
        return self.presenter.prepare(frame)

    def show(self, prepared: PreparedFrame) -> None:
        """Show a prepared picture now (window thread; no queueing, vsync only if asked)."""
        overlay = self._overlay if self.overlay_visible else None
        self.presenter.show(prepared, overlay)
        self._last = prepared
        self.frames_presented += 1

    def show_frame(self, frame: Any) -> None:
        """prepare + show in one call (tests, tools)."""
        self.show(self.prepare(frame))

    def _repaint(self) -> None:
        if self._last is not None:
            overlay = self._overlay if self.overlay_visible else None
            self.presenter.show(self._last, overlay)

    def output_rect(self) -> Rect:
        return self.presenter.layout().rect

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
        """Replace the stats overlay text (rendered once per change, drawn on every show)."""
        if lines == self._overlay_lines or self._font is None:
            return
        self._overlay_lines = list(lines)
        if self._overlay is not None:
            sdl2.SDL_FreeSurface(self._overlay)
            self._overlay = None
        text = "\n".join(lines) or " "
        color = sdl2.SDL_Color(230, 255, 230, 255)
        surface = ttf.TTF_RenderUTF8_Blended_Wrapped(self._font, text.encode(), color, 900)
        self._overlay = surface if surface else None

    # ---- input ---------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """Whether the host holds a key, button or gamepad control of ours."""
        pads = self.gamepads
        return (
            self.keys.anything_held
            or bool(self._held_buttons)
            or (pads is not None and pads.mapper.held)
        )

    def poll(self) -> InputBatch:
        """Drain SDL events into typed input events and window actions."""
        batch = InputBatch()
        event = sdl2.SDL_Event()
        pads = self.gamepads
        while sdl2.SDL_PollEvent(ctypes.byref(event)):
            self._handle(event, batch)
            if pads is not None:
                batch.events.extend(pads.handle_event(event))
        self._keys(self.keys.tick(self._mono()), batch)
        if pads is not None:
            batch.events.extend(pads.flush())
        for action in batch.actions:
            self._apply(action, batch)
        return batch

    def _now_us(self) -> int:
        return int(self._clock() * 1_000_000)

    def _keys(self, changes: list[tuple[int, bool]], batch: InputBatch) -> None:
        ts = self._now_us()
        batch.events.extend(KeyInput(code, pressed, ts) for code, pressed in changes)

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
            elif e.window.event == sdl2.SDL_WINDOWEVENT_SIZE_CHANGED:
                self.presenter.resized()
                self._repaint()
            elif e.window.event == sdl2.SDL_WINDOWEVENT_EXPOSED:
                self.presenter.repaint_all()
                self._repaint()
        elif t in (sdl2.SDL_KEYDOWN, sdl2.SDL_KEYUP):
            self._key(e.key, t == sdl2.SDL_KEYDOWN, batch)
        elif t == sdl2.SDL_MOUSEMOTION:
            self._motion(e.motion, batch)
        elif t in (sdl2.SDL_MOUSEBUTTONDOWN, sdl2.SDL_MOUSEBUTTONUP):
            button = _BUTTONS.get(e.button.button)
            if button is None:
                return
            pressed = t == sdl2.SDL_MOUSEBUTTONDOWN
            self._keys(self.keys.pointer(), batch)
            if pressed:
                self._move_to(e.button.x, e.button.y, batch)
                self._held_buttons.add(button)
            elif button not in self._held_buttons:
                return
            else:
                self._held_buttons.discard(button)
            batch.events.append(ButtonInput(button, pressed, self._now_us()))
        elif t == sdl2.SDL_MOUSEWHEEL:
            w = e.wheel
            dx = float(getattr(w, "preciseX", w.x))
            dy = float(getattr(w, "preciseY", w.y))
            if w.direction == sdl2.SDL_MOUSEWHEEL_FLIPPED:
                dx, dy = -dx, -dy
            if dx or dy:
                self._keys(self.keys.pointer(), batch)
                batch.events.append(ScrollInput(dx, dy, self._now_us()))

    def _key(self, k: sdl2.SDL_KeyboardEvent, pressed: bool, batch: InputBatch) -> None:
        scancode = k.keysym.scancode
        code = evdev_from_scancode(scancode)
        now = self._mono()
        if pressed and scancode in _HOTKEYS and all(k.keysym.mod & g for g in _HOTKEY_MOD_GROUPS):
            if not k.repeat:
                batch.actions.append(_HOTKEYS[scancode])
            self._keys(self.keys.press(code if code is not None else -1, now, hotkey=True), batch)
            return
        if code is None or (pressed and k.repeat):
            return  # unmapped, or the host's own key repeat applies
        if pressed:
            self._keys(self.keys.press(code, now), batch)
        else:
            self._keys(self.keys.release(code, now), batch)

    def _window_rect(self) -> Rect:
        return self.presenter.layout().rect

    def _motion(self, m: sdl2.SDL_MouseMotionEvent, batch: InputBatch) -> None:
        if self.pointer_locked:
            sx, sy = motion_scale(self._window_rect(), self.stream_w, self.stream_h)
            dx, dy = round(m.xrel * sx), round(m.yrel * sy)
            if dx or dy:
                batch.events.append(PointerMotion(dx, dy, self._now_us()))
            return
        self._move_to(m.x, m.y, batch)

    def _move_to(self, px: int, py: int, batch: InputBatch) -> None:
        if self.pointer_locked:
            return
        x, y = to_stream(px, py, self._window_rect())
        batch.events.append(PointerMove(x, y, self._now_us()))

    def release_all(self) -> list[InputEvent]:
        """Key-up and button-up for everything held (focus loss, pointer-lock change, close)."""
        now = self._now_us()
        out: list[InputEvent] = [KeyInput(c, p, now) for c, p in self.keys.release_all()]
        out += [ButtonInput(b, False, now) for b in sorted(self._held_buttons)]
        self._held_buttons.clear()
        if self.gamepads is not None:
            out += self.gamepads.release_all()
        return out

    def _apply(self, action: WindowAction, batch: InputBatch) -> None:
        if action is WindowAction.TOGGLE_OVERLAY:
            self.overlay_visible = not self.overlay_visible
            self.presenter.repaint_all()
            self._repaint()
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
        if self._overlay is not None:
            sdl2.SDL_FreeSurface(self._overlay)
            self._overlay = None
        if self._font is not None:
            ttf.TTF_CloseFont(self._font)
            self._font = None
        self.presenter.close()
        if self._window:
            sdl2.SDL_DestroyWindow(self._window)
        self._window = None
        sdl2.SDL_QuitSubSystem(sdl2.SDL_INIT_VIDEO)
