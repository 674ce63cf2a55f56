"""`wavry bench present`: what showing one decoded picture costs in the client window, per
presenter and stage, at 1280×720 and 1920×1080, at 60 frames per second.

Each presenter runs in its own process on a private Xvfb sized to the picture (SDL, like the
client, picks the X11 driver). A frame is a decoded ``yuv420p`` picture of the synthetic source
(a new one each frame, so nothing is cached). Stages: ``prepare`` (what the decode thread does:
colour conversion and scaling; the I420 paths do nothing here) and ``show`` (the window thread:
upload/copy and present). CPU: the presenter process's and the X server's, per frame.

Presenters, measured side by side in one run:

- ``sdl-software`` — the baseline: SDL's software renderer with an I420 streaming texture (what
  the client used before; SDL converts and scales in one thread);
- ``sdl-opengl``, ``sdl-opengles2`` — SDL's GL renderers (Mesa llvmpipe without a GPU);
- ``surface-swscale`` — the client's CPU path without libyuv: swscale into the window's pixel
  format on the decode thread, then a copy into the window surface (``XShmPutImage``);
- ``surface`` — the client's CPU path as shipped: libyuv converts the decoded I420 picture
  straight into the window surface on the window thread (nothing in ``prepare``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from wavry.bench.report import machine_facts, print_table
from wavry.percentile import percentile

__all__ = ["run_present_bench"]

PRESENTERS = ("sdl-software", "sdl-opengl", "sdl-opengles2", "surface-swscale", "surface")
SIZES = ((1280, 720), (1920, 1080))
FPS = 60


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _frames(w: int, h: int, n: int) -> list[Any]:
    """``n`` decoded-like pictures: the synthetic source, through the real encoder/decoder."""
    from wavry.media.decode import Decoder
    from wavry.media.encode import Codec, Encoder
    from wavry.media.synthetic import SyntheticCapture

    cap = SyntheticCapture(w, h, paced=False)
    enc = Encoder(Codec.H264, w, h, fps=FPS, bitrate_kbps=8000)
    dec = Decoder(Codec.H264)
    out: list[Any] = []
    for i in range(4 * n):
        if len(out) >= n:
            break
        packet = enc.encode(cap.make_frame(i, i * 16_667), force_keyframe=i == 0)
        d = dec.decode(packet.data)
        if d is not None:
            out.append(d.frame)
    return out


def _worker(presenter: str, w: int, h: int, n: int) -> dict[str, Any]:
    from wavry.client.present import RendererPresenter, SurfacePresenter
    from wavry.client.sdl import sdl2

    frames = _frames(w, h, min(n, 90))
    if presenter.startswith("sdl-"):
        driver = presenter.removeprefix("sdl-")
        sdl2.SDL_SetHint(sdl2.SDL_HINT_RENDER_DRIVER, driver.encode())
    sdl2.SDL_InitSubSystem(sdl2.SDL_INIT_VIDEO)
    win = sdl2.SDL_CreateWindow(b"wavry bench present", 0, 0, w, h, sdl2.SDL_WINDOW_SHOWN)
    p: Any
    if presenter.startswith("surface"):
        p = SurfacePresenter(win, w, h, direct=presenter == "surface")
    else:
        p = RendererPresenter(win, w, h, software=presenter == "sdl-software")
    event = sdl2.SDL_Event()
    prepare: list[float] = []
    show: list[float] = []
    cpu0 = time.process_time()
    t_next = time.perf_counter()
    for i in range(n):
        while sdl2.SDL_PollEvent(event):
            pass
        t0 = time.perf_counter()
        prepared = p.prepare(frames[i % len(frames)])
        t1 = time.perf_counter()
        p.show(prepared, None)
        t2 = time.perf_counter()
        prepare.append((t1 - t0) * 1000)
        show.append((t2 - t1) * 1000)
        t_next += 1 / FPS
        time.sleep(max(0.0, t_next - time.perf_counter()))
    cpu = time.process_time() - cpu0
    p.close()
    sdl2.SDL_DestroyWindow(win)
    return {"name": p.name, "prepare_ms": prepare, "show_ms": show, "cpu_s": cpu}


def _stats(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": _round(percentile(values, 0.5)),
        "p95": _round(percentile(values, 0.95)),
        "max": _round(max(values) if values else None),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _run_one(presenter: str, w: int, h: int, n: int) -> dict[str, Any]:
    from wavry.platform.xvfb import XvfbServer

    with XvfbServer(w, h) as x:
        env = dict(x.env(), SDL_VIDEODRIVER="x11")
        assert x._proc is not None
        xpid = x._proc.pid
        x0 = _proc_cpu_s(xpid)
        cmd = [sys.executable, "-m", "wavry.bench.present", presenter, f"{w}x{h}", str(n)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        x_cpu = _proc_cpu_s(xpid) - x0
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"presenter": presenter, "error": tail}
    raw = json.loads(r.stdout.strip().splitlines()[-1])
    total = [a + b for a, b in zip(raw["prepare_ms"], raw["show_ms"], strict=True)]
    frame_ms = 1000 / FPS
    return {
        "presenter": presenter,
        "sdl_name": raw["name"],
        "frames": n,
        "prepare_ms": _stats(raw["prepare_ms"]),
        "show_ms": _stats(raw["show_ms"]),
        "total_ms": _stats(total),
        "share_of_frame_interval_p50": _round((percentile(total, 0.5) or 0) / frame_ms),
        "cpu_client_ms_per_frame": round(raw["cpu_s"] * 1000 / n, 3),
        "cpu_xserver_ms_per_frame": round(x_cpu * 1000 / n, 3),
    }


def run_present_bench(quick: bool = False, json_file: Path | None = None) -> dict[str, Any]:
    n = 120 if quick else 360
    results: dict[str, Any] = {"machine": machine_facts(), "fps": FPS, "sizes": {}}
    for w, h in SIZES:
        rows = []
        runs = [_run_one(p, w, h, n) for p in PRESENTERS]
        results["sizes"][f"{w}x{h}"] = runs
        for r in runs:
            if "error" in r:
                rows.append([r["presenter"], "error: " + r["error"][:60], "", "", "", "", ""])
                continue
            rows.append(
                [
                    r["presenter"],
                    f"{r['prepare_ms']['p50']:.2f}",
                    f"{r['show_ms']['p50']:.2f}",
                    f"{r['total_ms']['p50']:.2f} / {r['total_ms']['p95']:.2f}",
                    f"{r['share_of_frame_interval_p50'] * 100:.0f} %",
                    f"{r['cpu_client_ms_per_frame']:.2f}",
                    f"{r['cpu_xserver_ms_per_frame']:.2f}",
                ]
            )
        print_table(
            f"present {w}x{h} at {FPS} fps (ms per frame; baseline: sdl-software)",
            ["presenter", "prepare p50", "show p50", "total p50 / p95", "of 16.7 ms",
             "client CPU", "X CPU"],
            rows,
        )  # fmt: skip
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {json_file}")
    return results


if __name__ == "__main__":  # the per-presenter worker process
    name, size, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    width, height = (int(v) for v in size.split("x"))
    print(json.dumps(_worker(name, width, height, count)))
