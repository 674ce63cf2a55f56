"""docs/spec/RIFT.md §3 address migration with path validation, on a fake clock: media moves to a
new address only after a Ping sent there is answered from there (or, for a client that never
answers host Pings, after its old address stayed silent)."""

from __future__ import annotations

import pytest

from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession, ClientState
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.testing.loopback import Loopback

T0 = 100.0
C = ("10.0.0.2", 50000)  # the client
C2 = ("10.0.0.2", 61000)  # the client after a NAT rebinding
X = ("203.0.113.9", 4444)  # a victim an on-path attacker wants the stream sent to


class Net:
    """Client at `at`; host output reaches the client only when addressed to `at`."""

    def __init__(self) -> None:
        self.host = HostEndpoint(Identity.generate(), HostConfig(trust_any=True))
        self.client = ClientSession(Identity.generate(), ClientConfig(auto_reconnect=False))
        lb = Loopback(self.client, self.host, client_addr=C)
        self.client.connect(T0)
        lb.pump(T0)
        assert self.client.state is ClientState.ACTIVE
        self.at = C
        self.sent_to: dict[tuple[str, int], int] = {}
        self.events: list[object] = []

    @property
    def session(self) -> object:
        (s,) = self.host.sessions.values()
        return s

    def host_output(self, now: float) -> None:
        for data, to in self.host.datagrams_to_send(now):
            self.sent_to[to] = self.sent_to.get(to, 0) + len(data)
            if to == self.at:
                self.client.receive_datagram(data, now)
        self.events.extend(iter(self.host.next_event, None))

    def client_output(self, now: float, source: tuple[str, int] | None = None) -> list[bytes]:
        out = self.client.datagrams_to_send(now)
        for data in out:
            self.host.receive_datagram(data, source or self.at, now)
        return out

    def run(self, start: float, end: float, step: float = 0.05) -> float:
        now = start
        while now < end:
            now += step
            for side in (self.client, self.host):
                t = side.next_timer()
                if t is not None and t <= now:
                    side.handle_timer(now)
            self.client_output(now)
            self.host_output(now)
            self.client_output(now)
        return now


def migrated(net: Net) -> list[ev.ClientMigrated]:
    return [e for e in net.events if isinstance(e, ev.ClientMigrated)]


def video(net: Net, now: float) -> None:
    alias = next(iter(net.host.sessions))
    net.host.send_frame(alias, bytes(3000), now, keyframe=False, timestamp_us=1)


def test_a_raced_copy_from_another_address_does_not_redirect_the_stream() -> None:
    net = Net()
    now = T0 + 0.1
    net.client.ping(now)
    (d,) = net.client.datagrams_to_send(now)
    net.host.receive_datagram(d, X, now)  # the attacker's copy, forged source, arrives first
    net.host.receive_datagram(d, C, now)  # the original: a replay now, dropped
    net.host_output(now)  # the challenge Ping goes to X and to C; the client gets it at C
    net.client_output(now)  # ... and answers from C
    net.host_output(now)
    assert migrated(net) == []
    assert net.session.addr == C  # type: ignore[attr-defined]
    assert net.host.counters.path_challenges == 1
    to_x = net.sent_to.get(X, 0)
    assert 0 < to_x < 120  # one small challenge, no media
    for i in range(20):  # the stream goes on to the client, never to X
        video(net, now + i * 0.016)
        net.host_output(now + i * 0.016)
    assert net.sent_to.get(X, 0) == to_x
    net.run(now, now + 4)
    assert migrated(net) == [] and net.session.addr == C  # type: ignore[attr-defined]


def test_a_client_behind_a_rebinding_nat_moves_after_one_round_trip() -> None:
    net = Net()
    net.at = C2  # the NAT picked a new port: the old mapping is gone
    now = net.run(T0, T0 + 0.6)  # its next Ping comes from C2, the challenge is answered
    (m,) = migrated(net)
    assert (m.old_addr, m.new_addr) == (C, C2)
    assert net.session.addr == C2  # type: ignore[attr-defined]
    assert net.host.counters.unvalidated_migrations == 0
    before = net.sent_to.get(C2, 0)
    video(net, now)
    net.host_output(now)
    assert net.sent_to[C2] > before + 3000


@pytest.mark.pure
def test_a_client_that_never_answers_host_pings_still_moves_when_its_old_path_is_silent() -> None:
    net = Net()
    net.at = C2
    original = net.client._on_control  # type: ignore[attr-defined]

    def no_answers(msg: rift_pb2.Message, now: float) -> None:  # an older client
        if msg.control.WhichOneof("content") != "ping":
            original(msg, now)

    net.client._on_control = no_answers  # type: ignore[attr-defined,method-assign]
    net.run(T0, T0 + 1.5)
    assert migrated(net) == []  # not yet: no Pong, and the old path spoke 1.5 s ago
    net.run(T0 + 1.5, T0 + 3.0)
    (m,) = migrated(net)
    assert m.new_addr == C2 and net.host.counters.unvalidated_migrations == 1
    assert net.client.state is ClientState.ACTIVE
