"""`wavry bench throughput`: one short cell of each system writes the JSON contract and a plot;
the CLI registers the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wavry.bench.throughput import run_throughput_bench

pytestmark = pytest.mark.timeout(120)


def test_one_rate_writes_the_json_contract(tmp_path: Path) -> None:
    out = tmp_path / "tp.json"
    data = run_throughput_bench(json_file=out, rates=(20,), duration_s=1.5)
    assert json.loads(out.read_text()) == json.loads(json.dumps(data))
    rows = {r["system"]: r for r in data["results"]}
    assert set(rows) == {"wavry", "bare"}
    for r in rows.values():
        assert r["rate_mbit"] == 20 and r["frames_sent"] > 0
        assert r["delivered_mbit_s"] > 5  # loopback delivers most of it, even on a busy box
        assert 0 <= r["on_time_ratio"] <= 1
        assert r["sender_cpu_s_per_s"] > 0 and r["receiver_cpu_s_per_s"] > 0
        assert r["sender_cpu_s_per_100mbit"] is not None
    w = rows["wavry"]
    assert w["parity_sent"] > 0  # Reed-Solomon on: the first frames carry parities
    assert w["receiver_reads_per_datagram"] < 1  # UDP_GRO: runs read at once
    assert set(data["targets"]) == {"100mbit_on_time_ge_99.9_and_le_0.5_core_per_side"}
    assert data["targets"]["100mbit_on_time_ge_99.9_and_le_0.5_core_per_side"] is None
    for p in data["plots"]:
        assert Path(p).is_file() and Path(p).stat().st_size > 1000


def test_steady_ratio_leaves_out_the_opening_keyframe_and_what_waited_behind_it() -> None:
    from wavry.bench.throughput import _wavry_metrics

    fps = 60
    iv = 1 / fps
    # frame 1 is the opening keyframe, shown 50 ms late; frames 2-3 were handed over while it
    # drained and are late too; frame 7 is late in steady state
    sent = [(i, 100 + i * iv, 1000, i == 1) for i in range(1, 11)]
    late = {1: 0.050, 2: 0.040, 3: 0.025, 7: 0.020}
    shown = [(i, ts, ts + late.get(i, 0.005), 1000) for i, ts, _, _ in sent]
    host = {"start": 100, "end": 100 + 10 * iv, "frames": sent, "cpu_s": 0.1, "stats": {}}
    client = {"frames": shown, "cpu_s": 0.1, "stats": {}}
    r = _wavry_metrics(100, host, client)
    assert r["on_time_ratio"] == pytest.approx(6 / 10)
    # frames 2, 3 and 4 were handed over before frame 1 was shown (100 + 1/60 + 50 ms)
    assert r["steady_frames"] == 6
    assert r["steady_on_time_ratio"] == pytest.approx(5 / 6)
