"""`wavry bench latency`: a tiny run (small picture, ~1 s per variant) checking the JSON
contract, the CDF plot and that marker-based latency is positive and plausible. No assertions on
the timing targets (shared, noisy machines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wavry.bench.latency import LatencyCollector, _stale_count, run_latency_bench
from wavry.media.synthetic import SyntheticCapture


def test_collector_reads_marker_and_flags_out_of_order() -> None:
    cap = SyntheticCapture(320, 192, 30, paced=False)
    col = LatencyCollector()
    ts = 1_700_000_000_000_000
    assert col.record(cap.make_frame(5, ts), ts + 12_500) == 5
    assert col.record(cap.make_frame(7, ts + 1000), ts + 13_000) == 7
    assert col.record(cap.make_frame(6, ts + 500), ts + 14_000) == 6  # older after newer
    s = col.summary()
    assert s["frames"] == 3 and s["out_of_order"] == 1
    assert s["p50_ms"] == pytest.approx(12.5)
    assert s["frames_not_presented"] == 0


def test_stale_count() -> None:
    # (frame id, last chunk arrival, decode start)
    assert _stale_count([(1, 0.0, 0.1), (2, 0.2, 0.3)]) == 0
    # frame 1 started decoding at 0.3, after frame 2 had arrived at 0.2
    assert _stale_count([(1, 0.0, 0.3), (2, 0.2, 0.4)]) == 1


@pytest.mark.timeout(150)
def test_tiny_latency_run_json_contract(tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    results = run_latency_bench(
        quick=True,
        resolutions=[(320, 192, 30)],
        seconds=1.5,
        warmup_s=0.5,
        bitrate_kbps=1000,
        json_file=out,
        verbose=False,
        desktop=False,  # the desktop rows have their own test (tests/wayland)
    )
    data = json.loads(out.read_text())
    assert data["resolutions"] == json.loads(json.dumps(results["resolutions"]))
    assert out.with_suffix(".png").stat().st_size > 1000
    (res,) = data["resolutions"]
    assert (res["width"], res["height"], res["fps"]) == (320, 192, 30)
    assert set(res["variants"]) == {"floor", "wavry", "windowed", "aiortc", "browser"}
    for name, v in res["variants"].items():
        assert v["frames"] > 5, name
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            # Same machine, same clock: positive and well under a second.
            assert 0 < v[q] < 1000, (name, q, v[q])
        assert v["p50_ms"] <= v["p95_ms"] <= v["p99_ms"]
        assert v["queued_behind_newer"] >= 0
    wavry = res["variants"]["wavry"]
    assert wavry["cpu_host_cores"] > 0 and wavry["cpu_client_cores"] > 0
    # the windowed client, read back from its window's pixels on Xvfb
    windowed = res["variants"]["windowed"]
    assert windowed["status"] == "ok", windowed.get("reason")
    assert windowed["cpu_host_cores"] > 0 and windowed["cpu_client_cores"] > 0
    assert isinstance(windowed["trend_ms_per_s"], float)
    browser = res["variants"]["browser"]  # the page in headless Chromium (docs/browser.md)
    assert browser["transport"] == "webtransport"
    assert browser["cpu_host_cores"] > 0 and browser["cpu_browser_cores"] > 0
    assert set(data["cpu"]) == {"320x192@30"}
    t = data["targets"]
    for key in (
        "p50_le_floor_plus_1_5ms",
        "p95_le_floor_plus_3ms",
        "p50_le_0_25x_aiortc",
        "host_le_1_2_cores",
        "client_le_0_5_core",
        "zero_queued_behind_newer",
        "browser_p50_within_3ms_of_wavry",
    ):
        assert isinstance(t[key], bool), key
    assert isinstance(t["wavry_corrupt_pictures"], int)
