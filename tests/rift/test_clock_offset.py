"""The clock offset behind the statistics' end-to-end latency (docs/spec/RIFT.md §6 "Clock
offset"): a session's first Ping can wait in a host busy starting its stream, and the offset must
not take that wait for the clocks' difference."""

from __future__ import annotations

from wavry.rift.client import ClientSession
from wavry.rift.clock import ClockOffsetEstimator
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.events import ClientState
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback

T0 = 1_700_000_000.0


def test_a_slow_round_trip_counts_only_next_to_quick_ones() -> None:
    est = ClockOffsetEstimator()
    est.add(10.0, 10.2, 10.2)  # the host answered 200 ms late: 100 ms off
    assert est.offset_s is not None and abs(est.offset_s - 0.1) < 1e-9  # all there is
    est.add(10.3, 10.3005, 10.30025)  # a quick round trip: the clocks agree
    assert est.offset_s is not None and abs(est.offset_s) < 1e-9
    est.add(10.8, 10.8012, 10.8006)  # about as quick: counts (the median of the two)
    assert est.offset_s is not None and abs(est.offset_s) < 1e-9


def test_the_offset_is_right_soon_after_a_busy_start() -> None:
    """The host reads nothing for 200 ms after accepting (starting its capture and encoder):
    the Ping sent on acceptance comes back 200 ms late. The next Pings go 100 ms apart, and the
    offset is the clocks' own (0 here) within 0.35 s of the start, not after a second."""
    host = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
    client = ClientSession(Identity.generate(), ClientConfig())
    held: list[bytes] = []

    def busy(direction: str, data: bytes) -> bool:
        if direction == "c2h" and client.state is ClientState.ACTIVE and not released:
            held.append(data)
            return True
        return False

    released = False
    lb = Loopback(client, host, drop=busy)
    client.connect(T0)
    lb.pump(T0)
    assert client.state is ClientState.ACTIVE and held  # the Ping sent on acceptance waits
    now = T0 + 0.2
    released = True
    for data in held:
        host.receive_datagram(data, lb.client_addr, now)
    lb.pump(now)
    offset = client.clock_offset_s
    assert offset is not None and abs(offset - 0.1) < 1e-3  # the late Pong: 100 ms off
    good_at = None
    while now < T0 + 1.5 and good_at is None:
        now = lb.run_until(now, now + 0.01, step=0.01)
        offset = client.clock_offset_s
        if offset is not None and abs(offset) < 1e-3:
            good_at = now
    assert good_at is not None and good_at - T0 < 0.35, good_at and good_at - T0
