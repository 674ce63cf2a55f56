"""The benchmarks run end to end (tiny sizes; the numbers are not asserted against targets)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from wavry.bench.gateway import bench_gateway_command
from wavry.bench.relay import bench_relay_command


def _invoke(fn: Any, args: list[str]) -> str:
    app = typer.Typer()
    app.command()(fn)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_bench_relay_small(tmp_path: Path) -> None:
    out = _invoke(
        bench_relay_command,
        ["--rate", "2000", "--duration", "0.3", "--json", str(tmp_path / "r.json")],
    )
    assert "wavry relay" in out and "bare asyncio forwarder" in out and "direct" in out
    r = json.loads((tmp_path / "r.json").read_text())["results"]
    assert r["direct"]["received"] > 0.9 * r["direct"]["sent"] > 0
    for kind in ("baseline", "relay_plain", "relay"):
        x = r[kind]
        assert x["received"] > 0.9 * x["sent"] > 0
        assert x["forward_rate"] > 0 and x["per_cpu_second"] > 0
        assert not math.isnan(x["p99_us"]) and not math.isnan(x["added_p99_us"])
        assert x["window_forwarded"] > 0 and 0 < x["blast_received"] <= x["blast_sent"]
    assert r["relay_plain"]["gro"] is False
    assert set(r["targets"]) == {"rate_50k_one_core", "added_p99_le_500us"}


def test_bench_gateway_small(tmp_path: Path, redis_url: str) -> None:
    out = _invoke(
        bench_gateway_command,
        [
            "--sockets",
            "20",
            "--messages",
            "20",
            "--logins",
            "4",
            "--flooders",
            "4",
            "--redis-url",
            redis_url,
            "--json",
            str(tmp_path / "g.json"),
        ],
    )
    assert "signaling sockets held" in out
    r = json.loads((tmp_path / "g.json").read_text())["results"]
    assert r["sockets"]["alive_after_2s"] == 20
    assert r["rtt_ms"]["n"] == 20 and r["rtt_ms"]["p99"] > 0
    assert r["flood"]["ok"] == 4 and r["flood_baseline"]["ok"] == 4
    assert r["connect_ms"]["n"] == 20 and r["connect_ms"]["p99"] > 0
    assert len(r["sockets"]["kib_per_socket"]) == 2
    sf = r["signal_flood"]
    assert sf["messages"] > 20 and sf["rtt_n"] == 20 and sf["rtt_p99_ms"] > 0
