"""docs/spec/RIFT.md §2 "Admission" on a fake clock: the 3x amplification bound, bounded msg2
resends, unpadded msg1 of older clients, cookie replies under load, per-source rate first."""

from __future__ import annotations

import random

from wavry.rift import events as ev
from wavry.rift.client import ClientSession, ClientState
from wavry.rift.config import ClientConfig, HostConfig
from wavry.rift.framing import COOKIE_REPLY, MSG2, HandshakeDatagram, parse_datagram
from wavry.rift.handshake import InitiatorHandshake, LocalStatic, msg1_cookie, msg1_payload
from wavry.rift.host import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.noise import generate_static_key
from wavry.rift.testing.loopback import Loopback

T0 = 1000.0
HOST_ID = Identity.generate()
CLIENT_ID = Identity.generate()
ADDR = ("10.0.0.2", 50000)


def local() -> LocalStatic:
    return LocalStatic.create(CLIENT_ID, generate_static_key(), "c")


def message_number(data: bytes) -> int | None:
    d = parse_datagram(data)
    return d.message_number if isinstance(d, HandshakeDatagram) else None


def test_duplicate_msg1_never_draws_more_than_three_times_its_bytes() -> None:
    # The finding: 2,000 copies of one 62-byte msg1 drew 2,000 msg2 of 236 bytes (x3.8).
    for pad_to in (0, 128):  # an older client's unpadded msg1, and ours
        host = HostEndpoint(HOST_ID, HostConfig(trust_any=True))
        msg1 = InitiatorHandshake(local(), b"\x07" * 12, pad_to=pad_to).msg1
        received = sent = msg2s = 0
        for i in range(2000):
            host.receive_datagram(msg1, ADDR, T0 + i * 0.001)
            received += len(msg1)
            for data, to in host.datagrams_to_send():
                assert to == ADDR
                sent += len(data)
                msg2s += message_number(data) == MSG2
            assert sent <= 3 * received, (pad_to, i, sent, received)
        assert 1 <= msg2s <= 1 + host.config.max_msg2_resends, (pad_to, msg2s)
        assert host.counters.duplicate_msg1 >= 1998


def test_padded_msg1_is_answered_at_once_unpadded_at_its_first_retransmission() -> None:
    host = HostEndpoint(HOST_ID, HostConfig(trust_any=True))
    padded = InitiatorHandshake(local(), b"\x01" * 12)
    assert len(padded.msg1) == 128 and 3 * len(padded.msg1) >= host.admission.msg2_len
    host.receive_datagram(padded.msg1, ADDR, T0)
    assert [message_number(d) for d, _ in host.datagrams_to_send()] == [MSG2]

    old = InitiatorHandshake(local(), b"\x02" * 12, pad_to=0)  # as clients before padding
    assert len(old.msg1) == 62
    host.receive_datagram(old.msg1, ADDR, T0)
    assert host.datagrams_to_send() == []  # 3 x 62 bytes cannot cover msg2
    assert host.counters.msg1_waiting_for_credit == 1
    host.receive_datagram(old.msg1, ADDR, T0 + 0.25)  # its retransmission (same bytes)
    ((msg2, to),) = host.datagrams_to_send()
    assert to == ADDR and message_number(msg2) == MSG2
    # ... and the handshake completes as before
    old.on_msg2(parse_datagram(msg2).payload)  # type: ignore[union-attr]
    assert old.msg3 is not None
    host.receive_datagram(old.msg3, ADDR, T0 + 0.3)
    assert any(isinstance(e, ev.ClientConnected) for e in iter(host.next_event, None))


def test_copies_from_another_address_add_no_credit_and_get_nothing() -> None:
    host = HostEndpoint(HOST_ID, HostConfig(trust_any=True))
    old = InitiatorHandshake(local(), b"\x03" * 12, pad_to=0)
    host.receive_datagram(old.msg1, ADDR, T0)
    host.receive_datagram(old.msg1, ("10.9.9.9", 1), T0)  # spoofed copy, another source
    assert host.datagrams_to_send() == []


def fill_pending(host: HostEndpoint, n: int, now: float) -> None:
    rnd = random.Random(1)
    for i in range(n):
        hs = InitiatorHandshake(local(), rnd.randbytes(12))
        host.receive_datagram(hs.msg1, (f"10.1.{i // 200}.{i % 200}", 4000), now)
    host.datagrams_to_send()


def test_under_load_a_msg1_without_cookie_gets_a_small_cookie_reply_and_no_key_work() -> None:
    cfg = HostConfig(trust_any=True, cookie_pending_threshold=16)
    host = HostEndpoint(HOST_ID, cfg)
    fill_pending(host, 16, T0)
    assert host.pending_handshakes == 16 and host.admission.under_load(T0)
    hs = InitiatorHandshake(local(), b"\x04" * 12)
    started = host.counters.handshakes_started
    host.receive_datagram(hs.msg1, ADDR, T0)
    ((reply, to),) = host.datagrams_to_send()
    d = parse_datagram(reply)
    assert isinstance(d, HandshakeDatagram) and d.message_number == COOKIE_REPLY
    assert to == ADDR and len(reply) == 46 <= 3 * len(hs.msg1)
    assert host.counters.handshakes_started == started and host.pending_handshakes == 16
    # msg1 again with the cookie: the address is proven, the handshake starts
    again = InitiatorHandshake(local(), b"\x05" * 12, cookie=d.payload)
    assert msg1_cookie(again.msg1[30:]) == d.payload
    host.receive_datagram(again.msg1, ADDR, T0)
    assert [message_number(x) for x, _ in host.datagrams_to_send()] == [MSG2]
    assert host.counters.cookies_accepted == 1
    # the cookie is bound to the address: from elsewhere it proves nothing
    other = InitiatorHandshake(local(), b"\x06" * 12, cookie=d.payload)
    host.receive_datagram(other.msg1, ("10.0.0.3", 50000), T0)
    assert [message_number(x) for x, _ in host.datagrams_to_send()] == [COOKIE_REPLY]


def test_a_client_connects_through_a_cookie_reply() -> None:
    cfg = HostConfig(trust_any=True, cookie_pending_threshold=16)
    host = HostEndpoint(HOST_ID, cfg)
    fill_pending(host, 16, T0)
    client = ClientSession(CLIENT_ID, ClientConfig(auto_reconnect=False))
    lb = Loopback(client, host, client_addr=ADDR)
    client.connect(T0)
    lb.pump(T0)
    assert client.state is ClientState.ACTIVE
    assert host.counters.cookie_replies == 1 and host.counters.cookies_accepted == 1
    numbers = [message_number(d) for d in lb.to_client]
    assert numbers[:2] == [COOKIE_REPLY, MSG2]


def test_cookie_replies_are_rate_limited_per_source() -> None:
    cfg = HostConfig(trust_any=True, cookie_pending_threshold=1, cookie_rate_per_ip=5.0)
    host = HostEndpoint(HOST_ID, cfg)
    fill_pending(host, 1, T0)
    rnd = random.Random(2)
    replies = 0
    for _ in range(500):
        hs = InitiatorHandshake(local(), rnd.randbytes(12))
        host.receive_datagram(hs.msg1, ADDR, T0)
        replies += len(host.datagrams_to_send())
    assert replies == 10  # the per-source burst (2 x rate), nothing more in the same instant


def test_one_flooding_source_does_not_spend_the_global_budget() -> None:
    cfg = HostConfig(trust_any=True, handshake_rate_total=100.0, cookies=False)
    host = HostEndpoint(HOST_ID, cfg)
    rnd = random.Random(3)
    for _ in range(2000):  # one source, far beyond its own allowance
        host.receive_datagram(InitiatorHandshake(local(), rnd.randbytes(12)).msg1, ADDR, T0)
    host.datagrams_to_send()
    other = InitiatorHandshake(local(), b"\x08" * 12)
    host.receive_datagram(other.msg1, ("10.0.0.77", 1), T0)
    assert [message_number(x) for x, _ in host.datagrams_to_send()] == [MSG2]


def test_msg1_payload_layout() -> None:
    assert msg1_payload(None, 0) == b""
    assert msg1_payload(None, 128) == bytes(66)
    p = msg1_payload(b"\xaa" * 16, 128)
    assert len(p) == 66 and p[0] == 1 and p[1:17] == b"\xaa" * 16 and p[17:] == bytes(49)
