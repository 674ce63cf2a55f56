"""The ``browser`` variant of `wavry bench latency`: the same marker, measured in the page.

A real ``wavry host --web --source synthetic`` subprocess (same source, encoder settings and
bitrate ceiling as the ``wavry`` variant) and the browser client in headless Chromium (Debian's
``/usr/bin/chromium`` driven by Playwright) over WebTransport on loopback. The page reads the
marker from every decoded ``VideoFrame`` and reports, per frame, (time the frame was drawn on the
canvas + the Ping/Pong clock offset) − (the capture timestamp in the marker): the glass-to-glass
figure of the native client, taken at the same point (decoded and drawn, headless).

CPU: host = the host subprocess's utime+stime over the measured window; browser = every
process of this Chromium instance (found by its private profile directory) over the same window.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from wavry.percentile import percentile
from wavry.runtime.processes import WavryProcess, wavry_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class BrowserBenchError(RuntimeError):
    """The browser variant cannot run here (no Chromium, page not built, host failed)."""


def _proc_cpu_s(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _profile_cpu_s(profile: str) -> float:
    """utime+stime of every process whose command line names ``profile``."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if profile.encode() in (entry / "cmdline").read_bytes():
                total += _proc_cpu_s(int(entry.name))
        except (OSError, ValueError):
            continue
    return total


class _WebHost(WavryProcess):
    """``wavry host --web 127.0.0.1:0 --source synthetic`` with its own configuration."""

    def __init__(self, w: int, h: int, fps: int, kbps: int, home: Path) -> None:
        args = ["host", "--source", "synthetic", "--size", f"{w}x{h}", "--fps", str(fps)]
        args += ["--bitrate-kbps", str(kbps), "--max-bitrate-kbps", str(kbps), "--trust", "any"]
        args += ["--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"]
        super().__init__(args, wavry_env(home))

    def wait_url(self, timeout: float = 30.0) -> str:
        m = self.wait_line(r"^browser: (https://\S+)", timeout)
        if m is None:
            self.stop(5)
            raise BrowserBenchError("wavry host --web did not start: " + self.text()[-2000:])
        return m.group(1)

    def cpu_s(self) -> float:
        return _proc_cpu_s(self.proc.pid)


def _summary(samples: list[float], stats: dict[str, Any], seconds: float) -> dict[str, Any]:
    n = len(samples)
    return {
        "frames": n,
        "fps": n / seconds if seconds > 0 else None,
        "p50_ms": percentile(samples, 0.50),
        "p95_ms": percentile(samples, 0.95),
        "p99_ms": percentile(samples, 0.99),
        "min_ms": min(samples) if samples else None,
        "max_ms": max(samples) if samples else None,
        "mean_ms": sum(samples) / n if n else None,
        "unreadable_markers": int(stats.get("video", {}).get("markerBad", 0) or 0),
        "out_of_order": int(stats.get("markerOutOfOrder", 0) or 0),
        "queued_behind_newer": int(stats.get("markerOutOfOrder", 0) or 0),
        "frames_skipped_by_page": int(stats.get("framesSkipped", 0) or 0),
        "transport": stats.get("transport"),
        "page_e2e_p50_ms": stats.get("e2eP50MsSession"),
        "page_e2e_p95_ms": stats.get("e2eP95MsSession"),
        # what DELTA made of the page's feedback: a page has no kernel receive timestamps, so a
        # browser descheduled on a loaded machine looks like a queue to the host
        "bitrate_kbps": stats.get("bitrateKbps"),
        "target_kbps_at_end": stats.get("targetKbps"),
        "rtt_ms": stats.get("rttMs"),
        # the page's own split (last 10 s): host send → last chunk in the page, and decode
        # start → drawn on the canvas
        "page_network_p50_ms": stats.get("networkP50Ms"),
        "page_decode_to_drawn_p50_ms": stats.get("decodeP50Ms"),
        "clock_offset_ms": stats.get("clockOffsetMs"),
    }


def _wait_frames(page: Any, timeout: float) -> None:
    # polled with evaluate(): the page's CSP forbids the eval() wait_for_function would use
    deadline = time.monotonic() + timeout
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = page.evaluate("window.wavryStats ? window.wavryStats() : {}")
        if stats.get("framesDecoded", 0) > 0:
            return
        time.sleep(0.2)
    raise BrowserBenchError(f"the page decoded no frame in {timeout:g} s: {stats}")


def run_browser(
    w: int,
    h: int,
    fps: int,
    kbps: int,
    warmup_s: float,
    seconds: float,
    transport: str = "webtransport",
) -> tuple[dict[str, Any], list[float]]:
    if shutil.which(CHROMIUM) is None:
        raise BrowserBenchError(f"{CHROMIUM} is not installed (scripts/setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="wavry-bench-web-") as tmp:
        host = _WebHost(w, h, fps, kbps, Path(tmp) / "host")
        profile = str(Path(tmp) / "chromium-profile")
        try:
            url = host.wait_url()
            query = "?marker=1" + ("&transport=websocket" if transport == "websocket" else "")
            base, frag = url.split("#", 1)
            with sync_playwright() as p:
                ctx = p.chromium.launch_persistent_context(
                    profile,
                    executable_path=CHROMIUM,
                    args=CHROMIUM_ARGS,
                    ignore_https_errors=True,
                    viewport={"width": w, "height": h + 80},
                )
                try:
                    page = ctx.new_page()
                    page.goto(f"{base}{query}#{frag}")
                    _wait_frames(page, 30.0)
                    time.sleep(warmup_s)
                    page.evaluate("window.wavryResetSamples()")
                    cpu0, host0, wall0 = _profile_cpu_s(profile), host.cpu_s(), time.monotonic()
                    time.sleep(seconds)
                    samples: list[float] = page.evaluate("window.wavryMarkerSamples()")
                    stats: dict[str, Any] = page.evaluate("window.wavryStats()")
                    wall = time.monotonic() - wall0
                    browser_cpu = (_profile_cpu_s(profile) - cpu0) / wall
                    host_cpu = (host.cpu_s() - host0) / wall
                finally:
                    ctx.close()
        finally:
            host.stop()
    out = _summary(samples, stats, wall)
    out["cpu_host_cores"] = host_cpu
    out["cpu_browser_cores"] = browser_cpu
    return out, samples
