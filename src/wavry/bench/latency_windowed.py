"""The ``windowed`` variant of `wavry bench latency`: what a person sees, not what the decoder
hands over.

The same `wavry host --source synthetic` as the headless ``wavry`` variant, but the client is a
real `wavry connect` process with its window on a private Xvfb display, and the marker is read
from that display's pixels by the grabber of `wavry bench peers` (:mod:`wavry.bench.peers.grab`):
latency = (when the picture was on the screen) − (the marker's capture time stamp), one machine,
one clock. So it includes everything the headless variant does plus the hand-off to the window,
the present, and the X server; a client that queues frames shows it here as a growing latency
(``trend_ms_per_s``) and fewer frames shown per second.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from wavry.bench.peers.measure import (
    VIEWER_MARGIN,
    MeasureSettings,
    follow_grabber,
    start_grabber,
)
from wavry.bench.peers.procs import Proc
from wavry.bench.peers.stage import NotRunnable, Running
from wavry.bench.peers.systems import wait_line
from wavry.platform.xvfb import XvfbError, XvfbServer

__all__ = ["run_windowed"]


def run_windowed(
    w: int, h: int, fps: int, kbps: int, warmup_s: float, seconds: float
) -> tuple[dict[str, Any], list[float]]:
    """Measure `wavry connect` (windowed) against a synthetic host; (summary, latencies)."""
    tmp = Path(tempfile.mkdtemp(prefix="wavry-bench-windowed-"))
    running = Running()
    grabber: Proc | None = None
    settings = MeasureSettings(w, h, fps, seconds, warmup_s, 1.0, tmp)
    out: dict[str, Any] = {"status": "failed", "reason": "did not start"}
    try:
        with XvfbServer(w + VIEWER_MARGIN, h + VIEWER_MARGIN) as display:
            # the host the headless `wavry` variant runs (same flags), as a process of ours
            env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "host"), PYTHONUNBUFFERED="1")
            argv = [sys.executable, "-m", "wavry", "host", "--source", "synthetic"]
            argv += ["--size", f"{w}x{h}", "--fps", str(fps), "--bitrate-kbps", str(kbps)]
            argv += ["--max-bitrate-kbps", str(kbps), "--trust", "any", "--listen", "127.0.0.1:0"]
            host = Proc("wavry-host", argv, env, stdout_pipe=True)
            running.servers.append(host)
            bound = wait_line(host, re.compile(r"listening on udp://\[?([^\]\s]+?)\]?:(\d+)\s*$"))
            if bound is None:
                raise NotRunnable(f"wavry host did not start: {host.log_tail()}")
            env = dict(display.env(), XDG_CONFIG_HOME=str(tmp / "client"))
            argv = [sys.executable, "-m", "wavry", "connect", f"{bound[1]}:{bound[2]}"]
            argv += ["--no-audio", "--timeout-seconds", "20", "--fps", str(fps)]
            running.viewers.append(Proc("wavry-connect", argv, env))
            grabber = start_grabber(display, settings)
            out = follow_grabber(grabber, running, settings)
    except (NotRunnable, XvfbError) as exc:
        out = {"status": "failed", "reason": str(exc)}
    finally:
        for p in (grabber, *running.all()):
            if p is not None:
                p.stop()
                if out.get("status") == "ok":
                    p.remove_log()
        shutil.rmtree(tmp, ignore_errors=True)
    latencies = out.get("timeline", {}).get("latency_ms", [])
    return _as_variant(out), list(latencies)


def _as_variant(out: dict[str, Any]) -> dict[str, Any]:
    """The keys every variant of `wavry bench latency` has, from the grabber's figures."""
    seen = out.get("frames_seen", 0)
    summary = {
        "frames": seen,
        "fps": out.get("fps_shown"),
        "p50_ms": out.get("p50_ms"),
        "p95_ms": out.get("p95_ms"),
        "p99_ms": out.get("p99_ms"),
        "min_ms": out.get("min_ms"),
        "max_ms": out.get("max_ms"),
        "mean_ms": out.get("mean_ms"),
        "unreadable_markers": 0,  # a torn or half-drawn grab is retried, not a corrupt picture
        "out_of_order": out.get("out_of_order", 0),
        "frames_not_presented": out.get("not_shown", 0),
        "queued_behind_newer": out.get("out_of_order", 0),
        "trend_ms_per_s": out.get("trend_ms_per_s"),
        "cpu_host_cores": out.get("cpu_server_cores"),
        "cpu_client_cores": out.get("cpu_viewer_cores"),
        "status": out.get("status"),
    }
    with contextlib.suppress(KeyError):
        summary["grabber_unreadable_grabs"] = out["grabber"]["unreadable_grabs"]
    if out.get("status") != "ok":
        summary["reason"] = out.get("reason")
    return summary
