"""When to take the next picture of a source that says when it changed (capture on change).

A capture that waits for the screen to change, instead of taking a picture every frame interval,
shows a change at once (on a fixed clock a change waits half an interval on average before it is
even captured) and costs nothing while the screen is still. :class:`ChangePacer` is the policy,
on a clock handed in (seconds, monotonic), so it is tested without a screen:

- a change is captured at once, as long as the pictures stay within the stream's frame rate
  (:class:`RateCap`: on average at most ``fps`` a second, two back to back at most; a change
  that comes sooner waits for it);
- a requested picture (a keyframe for a client that joined or lost a frame) is taken the same way
  even if nothing changed;
- after the last change the picture is taken again a few times, at ``REFRESH_DELAYS_S`` after it
  (0.1 s, 0.3 s, 1 s, 3 s): the encoder refines a picture it had to compress hard while things
  moved, and a client that lost the last changed frame sees the gap in frame ids and asks for a
  keyframe. Then nothing at all is taken until the next change or request.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BURST_PICTURES",
    "CAPTURE_HEADROOM",
    "REFRESH_DELAYS_S",
    "ChangePacer",
    "PacerCounts",
    "RateCap",
]

#: seconds after the last captured change at which a still picture is taken again
REFRESH_DELAYS_S: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)

#: pictures the cap lets through back to back (a token bucket's depth; see RateCap)
BURST_PICTURES = 2.0

#: the capture's cap runs this much above the stream's rate. A bucket at exactly the rate of
#: a source that changes at that rate has nothing to spare: any one extra picture (a keyframe
#: request, a refresh, a frame whose drawing straddled a picture) is a debt that the source
#: never lets it repay, and from then on every change waits for the bucket. Measured with
#: `wavry bench peers` (60 Hz animation, 60 fps stream): at 1.0, 85-100 % of the pictures
#: waited (means of 1-11 ms, depending on the phase it settled in); at 1.25, none did.
CAPTURE_HEADROOM = 1.25


class RateCap:
    """At most ``fps`` pictures a second on average, up to ``burst`` of them back to back: a
    token bucket that gains one picture per frame interval and holds at most ``burst``.

    The cap must not lag a source that changes at its own rate. A virtual schedule (the next
    picture due one interval after the previous one's due time, never before the clock) does:
    one change that comes late — a busy scheduler, a slow grab — moves the schedule later for
    good, and from then on every change of a 60 Hz source waits up to half an interval for it.
    Measured with `wavry bench peers` (a 60 Hz animation captured at 60 fps): 68 % of the
    pictures waited, 7.3 ms on average. A bucket keeps what a late change left unused: the
    next change on the source's own cadence finds its picture waiting, whatever the phase.
    The same bucket lets a frame drawn in several requests that straddle a picture through at
    once instead of half an interval later, and caps a faster source at ``fps`` on average.
    """

    def __init__(self, fps: float, burst: float = BURST_PICTURES) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if burst < 1.0:
            raise ValueError(f"burst must be at least one picture, got {burst}")
        self.interval_s = 1.0 / fps
        self.burst = float(burst)
        self._tokens = self.burst  # pictures allowed at time self._at
        self._at: float | None = None

    def set_fps(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.interval_s = 1.0 / fps

    def _level(self, now: float) -> float:
        if self._at is None:
            return self.burst
        return min(self.burst, self._tokens + max(0.0, now - self._at) / self.interval_s)

    def allowed_at(self) -> float | None:
        """The earliest time of the next picture (None: at once)."""
        if self._at is None or self._tokens >= 1.0:
            return None
        return self._at + (1.0 - self._tokens) * self.interval_s

    def allows(self, now: float) -> bool:
        return self._level(now) >= 1.0 - 1e-9

    def taken(self, now: float) -> None:
        """A picture was taken (or let through) at ``now``."""
        # a clock that went backwards refills nothing (max above) and keeps the later time
        self._tokens = self._level(now) - 1.0
        self._at = now if self._at is None else max(self._at, now)


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
        self.cap = RateCap(fps * CAPTURE_HEADROOM)
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
        self.cap.set_fps(fps * CAPTURE_HEADROOM)

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
