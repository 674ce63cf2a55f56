"""Measurement logic of `wavry bench peers`: finding the marker on a grabbed screen, and turning
marker sightings into latency percentiles, frames shown per second and a latency trend.

A *sighting* is the first grab of display B in which a marker value (frame id + the wall-clock
time it was drawn on display A, :mod:`wavry.media.marker`) was readable; its latency is the grab
time minus the drawing time, both read from the same clock of the same machine.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from wavry.media.marker import marker_layout, read_marker
from wavry.percentile import percentile

__all__ = [
    "MAX_LOCATE_CANDIDATES",
    "Sighting",
    "locate_marker",
    "read_marker_at",
    "summarize",
    "trend_ms_per_s",
]

#: a full scan of display B tries at most this many offsets (a 1:1 viewer on a display the size
#: of display A leaves a few hundred)
MAX_LOCATE_CANDIDATES = 250_000


@dataclass(frozen=True, slots=True)
class Sighting:
    """Marker ``frame_id`` drawn at ``drawn_us`` first seen on the viewer's display at
    ``seen_us`` (both µs of the same wall clock)."""

    frame_id: int
    drawn_us: int
    seen_us: int

    @property
    def latency_ms(self) -> float:
        return (self.seen_us - self.drawn_us) / 1000.0


def read_marker_at(
    luma: npt.NDArray[np.uint8], x: int, y: int, source_width: int
) -> tuple[int, int] | None:
    """The marker of a ``source_width``-wide picture shown 1:1 with its top-left at (x, y)."""
    lay = marker_layout(source_width)
    band = luma[y : y + lay.height, x : x + lay.width]
    if band.shape != (lay.height, lay.width):
        return None
    if lay.width == source_width:
        return read_marker(band)
    # read_marker derives the block grid from the picture width: give it the source's width
    padded = np.zeros((lay.height, source_width), dtype=np.uint8)
    padded[:, : lay.width] = band
    return read_marker(padded)


def locate_marker(
    luma: npt.NDArray[np.uint8], source_width: int, source_height: int | None = None
) -> tuple[int, int] | None:
    """Top-left corner (x, y) of a readable marker in a grabbed screen, or None.

    Tries the corner, then the centred positions (where a window the size of the picture lands
    when placed centred; the vertical one needs ``source_height``), then every offset (bounded
    by :data:`MAX_LOCATE_CANDIDATES`)."""
    lay = marker_layout(source_width)
    h, w = luma.shape
    if h < lay.height or w < lay.width:
        return None
    likely = [(0, 0), ((w - source_width) // 2, 0)]
    if source_height is not None:
        likely.append(((w - source_width) // 2, (h - source_height) // 2))
    for x, y in likely:
        if x >= 0 and read_marker_at(luma, x, y, source_width) is not None:
            return x, y
    xs, ys = w - lay.width + 1, h - lay.height + 1
    if xs * ys > MAX_LOCATE_CANDIDATES:
        ys = max(1, MAX_LOCATE_CANDIDATES // xs)
    for y in range(ys):
        for x in range(xs):
            # a marker's top-left block is uniform: skip offsets where it is not (cheap test)
            cell = luma[y : y + lay.block, x : x + lay.block]
            if int(cell.max()) - int(cell.min()) > 60:
                continue
            if read_marker_at(luma, x, y, source_width) is not None:
                return x, y
    return None


def trend_ms_per_s(times_s: Sequence[float], latencies_ms: Sequence[float]) -> float | None:
    """Least-squares slope of latency over time (ms of latency per second of run): a queue that
    grows shows as a positive slope, a steady pipeline as ~0."""
    if len(times_s) < 3:
        return None
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(latencies_ms, dtype=np.float64)
    dt = t - t.mean()
    denom = float((dt * dt).sum())
    if denom <= 0:
        return None
    return float((dt * (v - v.mean())).sum() / denom)


def summarize(sightings: Sequence[Sighting], window_s: float) -> dict[str, Any]:
    """Figures of one system from its sightings over a measured window of ``window_s`` seconds.

    ``fps_shown`` counts distinct marker values seen per second (a viewer that repeats or skips
    pictures shows fewer); ``not_shown`` is how many ids between the first and last one seen
    never appeared on the viewer's display; ``out_of_order`` counts ids seen after a newer one."""
    ordered = sorted(sightings, key=lambda s: s.seen_us)
    lat = [s.latency_ms for s in ordered]
    ids = [s.frame_id for s in ordered]
    out_of_order = sum(1 for a, b in itertools.pairwise(ids) if b <= a)
    distinct = len(set(ids))
    span = (max(ids) - min(ids) + 1) if ids else 0
    trend = None
    if ordered:
        t0 = ordered[0].seen_us
        trend = trend_ms_per_s([(s.seen_us - t0) / 1e6 for s in ordered], lat)
    return {
        "frames_seen": distinct,
        "fps_shown": distinct / window_s if window_s > 0 else None,
        "p50_ms": percentile(lat, 0.50),
        "p95_ms": percentile(lat, 0.95),
        "p99_ms": percentile(lat, 0.99),
        "min_ms": min(lat) if lat else None,
        "max_ms": max(lat) if lat else None,
        "mean_ms": sum(lat) / len(lat) if lat else None,
        "trend_ms_per_s": trend,
        "not_shown": max(0, span - distinct),
        "out_of_order": out_of_order,
    }
