"""The input feature: the window's typed input events to the host, and the keep-alive that makes
a quiet client a gone client.

While any key, mouse button or gamepad control is held on the host, the client sends a
datagram at least every :data:`KEEPALIVE_S` (a ``Ping``: docs/spec/RIFT.md §9 "Held input"), so
a host that hears nothing for :data:`HOST_RELEASE_AFTER_S` knows the client is gone (killed,
frozen, unplugged) and releases everything it held — instead of waiting for the 3 s stall or
the 10 s loss while X autorepeat types on. Pure apart from the injected callables; time is the
runtime's monotonic ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from wavry.runtime.features import Feature
from wavry.runtime.messages import AppEvent, InputEvent

__all__ = ["HOST_RELEASE_AFTER_S", "KEEPALIVE_S", "InputFeature"]

KEEPALIVE_S = 0.1  # ≥ 4 Hz asked for; 10 Hz so that a few lost datagrams never look like silence
HOST_RELEASE_AFTER_S = 1.0  # at most, docs/spec/RIFT.md §9 (`wavry host`: 0.9 s)


class InputFeature(Feature):
    name = "input"

    def __init__(
        self,
        send: Callable[[AppEvent], None],
        keepalive: Callable[[], None],
        held: Callable[[], bool],
        interval_s: float = KEEPALIVE_S,
    ) -> None:
        self._send = send
        self._keepalive = keepalive
        self._held = held
        self.interval_s = interval_s
        self._last_sent = 0.0
        self.keepalives = 0
        self.sent = 0

    def send(self, events: Iterable[InputEvent], now: float) -> None:
        for e in events:
            self._send(e)
            self.sent += 1
            self._last_sent = now

    def next_timer(self) -> float | None:
        return self._last_sent + self.interval_s if self._held() else None

    def on_timer(self, now: float) -> None:
        if self._held() and now >= self._last_sent + self.interval_s:
            self._keepalive()
            self.keepalives += 1
            self._last_sent = now
