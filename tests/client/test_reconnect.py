"""Reconnect starts at the stall (docs/spec/RIFT.md §4), on a fake clock: a host that restarts
and is back within 2 s has the client again about 3 s after it went quiet, not after the 10 s
loss."""

from __future__ import annotations

from wavry.rift import events as ev
from wavry.rift.client import ClientSession, ClientState
from wavry.rift.config import HostConfig
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback

T0 = 1_000.0
HOST_ID = Identity.generate()


def test_host_restart_reconnects_at_the_stall() -> None:
    client = ClientSession(Identity.generate())
    down = {"on": False}
    lb = Loopback(client, HostEndpoint(HOST_ID, HostConfig(trust_any=True)),
                  drop=lambda _d, _data: down["on"])  # fmt: skip
    client.connect(T0)
    lb.pump(T0)
    now = lb.run_until(T0, T0 + 1.0, step=0.02)
    assert client.state is ClientState.ACTIVE
    # the host process dies (its sessions with it) and is back 2 s later, same identity
    down["on"] = True
    died = now
    now = lb.run_until(now, died + 2.0, step=0.02)
    lb.host = HostEndpoint(HOST_ID, HostConfig(trust_any=True))
    down["on"] = False
    while (
        client.state is not ClientState.ACTIVE
        or len([e for e in lb.client_events if isinstance(e, ev.SessionAccepted)]) < 2
    ):
        now = lb.run_until(now, now + 0.02, step=0.02)
        assert now < died + 12, "no reconnect"
    back = now - died
    stalled = [e for e in lb.client_events if isinstance(e, ev.LinkStalled)]
    reconnecting = [e for e in lb.client_events if isinstance(e, ev.Reconnecting)]
    assert stalled and reconnecting
    assert 2.0 <= back < 3.6, f"reconnected {back:.2f} s after the host went away"
