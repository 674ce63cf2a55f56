"""The path in the client's statistics: changes with their times, the longest presentation gap
around a change next to the gap in the seconds before it, time to first frame."""

from __future__ import annotations

from wavry.connectivity.paths import PathChanged, PathKind
from wavry.connectivity.pathstats import PathStats
from wavry.connectivity.relaypath import RelayRoute


def test_changes_gaps_and_first_frame() -> None:
    s = PathStats(100.0)
    route = RelayRoute("11.200.0.1", 4000, "sid")
    s.changed(PathChanged(101.8, PathKind.relayed, route, "relay-1", "first answer", 0.012))
    s.decoded(102.0)
    # 30 fps; a 183 ms hole at 106 s (before the move, in its baseline window), the move at
    # 108.5 s, a 60 ms hole at 109 s (after it)
    times = [102.0 + i / 30 for i in range(120)]  # to 106.0
    times += [106.15 + i / 30 for i in range(70)]  # to ~108.45
    moved_at = times[-1] + 0.01
    times_after = [times[-1] + (i + 1) / 30 for i in range(16)]  # to ~108.98
    times_after += [times_after[-1] + 0.06 + i / 30 for i in range(30)]
    for t in times:
        s.shown(t)
    s.changed(PathChanged(moved_at, PathKind.punched, ("11.200.1.2", 47800), None, "moved"))
    for t in times_after:
        s.shown(t)
    out = s.summary()
    assert out["path"] == "punched" and out["relay_id"] is None
    assert out["time_to_first_frame_ms"] == 2000.0
    first, moved = out["path_changes"]
    assert first["path"] == "relayed" and first["relay_id"] == "relay-1"
    assert first["handshake_ms"] == 12.0 and first["at_ms"] == 1800.0
    assert moved["address"] == "11.200.1.2:47800"
    assert 55 <= moved["gap_ms"] <= 65  # the hole after the move
    assert 180 <= moved["gap_before_ms"] <= 186  # what the session showed anyway, before
    assert 180 <= out["longest_present_gap_ms"] <= 186
    assert "punched" in s.line(109.0)
