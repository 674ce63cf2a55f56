"""`wavry bench net`: the JSON contract (keys, variants, nulls), not timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wavry.bench.netlab as netlab
from wavry.bench.net import SCENARIOS, Scenario, compute_metrics, run_net_bench

KEYS = {
    "scenario",
    "variant",
    "on_time_ratio",
    "freezes_per_min",
    "overhead_pct",
    "latency_ms",
    "queue_delay_ms_p95",
    "utilization",
    "convergence_s",
}


def test_scenario_names_and_variants_are_the_contract() -> None:
    assert [s.name for s in SCENARIOS] == [
        "clean",
        "loss-1pct",
        "loss-2pct",
        "burst-3pct",
        "jitter",
        "bottleneck-8mbit",
        "capacity-steps",
    ]
    by = {s.name: s.variants for s in SCENARIOS}
    for name in ("loss-1pct", "loss-2pct", "burst-3pct"):
        assert by[name] == ["wavry", "xor", "no-repair"]
    for name in ("bottleneck-8mbit", "capacity-steps"):
        assert by[name] == ["wavry", "fixed-bitrate"]
    assert by["clean"] == ["wavry"] and by["jitter"] == ["wavry"]


def test_tiny_run_writes_the_json_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # namespaces "not permitted": the bottleneck rows must be present, null, with a note
    monkeypatch.setattr(netlab, "probe", lambda: (False, "namespaces not permitted (test)"))
    out = tmp_path / "net.json"
    run_net_bench(
        quick=True,
        json_file=out,
        scenarios=["clean", "loss-1pct", "bottleneck-8mbit"],
        duration_s=1.5,
    )
    data = json.loads(out.read_text())
    rows = data["scenarios"]
    assert [(r["scenario"], r["variant"]) for r in rows] == [
        ("clean", "wavry"),
        ("loss-1pct", "wavry"),
        ("loss-1pct", "xor"),
        ("loss-1pct", "no-repair"),
        ("bottleneck-8mbit", "wavry"),
        ("bottleneck-8mbit", "fixed-bitrate"),
    ]
    for r in rows:
        assert set(r) >= KEYS
        assert set(r["latency_ms"]) == {"p50", "p95", "p99"}
    for r in rows[:4]:  # proxy scenarios: utilization/convergence do not apply
        assert r["utilization"] is None and r["convergence_s"] is None
        assert r["frames_sent"] > 0 and r["frames_presented"] > 0
        assert 0.0 <= r["on_time_ratio"] <= 1.0
        assert r["overhead_pct"] is not None and r["latency_ms"]["p50"] is not None
    assert rows[0]["jitter_buffer_ms"] is not None
    assert rows[0]["transport_added_latency_ms_p50"] is not None
    for r in rows[4:]:
        assert r["on_time_ratio"] is None and r["latency_ms"]["p50"] is None
        assert "not permitted" in r["note"]
    assert data["notes"] and data["clean_latency_p50_ms"] > 0
    assert set(data["targets"]) >= {"loss_2pct_on_time_ge_99.5", "clean_jitter_buffer_0"}
    assert any(p.endswith("-repair.png") for p in data["plots"])  # RS vs XOR vs none
    for p in data["plots"]:
        assert Path(p).is_file() and Path(p).stat().st_size > 1000
    assert data["targets"]["loss_2pct_on_time_ge_99.5"] is None  # not run: unknown, not False


def test_bottleneck_metrics_from_synthetic_logs() -> None:
    """Utilization, queueing delay and convergence per capacity step (no namespaces needed)."""
    sc = Scenario("capacity-steps", "netns", ["wavry"], steps_kbps=[8000.0, 4000.0])
    start = 1000.0
    sent, arrivals, frames_h, frames_c = [], [], [], []
    pid = 0
    # 8 s: 4 s at 8 Mbit/s, 4 s at 4 Mbit/s; the sender fills 90 % of the capacity, the queue
    # is 50 ms in the first second of each step and 2 ms after
    for seg, cap in enumerate((8000.0, 4000.0)):
        t = start + 4 * seg
        gap = 1000 * 8 / (cap * 1000 * 0.9)  # 1000-byte datagrams (+42 B on the wire)
        while t < start + 4 * (seg + 1):
            pid += 1
            q = 0.05 if t - (start + 4 * seg) < 1.0 else 0.002
            sent.append((pid, t, 1000 - 42))
            arrivals.append((pid, t + 0.001 + q, 1000 - 42))
            t += gap
    for i in range(480):
        ts = start + i / 60
        frames_h.append((i + 1, ts, 10000, i == 0))
        frames_c.append((i + 1, ts, ts + 0.005, 10000))
    run = {
        "host": {
            "start": start,
            "end": start + 8,
            "frames": frames_h,
            "sent": sent,
            "media_bytes": 1000,
            "wire_bytes": 1100,
        },
        "client": {"frames": frames_c, "arrivals": arrivals, "jitter_target_ms": [0.0]},
        "steps": [start, start + 4],
        "capacity": [8000.0, 4000.0],
    }
    m = compute_metrics(sc, "wavry", run, ref_p50_ms=5.0)
    assert m["overhead_pct"] == pytest.approx(10.0)
    assert m["on_time_ratio"] == 1.0 and m["freezes"] == 0
    assert m["utilization"] == pytest.approx(0.9, abs=0.03)
    assert m["queue_delay_ms_p95"] == pytest.approx(0.0, abs=0.5)  # steady part only (after 3 s)
    steps = m["convergence_steps_s"]
    assert len(steps) == 2 and all(s is not None and 0.9 <= s <= 1.2 for s in steps)
    assert m["convergence_s"] == max(steps)
