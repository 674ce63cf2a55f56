"""The window feature: the client window on its own thread (:mod:`wavry.client.window_thread`),
its input handed to the runtime, its stats overlay refreshed while it is shown, and everything
held released when the session ends."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from wavry.client.window_thread import WindowThread
from wavry.runtime.features import Feature
from wavry.runtime.messages import InputEvent
from wavry.runtime.session import SessionFailed

__all__ = ["WindowFeature"]

OVERLAY_EVERY_S = 0.25


def _set_overlay(window: Any, lines: list[str]) -> None:
    window.set_overlay(lines)


class WindowFeature(Feature):
    name = "window"

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        on_input: Callable[[Any], None],
        on_shown: Callable[[Any, float, float, float], None],
        take: Callable[[], Any],
        overlay_lines: Callable[[float], list[str]],
    ) -> None:
        self._factory = factory
        self._on_input = on_input
        self._on_shown = on_shown
        self._take = take
        self._overlay_lines = overlay_lines
        self.thread: WindowThread | None = None
        self.window: Any = None
        self._next = 0.0

    async def open(self) -> Any:
        """Create the window on its thread; a WindowError becomes SessionFailed."""
        from wavry.client.window import WindowError

        self.thread = WindowThread(
            self._factory,
            asyncio.get_running_loop(),
            on_input=self._on_input,
            on_shown=self._on_shown,
            take=self._take,
        )
        try:
            self.window = await asyncio.wrap_future(self.thread.start())
        except WindowError as exc:
            raise SessionFailed(f"{exc}; use --headless to run without a window") from exc
        return self.window

    @property
    def presenter_name(self) -> str:
        return str(self.window.presenter_name) if self.window is not None else "headless"

    @property
    def held(self) -> bool:
        return self.window is not None and bool(self.window.held)

    def prepare(self, frame: Any) -> Any:
        return self.window.prepare(frame)

    def wake(self) -> None:
        if self.thread is not None:
            self.thread.wake()

    def next_timer(self) -> float | None:
        return self._next if self.window is not None else None

    def on_timer(self, now: float) -> None:
        self._next = now + OVERLAY_EVERY_S
        if self.thread is None or not self.window.overlay_visible:
            return
        lines = self._overlay_lines(now)
        lines.append(f"presenter {self.presenter_name}")
        self.thread.post(functools.partial(_set_overlay, lines=lines))

    def release_all(self, timeout: float = 0.5) -> list[InputEvent]:
        """Up for everything held (on the window thread), to send before the session ends."""
        if self.thread is None:
            return []
        return self.thread.call(lambda w: w.release_all(), timeout) or []

    def close(self) -> None:
        if self.thread is not None:
            self.thread.close()  # the window closes on its thread
        self.window = None
