"""The window's own thread: SDL events and presentation, apart from the event loop.

Showing a picture ends in ``XShmPutImage`` + ``XSync``: it waits for the X server. On a busy
machine the X server may not run for 10–20 ms, and a loop that waited with it would read
neither the socket nor the keyboard meanwhile. So every SDL call happens here — the window is
created, polled, drawn and closed on this thread — and the loop only exchanges values with it:

- the decode thread wakes it when a frame is ready (:meth:`wake`); it shows the newest one and
  posts the times to the loop (``on_shown``);
- it polls SDL every ``poll_s`` (and on every wake-up) and posts input to the loop (``on_input``);
- the loop runs small jobs on it (:meth:`post`, :meth:`call`: the overlay text, release-all).

SDL does not need the main thread on X11 or Wayland as long as one thread makes all the video
calls (on macOS it would; the desktop app brings its own window there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["WindowThread"]

_log = logging.getLogger("wavry.client")
T = TypeVar("T")
POLL_S = 0.004


class WindowThread:
    def __init__(
        self,
        factory: Callable[[], Any],
        loop: asyncio.AbstractEventLoop,
        *,
        on_input: Callable[[Any], None],
        on_shown: Callable[[Any, float, float, float], None],
        take: Callable[[], Any],
        poll_s: float = POLL_S,
    ) -> None:
        self._factory = factory
        self._loop = loop
        self._on_input = on_input
        self._on_shown = on_shown
        self._take = take
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._jobs: deque[Callable[[Any], None]] = deque()
        self._closing = False
        self._started: Future[Any] = Future()
        self.window: Any = None
        self._thread = threading.Thread(target=self._run, name="wavry-window", daemon=True)

    def start(self) -> Future[Any]:
        """Create the window on its thread; the future gives it (or the WindowError)."""
        self._thread.start()
        return self._started

    def wake(self) -> None:
        """A frame is ready (any thread)."""
        self._wake.set()

    def post(self, job: Callable[[Any], None]) -> None:
        """Run ``job(window)`` on the window thread soon."""
        self._jobs.append(job)
        self._wake.set()

    def call(self, job: Callable[[Any], T], timeout: float = 1.0) -> T | None:
        """Run ``job(window)`` on the window thread and wait for its result (None if the
        thread does not answer within ``timeout``)."""
        done: Future[T] = Future()

        def run(window: Any) -> None:
            try:
                done.set_result(job(window))
            except BaseException as exc:
                done.set_exception(exc)

        if not self._thread.is_alive():
            return None
        self.post(run)
        try:
            return done.result(timeout)
        except TimeoutError:
            return None

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(fn, *args)

    def _run(self) -> None:
        try:
            window = self._factory()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self.window = window
        self._started.set_result(window)
        try:
            while not self._closing:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                while self._jobs:
                    self._jobs.popleft()(window)
                batch = window.poll()
                if batch.events or batch.actions or batch.dropped_files:
                    self._to_loop(self._on_input, batch)
                ready = self._take()
                if ready is not None:
                    start = time.monotonic()
                    if ready.prepared is None:  # decoded before the window existed
                        ready.prepared = window.prepare(ready.decoded.frame)
                        ready.prepared_at = time.monotonic()
                    window.show(ready.prepared)
                    shown = time.monotonic()
                    self._to_loop(self._on_shown, ready, start, shown, time.time())
        except Exception:
            _log.exception("the window thread failed")
        finally:
            while self._jobs:  # a release-all asked for at the end still runs
                with contextlib.suppress(Exception):
                    self._jobs.popleft()(window)
            window.close()

    def close(self, timeout: float = 1.0) -> None:
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
