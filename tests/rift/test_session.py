"""docs/spec/RIFT.md §2–§4 session flow on a fake clock: handshake, Hello, pairing, liveness,
reconnect."""

from __future__ import annotations

import pytest

from wavry.rift import events as ev
from wavry.rift import rift_pb2
from wavry.rift.client import ClientSession, ClientState
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.framing import HandshakeDatagram, TransportDatagram, parse_datagram
from wavry.rift.host import HostEndpoint, HostSessionState
from wavry.rift.identity import Identity
from wavry.rift.pairing import pairing_proof
from wavry.rift.testing.loopback import Loopback

T0 = 1_700_000_000.0
HOST_ID = Identity.generate()
CLIENT_ID = Identity.generate()


def make(
    trust_any: bool = True,
    host_cfg: HostConfig | None = None,
    client_cfg: ClientConfig | None = None,
    expected: str | None = None,
    drop: object = None,
) -> Loopback:
    cfg = host_cfg or HostConfig(trust_any=trust_any)
    host = HostEndpoint(HOST_ID, cfg)
    client = ClientSession(CLIENT_ID, client_cfg or ClientConfig(), expected_host_id=expected)
    return Loopback(client, host, drop=drop)  # type: ignore[arg-type]


def kinds(events: list[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def of(events: list[object], cls: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, cls)]


def msg_no(data: bytes) -> int | None:
    d = parse_datagram(data)
    return d.message_number if isinstance(d, HandshakeDatagram) else None


def test_handshake_hello_accept() -> None:
    lb = make()
    lb.client.connect(T0)
    lb.pump(T0)
    assert kinds(lb.client_events)[:2] == ["HandshakeCompleted", "SessionAccepted"]
    hc = of(lb.client_events, ev.HandshakeCompleted)[0]
    assert hc.host_id == HOST_ID.wavry_id
    ack = of(lb.client_events, ev.SessionAccepted)[0].ack
    assert ack.accepted and ack.selected_codec == rift_pb2.H264
    assert ack.session_alias == lb.client.channel.alias  # type: ignore[union-attr]
    assert len(ack.session_id) == 16
    assert ack.stream_resolution.width % 2 == 0 and ack.stream_resolution.height % 2 == 0
    assert kinds(lb.host_events)[:2] == ["ClientConnected", "ClientAccepted"]
    assert of(lb.host_events, ev.ClientConnected)[0].client_id == CLIENT_ID.wavry_id
    # the host sends MonitorList after accepting (§4 step 5)
    received = of(lb.client_events, ev.MessageReceived)
    ml = [e for e in received if e.message.control.HasField("monitor_list")]
    assert ml
    assert lb.client.state is ClientState.ACTIVE
    # first transport packet ids are 1 in both directions
    firsts = [parse_datagram(d) for d in (lb.to_host[2], lb.to_client[1])]
    assert all(isinstance(d, TransportDatagram) and d.packet_id == 1 for d in firsts)


def test_resolution_respects_client_max_and_fps() -> None:
    cc = ClientConfig(max_width=1001, max_height=600, max_fps=30)
    lb = make(client_cfg=cc)
    lb.client.connect(T0)
    lb.pump(T0)
    ack = of(lb.client_events, ev.SessionAccepted)[0].ack
    r = ack.stream_resolution
    assert r.width <= 1001 and r.height <= 600 and r.width % 2 == 0 and r.height % 2 == 0
    assert ack.fps == 30


def test_identity_mismatch_aborts() -> None:
    other = Identity.generate().wavry_id
    lb = make(expected=other)
    lb.client.connect(T0)
    lb.pump(T0)
    closed = of(lb.client_events, ev.SessionClosed)
    assert closed and closed[0].kind is ev.CloseKind.IDENTITY_MISMATCH
    assert other in closed[0].message and HOST_ID.wavry_id in closed[0].message
    assert lb.client.channel is None
    assert not of(lb.host_events, ev.ClientAccepted)


def test_msg1_retransmitted_with_backoff_and_duplicate_answered_from_cache() -> None:
    drops = {"n": 0}

    def drop(direction: str, data: bytes) -> bool:
        # lose the first two msg2s
        if direction == "h2c" and msg_no(data) == 2 and drops["n"] < 2:
            drops["n"] += 1
            return True
        return False

    lb = make(drop=drop)
    lb.client.connect(T0)
    lb.pump(T0)
    lb.run_until(T0, T0 + 2.0, step=0.01)
    msg1s = [d for d in lb.to_host if msg_no(d) == 1]
    assert len(msg1s) == 3 and len(set(msg1s)) == 1  # same bytes each time
    msg2s = [d for d in lb.to_client if msg_no(d) == 2]
    assert len(set(msg2s)) == 1  # cached msg2, no new key work
    assert lb.host.counters.handshakes_started == 1
    assert lb.host.counters.duplicate_msg1 == 2
    assert lb.client.state is ClientState.ACTIVE


def test_msg3_resent_with_hello_until_host_answers() -> None:
    lost = {"n": 0}

    def drop(direction: str, data: bytes) -> bool:
        if direction == "c2h" and msg_no(data) == 3 and lost["n"] < 1:
            lost["n"] += 1
            return True
        return False

    lb = make(drop=drop)
    lb.client.connect(T0)
    lb.pump(T0)
    assert lb.client.state is ClientState.HELLO
    lb.run_until(T0, T0 + 0.5, step=0.05)
    assert lb.client.state is ClientState.ACTIVE
    assert len([d for d in lb.to_host if msg_no(d) == 3]) == 2
    # once the host answered, msg3 is not sent any more
    n3 = len([d for d in lb.to_host if msg_no(d) == 3])
    lb.run_until(T0 + 0.5, T0 + 2.0, step=0.1)
    assert len([d for d in lb.to_host if msg_no(d) == 3]) == n3


def test_handshake_gives_up_after_10s() -> None:
    lb = make(drop=lambda d, data: d == "c2h")
    lb.client.connect(T0)
    lb.run_until(T0, T0 + 11, step=0.05)
    closed = of(lb.client_events, ev.SessionClosed)
    assert closed and closed[0].kind is ev.CloseKind.CONNECT_FAILED
    n = len([d for d in lb.to_host if msg_no(d) == 1])
    assert 5 <= n <= 12  # 250 ms doubling, capped at 2 s


def test_hello_retransmitted_then_gives_up() -> None:
    def drop(direction: str, data: bytes) -> bool:
        return direction == "c2h" and isinstance(parse_datagram(data), TransportDatagram)

    lb = make(drop=drop)
    lb.client.connect(T0)
    lb.run_until(T0, T0 + 1.05, step=0.01)
    hellos = [d for d in lb.to_host if not msg_no(d) and len(d) > 60]
    assert len(hellos) >= 5  # every 200 ms
    lb.run_until(T0 + 1.05, T0 + 11, step=0.05)
    closed = of(lb.client_events, ev.SessionClosed)
    # the host frees a session without Hello after hello_wait_s (5 s) and says so; the
    # client's own Hello timeout (10 s) is the backstop
    assert closed and closed[0].kind in (ev.CloseKind.PEER_DISCONNECT, ev.CloseKind.CONNECT_FAILED)
    assert lb.host.counters.untrusted_expired == 1 and not lb.host.sessions


@pytest.mark.parametrize(
    ("host_cfg", "hello_mut", "reason"),
    [
        (HostConfig(trust_any=True), {"protocol_version": 2}, rift_pb2.UNSUPPORTED_VERSION),
        (HostConfig(trust_any=True, codecs=[rift_pb2.AV1]), {}, rift_pb2.NO_COMMON_CODEC),
    ],
)
def test_rejects(host_cfg: HostConfig, hello_mut: dict[str, int], reason: int) -> None:
    lb = make(host_cfg=host_cfg)
    if hello_mut:
        import wavry.rift.client as client_mod

        orig = client_mod.PROTOCOL_VERSION
        client_mod.PROTOCOL_VERSION = hello_mut["protocol_version"]  # type: ignore[misc]
        try:
            lb.client.connect(T0)
            lb.pump(T0)
        finally:
            client_mod.PROTOCOL_VERSION = orig  # type: ignore[misc]
    else:
        lb.client.connect(T0)
        lb.pump(T0)
    rej = of(lb.client_events, ev.SessionRejected)
    assert rej and rej[0].reason == reason and rej[0].message
    closed = of(lb.client_events, ev.SessionClosed)
    assert closed and closed[0].kind is ev.CloseKind.REJECTED


def test_busy_when_full() -> None:
    cfg = HostConfig(trust_any=True, max_clients=1)
    host = HostEndpoint(HOST_ID, cfg)
    a = Loopback(ClientSession(Identity.generate()), host, client_addr=("10.0.0.2", 1))
    a.client.connect(T0)
    a.pump(T0)
    assert a.client.state is ClientState.ACTIVE
    b = Loopback(ClientSession(Identity.generate()), host, client_addr=("10.0.0.3", 1))
    b.client.connect(T0)
    # host output is shared: route by address
    for _ in range(5):
        for d in b.client.datagrams_to_send():
            host.receive_datagram(d, ("10.0.0.3", 1), T0)
        for d, addr in host.datagrams_to_send():
            (b.client if addr == ("10.0.0.3", 1) else a.client).receive_datagram(d, T0)
        while (e := b.client.next_event()) is not None:
            b.client_events.append(e)
    rej = of(b.client_events, ev.SessionRejected)
    assert rej and rej[0].reason == rift_pb2.BUSY


def test_pairing_flow_and_persisted_trust() -> None:
    lb = make(trust_any=False)
    lb.client.connect(T0)
    lb.pump(T0)
    rej = of(lb.client_events, ev.SessionRejected)
    assert rej and rej[0].reason == rift_pb2.PAIRING_REQUIRED
    assert lb.client.state is ClientState.PAIRING
    codes = of(lb.host_events, ev.PairingCodeIssued)
    assert len(codes) == 1 and len(codes[0].code) == 6 and codes[0].code.isdigit()
    assert codes[0].expires_at == pytest.approx(T0 + 300)
    lb.client.pair(codes[0].code, T0 + 1)
    lb.pump(T0 + 1)
    assert of(lb.client_events, ev.PairingFinished)[0].ok
    assert of(lb.host_events, ev.DevicePaired)[0].client_id == CLIENT_ID.wavry_id
    assert lb.client.state is ClientState.ACTIVE
    assert CLIENT_ID.wavry_id in lb.host.trusted
    # one-time: the code is consumed
    assert lb.host.pairing.active_code(T0 + 2) is None


def test_pairing_wrong_code_attempts_and_burn() -> None:
    lb = make(trust_any=False)
    lb.client.connect(T0)
    lb.pump(T0)
    code = of(lb.host_events, ev.PairingCodeIssued)[0].code
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for i in range(5):
        lb.client.pair(wrong, T0 + i)
        lb.pump(T0 + i)
    results = of(lb.client_events, ev.PairingFinished)
    assert [r.ok for r in results] == [False] * 5
    assert "4 attempts left" in results[0].message
    assert "used up" in results[4].message
    # the right code no longer works: burnt after 5 attempts
    lb.client.pair(code, T0 + 6)
    lb.pump(T0 + 6)
    assert not of(lb.client_events, ev.PairingFinished)[-1].ok
    assert CLIENT_ID.wavry_id not in lb.host.trusted
    # that device gets no new code during the cool-down; the owner can always ask for one
    assert lb.host.pairing.ensure(T0 + 10, "10.0.0.2") is None
    assert lb.host.issue_pairing_code(T0 + 10) is not None


def test_pairing_code_expires_after_5_minutes() -> None:
    lb = make(trust_any=False)
    code = lb.host.issue_pairing_code(T0)
    assert code is not None
    lb.client.connect(T0 + 301)
    lb.pump(T0 + 301)
    new_codes = of(lb.host_events, ev.PairingCodeIssued)
    assert len(new_codes) == 2 and new_codes[1].expires_at == pytest.approx(T0 + 601)


def test_pairing_proof_definition() -> None:
    import hashlib

    h = bytes(range(32))
    expected = hashlib.blake2s(b"RIFT/1 pair" + h, key=b"123456", digest_size=32).digest()
    assert pairing_proof("123456", h) == expected


def test_ping_pong_and_clock_offset() -> None:
    lb = make()
    lb.client.connect(T0)
    lb.pump(T0)
    # the host's clock runs 2.5 s ahead; the network takes 10 ms each way
    offset = 2.5
    events: list[object] = []
    for i in range(10):
        t = T0 + 1 + i
        ts = lb.client.ping(t)
        assert ts is not None
        for d in lb.client.datagrams_to_send():
            lb.host.receive_datagram(d, lb.client_addr, t + 0.010 + offset)
        for d, _ in lb.host.datagrams_to_send():
            lb.client.receive_datagram(d, t + 0.020)
        while (e := lb.client.next_event()) is not None:
            events.append(e)
    pongs = of(events, ev.PongReceived)
    assert len(pongs) == 10
    assert all(p.rtt_s == pytest.approx(0.020, abs=1e-5) for p in pongs)
    assert lb.client.clock_offset_s == pytest.approx(offset, abs=1e-5)


def test_keepalive_stall_loss_and_reconnect() -> None:
    blackhole = {"on": False}
    lb = make(drop=lambda d, data: blackhole["on"])
    lb.client.connect(T0)
    lb.pump(T0)
    now = lb.run_until(T0, T0 + 2, step=0.05)
    pings = len(lb.to_host)
    assert pings >= 3 + 3  # 500 ms keepalive pings (+ msg1, msg3, Hello)
    blackhole["on"] = True
    now = lb.run_until(now, now + 3.2, step=0.05)
    assert of(lb.client_events, ev.LinkStalled)
    assert of(lb.host_events, ev.ClientStalled)
    now = lb.run_until(now, now + 7.2, step=0.05)
    gone = of(lb.host_events, ev.ClientGone)
    assert gone and gone[0].reason is ev.DisconnectReason.TIMEOUT
    assert not lb.host.sessions
    rec = of(lb.client_events, ev.Reconnecting)
    assert rec and rec[0].attempt == 1
    blackhole["on"] = False
    now = lb.run_until(now, now + 3, step=0.05)
    acc = of(lb.client_events, ev.SessionAccepted)
    assert len(acc) == 2 and acc[1].reconnected
    assert lb.client.state is ClientState.ACTIVE


def test_reconnect_backoff_grows_and_gives_up() -> None:
    cfg = ClientConfig()
    cfg.timing.reconnect_give_up_s = 60
    blackhole = {"on": False}
    lb = make(client_cfg=cfg, drop=lambda d, data: blackhole["on"])
    lb.client.connect(T0)
    lb.pump(T0)
    blackhole["on"] = True
    lb.run_until(T0, T0 + 100, step=0.1)
    delays = [e.delay_s for e in of(lb.client_events, ev.Reconnecting)]
    assert len(delays) >= 3
    assert delays[1] > delays[0] and delays[2] > delays[1]
    assert max(delays) <= 8 * 1.2 + 1e-9
    closed = of(lb.client_events, ev.SessionClosed)
    assert closed and closed[0].kind is ev.CloseKind.RECONNECT_FAILED


def test_disconnect_sent_three_times_and_host_frees() -> None:
    lb = make()
    lb.client.connect(T0)
    lb.pump(T0)
    before = len(lb.to_host)
    lb.client.close(T0 + 1, "bye")
    lb.pump(T0 + 1)
    assert len(lb.to_host) - before == 3
    gone = of(lb.host_events, ev.ClientGone)
    assert gone and gone[0].message == "bye"
    assert of(lb.client_events, ev.SessionClosed)[0].kind is ev.CloseKind.USER


def test_host_disconnect_reaches_client() -> None:
    lb = make()
    lb.client.connect(T0)
    lb.pump(T0)
    alias = next(iter(lb.host.sessions))
    lb.host.close_session(alias, ev.DisconnectReason.SHUTDOWN, "host is shutting down")
    lb.pump(T0)
    closed = of(lb.client_events, ev.SessionClosed)
    assert closed[0].kind is ev.CloseKind.PEER_DISCONNECT
    assert closed[0].peer_reason == ev.DisconnectReason.SHUTDOWN
    assert of(lb.host_events, ev.ClientGone)


def test_same_identity_reconnect_replaces_old_session() -> None:
    host = HostEndpoint(HOST_ID, HostConfig(trust_any=True))
    a = Loopback(ClientSession(CLIENT_ID), host, client_addr=("10.0.0.2", 1))
    a.client.connect(T0)
    a.pump(T0)
    first = next(iter(host.sessions))
    b = Loopback(ClientSession(CLIENT_ID), host, client_addr=("10.0.0.2", 2))
    b.client.connect(T0 + 1)
    b.pump(T0 + 1)
    assert first not in host.sessions and len(host.sessions) == 1
    gone = [e for e in a.host_events + b.host_events if isinstance(e, ev.ClientGone)]
    assert gone and gone[0].reason is ev.DisconnectReason.REPLACED


def test_address_migration() -> None:
    lb = make()
    lb.client.connect(T0)
    lb.pump(T0)
    lb.client_addr = ("192.0.2.9", 4444)
    lb.client.ping(T0 + 1)
    lb.pump(T0 + 1)
    mig = of(lb.host_events, ev.ClientMigrated)
    assert mig and mig[0].new_addr == ("192.0.2.9", 4444)
    alias = next(iter(lb.host.sessions))
    assert lb.host.sessions[alias].addr == ("192.0.2.9", 4444)
    # replies go to the new address
    lb.client.ping(T0 + 2)
    for d in lb.client.datagrams_to_send():
        lb.host.receive_datagram(d, ("192.0.2.9", 4444), T0 + 2)
    assert all(addr == ("192.0.2.9", 4444) for _, addr in lb.host.datagrams_to_send())


def test_session_age_limit_rekeys() -> None:
    lb = make()
    lb.client.connect(T0)
    lb.pump(T0)
    alias1 = lb.client.channel.alias  # type: ignore[union-attr]
    lb.run_until(T0 + 24 * 3600 - 1, T0 + 24 * 3600 + 1, step=0.05)
    assert of(lb.client_events, ev.Reconnecting)
    assert lb.client.state is ClientState.ACTIVE
    assert lb.client.channel is not None and lb.client.channel.alias != alias1


def test_messages_before_accept_are_not_dispatched() -> None:
    lb = make(trust_any=False)
    lb.client.connect(T0)
    lb.pump(T0)
    alias = next(iter(lb.host.sessions))
    assert lb.host.sessions[alias].state is HostSessionState.PAIRING
    ch = lb.client.channel
    assert ch is not None
    key = rift_pb2.InputMessage(key=rift_pb2.Key(keycode=30, pressed=True))
    _, d = ch.seal(rift_pb2.Message(input=key))
    lb.host.receive_datagram(d, lb.client_addr, T0)
    assert not [e for e in lb.host_events if isinstance(e, ev.ClientMessage)]
    while lb.host.next_event():
        pass
    assert not [e for e in lb.host_events if isinstance(e, ev.ClientMessage)]


def test_send_message_requires_active_session() -> None:
    lb = make()
    with pytest.raises(RuntimeError):
        lb.client.send_message(rift_pb2.Message())
    lb.client.connect(T0)
    lb.pump(T0)
    pid = lb.client.send_message(
        rift_pb2.Message(input=rift_pb2.InputMessage(key=rift_pb2.Key(keycode=30, pressed=True)))
    )
    lb.pump(T0)
    got = of(lb.host_events, ev.ClientMessage)
    assert pid > 1 and got and got[0].message.input.key.keycode == 30
