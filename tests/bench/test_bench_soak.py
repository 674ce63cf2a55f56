"""`wavry bench soak`'s verdicts from samples and events (the 60-minute run itself is a
benchmark): growth after the warm-up, reconnects outside blackouts, stuck keys."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from wavry.bench.soak import SoakOptions
from wavry.bench.soak_report import summarize


def _soak(rss_end_kb: int, reconnect_at: list[float], held: list[int]) -> Any:
    samples = []
    for i in range(0, 601, 5):
        grow = rss_end_kb * i // 600
        samples.append({"t": float(i), "host": {"rss_kb": 100_000 + grow, "fds": 20, "threads": 9},
                        "client": {"rss_kb": 200_000, "fds": 25, "threads": 12}})  # fmt: skip
    events = [
        {"t": 100.0, "kind": "key tap", "held_on_host": []},
        {"t": 200.0, "kind": "blackout", "held_before": [56]},
        {"t": 205.0, "kind": "during blackout", "held_on_host": held},
        {"t": 300.0, "kind": "clipboard", "ok": True, "ms": 40},
    ]
    client = SimpleNamespace(marks=[(t, "reconnected") for t in reconnect_at])
    return SimpleNamespace(
        samples=samples, events=events, blackouts=[(200.0, 212.0)],
        procs={"client": client}, opts=SoakOptions(minutes=10), now=lambda: 600.0,
        received_files=2, fps=[(1.0, 15)],
    )  # fmt: skip


def test_a_clean_run_meets_every_target() -> None:
    r = summarize(_soak(1024, [225.0], []), {"host": True, "client": True}, None)
    assert set(r["targets"].values()) == {"met"}, r["targets"]
    assert r["sessions_lost"] == 0 and r["reconnects"] == 1


def test_growth_stuck_keys_and_lost_sessions_are_caught() -> None:
    r = summarize(_soak(20_000, [400.0], [56]), {"host": True, "client": False}, None)
    t = r["targets"]
    assert t["host RSS growth < 5 MB"] == "MISSED"
    assert t["no stuck key"] == "MISSED"
    # the blackout had no reconnect after it, one came out of the blue, the client died
    assert r["blackouts_without_reconnect"] == 1 and r["unexpected_reconnects"] == 1
    assert r["sessions_lost"] == 3 and t["no session lost"] == "MISSED"


def test_the_clients_live_line_gives_its_frames_per_second() -> None:
    from wavry.bench.soak import _FPS

    line = "last 1 s:  59 fps shown,   0 dropped  e2e p50   7.5 p95   8.9 ms    1.49 Mbit/s"
    m = _FPS.match(line)
    assert m is not None and m.group(1) == "59"
    assert _FPS.match("received soak-file.bin -> /tmp/x") is None
