"""Relay health states and selection order (pure functions of the registry)."""

from __future__ import annotations

from wavry.gateway.models import Relay
from wavry.gateway.relays import DEGRADED, HEALTHY, STALE, health_state, rank_relays

NOW = 1_900_000_000.0


def relay(rid: str, age: float = 0.0, load: float = 10.0, **kw: object) -> Relay:
    fields: dict[str, object] = {
        "relay_id": rid,
        "public_addr": "1.2.3.4:4000",
        "region": "eu",
        "max_sessions": 10,
        "max_bitrate_kbps": 1000,
        "load_pct": load,
        "sessions": 0,
        "registered_at": NOW - 100,
        "last_heartbeat": NOW - age,
        "grants": 0,
        "failures": 0,
    }
    fields.update(kw)
    return Relay(**fields)


def test_health_states() -> None:
    assert health_state(relay("a", age=1), NOW, 5) == HEALTHY
    assert health_state(relay("a", age=11), NOW, 5) == DEGRADED  # late heartbeat
    assert health_state(relay("a", load=90), NOW, 5) == DEGRADED  # loaded
    assert health_state(relay("a", age=21), NOW, 5) == STALE


def test_selection_by_health_load_and_history() -> None:
    ranked = rank_relays(
        [
            relay("stale", age=60),
            relay("late", age=12, load=0),
            relay("busy", load=50),
            relay("full", sessions=10),
            relay("idle-flaky", load=5, grants=1, failures=9),
            relay("idle-good", load=5, grants=9, failures=1),
            relay("far", load=1, region="us"),
        ],
        NOW,
        5,
        region="eu",
    )
    assert [r.relay_id for r in ranked] == ["idle-good", "idle-flaky", "busy", "far", "late"]
    assert rank_relays([relay("s", age=100)], NOW, 5) == []
