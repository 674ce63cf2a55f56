"""`wavry bench peers`: the measurement logic (marker location, trend slope, percentiles) and a
short smoke of the whole harness on this machine (real Xvfb displays, real wavry, real VNC when
installed), checking the JSON shape and that frames were actually seen. No assertions on the
latency figures themselves (shared, noisy machines): they belong to the benchmark's report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from wavry.bench.peers.marks import (
    Sighting,
    locate_marker,
    read_marker_at,
    summarize,
    trend_ms_per_s,
)
from wavry.media.marker import draw_marker, marker_layout
from wavry.percentile import percentile


def _screen_with_marker(
    w: int, h: int, src_w: int, x: int, y: int, fid: int, ts: int
) -> np.ndarray:
    """A grey screen w×h with a src_w-wide picture's marker drawn 1:1 at (x, y)."""
    screen = np.full((h, w), 90, dtype=np.uint8)
    lay = marker_layout(src_w)
    picture = np.full((lay.height, src_w), 90, dtype=np.uint8)
    draw_marker(picture, fid, ts)
    screen[y : y + lay.height, x : x + lay.width] = picture[:, : lay.width]
    return screen


@pytest.mark.parametrize("src_w", [1280, 1920, 640])
def test_locate_and_read_marker_at_any_offset(src_w: int) -> None:
    ts = 1_790_000_000_123_456
    screen = _screen_with_marker(src_w + 40, 200, src_w, 23, 57, 4242, ts)
    found = locate_marker(screen, src_w)
    assert found is not None
    # the reader samples the middle of each block, so a few pixels off still reads
    slack = marker_layout(src_w).block // 4
    assert abs(found[0] - 23) <= slack and abs(found[1] - 57) <= slack
    assert read_marker_at(screen, *found, src_w) == (4242, ts)
    assert read_marker_at(screen, 23, 57, src_w) == (4242, ts)
    half = marker_layout(src_w).block // 2
    assert read_marker_at(screen, 23 + half, 57, src_w) is None  # half a block off: nothing


def test_locate_marker_finds_nothing_on_an_empty_or_scaled_screen() -> None:
    assert locate_marker(np.full((720, 1280), 90, dtype=np.uint8), 1280) is None
    # the same picture shown at half size (a scaling viewer) is not readable
    screen = _screen_with_marker(1280, 720, 1280, 0, 0, 7, 1_790_000_000_000_000)
    half = np.full((720, 1280), 90, dtype=np.uint8)
    half[:360, :640] = screen[::2, ::2]
    assert locate_marker(half, 1280) is None


def test_trend_slope_of_a_growing_queue_and_a_steady_one() -> None:
    t = [i / 60 for i in range(600)]
    growing = [40 + 260 * x for x in t]  # +260 ms per second
    assert trend_ms_per_s(t, growing) == pytest.approx(260.0)
    rng = np.random.default_rng(1)
    steady = list(9 + rng.normal(0, 1.5, len(t)))
    slope = trend_ms_per_s(t, steady)
    assert slope is not None and abs(slope) < 0.5
    assert trend_ms_per_s([0.0, 1.0], [1.0, 2.0]) is None  # too few points


def test_summarize_uses_the_project_percentile_and_counts_frames() -> None:
    base = 1_790_000_000_000_000
    lat_ms = [5.0, 7.0, 9.0, 30.0, 6.0, 8.0]
    ids = [10, 11, 13, 14, 12, 16]  # 15 never shown; 12 seen after 13 and 14
    sightings = [
        Sighting(fid, base + i * 16_667, base + i * 16_667 + int(lat * 1000))
        for i, (fid, lat) in enumerate(zip(ids, lat_ms, strict=True))
    ]
    s = summarize(sightings, window_s=0.5)
    assert s["frames_seen"] == 6
    assert s["fps_shown"] == pytest.approx(12.0)
    assert s["p50_ms"] == pytest.approx(percentile(lat_ms, 0.5))
    assert s["p95_ms"] == pytest.approx(percentile(lat_ms, 0.95))
    assert s["p99_ms"] == pytest.approx(percentile(lat_ms, 0.99))
    assert s["max_ms"] == pytest.approx(30.0)
    assert s["not_shown"] == 1
    assert s["out_of_order"] == 1
    empty = summarize([], window_s=1.0)
    assert empty["frames_seen"] == 0 and empty["p50_ms"] is None


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_smoke_floor_wavry_and_vnc_json_shape(tmp_path: Path) -> None:
    from wavry.bench.peers.run import run_peers_bench

    systems = ["wavry"]
    if shutil.which("x11vnc") and shutil.which("xtigervncviewer"):
        systems.append("vnc")
    out = tmp_path / "peers.json"
    results = run_peers_bench(
        paths=["loopback"],
        systems=systems,
        width=640,
        height=360,
        fps=30,
        seconds=2.0,
        warmup_s=1.0,
        json_file=out,
        verbose=False,
    )
    data = json.loads(out.read_text())
    assert data["bench"] == "peers" and data == json.loads(json.dumps(results))
    assert set(data["settings"]) >= {"width", "height", "fps", "seconds", "loadavg_before"}
    by_system = data["paths"]["loopback"]
    assert set(by_system) == {"grabber floor", *systems}
    for name, r in by_system.items():
        assert r["status"] == "ok", (name, r.get("reason"), r.get("logs"))
        assert r["frames_seen"] > 10, name  # frames really went from display A to display B
        for key in ("p50_ms", "p95_ms", "p99_ms", "fps_shown", "trend_ms_per_s"):
            assert isinstance(r[key], float), (name, key)
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
        assert len(r["loadavg_start"]) == 3 and len(r["loadavg_end"]) == 3
        assert len(r["timeline"]["t_s"]) == len(r["timeline"]["latency_ms"]) == r["frames_seen"]
        if name != "grabber floor":
            assert r["cpu_server_cores"] > 0 and r["cpu_viewer_cores"] > 0
    for kind in ("timeline", "cdf"):
        assert (tmp_path / f"peers-{kind}.png").stat().st_size > 1000


@pytest.mark.timeout(60)
def test_bottleneck_link_delays_and_limits_both_directions() -> None:
    """The bottleneck path: packets cross between the two namespaces with the configured one-way
    delay each way, and a bulk TCP transfer is held to the tbf rate."""
    from wavry.bench.peers.link import BottleneckLink, link_missing

    why = link_missing()
    if why is not None:
        pytest.skip(why)
    echo = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5002))\n"
        "for _ in range(20):\n"
        "    d, a = s.recvfrom(2000); s.sendto(d, a)\n"
    )
    probe = (
        "import socket, time, sys\n"
        "c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(2)\n"
        "rtts = []\n"
        "for _ in range(20):\n"
        "    t = time.perf_counter(); c.sendto(b'x' * 100, (sys.argv[1], 5002)); c.recvfrom(2000)\n"
        "    rtts.append((time.perf_counter() - t) * 1000); time.sleep(0.01)\n"
        "print(sorted(rtts)[10])\n"
    )
    sink = (
        "import socket, time\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('0.0.0.0', 5003)); s.listen(); c, _ = s.accept(); t = time.time()\n"
        "while time.time() - t < 2: c.sendall(b'x' * 65536)\n"
        "c.close()\n"
    )
    drain = (
        "import socket, sys, time\n"
        "c = socket.create_connection((sys.argv[1], 5003)); t = time.time(); n = 0\n"
        "while (d := c.recv(65536)): n += len(d)\n"
        "print(n * 8 / (time.time() - t) / 1e6)\n"
    )
    with BottleneckLink(rate_kbps=4000, delay_ms=15) as link:
        ns_exec = ["ip", "netns", "exec"]
        server = subprocess.Popen([*ns_exec, link.server_ns, sys.executable, "-c", echo])
        time.sleep(0.3)
        rtt = subprocess.run(
            [*ns_exec, link.viewer_ns, sys.executable, "-c", probe, link.server_addr],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        server.wait(5)
        assert 30.0 <= float(rtt.stdout) < 80.0  # 15 ms each way
        server = subprocess.Popen([*ns_exec, link.server_ns, sys.executable, "-c", sink])
        time.sleep(0.3)
        bulk = subprocess.run(
            [*ns_exec, link.viewer_ns, sys.executable, "-c", drain, link.server_addr],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        server.wait(5)
        assert 2.0 < float(bulk.stdout) <= 4.2  # Mbit/s of payload through a 4 Mbit/s tbf
        assert link.counters()["to_viewer"]["bytes"] > 500_000


def test_targets_of_the_issue_from_a_run() -> None:
    from wavry.bench.peers.targets import evaluate_targets

    def ok(p50: float, p95: float, fps: float = 60.0, trend: float = 0.1) -> dict[str, object]:
        return {
            "status": "ok",
            "p50_ms": p50,
            "p95_ms": p95,
            "fps_shown": fps,
            "trend_ms_per_s": trend,
        }

    results = {
        "settings": {"fps": 60},
        "paths": {
            "loopback": {"wavry": ok(6, 9), "vnc": ok(8.7, 11), "rdp": ok(32, 44)},
            "bottleneck": {
                "wavry": ok(20, 40, fps=50, trend=6.0),
                "vnc": ok(35, 80),
                "selkies": {"status": "not run", "reason": "x"},
                "rdp": ok(84, 126),
            },
        },
    }
    t = evaluate_targets(results)
    assert t["loopback_p50_below_vnc_p50"] is True
    assert t["loopback_p95_below_rdp_p50"] is True
    assert t["loopback_shown_at_least_58_of_60"] is True
    assert t["loopback_trend_flat"] is True
    assert t["bottleneck_p95_below_every_other_p50"] is False  # 40 ms is not below VNC's 35
    assert t["bottleneck_shown_at_least_55_of_60"] is False
    assert t["bottleneck_trend_flat"] is False
    results["paths"]["loopback"]["vnc"] = {"status": "failed", "reason": "x"}
    assert evaluate_targets(results)["loopback_p50_below_vnc_p50"] is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--size", "2560x1440"], "--size"),
        (["--systems", "wavry,teamviewer"], "unknown teamviewer"),
        (["--path", "wan"], "--path"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], needle: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wavry", "bench", "peers", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


@pytest.mark.timeout(60)
def test_aiortc_viewer_presents_the_newest_frame_in_a_window() -> None:
    """The aiortc viewer's presenter (wavry's client window on Xvfb) shows the last frame it
    was handed, readable on the screen: the present path `aiortc` is measured with."""
    import os

    from wavry.bench.peers.aiortc_peer import _Presenter
    from wavry.media.synthetic import SyntheticCapture
    from wavry.platform.xvfb import XvfbServer

    w, h = 320, 192
    cap = SyntheticCapture(w, h, 30, paced=False)
    with XvfbServer(w + 64, h + 64) as display:
        saved = {k: os.environ.get(k) for k in ("DISPLAY", "XAUTHORITY")}
        os.environ.update(DISPLAY=display.display, XAUTHORITY=str(display.auth_file))
        try:
            presenter = _Presenter(w, h)
            presenter.start()
            for fid in (1, 2, 3):
                presenter.hand_over(cap.make_frame(fid, 1_790_000_000_000_000 + fid))
            from Xlib import X
            from Xlib import display as xdisplay

            d = xdisplay.Display()
            root = d.screen().root
            deadline = time.monotonic() + 20
            seen = None
            while time.monotonic() < deadline and seen is None:
                time.sleep(0.2)
                raw = root.get_image(0, 0, w + 64, h + 64, X.ZPixmap, 0xFFFFFFFF).data
                luma = np.frombuffer(raw, dtype=np.uint8).reshape(h + 64, w + 64, 4)[..., 1]
                where = locate_marker(luma, w, h)
                seen = None if where is None else read_marker_at(luma, *where, w)
            d.close()
            presenter.stopped = True
            presenter.join(10)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    assert seen is not None and seen[0] == 3  # the newest of the three
    assert presenter.presented + presenter.dropped == 3
