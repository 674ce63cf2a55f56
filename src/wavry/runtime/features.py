"""Features plug into a runtime: one small lifecycle each, one typed router per side.

A runtime (host or client) owns the session(s) and the socket. Everything a session carries
besides the protocol itself — video, audio, input, clipboard, files, recording, stats,
connectivity — is a :class:`Feature`: it is told when a session is accepted and when it is gone,
gets the typed application events it asked for (:mod:`wavry.runtime.messages`), and may ask for a
timer. Back-ends (capture, encoder, injector, clipboard, window, decoder) are handed to a feature
when it is built, so tests inject their own.

On the host a ``peer`` is the session alias; on the client it is always 0 (one session).
Time is the runtime's monotonic clock (``now`` in seconds); wall-clock time only stamps what goes
on the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from wavry.runtime.messages import AppEvent

log = logging.getLogger(__name__)

#: a feature whose ``on_timer`` raised is not woken again for this long: the deadline it left
#: behind is in the past, and waking it at once would fail again at once, in a busy loop that
#: spins a core (and starves the other features) for as long as the fault lasts
TIMER_RETRY_S = 1.0

Send = Callable[[int, AppEvent], None]
"""How a feature sends an application event to a peer (raises nothing: a peer that is gone
drops it)."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What the runtime knows about an accepted session."""

    peer: int
    wavry_id: str
    name: str = ""
    address: tuple[str, int] | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)


class Feature:
    """Base class with do-nothing hooks; override what the feature needs.

    ``handles`` lists the event classes this feature receives. The router gives each event to
    every feature that handles its class, in registration order; a feature returns True from
    :meth:`on_event` to stop the event there.
    """

    name = "feature"
    handles: tuple[type, ...] = ()

    def on_accepted(self, peer: PeerInfo, now: float) -> None:
        """A session was accepted (for the client: the session, after a reconnect too)."""

    def on_event(self, peer: int, event: AppEvent, now: float) -> bool:
        """One application event from ``peer``; True consumes it."""
        return False

    def on_timer(self, now: float) -> None:
        """Called when ``next_timer()`` is due."""

    def next_timer(self) -> float | None:
        """When this feature wants ``on_timer`` next (monotonic seconds), or None."""
        return None

    def on_gone(self, peer: int, reason: str, now: float) -> None:
        """The session ended (or, on the client, is being re-established)."""

    def close(self) -> None:
        """The runtime is shutting down: release every resource."""


class Router:
    """Hands each typed event to the features that handle it; fans lifecycle calls out.

    One misbehaving feature never takes the others (or the session) down: an exception is logged
    once per feature and event class, and the event goes on to the next feature; a feature whose
    timer raised is woken again only after ``TIMER_RETRY_S``.
    """

    def __init__(self, features: Iterable[Feature] = ()) -> None:
        self.features: list[Feature] = []
        self._by_type: dict[type, list[Feature]] = {}
        self._reported: set[tuple[str, str]] = set()
        #: id(feature) → not woken before this (its on_timer raised)
        self._timer_held: dict[int, float] = {}
        for f in features:
            self.add(f)

    def add(self, feature: Feature) -> Feature:
        self.features.append(feature)
        self._by_type.clear()
        return feature

    def remove(self, feature: Feature) -> None:
        if feature in self.features:
            self.features.remove(feature)
            self._by_type.clear()
            self._timer_held.pop(id(feature), None)

    def _targets(self, kind: type) -> list[Feature]:
        targets = self._by_type.get(kind)
        if targets is None:
            targets = [f for f in self.features if issubclass(kind, f.handles)]
            self._by_type[kind] = targets
        return targets

    def _failed(self, feature: Feature, what: str, exc: BaseException) -> None:
        key = (feature.name, what)
        if key not in self._reported:
            self._reported.add(key)
            log.exception("feature %s failed in %s: %s", feature.name, what, exc)

    def dispatch(self, peer: int, event: AppEvent, now: float) -> bool:
        """Give ``event`` to its features; True when one consumed it."""
        for f in self._targets(type(event)):
            try:
                if f.on_event(peer, event, now):
                    return True
            except Exception as exc:
                self._failed(f, type(event).__name__, exc)
        return False

    def accepted(self, peer: PeerInfo, now: float) -> None:
        for f in self.features:
            try:
                f.on_accepted(peer, now)
            except Exception as exc:
                self._failed(f, "on_accepted", exc)

    def gone(self, peer: int, reason: str, now: float) -> None:
        for f in self.features:
            try:
                f.on_gone(peer, reason, now)
            except Exception as exc:
                self._failed(f, "on_gone", exc)

    def _due(self, f: Feature) -> float | None:
        t = f.next_timer()
        held = self._timer_held.get(id(f))
        return t if t is None or held is None else max(t, held)

    def next_timer(self) -> float | None:
        due = [t for f in self.features if (t := self._due(f)) is not None]
        return min(due) if due else None

    def timers(self, now: float) -> None:
        for f in self.features:
            t = self._due(f)
            if t is not None and t <= now:
                try:
                    f.on_timer(now)
                except Exception as exc:
                    self._failed(f, "on_timer", exc)
                    self._timer_held[id(f)] = now + TIMER_RETRY_S
                else:
                    self._timer_held.pop(id(f), None)

    def close(self) -> None:
        for f in reversed(self.features):
            try:
                f.close()
            except Exception as exc:
                self._failed(f, "close", exc)
