"""The earliest deadline of many keyed timers in O(log n): a binary heap with lazy deletion.

The host keeps one deadline per session (liveness, expiry, its transport's next timer). Walking
every session after every datagram to find the earliest one made timers cost O(sessions) per
datagram, which a crowd of idle sessions turned into a denial of service (docs/security.md).
Here setting a key's deadline pushes one heap entry; entries that a later `set` replaced are
skipped when they reach the top, and the heap is rebuilt when stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["DeadlineQueue"]

K = TypeVar("K", bound=Hashable)


class DeadlineQueue(Generic[K]):
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._when: dict[K, float] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._when)

    def __contains__(self, key: object) -> bool:
        return key in self._when

    def get(self, key: K) -> float | None:
        return self._when.get(key)

    def set(self, key: K, when: float | None) -> None:
        """Key's deadline becomes `when` (None: no deadline)."""
        if when is None:
            self._when.pop(key, None)
            return
        if self._when.get(key) == when:
            return
        self._when[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        if len(self._heap) > 4 * len(self._when) + 64:
            self._compact()

    def discard(self, key: K) -> None:
        self._when.pop(key, None)

    def earliest(self) -> float | None:
        heap, when = self._heap, self._when
        while heap:
            at, _, key = heap[0]
            if when.get(key) == at:
                return at
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[K]:
        """The keys whose deadline is at or before `now`, earliest first; they lose their
        deadline (set it again after handling them)."""
        heap, when = self._heap, self._when
        out: list[K] = []
        while heap and heap[0][0] <= now:
            at, _, key = heapq.heappop(heap)
            if when.get(key) == at:
                del when[key]
                out.append(key)
        return out

    def _compact(self) -> None:
        self._heap = [(at, next(self._seq), k) for k, at in self._when.items()]
        heapq.heapify(self._heap)
