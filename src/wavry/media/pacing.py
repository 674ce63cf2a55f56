"""When to take the next picture of a source that says when it changed (capture on change).

A capture that waits for the screen to change, instead of taking a picture every frame interval,
shows a change at once (on a fixed clock a change waits half an interval on average before it is
even captured) and costs nothing while the screen is still. :class:`ChangePacer` is the policy,
on a clock handed in (seconds, monotonic), so it is tested without a screen:

- a change is captured at once, as long as the pictures stay within the stream's frame rate
  (:class:`RateCap`: on average at most ``fps`` a second, a picture up to half an interval
  early; a change that comes sooner waits for it);
- a requested picture (a keyframe for a client that joined or lost a frame) is taken the same way
  even if nothing changed;
- after the last change the picture is taken again a few times, at ``REFRESH_DELAYS_S`` after it
  (0.1 s, 0.3 s, 1 s, 3 s): the encoder refines a picture it had to compress hard while things
  moved, and a client that lost the last changed frame sees the gap in frame ids and asks for a
  keyframe. Then nothing at all is taken until the next change or request.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EARLY_FRACTION", "REFRESH_DELAYS_S", "ChangePacer", "PacerCounts", "RateCap"]

#: seconds after the last captured change at which a still picture is taken again
REFRESH_DELAYS_S: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)

#: how early (in frame intervals) a picture may come while the average stays at the cap
EARLY_FRACTION = 0.5


class RateCap:
    """At most ``fps`` pictures a second on average, each up to ``early`` of an interval
    before its nominal time (a virtual-scheduling rate limit: the nominal time advances one
    interval per picture, and never lags the clock).

    A cap that instead demands a whole interval since the previous picture loses frames of a
    source that changes at the cap's own rate: the source's frames come with jitter, every one
    that comes a little early waits almost an interval (a later change supersedes it), and the
    capture drifts through the source's phase. With this cap a jittery 60 Hz source captured at
    60 fps keeps its 60 pictures a second, each taken at once (tests/media/test_media_pacing.py;
    the glass-to-glass effect is in docs/benchmarks.md). A pause earns no burst: the nominal
    time restarts from the clock.
    """

    def __init__(self, fps: float, early: float = EARLY_FRACTION) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0.0 <= early < 1.0:
            raise ValueError(f"early must be in [0, 1), got {early}")
        self.interval_s = 1.0 / fps
        self.early = early
        self._nominal: float | None = None  # when the next picture is due at the average rate

    def set_fps(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.interval_s = 1.0 / fps

    def allowed_at(self) -> float | None:
        """The earliest time of the next picture (None: at once)."""
        if self._nominal is None:
            return None
        return self._nominal - self.early * self.interval_s

    def allows(self, now: float) -> bool:
        at = self.allowed_at()
        return at is None or now >= at

    def taken(self, now: float) -> None:
        """A picture was taken (or let through) at ``now``."""
        nominal = now if self._nominal is None else max(self._nominal, now)
        self._nominal = nominal + self.interval_s


@dataclass(slots=True)
class PacerCounts:
    changes: int = 0  # change notifications (several may fold into one picture)
    pictures: int = 0
    refreshes: int = 0  # pictures taken of a still screen (refresh policy)
    requested: int = 0  # pictures taken because one was requested


class ChangePacer:
    """Decides when the next picture is due. Not thread-safe: one capture thread owns it."""

    def __init__(self, fps: float, refresh_delays_s: tuple[float, ...] = REFRESH_DELAYS_S) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.interval_s = 1.0 / fps
        self.cap = RateCap(fps)
        self.refresh_delays_s = tuple(sorted(refresh_delays_s))
        self.counts = PacerCounts()
        self._dirty = False
        self._requested = False
        self._last_picture: float | None = None
        self._last_change_picture: float | None = None
        self._refresh_index = len(self.refresh_delays_s)  # nothing to refresh before a change

    def set_fps(self, fps: float) -> None:
        """A new frame-rate cap (the stream's rate, which the client may have lowered)."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.interval_s = 1.0 / fps
        self.cap.set_fps(fps)

    def changed(self) -> None:
        """The source reported a change."""
        self._dirty = True
        self.counts.changes += 1

    def request(self) -> None:
        """Take a picture at the next opportunity even if nothing changed."""
        self._requested = True

    @property
    def pending(self) -> bool:
        """A change or a request waits for its picture."""
        return self._dirty or self._requested

    def next_due(self) -> float | None:
        """When the next picture is due, or None: wait for a change or a request."""
        last = self._last_picture
        if self._dirty or self._requested:
            allowed = self.cap.allowed_at()
            return 0.0 if allowed is None else allowed
        if self._last_change_picture is not None and self._refresh_index < len(
            self.refresh_delays_s
        ):
            due = self._last_change_picture + self.refresh_delays_s[self._refresh_index]
            return due if last is None else max(due, last + self.interval_s)
        return None

    def wait_s(self, now: float) -> float | None:
        """How long to wait from ``now`` (0 = take it now; None = until a change or request)."""
        due = self.next_due()
        return None if due is None else max(0.0, due - now)

    def taken(self, now: float) -> None:
        """A picture was taken at ``now``; what it covered is no longer pending."""
        if self._dirty:
            self._last_change_picture = now
            self._refresh_index = 0
        elif self._requested:
            self.counts.requested += 1
        else:
            self.counts.refreshes += 1
            # skip delays already behind us (a late picture counts for every one it covers)
            base = now if self._last_change_picture is None else self._last_change_picture
            while (
                self._refresh_index < len(self.refresh_delays_s)
                and base + self.refresh_delays_s[self._refresh_index] <= now
            ):
                self._refresh_index += 1
        self._dirty = self._requested = False
        self._last_picture = now
        self.cap.taken(now)
        self.counts.pictures += 1
