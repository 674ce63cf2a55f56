"""Live figures, once a second: what the last second was like (never the whole session's
percentiles), said stale when nothing new came; the start-up on its own line; the totals at
the end saying what they cover.

:class:`LiveFigures` is what the runtime's ``on_stats`` callback gets (the desktop app shows
it); :func:`live_line`, :func:`startup_line` and :func:`totals_line` are the CLI's text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from wavry.client.stats import STARTUP_S, ClientStats
from wavry.percentile import percentile
from wavry.runtime.features import Feature

__all__ = [
    "LiveFigures",
    "LiveStatsFeature",
    "live_figures",
    "live_line",
    "startup_line",
    "totals_line",
]

RTT_STALE_S = 1.5  # pings go every 0.5 s: an RTT older than this is not the link's now


@dataclass(frozen=True, slots=True)
class LiveFigures:
    span_s: float
    frames_shown: int
    frames_dropped: int  # in the span
    e2e_p50_ms: float | None
    e2e_p95_ms: float | None
    bitrate_kbps: float
    loss_pct: float | None
    rtt_ms: float | None
    rtt_age_s: float | None
    quiet_s: float | None  # no frame shown for this long (None: frames are coming)
    state: str  # streaming, stalled, reconnecting, ...
    congestion: str
    path: str = ""  # "path punched (…) for 12 s" (wavry.connectivity.pathstats)


def live_figures(
    stats: ClientStats,
    now: float,
    dropped_before: int,
    state: str,
    stream_fps: int = 0,
    span: float = 1.0,
) -> LiveFigures:
    recent = stats.recent(now, span)
    totals = [f.total_ms for f in recent]
    quiet = None
    if not recent:
        last = stats.last_at if stats.last_at is not None else stats.connect_started
        quiet = None if last is None else now - last
    return LiveFigures(
        span_s=span,
        frames_shown=len(recent),
        frames_dropped=max(0, stats.dropped - dropped_before),
        e2e_p50_ms=percentile(totals, 0.5),
        e2e_p95_ms=percentile(totals, 0.95),
        bitrate_kbps=stats.bitrate_kbps(now, span),
        loss_pct=stats.loss.recent_pct(),
        rtt_ms=stats.rtt_ms,
        rtt_age_s=stats.rtt_age(now),
        quiet_s=quiet,
        state=state,
        congestion=stats.congestion.state(now, stream_fps),
    )


def _ms(v: float | None) -> str:
    return "    -" if v is None else f"{v:5.1f}"


def live_line(f: LiveFigures) -> str:
    """One line about the last second."""
    if f.rtt_ms is None:
        rtt = "rtt -"
    elif f.rtt_age_s is not None and f.rtt_age_s > RTT_STALE_S:
        rtt = f"rtt {f.rtt_ms:.1f} ms ({f.rtt_age_s:.0f} s old)"
    else:
        rtt = f"rtt {f.rtt_ms:.1f} ms"
    if f.frames_shown:
        latency = f"e2e p50 {_ms(f.e2e_p50_ms)} p95 {_ms(f.e2e_p95_ms)} ms"
    elif f.quiet_s is not None:
        latency = f"no frame for {f.quiet_s:.1f} s"
    else:
        latency = "no frame yet"
    state = "" if f.state == "streaming" else f"  [{f.state}]"
    loss = "loss -" if f.loss_pct is None else f"loss {f.loss_pct:4.2f} %"
    path = f"  {f.path}" if f.path else ""
    return (
        f"last {f.span_s:g} s: {f.frames_shown:3d} fps shown, {f.frames_dropped:3d} dropped  "
        f"{latency}  {f.bitrate_kbps / 1000:6.2f} Mbit/s  {loss}  {rtt}{state}{path}"
    )


def startup_line(startup: dict[str, Any]) -> str:
    """The start-up (``ClientStats.startup()``, the summary's ``startup``) in one line."""
    p = startup["first_second_e2e_ms"]
    first = startup["first_frame_ms"]
    hs = startup["handshake_ms"]
    return (
        "start-up: "
        + ("no frame shown" if first is None else f"first frame {first:.0f} ms after connecting")
        + (f" (handshake {hs:.1f} ms)" if hs is not None else "")
        + f"; first {STARTUP_S:g} s: {startup['first_second_frames']} frames, "
        f"e2e p50 {_ms(p['p50']).strip()} p95 {_ms(p['p95']).strip()} ms"
    )


def totals_line(summary: dict[str, Any]) -> str:
    lat = summary["e2e_latency_ms"]
    steady = summary["e2e_after_startup_ms"]
    seconds = summary["covers"]["seconds"]
    return (
        f"whole session ({seconds:.1f} s from the first frame): "
        f"{summary['frames_presented']} frames shown, {summary['frames_dropped']} dropped; "
        f"e2e p50 {lat['p50']} p95 {lat['p95']} ms; "
        f"after the start-up second: p50 {steady['p50']} p95 {steady['p95']} ms"
    )


class LiveStatsFeature(Feature):
    """Once a second: sample the counters, hand :class:`LiveFigures` to ``on_stats``, and (for
    the CLI, ``lines``) say the live line — and, once, the start-up line."""

    name = "live stats"

    def __init__(
        self,
        stats: ClientStats,
        sample: Callable[[float], None],
        state: Callable[[], str],
        stream_fps: int,
        on_stats: Callable[[LiveFigures], None] | None,
        say: Callable[[str], None] | None,
        period_s: float = 1.0,
    ) -> None:
        self.stats = stats
        self._sample = sample
        self._state = state
        self._stream_fps = stream_fps
        self._on_stats = on_stats
        self._say = say
        self.period_s = period_s
        self._next: float | None = None
        self._dropped_before = 0
        self._startup_said = False
        #: the session's path for the live line (the runtime sets it)
        self.path: Callable[[], str] | None = None

    def next_timer(self) -> float | None:
        return self._next

    def start(self, now: float) -> None:
        self._next = now + self.period_s

    def on_timer(self, now: float) -> None:
        self._next = now + self.period_s
        self._sample(now)
        s = self.stats
        figures = live_figures(s, now, self._dropped_before, self._state(), self._stream_fps)
        if self.path is not None:
            figures = replace(figures, path=self.path())
        self._dropped_before = s.dropped
        if self._on_stats is not None:
            self._on_stats(figures)
        if self._say is None:
            return
        if not self._startup_said and s.first_at is not None and now - s.first_at >= STARTUP_S:
            self._startup_said = True
            self._say(startup_line(s.startup()))
        self._say(live_line(figures))
