"""The small pieces peers parse from the network or from each other: candidates (what a peer
sends must never make us resolve a name or send to a broadcast address), STUN answers matched by
transaction, relay grants and relay answers (reject, re-present once on a stale proof)."""

from __future__ import annotations

import uuid

import pytest
from aioice import stun

from wavry.connectivity.candidates import (
    Candidate,
    CandidateError,
    CandidateKind,
    host_candidates,
    parse_candidates,
    parse_ip_port,
)
from wavry.connectivity.relaypath import (
    BIND_GIVE_UP_S,
    RelayBinding,
    RelayBindingState,
    RelayGrant,
    parse_grant,
)
from wavry.connectivity.stun import GIVE_UP_S, StunQuery, is_stun
from wavry.relay import wire
from wavry.relay.wire import Role
from wavry.rift.identity import Identity

SID = uuid.uuid4()
RELAY = ("11.200.0.1", 4000)


def test_candidates_from_a_peer_are_ip_literals_only() -> None:
    raw = [
        {"kind": "host", "addr": "192.168.1.2:47800"},
        {"kind": "srflx", "addr": "[2001:db8::1]:5000"},
        {"kind": "srflx", "addr": "[::ffff:11.200.1.2]:47800"},  # IPv4-mapped: plain IPv4
        {"kind": "host", "addr": "evil.example.org:47800"},  # a name: never resolved
        {"kind": "host", "addr": "255.255.255.255:47800"},
        {"kind": "host", "addr": "224.0.0.251:5353"},
        {"kind": "host", "addr": "0.0.0.0:1"},
        {"kind": "host", "addr": "1.2.3.4:0"},
        {"kind": "host", "addr": "1.2.3.4:70000"},
        {"kind": "p2p", "addr": "1.2.3.4:5"},
        {"kind": "host"},
        "1.2.3.4:5",
        {"kind": "host", "addr": "192.168.1.2:47800"},  # a duplicate
    ]
    got = parse_candidates(raw)
    assert [c.addr for c in got] == [
        ("192.168.1.2", 47800),
        ("2001:db8::1", 5000),
        ("11.200.1.2", 47800),
    ]
    assert parse_candidates("not a list") == []
    assert (
        len(parse_candidates([{"kind": "host", "addr": f"10.0.0.{i}:1"} for i in range(99)])) == 32
    )
    with pytest.raises(CandidateError):
        parse_ip_port("1.2.3.4")
    c = Candidate(CandidateKind.srflx, ("2001:db8::1", 5000))
    assert Candidate.from_json(c.to_json()) == c


def test_host_candidates_of_a_socket() -> None:
    assert host_candidates(("10.1.2.3", 9)) == [Candidate(CandidateKind.host, ("10.1.2.3", 9))]
    got = host_candidates(("0.0.0.0", 47800), ["192.168.1.2", "10.0.0.5"])
    assert [c.addr for c in got] == [("192.168.1.2", 47800), ("10.0.0.5", 47800)]


def test_stun_query_retries_matches_its_transaction_and_gives_up() -> None:
    q = StunQuery(("11.200.0.1", 3478), 0.0, random_bytes=lambda n: b"t" * n)
    first = q.take_output(0.0)
    assert len(first) == 1 and is_stun(first[0][0])
    assert q.take_output(0.05) == []
    assert len(q.take_output(0.1)) == 1  # retransmitted
    other = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.RESPONSE,
        transaction_id=b"x" * 12,
        attributes={"XOR-MAPPED-ADDRESS": ("11.200.2.2", 40000)},
    )
    assert not q.on_datagram(bytes(other), ("11.200.0.1", 3478))  # not ours
    assert not q.on_datagram(b"\x00\x01garbage", ("11.200.0.1", 3478))
    answer = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.RESPONSE,
        transaction_id=b"t" * 12,
        attributes={"XOR-MAPPED-ADDRESS": ("11.200.2.2", 40000)},
    )
    assert q.on_datagram(bytes(answer), ("11.200.0.1", 3478))
    assert q.result == ("11.200.2.2", 40000) and q.done
    lost = StunQuery(("11.200.0.1", 3478), 0.0)
    t = 0.0
    while (due := lost.next_timer()) is not None:
        t = due
        lost.take_output(t)
    assert lost.failed and t == pytest.approx(GIVE_UP_S)
    assert lost.sent == 5  # 0, 0.1, 0.3, 0.7, 1.5 s


def test_relay_grant_parsing() -> None:
    msg = {
        "type": "relay_grant",
        "session": str(SID),
        "relay_id": "relay-1",
        "relay_addr": "11.200.0.1:4000",
        "lease": "v4.public.x",
        "role": "client",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    g = parse_grant(msg)
    assert g.relay_addr == RELAY and g.role is Role.CLIENT and g.route.session == str(SID)
    bad_ones = [
        {**msg, "relay_addr": "relay.example:4000"},
        {**msg, "role": "admin"},
        {**msg, "session": "x"},
        {k: v for k, v in msg.items() if k != "lease"},
    ]
    for bad in bad_ones:
        with pytest.raises(ValueError):
            parse_grant(bad)


def _binding() -> RelayBinding:
    grant = RelayGrant(SID, "relay-1", RELAY, "v4.public.lease", Role.HOST, "")
    return RelayBinding(grant, Identity.generate().sign, 0.0, 1000.0)


def test_relay_binding_represents_once_on_a_stale_proof_then_fails_on_a_reject() -> None:
    b = _binding()
    assert [d[2] for d in b.take_output(0.0)] == [wire.PacketType.LEASE_PRESENT]
    b.on_control(wire.encode_lease_reject(SID, wire.RejectReason.BAD_PROOF), 0.1)
    assert [d[2] for d in b.take_output(0.1)] == [wire.PacketType.LEASE_PRESENT]
    b.on_control(wire.encode_lease_reject(SID, wire.RejectReason.BAD_PROOF), 0.2)
    assert b.state is RelayBindingState.FAILED and "bad_proof" in b.failure
    other = _binding()
    other.on_control(wire.encode_lease_reject(uuid.uuid4(), 1), 0.1)  # another session's
    assert other.state is RelayBindingState.PRESENTING
    other.on_control(b"W\x01garbage", 0.1)
    assert other.state is RelayBindingState.PRESENTING


def test_relay_binding_gives_up_without_an_answer_and_keeps_a_bound_one_alive() -> None:
    b = _binding()
    t = 0.0
    sent = 0
    while (due := b.next_timer()) is not None and due < 10:
        t = due
        sent += len(b.take_output(t))
        b.handle_timer(t)
    assert b.state is RelayBindingState.FAILED and t == pytest.approx(BIND_GIVE_UP_S)
    assert 5 <= sent <= 9  # 0.2 s doubling to 1 s
    ok = _binding()
    ok.take_output(0.0)
    ok.on_control(wire.encode_lease_ack(SID, 1_300_000, 1, 2), 0.1)  # expires at wall 1300
    assert ok.bound and ok.lease_valid(299.0) and not ok.lease_valid(301.0)
    assert ok.next_timer() == pytest.approx(15.1)  # re-presented every 15 s
    assert [d[2] for d in ok.take_output(15.1)] == [wire.PacketType.LEASE_PRESENT]
    assert ok.needs_renewal(240.5) and not ok.needs_renewal(200.0)
