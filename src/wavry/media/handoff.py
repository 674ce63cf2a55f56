"""Size-1 hand-off between pipeline stages: the newest frame wins, stale ones are counted."""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar, cast

T = TypeVar("T")

__all__ = ["LatestFrameSlot", "SlotClosed"]


class SlotClosed(Exception):
    """The slot was closed while a consumer waited on it."""


class LatestFrameSlot(Generic[T]):
    """A single-item slot: ``put`` overwrites an unconsumed item (counted in ``dropped``).

    Thread-safe. Consumers wait with ``get(timeout)`` from a thread or ``await get_async()`` from
    asyncio; a producer thread wakes asyncio waiters through ``call_soon_threadsafe``. Nothing is
    ever queued behind a newer item.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self.dropped = 0
        self.put_count = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def put(self, item: T) -> bool:
        """Store ``item``; return False if it replaced an item nobody took (a drop)."""
        with self._cond:
            if self._closed:
                raise SlotClosed("slot is closed")
            replaced = self._has_item
            if replaced:
                self.dropped += 1
            self._item = item
            self._has_item = True
            self.put_count += 1
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_wake, fut)
        return not replaced

    def take_nowait(self) -> T | None:
        """Take the item if there is one, else None."""
        with self._cond:
            return self._take_locked()

    def get(self, timeout: float | None = None) -> T | None:
        """Block until an item is there (or ``timeout`` passes: None). Raises SlotClosed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._has_item or self._closed, timeout):
                return None
            if not self._has_item:
                raise SlotClosed("slot is closed")
            return self._take_locked()

    async def get_async(self) -> T:
        """Wait in asyncio for the next item. Raises SlotClosed."""
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self._has_item:
                    return cast(T, self._take_locked())
                if self._closed:
                    raise SlotClosed("slot is closed")
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
            await fut

    def close(self) -> None:
        """Wake every waiter; later gets on an empty slot raise SlotClosed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_wake, fut)

    @property
    def closed(self) -> bool:
        return self._closed

    def _take_locked(self) -> T | None:
        if not self._has_item:
            return None
        item = self._item
        self._item = None
        self._has_item = False
        return item


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
