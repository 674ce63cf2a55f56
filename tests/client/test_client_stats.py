"""Client statistics on a fake clock: stage arithmetic, the last second (live), the start-up
on its own, the totals and what they cover, loss over the last second, the congestion state,
and stale figures said so."""

from __future__ import annotations

import pytest

from wavry.client.live import live_figures, live_line, startup_line, totals_line
from wavry.client.stats import ClientStats, CongestionView, LossMeter, frame_timing
from wavry.percentile import percentile


def timing(i: int, t: float, total_ms: float, fid: int | None = None) -> object:
    """Frame ``i`` shown at monotonic ``t`` (wall = t + 1000), ``total_ms`` after capture."""
    shown_wall = t + 1000.0
    return frame_timing(
        frame_id=fid if fid is not None else i,
        timestamp_us=int((shown_wall - total_ms / 1000) * 1e6),
        capture_us=500,
        encode_us=3000,
        arrived_wall=shown_wall - 0.004,
        arrived=t - 0.004,
        decode_start=t - 0.003,
        decode_end=t - 0.001,
        prepared=t - 0.0005,
        show_start=t - 0.0004,
        shown=t,
        shown_wall=shown_wall,
        clock_offset_s=0.0,
        size_bytes=10_000,
    )


def test_frame_timing_stages_add_up() -> None:
    # host clock 2 s ahead of ours; captured at host t=100.000
    t = frame_timing(
        frame_id=7, timestamp_us=100_000_000, capture_us=1_000, encode_us=4_000,
        arrived_wall=98.008, arrived=5.008, decode_start=5.009, decode_end=5.012,
        prepared=5.0125, show_start=5.0127, shown=5.013, shown_wall=98.013,
        clock_offset_s=2.0, size_bytes=1000,
    )  # fmt: skip
    assert (t.capture_ms, t.encode_ms) == (1.0, 4.0)
    assert t.network_ms == pytest.approx(3.0)
    assert t.queue_ms == pytest.approx(1.0)
    assert t.decode_ms == pytest.approx(3.0)
    assert t.convert_ms == pytest.approx(0.5) and t.wait_ms == pytest.approx(0.2)
    assert t.show_ms == pytest.approx(0.3) and t.present_ms == pytest.approx(1.0)
    assert t.total_ms == pytest.approx(13.0)
    r = t.report()
    assert (r.frame_id, r.total_us, r.decode_us, r.render_us) == (7, 13000, 4000, 1000)


def test_live_figures_cover_the_last_second_only() -> None:
    s = ClientStats()
    s.connect_started = 9.5
    # a slow start (first keyframe: 300 ms), then a steady 10 ms
    for i in range(60):
        s.record(timing(i, 10 + i / 60, 300.0 if i < 30 else 10.0))  # type: ignore[arg-type]
    for i in range(60, 300):
        s.record(timing(i, 10 + i / 60, 10.0))  # type: ignore[arg-type]
    now = 10 + 299 / 60 + 0.001
    f = live_figures(s, now, dropped_before=0, state="streaming")
    assert f.frames_shown == 60
    assert f.e2e_p50_ms == pytest.approx(10.0, abs=0.01)
    assert f.e2e_p95_ms == pytest.approx(10.0, abs=0.01)
    # the whole session's p95 still carries the start-up; the live one does not
    assert percentile(s.all_totals, 0.95) == pytest.approx(300.0, abs=0.01)
    st = s.startup()
    assert st["first_frame_ms"] == pytest.approx(500.0)
    assert st["first_second_frames"] == 60
    assert st["first_second_e2e_ms"]["p95"] == pytest.approx(300.0, abs=0.01)
    assert "first frame 500 ms" in startup_line(st)
    summary = s.summary()
    assert summary["e2e_after_startup_ms"]["p95"] == pytest.approx(10.0, abs=0.01)
    assert "from the first" in summary["covers"]["e2e_latency_ms"]
    assert "after the start-up second: p50 10.0" in totals_line(summary), totals_line(summary)


def test_stale_figures_say_so() -> None:
    s = ClientStats()
    s.connect_started = 0.0
    for i in range(60):
        s.record(timing(i, 1 + i / 60, 12.0))  # type: ignore[arg-type]
    s.rtt(0.8, now=1.9)
    # the link goes quiet: no frame and no pong for 3 s
    f = live_figures(s, 5.0, dropped_before=0, state="stalled")
    line = live_line(f)
    assert f.frames_shown == 0 and f.e2e_p50_ms is None
    assert "no frame for 3.0 s" in line and "p50" not in line
    assert "(3 s old)" in line and "[stalled]" in line


def test_loss_over_the_last_second() -> None:
    m = LossMeter(window_s=1.0)
    m.sample(0.0, 1000, 1000)
    m.sample(0.5, 1100, 1090)
    m.sample(1.0, 1200, 1190)
    assert m.recent_pct() == pytest.approx(5.0)  # 10 of the last 200 ids
    m.sample(2.0, 1400, 1390)
    assert m.recent_pct() == pytest.approx(0.0)  # that loss is over a second old
    assert m.total_pct == pytest.approx(10 / 1400 * 100)


def test_congestion_view_shows_the_real_state() -> None:
    c = CongestionView(hold_s=2.0)
    assert c.state(0.0) == "-"
    c.on_target(8000, 60, 0.0)
    assert c.state(0.1) == "stable"
    c.on_target(6800, 45, 1.0)
    assert c.state(1.5, stream_fps=60) == "congested, host at 45 fps"
    assert c.state(3.5, stream_fps=60) == "stable, host at 45 fps"
    c.on_target(7200, 60, 4.0)
    assert c.state(4.1, stream_fps=60) == "probing"
    c.decoder_fps_cap = 30
    assert c.state(9.0, stream_fps=60) == "stable, decoder asks 30 fps"


def test_drops_by_reason_and_summary_contract() -> None:
    s = ClientStats()
    s.drop("waiting for keyframe", 3)
    s.drops["superseded by a newer frame"] = 5
    for i in range(10):
        s.arrived(i / 60, 10_000)
        s.record(timing(i, i / 60, 8.0))  # type: ignore[arg-type]
    out = s.summary()
    assert out["frames_dropped"] == 8 and out["frames_presented"] == 10
    assert set(out["stages_ms"]) >= {"capture", "network", "queue", "decode", "present"}
    assert out["stages_p50_ms"]["decode"] == pytest.approx(2.0)
    assert out["stages_p50_ms"]["capture"] == pytest.approx(0.5)
    assert out["bitrate_kbps"] == pytest.approx(10_000 * 8 * 10 / (9 / 60) / 1000, rel=0.01)
