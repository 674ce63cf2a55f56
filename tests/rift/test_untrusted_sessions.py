"""Sessions not accepted yet are bounded and expire, and idle sessions cost no timer work
(docs/security.md, issue 21 item 6 "untrusted sessions are unbounded and cost timer work")."""

from __future__ import annotations

import pytest

from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession, ClientState
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.framing import COOKIE_REPLY, parse_datagram
from wavry.rift.handshake import InitiatorHandshake, LocalStatic
from wavry.rift.host import HostEndpoint, HostSessionState
from wavry.rift.identity import Identity
from wavry.rift.noise import generate_static_key
from wavry.rift.testing.loopback import Loopback

T0 = 5000.0
HOST_ID = Identity.generate()


def handshake_only(host: HostEndpoint, addr: tuple[str, int], now: float, n: int) -> None:
    """What the attack did: complete the handshake (a new identity each time, so none replaces
    another), then never send Hello."""
    me = LocalStatic.create(Identity.generate(), generate_static_key(), "x")
    cookie = None
    for _ in range(2):  # a cookie reply when the host is under handshake load: then again
        hs = InitiatorHandshake(me, n.to_bytes(12, "big"), cookie=cookie)
        host.receive_datagram(hs.msg1, addr, now)
        out = [d for d, to in host.datagrams_to_send(now) if to == addr and d[4:8] == bytes(4)]
        cookie = next((d[30:] for d in out if d[27] == COOKIE_REPLY), None)
        if cookie is None:
            break
    msg2 = next(d for d in out if d[27] == 2)
    hs.on_msg2(parse_datagram(msg2).payload)  # type: ignore[union-attr]
    assert hs.msg3 is not None
    host.receive_datagram(hs.msg3, addr, now)


def test_sessions_not_accepted_yet_are_bounded_per_source_and_in_total() -> None:
    cfg = HostConfig(
        handshake_rate_per_ip=1e9, handshake_burst_per_ip=1e9, handshake_rate_total=1e9
    )
    host = HostEndpoint(HOST_ID, cfg)
    n = 0
    for ip in range(30):
        for _ in range(10):
            n += 1
            handshake_only(host, (f"10.2.0.{ip}", 7000 + n), T0 + n * 1e-4, n)
            per_source: dict[str, int] = {}
            for s in host.sessions.values():
                per_source[s.addr[0]] = per_source.get(s.addr[0], 0) + 1
            assert max(per_source.values()) <= cfg.max_untrusted_per_source
            assert host.untrusted_sessions == len(host.sessions) <= cfg.max_untrusted_sessions
    assert host.untrusted_sessions == cfg.max_untrusted_sessions
    assert host.counters.untrusted_evicted == 300 - cfg.max_untrusted_sessions
    # each replaced session was told (a Disconnect) and reported gone
    gone = [e for e in iter(host.next_event, None) if isinstance(e, ev.ClientGone)]
    assert len(gone) == host.counters.untrusted_evicted


def test_the_paired_client_gets_in_while_the_bounds_are_full() -> None:
    me = Identity.generate()
    host = HostEndpoint(HOST_ID, HostConfig(), trusted=[me.wavry_id])
    for n in range(1, 200):
        handshake_only(host, (f"10.3.0.{n % 50}", 9000 + n), T0 + n * 0.01, n)
    now = T0 + 2.0
    assert host.untrusted_sessions == host.config.max_untrusted_sessions
    client = ClientSession(me, ClientConfig(auto_reconnect=False))
    lb = Loopback(client, host, client_addr=("10.3.1.1", 1))
    client.connect(now)
    lb.pump(now)
    assert client.state is ClientState.ACTIVE
    # accepted sessions do not count against the bound (and are never evicted by it)
    for n in range(200, 400):
        handshake_only(host, (f"10.3.0.{n % 50}", 9000 + n), now + (n - 200) * 0.01, n)
    assert client.channel is not None and client.channel.alias in host.sessions


def test_waiting_sessions_expire_even_if_they_ping() -> None:
    cfg = HostConfig()  # default trust: an unknown client is asked to pair
    host = HostEndpoint(HOST_ID, cfg)
    handshake_only(host, ("10.4.0.1", 1), T0, 1)
    (s,) = host.sessions.values()
    assert s.state is HostSessionState.AWAITING_HELLO
    stranger = ClientSession(Identity.generate(), ClientConfig(auto_reconnect=False))
    lb = Loopback(stranger, host, client_addr=("10.4.0.2", 2))
    stranger.connect(T0)
    lb.pump(T0)
    assert stranger.state is ClientState.PAIRING  # host asked for a code nobody types
    # both keep pinging (the client core pings every 500 ms; the first session gets a Ping
    # from a channel-level stand-in below) and are freed anyway
    waiting = host.sessions[s.alias]
    ping = rift_pb2.Message(control=rift_pb2.ControlMessage(ping=rift_pb2.Ping(timestamp_us=1)))
    t = cfg.timing
    now = T0
    while now < T0 + t.pairing_wait_s + 1:
        now = lb.run_until(now, now + 0.5, step=0.1)
        if s.alias in host.sessions:
            # an authentic Ping on the handshake-only session (sealed with its client key)
            _, d = _client_channel_for(waiting).seal(ping)
            host.receive_datagram(d, ("10.4.0.1", 1), now)
        if now >= T0 + t.hello_wait_s + 0.5:
            assert s.alias not in host.sessions
    assert not host.sessions
    assert host.counters.untrusted_expired == 2
    assert stranger.state in (ClientState.CLOSED, ClientState.RECONNECT_WAIT)


def _client_channel_for(s: object) -> object:
    """A SecureChannel with the client's keys of a host session (the test holds both ends)."""
    from wavry.rift.channel import SecureChannel

    ch = s.channel  # type: ignore[attr-defined]
    key = "_client_side"
    cached = s.extra.get(key)  # type: ignore[attr-defined]
    if cached is None:
        cached = SecureChannel(ch.alias, ch.recv_key, ch.send_key, ch.max_datagram)
        s.extra[key] = cached  # type: ignore[attr-defined]
    return cached


@pytest.mark.pure
def test_timers_do_not_walk_idle_sessions() -> None:
    """A datagram for one session, the endpoint's next deadline and its output must not touch
    the other sessions' transports (before: every session, after every datagram)."""
    cfg = HostConfig(
        trust_any=True,
        max_untrusted_sessions=5000,
        max_untrusted_per_source=5000,
        handshake_rate_per_ip=1e9,
        handshake_burst_per_ip=1e9,
        handshake_rate_total=1e9,
        cookie_pending_threshold=10**6,
    )
    host = HostEndpoint(HOST_ID, cfg)
    for n in range(1, 1001):
        handshake_only(host, ("10.5.0.1", 1000 + n), T0, n)
    host.datagrams_to_send(T0)
    host.handle_timer(T0)
    host.datagrams_to_send(T0)
    assert len(host.sessions) == 1000
    touched: set[int] = set()
    for alias, s in host.sessions.items():
        tr = s.transport

        def spy(fn: object, alias: int = alias) -> object:
            def wrapped(*a: object, **k: object) -> object:
                touched.add(alias)
                return fn(*a, **k)  # type: ignore[operator]

            return wrapped

        tr.next_timer = spy(tr.next_timer)  # type: ignore[method-assign]
        tr.take_output = spy(tr.take_output)  # type: ignore[method-assign]
        tr.handle_timer = spy(tr.handle_timer)  # type: ignore[method-assign]
    one = next(iter(host.sessions.values()))
    ping = rift_pb2.Message(control=rift_pb2.ControlMessage(ping=rift_pb2.Ping(timestamp_us=9)))
    _, d = _client_channel_for(one).seal(ping)  # type: ignore[attr-defined]
    now = T0 + 0.01
    host.receive_datagram(d, one.addr, now)
    out = host.datagrams_to_send(now)
    nxt = host.next_timer()
    assert out and nxt is not None
    host.handle_timer(now)
    assert touched <= {one.alias}, f"{len(touched)} sessions touched"
