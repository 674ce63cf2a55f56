"""PySDL2, loaded the quiet way.

PySDL2 prints ``UserWarning: Using SDL2 binaries from pysdl2-dll`` whenever the bundled SDL
binaries set ``PYSDL2_DLL_PATH`` during its own import. Importing ``sdl2dll`` first sets the
variable before PySDL2 looks, so the same binaries load without the warning (a system SDL is
still used when ``PYSDL2_DLL_PATH`` points to one or pysdl2-dll is not installed).

Every module of the client imports SDL through here: ``from wavry.client.sdl import sdl2``.
"""

from __future__ import annotations

import contextlib
import ctypes

with contextlib.suppress(ImportError):  # pysdl2-dll is optional: a system libSDL2 works too
    import sdl2dll  # type: ignore[import-untyped]  # noqa: F401  (sets PYSDL2_DLL_PATH)

import sdl2
import sdl2.sdlttf as ttf

__all__ = ["sdl2", "sdl_error", "ttf", "window_size"]


def sdl_error() -> str:
    return sdl2.SDL_GetError().decode(errors="replace") or "unknown SDL error"


def window_size(window: object) -> tuple[int, int]:
    w, h = ctypes.c_int(), ctypes.c_int()
    sdl2.SDL_GetWindowSize(window, ctypes.byref(w), ctypes.byref(h))
    return w.value, h.value
