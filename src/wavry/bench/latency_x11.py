"""`wavry bench latency --source x11`: capture on change against capture on a fixed clock.

A private Xvfb display (1280x720) is shared by a real `wavry host --display :N` process, once with
``--capture clock`` (the baseline: a picture every frame interval) and once with
``--capture change`` (DAMAGE), one after the other in the same run. A painter in this process
draws the latency marker (:mod:`wavry.media.marker`: frame id and the wall clock when it is
drawn) onto the display, and an in-process RIFT client decodes what the host sends and reads the
marker back from the decoded picture. Three phases per variant:

- ``still``: nothing changes for the whole phase: host CPU, frames and bytes sent;
- ``sparse``: a change at random moments, 20–80 ms apart (typing, clicking, a menu): the wait
  between a change and its capture, and change → decoded picture;
- ``animated``: a change every 1/60 s (video, scrolling): the same figures, and host CPU.

Per phase, for the first decoded picture that shows each change (later pictures of the same
marker — clock ticks, refreshes — are not new changes): ``wait_ms`` = the frame's capture
timestamp (x11grab's clock) − the marker's draw time, i.e. how long the change waited before it
was captured; ``latency_ms`` = decoded − drawn (capture wait + capture + encode + loopback network
+ decode), both on this machine's one clock. A change overwritten before any picture showed it
is not counted (``changes_missed``). Host CPU = the host process's utime+stime over the phase, in
cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from wavry.bench.report import print_table
from wavry.media.marker import marker_bits, marker_layout, read_marker
from wavry.percentile import percentile
from wavry.platform.xvfb import XvfbServer

__all__ = ["run_x11_capture_bench"]

W, H, FPS = 1280, 720, 60
PHASES = ("still", "sparse", "animated")


class MarkerPainter:
    """Draws the marker band onto the root window of an X display on its own connection."""

    def __init__(self, server: XvfbServer) -> None:
        from Xlib import X

        from wavry.platform.xdisplay import open_display

        self._X = X
        self.d = open_display(server.display, str(server.auth_file))
        self.root = self.d.screen().root
        self.gc = self.root.create_gc(foreground=0x808080)
        self.root.fill_rectangle(self.gc, 0, 0, W, H)  # a grey desktop
        self.d.sync()
        self.layout = marker_layout(W)
        self.frame_id = 0

    def paint(self) -> None:
        lay = self.layout
        self.frame_id += 1
        ts_us = time.time_ns() // 1000
        bits = np.zeros(lay.per_row * lay.rows, dtype=np.uint8)
        bits[: len(marker_bits(0, 0))] = marker_bits(self.frame_id, ts_us)
        grid = np.where(bits.reshape(lay.rows, lay.per_row) == 1, 255, 0).astype(np.uint8)
        band = np.repeat(np.repeat(grid, lay.block, axis=0), lay.block, axis=1)
        bgrx = np.repeat(band[:, :, None], 4, axis=2)  # grey levels: B = G = R
        h, w = band.shape
        self.root.put_image(self.gc, 0, 0, w, h, self._X.ZPixmap, 24, 0, bgrx.tobytes())
        self.d.sync()

    def close(self) -> None:
        self.d.close()


def _proc_cpu_s(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Phase:
    def __init__(self) -> None:
        self.wait_ms: list[float] = []
        self.latency_ms: list[float] = []
        self.frames = 0
        self.bytes = 0
        self.unreadable = 0
        self.span_s = 0.0
        self.host_cpu_cores: float | None = None
        self.last_marker = -1  # a marker counts once: the first picture that shows it
        self.missed = 0  # changes drawn over before any picture showed them


async def _client(
    port: int,
    host_pid: int,
    config_dir: Path,
    schedule: list[tuple[str, float]],
    painter: MarkerPainter,
) -> dict[str, _Phase]:
    """Receive, decode and read markers while the painter runs each phase in turn."""
    from wavry.media.decode import Decoder
    from wavry.rift.config import ClientConfig
    from wavry.rift.transport import FrameReady
    from wavry.runtime.session import establish

    config = ClientConfig(name="bench", max_width=W, max_height=H, max_fps=FPS)
    est = await establish("127.0.0.1", port, config, timeout=20, config_dir=config_dir)
    decoder = Decoder("h264")
    phases = {name: _Phase() for name, _ in schedule}
    current: list[_Phase | None] = [None]
    stop = threading.Event()

    painting = ["none"]  # the phase the client measures now: the painter follows it

    def paint_thread() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            name = painting[0]
            if name not in ("sparse", "animated"):
                time.sleep(0.02)
                continue
            painter.paint()
            time.sleep(1 / FPS if name == "animated" else rng.uniform(0.02, 0.08))

    async def receive() -> None:
        # the stop flag too: Python 3.11's wait_for can swallow a cancellation at its timeout
        while not stop.is_set():
            try:
                event = await est.conn.next_event(0.5)
            except TimeoutError:
                continue
            if not isinstance(event, FrameReady):
                continue
            f = event.frame
            decoded = decoder.decode(f.data)
            now_us = time.time_ns() // 1000
            phase = current[0]
            if phase is None or decoded is None:
                continue
            phase.frames += 1
            phase.bytes += len(f.data)
            mark = read_marker(decoded.frame)
            if mark is None:
                phase.unreadable += 1
                continue
            marker_id, drawn_us = mark
            if marker_id <= phase.last_marker:
                continue  # the same change again (a clock tick, a refresh): not a new change
            if phase.last_marker >= 0:
                phase.missed += marker_id - phase.last_marker - 1
            phase.last_marker = marker_id
            phase.wait_ms.append((f.timestamp_us - drawn_us) / 1000)
            phase.latency_ms.append((now_us - drawn_us) / 1000)

    task = asyncio.create_task(receive())
    painter_t = threading.Thread(target=paint_thread, daemon=True)
    painter_t.start()
    try:
        await asyncio.sleep(1.0)  # the first keyframe is through
        for name, seconds in schedule:
            painting[0] = name
            warm = min(4.0 if name == "still" else 1.0, seconds / 2)  # still: refreshes over
            await asyncio.sleep(warm)
            phase = phases[name]
            current[0] = phase
            cpu0, t0 = _proc_cpu_s(host_pid), time.monotonic()
            await asyncio.sleep(seconds - warm)
            current[0] = None
            phase.span_s = time.monotonic() - t0
            phase.host_cpu_cores = (_proc_cpu_s(host_pid) - cpu0) / phase.span_s
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await est.conn.close("bench done")
        # the painter's X connection is the next variant's too: one thread at a time
        await asyncio.get_running_loop().run_in_executor(None, painter_t.join, 5.0)
    return phases


def _run_variant(
    mode: str, server: XvfbServer, painter: MarkerPainter, seconds: float, tmp: Path
) -> dict[str, Any]:
    from wavry.net.loop import run as run_loop

    env = dict(
        os.environ,
        XDG_CONFIG_HOME=str(tmp / f"host-{mode}"),
        PYTHONUNBUFFERED="1",
        XAUTHORITY=str(server.auth_file),
    )
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "-m", "wavry", "host", "--listen", "127.0.0.1:0", "--trust", "any"]
    cmd += ["--display", server.display, "--fps", str(FPS), "--capture", mode, "--audio", "off"]
    cmd += ["--bitrate-kbps", "8000", "--max-bitrate-kbps", "8000"]
    host = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = host.stdout.readline()
            if not line:
                break
            if m := re.search(r"listening on udp://127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
        if port is None:
            raise RuntimeError(f"wavry host --capture {mode} did not start")
        threading.Thread(target=lambda: host.stdout and host.stdout.read(), daemon=True).start()
        schedule = [(name, seconds) for name in PHASES]
        phases = run_loop(_client(port, host.pid, tmp / f"client-{mode}", schedule, painter))
    finally:
        host.terminate()
        try:
            host.wait(10)
        except subprocess.TimeoutExpired:
            host.kill()
            host.wait(5)
    out: dict[str, Any] = {}
    for name, p in phases.items():
        span = p.span_s or seconds
        out[name] = {
            "frames": p.frames,
            "frames_per_s": p.frames / span,
            "kbit_per_s": p.bytes * 8 / 1000 / span,
            "host_cpu_cores": p.host_cpu_cores,
            "wait_ms_p50": percentile(p.wait_ms, 0.5),
            "wait_ms_p95": percentile(p.wait_ms, 0.95),
            "latency_ms_p50": percentile(p.latency_ms, 0.5),
            "latency_ms_p95": percentile(p.latency_ms, 0.95),
            "changes_shown": len(p.latency_ms),
            "changes_missed": p.missed,
            "unreadable_markers": p.unreadable,
        }
    return out


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def run_x11_capture_bench(quick: bool = False, verbose: bool = True) -> dict[str, Any]:
    """Both variants on one display, one after the other; returns the JSON dict."""
    seconds = 6.0 if quick else 12.0
    results: dict[str, Any] = {
        "bench": "latency-x11-capture",
        "settings": {
            "display": f"Xvfb {W}x{H}",
            "fps_cap": FPS,
            "seconds_per_phase": seconds,
            "phases": {
                "still": "nothing drawn (measured from 4 s after the last change)",
                "sparse": "a marker drawn every 20-80 ms (uniform, seeded)",
                "animated": f"a marker drawn every 1/{FPS} s",
            },
            "wait_ms": "capture timestamp - draw time (how long a change waited to be captured)",
            "latency_ms": "decoded on the client - draw time (one machine, one clock)",
            "loadavg_before": os.getloadavg(),
        },
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="wavry-bench-x11-") as tmp:
        server = XvfbServer(W, H).start()
        painter = MarkerPainter(server)
        try:
            for mode in ("clock", "change"):
                if verbose:
                    print(f"  x11 --capture {mode}: 3 phases of {seconds:g} s ...", file=sys.stderr)
                results["variants"][mode] = _run_variant(mode, server, painter, seconds, Path(tmp))
        finally:
            painter.close()
            server.stop()
    results["settings"]["loadavg_after"] = os.getloadavg()
    if verbose:
        rows = []
        for mode, phases in results["variants"].items():
            for name, r in phases.items():
                rows.append(
                    [
                        mode,
                        name,
                        _f(r["frames_per_s"], 1),
                        _f(r["kbit_per_s"], 1),
                        _f(r["host_cpu_cores"], 3),
                        _f(r["wait_ms_p50"]),
                        _f(r["wait_ms_p95"]),
                        _f(r["latency_ms_p50"]),
                        _f(r["latency_ms_p95"]),
                    ]
                )
        print_table(
            "X11 capture on change vs on a clock (1280x720, 60 fps cap, loopback)",
            [
                "capture",
                "phase",
                "frames/s",
                "kbit/s",
                "host CPU",
                "wait p50",
                "wait p95",
                "latency p50",
                "latency p95",
            ],
            rows,
        )
    return results
