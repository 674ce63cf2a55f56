"""`wavry bench extras` code path on a tiny run: the JSON contract, and that every figure was
measured in this run (never the targets: on a shared 2-core machine the numbers move with load)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from wavry.bench import extras
from wavry.bench.extras import ROW_PRODUCERS, ExtrasOptions, run_extras_command

needs_x = pytest.mark.skipif(
    subprocess.run(["which", "Xvfb"], capture_output=True).returncode != 0,
    reason="Xvfb is needed for the clipboard row",
)


def test_rows_are_a_list_of_producers_with_room_for_audio() -> None:
    names = [name for name, _ in ROW_PRODUCERS]
    assert names == ["file-1gib", "clipboard", "audio"]
    assert ExtrasOptions.for_run(False).file_bytes == 1 << 30  # the full run sends 1 GiB
    assert ExtrasOptions.for_run(True).file_bytes == 256 << 20


def test_audio_row_uses_the_audio_module_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    fake = types.ModuleType("wavry.bench.extras_audio")
    fake.run_audio_latency = lambda seconds: {"p50_ms": 12.5, "seconds": seconds}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wavry.bench.extras_audio", fake)
    row = extras.run_audio_row(ExtrasOptions(audio_seconds=3.0))
    assert row == {"p50_ms": 12.5, "seconds": 3.0, "name": "audio"}
    monkeypatch.setitem(sys.modules, "wavry.bench.extras_audio", None)  # import fails
    row = extras.run_audio_row(ExtrasOptions())
    assert row["name"] == "audio" and "skipped" in row


def test_on_time_counts_missing_frames_as_late() -> None:
    frames = [(1.0, 10, 20.0), (1.1, 11, 25.0), (1.2, 13, 90.0), (1.3, 14, 21.0)]
    r = extras.on_time(frames, 50.0)
    assert r["frames_sent"] == 5 and r["frames_missing"] == 1 and r["frames_late"] == 1
    assert r["on_time_ratio"] == 3 / 5


@needs_x
def test_tiny_run_json_shape_and_measured_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = ExtrasOptions(
        quick=True,
        file_bytes=2_000_000,
        baseline_s=3.0,
        width=320,
        height=240,
        clipboard_changes=3,
        rows=("file-1gib", "clipboard"),
    )
    out = tmp_path / "extras.json"
    doc = run_extras_command(True, out, opts)
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    printed = capsys.readouterr().out
    assert "wavry bench extras" in printed and "clipboard x11 host to client" in printed
    f = doc["rows"]["file-1gib"]
    assert "error" not in f, f
    assert f["file_bytes"] == 2_000_000 and f["sha256_match"] is True
    assert f["transfer_s"] > 0 and f["mb_per_s"] > 0
    assert f["host_received"] is True
    for phase in ("baseline", "during_transfer"):
        assert f[phase]["frames_sent"] > 0 and 0 <= f[phase]["on_time_ratio"] <= 1
        assert f[phase]["latency_ms"]["p50"] > 0
    assert f["on_time_deadline_ms"] > 0
    assert set(f["targets"]) == {
        "transfer_under_120_s",
        "on_time_at_least_99_pct",
        "byte_identical",
    }
    assert "not 1 GiB" in f["note"]
    c = doc["rows"]["clipboard"]
    assert "error" not in c, c
    x = c["x11"]
    for key in ("host_to_client", "client_to_host", "baseline_one_display"):
        assert x[key]["changes"] == 3 and x[key]["seen"] == 3, x
        assert 0 < x[key]["p50_ms"] <= x[key]["p95_ms"]
    assert "x11_p50_at_most_200_ms" in c["targets"]
    w = c["wayland"]
    if "skipped" not in w:
        assert w["host_to_client"]["seen"] == 3 and w["client_to_host"]["seen"] == 3, w
        assert w["baseline_one_display"]["p50_ms"] > 0
    assert doc["machine"]["cpus"] and doc["load_before"] and doc["load_after"]
