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
