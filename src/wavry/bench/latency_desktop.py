"""The desktop rows of `wavry bench latency`: a marker drawn by a real application window →
the decoded picture on the client, on X11 and on Wayland (GNOME), in the same run.

Both rows run the same GTK window (:mod:`wavry.testing.wayland_client`): on every frame it paints
the marker with the wall-clock time of drawing, so latency = (decoded picture ready) − (drawn),
one machine, one clock. It includes what the desktop adds (the application's frame clock, the
compositor, the capture back-end) on top of what the synthetic rows measure.

- ``x11``: Xvfb (no compositor) + the window with GDK's X11 back-end + ``wavry host --source x11``
  (XShm capture).
- ``wayland-gnome``: a headless GNOME Shell (:class:`wavry.testing.gnome.HeadlessGnome`, llvmpipe)
  + the window as a Wayland client + ``wavry host --source wayland`` (Mutter ScreenCast →
  PipeWire).

The client is the same in-process RIFT client as the ``wavry`` row (:func:`_wavry_client`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from wavry.bench import latency
from wavry.bench.latency_report import fmt
from wavry.net.loop import run as run_loop
from wavry.runtime.processes import HostProcess, start_host, wavry_env

__all__ = ["DESKTOP_SIZE", "run_desktop_rows"]

DESKTOP_SIZE = (1280, 720, 30)


def _desktop_host(source_args: list[str], env: dict[str, str], fps: int, kbps: int) -> HostProcess:
    """`wavry host` on a desktop source, with the environment of that desktop, started."""
    args = [*source_args, "--fps", str(fps), "--bitrate-kbps", str(kbps)]
    args += ["--max-bitrate-kbps", str(kbps), "--trust", "any", "--audio", "off"]
    return start_host(args, wavry_env(extra=env), timeout=60, merge=False)


def _measure(
    source_args: list[str], env: dict[str, str], warmup_s: float, seconds: float
) -> dict[str, Any]:
    w, h, fps = DESKTOP_SIZE
    kbps = latency.BITRATE_KBPS.get((w, h), 8000)
    with tempfile.TemporaryDirectory(prefix="wavry-bench-desktop-") as tmp:
        host = _desktop_host(source_args, dict(env, XDG_CONFIG_HOME=f"{tmp}/host"), fps, kbps)
        try:
            addr = host.address
            out, _col = run_loop(
                latency._wavry_client(host, addr, Path(tmp) / "client", warmup_s, seconds)
            )
        finally:
            host.stop()
    out["host_banner"] = [ln.strip() for _, ln in host.lines if "picture" in ln]
    return out


def _marker_window(env: dict[str, str], x11: bool) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "wavry.testing.wayland_client"] + (["--x11"] if x11 else [])
    proc = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # "ready WxH" once the first frame is drawn
        if line.startswith("ready"):
            break
    else:
        proc.wait()
        raise RuntimeError("the marker window did not start")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def _run_x11(warmup_s: float, seconds: float) -> dict[str, Any]:
    from wavry.platform.xvfb import XvfbServer

    w, h, _fps = DESKTOP_SIZE
    with XvfbServer(w, h) as xvfb:
        env = dict(xvfb.env())
        for k in ("WAYLAND_DISPLAY",):
            env.pop(k, None)
        window = _marker_window(env, x11=True)
        try:
            return _measure(["--source", "x11", "--display", xvfb.display], env, warmup_s, seconds)
        finally:
            _end(window)


def _run_gnome(warmup_s: float, seconds: float) -> dict[str, Any]:
    from wavry.testing.gnome import HeadlessGnome

    w, h, _fps = DESKTOP_SIZE
    with HeadlessGnome(w, h) as gnome:
        gnome.client()
        deadline = time.monotonic() + 10
        while not gnome.leave_overview() and time.monotonic() < deadline:
            time.sleep(0.2)
        return _measure(["--source", "wayland"], gnome.env(), warmup_s, seconds)


def run_desktop_rows(warmup_s: float, seconds: float, verbose: bool = True) -> dict[str, Any]:
    """Measure the X11 and Wayland/GNOME rows one after the other; a row that cannot run here
    says why (``skipped``)."""
    rows: dict[str, Any] = {}
    for name, fn in (("x11", _run_x11), ("wayland-gnome", _run_gnome)):
        if verbose:
            w, h, fps = DESKTOP_SIZE
            print(f"  desktop {w}x{h}@{fps} {name}: {seconds:g} s ...", file=sys.stderr)
        try:
            rows[name] = fn(warmup_s, seconds)
        except Exception as exc:  # a desktop missing here is a finding, not a crash
            rows[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
    return rows


def print_desktop_rows(rows: dict[str, Any]) -> None:
    w, h, fps = DESKTOP_SIZE
    print(f"\ndesktop window marker → decoded picture, {w}x{h}@{fps} (same run)")
    head = ("row", "frames", "fps", "p50 ms", "p95 ms", "host cores", "client cores")
    print("  ".join(f"{c:>13}" for c in head))
    for name, r in rows.items():
        if "skipped" in r:
            print(f"{name:>13}  skipped: {r['skipped']}")
            continue
        cells = (
            name,
            str(r["frames"]),
            fmt(r["fps"]),
            fmt(r["p50_ms"]),
            fmt(r["p95_ms"]),
            f"{r['cpu_host_cores']:.2f}",
            f"{r['cpu_client_cores']:.2f}",
        )
        print("  ".join(f"{c:>13}" for c in cells))
