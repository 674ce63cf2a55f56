"""Per-session figures: the end-to-end latency each client reports for the frames it shows
(LatencyStats), summarised per session every ``WINDOW_S``, and what ``HostRuntime.clients()``
shows live. Each session has its own window, started when it is accepted: a new session never
inherits another's numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

from wavry.host.notices import LatencyWindow, Observer
from wavry.host.routing import HostFeature, PeerInfo, RoutedEvent
from wavry.percentile import percentile
from wavry.runtime.messages import LatencyReport

__all__ = ["WINDOW_S", "StatsFeature"]

WINDOW_S = 10.0


@dataclass(slots=True)
class _Window:
    started: float
    latencies_ms: list[float] = field(default_factory=list)
    last: LatencyWindow | None = None


class StatsFeature(HostFeature):
    name = "stats"
    handles = (LatencyReport,)

    def __init__(self, notify: Observer) -> None:
        self.notify = notify
        self.windows: dict[int, _Window] = {}

    def on_accepted(self, peer: PeerInfo, now: float) -> None:
        self.windows[peer.peer] = _Window(now)

    def on_event(self, peer: int, event: RoutedEvent, now: float) -> bool:
        w = self.windows.get(peer)
        if w is not None and isinstance(event, LatencyReport):
            w.latencies_ms.append(event.total_us / 1000)
        return True

    def next_timer(self) -> float | None:
        due = [w.started + WINDOW_S for w in self.windows.values() if w.latencies_ms]
        return min(due) if due else None

    def on_timer(self, now: float) -> None:
        for peer, w in self.windows.items():
            if not w.latencies_ms or now < w.started + WINDOW_S:
                continue
            lat = w.latencies_ms
            p50 = percentile(lat, 0.5)
            w.last = LatencyWindow(peer, p50 if p50 is not None else 0.0, max(lat), len(lat))
            w.latencies_ms = []
            w.started = now
            self.notify(w.last)

    def last_window(self, peer: int) -> LatencyWindow | None:
        w = self.windows.get(peer)
        return None if w is None else w.last

    def on_gone(self, peer: int, reason: str, now: float) -> None:
        self.windows.pop(peer, None)
