"""The session's path in the client's statistics: which path (``direct``, ``punched``,
``relayed``), the relay when relayed, every change with its time, the longest presentation gap
around each change, and ``time_to_first_frame_ms`` (from the start of `wavry connect` to the
first decoded frame). Times are the client's monotonic clock."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from wavry.connectivity.paths import PathChanged, PathKind, describe_path

__all__ = ["PathStats"]

#: a change's gap is the longest interval between frames shown within this window around it
GAP_BEFORE_S = 0.5
GAP_AFTER_S = 2.0
#: its baseline: the longest interval in this window before it (the same length, same session)
BASELINE_S = 2.5


@dataclass(slots=True)
class _Change:
    at: float
    kind: PathKind
    relay_id: str | None
    reason: str
    address: str
    handshake_ms: float | None = None
    gap_ms: float | None = None
    gap_before_ms: float | None = None  # the baseline: longest gap in the seconds before


class PathStats:
    def __init__(self, started: float) -> None:
        self.started = started
        self.changes: list[_Change] = []
        self.first_decoded: float | None = None
        self._shown: deque[float] = deque(maxlen=2048)
        self.max_gap_ms = 0.0
        self._gaps: list[tuple[float, float]] = []  # the longest few: (gap ms, at)
        self.relay_grants = 0

    @property
    def kind(self) -> PathKind | None:
        return self.changes[-1].kind if self.changes else None

    def changed(self, event: PathChanged) -> None:
        hs = None if event.handshake_s is None else round(event.handshake_s * 1000, 2)
        change = _Change(
            event.at, event.kind, event.relay_id, event.reason, describe_path(event.path), hs
        )
        start, end = event.at - GAP_BEFORE_S - BASELINE_S, event.at - GAP_BEFORE_S
        shown = [t for t in self._shown if start <= t <= end]
        if len(shown) > 1:
            change.gap_before_ms = max(b - a for a, b in pairwise(shown)) * 1000
        self.changes.append(change)

    def direct(self, at: float, address: str, handshake_ms: float | None) -> None:
        """A session dialled by address: one direct path from the handshake on."""
        self.changes.append(
            _Change(at, PathKind.direct, None, "address given", address, handshake_ms)
        )

    def granted(self) -> None:
        """The gateway granted a relay lease for the session (the first, or a renewal)."""
        self.relay_grants += 1

    def decoded(self, at: float) -> None:
        if self.first_decoded is None:
            self.first_decoded = at

    def shown(self, at: float) -> None:
        if self._shown:
            gap = (at - self._shown[-1]) * 1000
            self.max_gap_ms = max(self.max_gap_ms, gap)
            if len(self._gaps) < 5 or gap > self._gaps[-1][0]:
                self._gaps = sorted([*self._gaps, (gap, at)], reverse=True)[:5]
        self._shown.append(at)
        for c in self.changes:
            if c.at - GAP_BEFORE_S <= at <= c.at + GAP_AFTER_S and len(self._shown) > 1:
                gap = (at - self._shown[-2]) * 1000
                c.gap_ms = gap if c.gap_ms is None else max(c.gap_ms, gap)

    @property
    def time_to_first_frame_ms(self) -> float | None:
        if self.first_decoded is None:
            return None
        return round((self.first_decoded - self.started) * 1000, 1)

    def summary(self) -> dict[str, Any]:
        last = self.changes[-1] if self.changes else None
        return {
            "path": last.kind.value if last else None,
            "relay_id": last.relay_id if last else None,
            "time_to_first_frame_ms": self.time_to_first_frame_ms,
            "relay_grants": self.relay_grants,  # leases the gateway granted (renewals included)
            "path_changes": [
                {
                    "at_ms": round((c.at - self.started) * 1000, 1),
                    # this machine's monotonic clock, to line the change up with other logs
                    "monotonic_s": round(c.at, 3),
                    "path": c.kind.value,
                    "relay_id": c.relay_id,
                    "address": c.address,
                    "reason": c.reason,
                    # RIFT msg1 → msg2 on this path, when a handshake fixed it
                    "handshake_ms": c.handshake_ms,
                    # longest interval between shown frames from 0.5 s before to 2 s after
                    "gap_ms": None if c.gap_ms is None else round(c.gap_ms, 1),
                    # the same, in the 2.5 s before that window: what this session shows anyway
                    "gap_before_ms": None if c.gap_before_ms is None else round(c.gap_before_ms, 1),
                }
                for c in self.changes
            ],
            "longest_present_gap_ms": round(self.max_gap_ms, 1),
            # the five longest, each with when it ended (ms from the start of connecting)
            "longest_present_gaps": [
                {"gap_ms": round(g, 1), "at_ms": round((t - self.started) * 1000, 1)}
                for g, t in self._gaps
            ],
        }

    def line(self, now: float) -> str:
        """One line for the overlay and the live statistics."""
        last = self.changes[-1] if self.changes else None
        if last is None:
            return "path -"
        via = f" via {last.relay_id}" if last.relay_id else ""
        return f"path {last.kind.value}{via} ({last.address}) for {now - last.at:.0f} s"
