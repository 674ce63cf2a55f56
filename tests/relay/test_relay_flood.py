"""Junk floods at the relay and at the gateway's STUN while a relayed session streams (issue 21
item 3), a short run of ``wavry bench flood``: real `wavry relay` and `wavry gateway` processes,
50 000 junk datagrams/s from eight source addresses. Functional checks only (the timing figures
are the benchmark's): the services live through it, nothing injected reaches the host, neither
service amplifies, the stream gets through without a flood, legitimate STUN is answered."""

from __future__ import annotations

import pytest

from wavry.bench.flood import run_flood_bench


@pytest.mark.slow
def test_floods_do_not_break_or_amplify() -> None:
    r = run_flood_bench(rate=50_000, seconds=1.0, stream_pps=200, deadline_ms=20)["results"]
    assert r["services_alive"]
    base, relay, stun = r["phases"]
    assert base["delivered_ratio"] >= 0.95, base
    for phase in (relay, stun):
        assert phase["flood"]["sent"] >= 25_000, phase  # the flood really ran
        # answers to the flooding addresses: far below the 3x rule (rejects are budgeted)
        assert phase["amplification"] <= 0.1, phase
        assert phase["foreign_at_host"] == 0, phase  # no junk or injection forwarded
        assert phase["stream_delivered"] > 0, phase
    assert stun["stun_answered"] >= 1, stun  # the legitimate client is still answered
    assert r["relay_dropped"]["unbound_source"] > 0  # injections with the live session id
    assert r["relay_dropped"]["unknown_session"] > 0
