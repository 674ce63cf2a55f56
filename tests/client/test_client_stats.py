"""Per-frame latency accounting: stage arithmetic, percentiles, the stats-json contract."""

from __future__ import annotations

import pytest

from wavry.client.stats import ClientStats, frame_timing
from wavry.percentile import percentile


def test_frame_timing_stages_add_up() -> None:
    # host clock is 2 s ahead of the client; captured at host t=100.000
    t = frame_timing(
        frame_id=7,
        timestamp_us=100_000_000,
        capture_us=1_000,
        encode_us=4_000,
        last_chunk_at=98.008,  # = host 100.008
        decode_start=98.009,
        decode_end=98.012,
        presented_at=98.013,
        clock_offset_s=2.0,
        size_bytes=1000,
    )
    assert t.capture_ms == 1.0 and t.encode_ms == 4.0
    assert t.network_ms == pytest.approx(3.0)
    assert t.decode_ms == pytest.approx(3.0)
    assert t.present_ms == pytest.approx(1.0)
    assert t.total_ms == pytest.approx(13.0)
    msg = t.to_message()
    assert (msg.frame_id, msg.total_us, msg.decode_us) == (7, 13000, 3000)


def test_summary_contract() -> None:
    s = ClientStats()
    for i in range(100):
        s.record(
            frame_timing(
                frame_id=i,
                timestamp_us=int((10 + i / 60) * 1e6),
                capture_us=500,
                encode_us=3000,
                last_chunk_at=10 + i / 60 + 0.005,
                decode_start=10 + i / 60 + 0.005,
                decode_end=10 + i / 60 + 0.007,
                presented_at=10 + i / 60 + 0.008 + (0.01 if i == 99 else 0),
                clock_offset_s=0.0,
                size_bytes=10_000,
            )
        )
    s.rtt_ms = 0.4
    out = s.summary()
    assert set(out) == {
        "frames_presented",
        "frames_dropped",
        "e2e_latency_ms",
        "stages_ms",
        "bitrate_kbps",
        "loss_pct",
        "fec_recovered",
        "rtt_ms",
    }
    assert out["frames_presented"] == 100
    assert out["e2e_latency_ms"]["p50"] == pytest.approx(8.0, abs=0.01)
    assert out["e2e_latency_ms"]["p99"] > out["e2e_latency_ms"]["p50"]
    assert set(out["stages_ms"]) == {"capture", "encode", "network", "decode", "present"}
    assert out["bitrate_kbps"] == pytest.approx(10_000 * 8 * 60 / 1000, rel=0.05)
    lines = s.overlay_lines(10 + 99 / 60 + 0.02)
    assert any("end-to-end" in line for line in lines)


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0


def test_the_one_percentile_rule() -> None:
    from wavry.percentile import percentiles

    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.5  # mean of the two middle values
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95) == 4.8  # position 0.95·4 = 3.8
    assert percentile([7.0], 0.99) == 7.0
    assert percentiles([1.0, 2.0, 3.0], (0.0, 0.5, 1.0)) == {"p0": 1.0, "p50": 2.0, "p100": 3.0}
