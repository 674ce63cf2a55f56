"""`wavry bench latency`'s desktop rows: an application window's marker → decoded picture on X11
(Xvfb) and on Wayland (a headless GNOME Shell), measured in one run."""

from __future__ import annotations

import pytest

from wavry.bench.latency_desktop import run_desktop_rows
from wavry.media.wayland import gstreamer_problem
from wavry.platform import xvfb
from wavry.testing.gnome import probe

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not probe().ok, reason=probe().detail),
    pytest.mark.skipif(not xvfb.probe().ok, reason="Xvfb is not installed"),
    pytest.mark.skipif(bool(gstreamer_problem()), reason=gstreamer_problem() or "GStreamer ok"),
]


@pytest.mark.timeout(240)
def test_x11_and_gnome_rows_measured_side_by_side() -> None:
    rows = run_desktop_rows(warmup_s=1.0, seconds=2.0, verbose=False)
    assert set(rows) == {"x11", "wayland-gnome"}
    for name, row in rows.items():
        assert "skipped" not in row, (name, row)
        assert row["frames"] > 10, (name, row)
        assert row["unreadable_markers"] <= row["frames"] // 10, (name, row)
        # same machine, same clock: drawn → decoded is positive and under a second
        assert 0 < row["p50_ms"] <= row["p95_ms"] < 1000, (name, row)
    assert any("picture: wayland" in ln for ln in rows["wayland-gnome"]["host_banner"])
    assert any("picture: x11" in ln for ln in rows["x11"]["host_banner"])
