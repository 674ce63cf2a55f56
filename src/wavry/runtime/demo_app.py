"""A small animation for the demo's virtual display: bouncing box, moving bars, a clock.

Run on the host's virtual display by `wavry demo`; any X application works the same way
(`wavry host --virtual 1280x720 --run CMD`).
"""

from __future__ import annotations

import ctypes
import math
import time

from wavry.client.sdl import sdl2


def next_tick(due: float, now: float, period: float) -> float:
    """When to draw next: one `period` after `due`, so that pictures come at the rate whatever
    drawing takes (a fixed sleep after drawing gave ~37 a second); ticks already missed on a
    busy machine are skipped, not caught up."""
    due += period
    if due <= now:
        due += (math.floor((now - due) / period) + 1) * period
    return due


def main() -> None:
    if sdl2.SDL_Init(sdl2.SDL_INIT_VIDEO) != 0:
        raise SystemExit(f"demo app: {sdl2.SDL_GetError().decode()}")
    mode = sdl2.SDL_DisplayMode()
    sdl2.SDL_GetCurrentDisplayMode(0, ctypes.byref(mode))
    w, h = mode.w or 1280, mode.h or 720
    win = sdl2.SDL_CreateWindow(b"wavry demo", 0, 0, w, h, sdl2.SDL_WINDOW_BORDERLESS)
    ren = sdl2.SDL_CreateRenderer(win, -1, sdl2.SDL_RENDERER_SOFTWARE)
    event = sdl2.SDL_Event()
    start = time.monotonic()
    period = 1 / 60
    due = start
    running = True
    while running:
        while sdl2.SDL_PollEvent(ctypes.byref(event)):
            if event.type == sdl2.SDL_QUIT:
                running = False
        t = time.monotonic() - start
        sdl2.SDL_SetRenderDrawColor(ren, 20, 24, 32, 255)
        sdl2.SDL_RenderClear(ren)
        for i in range(8):
            x = int((i * w / 8 + t * 120) % w)
            sdl2.SDL_SetRenderDrawColor(ren, 40 + 25 * i, 90, 200 - 20 * i, 255)
            sdl2.SDL_RenderFillRect(ren, sdl2.SDL_Rect(x, 0, w // 16, h))
        bx = int((math.sin(t * 1.3) * 0.4 + 0.5) * (w - 160))
        by = int((math.cos(t * 1.7) * 0.4 + 0.5) * (h - 160))
        sdl2.SDL_SetRenderDrawColor(ren, 250, 210, 60, 255)
        sdl2.SDL_RenderFillRect(ren, sdl2.SDL_Rect(bx, by, 160, 160))
        # a seconds hand
        cx, cy, r = w - 120, 120, 90
        ang = t * 2 * math.pi / 60 * 10
        sdl2.SDL_SetRenderDrawColor(ren, 255, 255, 255, 255)
        sdl2.SDL_RenderDrawLine(
            ren, cx, cy, int(cx + r * math.sin(ang)), int(cy - r * math.cos(ang))
        )
        sdl2.SDL_RenderPresent(ren)
        now = time.monotonic()
        due = next_tick(due, now, period)
        time.sleep(due - now)
    sdl2.SDL_DestroyRenderer(ren)
    sdl2.SDL_DestroyWindow(win)
    sdl2.SDL_Quit()


if __name__ == "__main__":
    main()
