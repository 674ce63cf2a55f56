"""One measurement of `wavry bench peers`: two fresh Xvfb displays, the animation on A, one
system (or none: the grabber's floor reads A itself), the grabber, CPU and load around the
measured window."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wavry.bench.peers.marks import Sighting, summarize
from wavry.bench.peers.procs import Proc, tree_cpu_s
from wavry.bench.peers.stage import NetPath, NotRunnable, Running, Stage, SystemUnderTest
from wavry.platform.xvfb import XvfbError, XvfbServer

__all__ = [
    "FLOOR",
    "VIEWER_MARGIN",
    "MeasureSettings",
    "follow_grabber",
    "measure_one",
    "start_grabber",
]

FLOOR = "grabber floor"
_LOCATE_TIMEOUT_S = 40.0
VIEWER_MARGIN = 64  # pixels display B has beyond the picture, in each direction


class MeasureSettings:
    def __init__(
        self,
        width: int,
        height: int,
        fps: int,
        seconds: float,
        warmup_s: float,
        grab_interval_ms: float,
        cache_dir: Path,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.seconds, self.warmup_s = seconds, warmup_s
        self.grab_interval_ms = grab_interval_ms
        self.cache_dir = cache_dir


class _Lines:
    """Lines of a process's stdout, read by a thread, taken with a timeout."""

    def __init__(self, proc: Proc) -> None:
        self._q: queue.Queue[str | None] = queue.Queue()
        stdout = proc.popen.stdout
        assert stdout is not None

        def pump() -> None:
            with contextlib.suppress(ValueError, OSError):  # the pipe closed under us
                for line in stdout:
                    self._q.put(line.rstrip("\n"))
            self._q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout_s: float) -> str | None:
        try:
            return self._q.get(timeout=timeout_s)
        except queue.Empty:
            return None


def _python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def measure_one(
    system: SystemUnderTest | None, path: NetPath, st: MeasureSettings
) -> dict[str, Any]:
    """Measure ``system`` on ``path`` (None: the grabber's floor). Never raises for a system
    that fails: the result's ``status`` is ``ok``, ``not run`` or ``failed`` with a ``reason``."""
    name = FLOOR if system is None else system.name
    result: dict[str, Any] = {"system": name, "path": path.name}
    if system is not None:
        result["tuning"] = system.tuning(path.name)
        why = system.missing()
        if why is not None:
            return {**result, "status": "not run", "reason": why}
    workdir = Path(tempfile.mkdtemp(prefix="wavry-peers-"))
    running = Running()
    drawer = grabber = None
    try:
        # display B has room around the picture: a viewer's window frame, menu bar or
        # scrollbars must not hide part of it (nor make the viewer scale it)
        disp_b = XvfbServer(st.width + VIEWER_MARGIN, st.height + VIEWER_MARGIN)
        with XvfbServer(st.width, st.height) as disp_a, disp_b:
            try:
                drawer = Proc(
                    "animate",
                    _python_module(
                        "wavry.bench.peers.animate",
                        *("--width", str(st.width), "--height", str(st.height)),
                        *("--fps", str(st.fps)),
                    ),
                    disp_a.env(),
                    stdout_pipe=True,
                )
                stage = Stage(
                    st.width, st.height, st.fps, disp_a, disp_b, path, workdir, st.cache_dir
                )
                if system is not None:
                    running = system.start(stage)
                grabber = start_grabber(disp_a if system is None else disp_b, st)
                result.update(follow_grabber(grabber, running, st, path.counters))
                drawer_out = drawer.finish()
                if drawer_out.strip():
                    result["animation"] = json.loads(drawer_out.strip().splitlines()[-1])
            finally:
                # while the displays are still up: viewers see a clean end, not a dead X server
                for proc in (grabber, *running.all(), drawer):
                    if proc is not None:
                        proc.stop()
                for key, read in running.after_stop.items():
                    value = read()
                    if value is not None:
                        result[key] = value
    except NotRunnable as exc:
        result.update(status="failed", reason=str(exc))
    except (OSError, ValueError) as exc:  # a program that cannot start, garbled output
        result.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    except XvfbError as exc:
        result.update(status="failed", reason=f"Xvfb: {exc}")
    finally:
        for p in (grabber, *running.all(), drawer):
            if p is not None:
                if result.get("status") == "ok":
                    p.remove_log()
                else:
                    result.setdefault("logs", []).append(str(p.log_path))
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def start_grabber(display: XvfbServer, st: MeasureSettings) -> Proc:
    """The grabber process watching ``display`` for a ``st.width``-wide picture's marker."""
    return Proc(
        "grab",
        _python_module(
            "wavry.bench.peers.grab",
            *("--source-width", str(st.width), "--source-height", str(st.height)),
            *("--seconds", str(st.seconds)),
            *("--warmup-seconds", str(st.warmup_s)),
            *("--interval-ms", str(st.grab_interval_ms)),
            *("--locate-timeout-seconds", str(_LOCATE_TIMEOUT_S)),
        ),
        display.env(),
        stdout_pipe=True,
    )


def follow_grabber(
    grabber: Proc,
    running: Running,
    st: MeasureSettings,
    link_counters: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Wait for the grabber's measured window, sampling CPU (per side), load average and the
    link's counters at its start and end; returns the figures (raises NotRunnable)."""
    lines = _Lines(grabber)
    first = lines.next(_LOCATE_TIMEOUT_S + 15)
    if first is None or not first.startswith("located"):
        dead = running.dead()
        why = first or "no answer from the grabber"
        raise NotRunnable(f"{why}{f'; {dead}' if dead else ''}")
    started = lines.next(st.warmup_s + 15)
    if started != "measuring":
        raise NotRunnable(f"grabber: {started or 'silent'}; {grabber.log_tail()}")
    servers = [p.pid for p in running.servers]
    viewers = [p.pid for p in running.viewers]
    wall0 = time.monotonic()
    cpu_s0, cpu_v0 = tree_cpu_s(servers), tree_cpu_s(viewers)
    load0 = os.getloadavg()
    counters = link_counters if running.servers else None
    link0 = counters() if counters else None
    final = lines.next(st.seconds + 20)
    wall = time.monotonic() - wall0
    cpu_s1, cpu_v1 = tree_cpu_s(servers), tree_cpu_s(viewers)
    load1 = os.getloadavg()
    link1 = counters() if counters else None
    if final is None or not final.startswith("{"):
        raise NotRunnable(f"grabber: {final or 'silent'}; {grabber.log_tail()}")
    grab = json.loads(final)
    died = running.dead()
    sightings = [Sighting(*s) for s in grab.pop("sightings")]
    out: dict[str, Any] = {"status": "ok"}
    out.update(summarize(sightings, grab["window_s"]))
    if running.servers:
        out["cpu_server_cores"] = (cpu_s1 - cpu_s0) / wall
        out["cpu_viewer_cores"] = (cpu_v1 - cpu_v0) / wall
    out["loadavg_start"] = list(load0)
    out["loadavg_end"] = list(load1)
    out["grabber"] = grab
    for key, probe in running.probes.items():
        running.facts[key] = probe()
    out["facts"] = running.facts
    if link0 is not None and link1 is not None:
        out["link"] = {
            direction: {
                "mbit_s": (link1[direction]["bytes"] - c["bytes"]) * 8 / wall / 1e6,
                "dropped": link1[direction]["dropped"] - c["dropped"],
            }
            for direction, c in link0.items()
            if direction in link1
        }
    if died:
        out["note"] = f"a process exited during the run: {died}"
    t0 = sightings[0].seen_us if sightings else 0
    out["timeline"] = {
        "t_s": [round((s.seen_us - t0) / 1e6, 4) for s in sightings],
        "latency_ms": [round(s.latency_ms, 3) for s in sightings],
    }
    if not sightings:
        out.update(status="failed", reason="no marker value was seen during the measured window")
    return out
