"""The grabber of `wavry bench peers` (run as a process on the display to watch).

It finds the marker on the screen once (any 1:1 position), then reads only the marker's band
every ``--interval-ms`` with XGetImage (python-xlib; the band of a 720p picture is 1280×32
pixels, ~160 KB, a fraction of a millisecond per grab) and records the first time each marker
value is seen. A marker value counts as seen when the grab that first read it returned.

Protocol on stdout, one line each: ``located X Y`` (or ``error: ...`` and exit 1), ``measuring``
when the measured window starts, then one JSON object with the sightings and the grabber's own
figures when it ends.

    python -m wavry.bench.peers.grab --source-width 1280 --warmup-seconds 3 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from wavry.bench.peers.marks import locate_marker, read_marker_at
from wavry.media.marker import marker_layout
from wavry.percentile import percentile


class Grabber:
    def __init__(self) -> None:
        from Xlib import X, display

        self._zpixmap = X.ZPixmap
        self.d = display.Display()
        self.root = self.d.screen().root
        self.width = self.d.screen().width_in_pixels
        self.height = self.d.screen().height_in_pixels

    def grab(self, x: int, y: int, w: int, h: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        reply = self.root.get_image(x, y, w, h, self._zpixmap, 0xFFFFFFFF)
        return np.frombuffer(reply.data, dtype=np.uint8).reshape(h, w, 4)


def locate(
    g: Grabber, source_width: int, source_height: int | None, timeout_s: float
) -> tuple[int, int] | None:
    """Grab the whole screen until a readable marker shows (the viewer may still be starting)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        luma = g.grab(0, 0, g.width, g.height)[..., 1]
        where = locate_marker(luma, source_width, source_height)
        if where is not None:
            return where
        time.sleep(0.2)
    return None


def measure(
    g: Grabber,
    x: int,
    y: int,
    source_width: int,
    warmup_s: float,
    seconds: float,
    interval_s: float,
) -> dict[str, Any]:
    lay = marker_layout(source_width)
    w, h = lay.width, lay.height
    seen: dict[int, tuple[int, int]] = {}
    grabs = unreadable = 0
    grab_ms: list[float] = []
    t_measure = time.monotonic() + warmup_s
    t_end = t_measure + seconds
    measuring = False
    last_raw = b""
    mark: tuple[int, int] | None = None
    cpu0 = 0.0
    start_us = 0
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        if not measuring and now >= t_measure:
            measuring = True
            cpu0 = time.process_time()
            start_us = time.time_ns() // 1000
            print("measuring", flush=True)
        t0 = time.time_ns()
        pixels = g.grab(x, y, w, h)
        t1 = time.time_ns()
        # most grabs see the same pixels as the one before: decode only what changed
        raw = pixels.tobytes()
        if raw != last_raw:
            last_raw = raw
            # the marker is grey: one channel is its luma (a 3-channel mean costs 1.5 ms a grab)
            mark = read_marker_at(pixels[..., 1], 0, 0, source_width)
        if measuring:
            grabs += 1
            grab_ms.append((t1 - t0) / 1e6)
            if mark is None:
                unreadable += 1
            elif mark[0] not in seen:
                # seen by the end of the grab: the middle of the round trip would be closer, but
                # a grabber preempted inside the call would then see pictures before they exist
                seen[mark[0]] = (mark[1], t1 // 1000)
        delay = now + interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    end_us = time.time_ns() // 1000
    window = (end_us - start_us) / 1e6
    return {
        "located": [x, y],
        "window_s": window,
        "start_us": start_us,
        "grabs": grabs,
        "grabs_per_s": grabs / window if window > 0 else None,
        "unreadable_grabs": unreadable,
        "grab_ms_p50": percentile(grab_ms, 0.5),
        "grab_ms_p95": percentile(grab_ms, 0.95),
        "cpu_cores": (time.process_time() - cpu0) / window if window > 0 else None,
        "sightings": [[fid, drawn, seen_us] for fid, (drawn, seen_us) in sorted(seen.items())],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source-width", type=int, required=True)
    p.add_argument("--source-height", type=int, default=None)
    p.add_argument("--warmup-seconds", type=float, default=3.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--interval-ms", type=float, default=1.0)
    p.add_argument("--locate-timeout-seconds", type=float, default=30.0)
    a = p.parse_args(argv)
    try:
        g = Grabber()
    except Exception as exc:  # python-xlib raises several unrelated types on connect
        print(f"error: cannot open display {os.environ.get('DISPLAY')}: {exc}", flush=True)
        return 1
    where = locate(g, a.source_width, a.source_height, a.locate_timeout_seconds)
    if where is None:
        print(
            f"error: no readable marker on {os.environ.get('DISPLAY')} within "
            f"{a.locate_timeout_seconds:g} s (viewer not showing the picture 1:1?)",
            flush=True,
        )
        return 1
    print(f"located {where[0]} {where[1]}", flush=True)
    out = measure(
        g, where[0], where[1], a.source_width, a.warmup_seconds, a.seconds, a.interval_ms / 1000
    )
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
