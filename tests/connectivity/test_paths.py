"""The client's path manager and the host's meetings on a fake clock (docs/spec/CONTROL_PLANE.md
§6): checks to every candidate, first answer wins, relay fallback at 1.5 s, direct checks every
5 s while relayed, failover after 1 s of silence, migration by packet id, probes."""

from __future__ import annotations

import uuid

from wavry.connectivity.candidates import Candidate, CandidateKind
from wavry.connectivity.meetings import HostMeetings, probe_datagram
from wavry.connectivity.paths import (
    MOVE_BACK_HOLD_S,
    ClientPaths,
    DirectCheckDue,
    PathChanged,
    PathKind,
    RelayNeeded,
    handshake_message_number,
)
from wavry.connectivity.relaypath import RelayGrant, RelayRoute
from wavry.relay import wire
from wavry.relay.wire import Role
from wavry.rift.framing import encode_handshake_header, encode_transport_header
from wavry.rift.identity import Identity

SID = uuid.UUID("12345678-1234-4234-8234-123456789abc")
HOST_LAN = ("192.168.1.2", 47800)
HOST_SRFLX = ("11.200.1.2", 47800)
RELAY = ("11.200.0.1", 4000)
KEY = Identity.generate()
MSG1 = encode_handshake_header(b"h" * 12, 1) + b"e" * 32


def transport(pid: int) -> bytes:
    return encode_transport_header(7, pid) + b"x" * 40


def _due(t: float | None) -> float:
    return 99.0 if t is None else t


def cands() -> list[Candidate]:
    return [Candidate(CandidateKind.host, HOST_LAN), Candidate(CandidateKind.srflx, HOST_SRFLX)]


def events(p: ClientPaths) -> list[object]:
    out = []
    while (e := p.next_event()) is not None:
        out.append(e)
    return out


def grant(role: Role = Role.CLIENT, lease: str = "v4.public.lease") -> RelayGrant:
    return RelayGrant(SID, "relay-1", RELAY, lease, role, "2030-01-01T00:00:00Z")


def ack(expires_unix: float) -> bytes:
    return wire.encode_lease_ack(SID, int(expires_unix * 1000), 8000, 10000)


def bound_relay(p: ClientPaths, now: float, wall: float) -> None:
    p.relay_granted(grant(), KEY.sign, now, wall)
    out = [d for d, a in p.take_output(now) if a == RELAY]
    assert len(out) == 1 and out[0][2] == wire.PacketType.LEASE_PRESENT
    challenge = wire.encode_lease_challenge(SID, Role.CLIENT, b"c" * 32)
    assert p.unwrap(challenge, RELAY, now) is None
    proof = next(d for d, a in p.take_output(now) if a == RELAY)
    _, parsed = wire.decode_lease_proof(proof)
    assert parsed.cookie == b"c" * 32
    assert p.unwrap(ack(wall + 300), RELAY, now) is None
    assert p.relay is not None and p.relay.bound


def test_msg1_goes_to_every_candidate_and_is_resent_every_50_ms_for_3_s() -> None:
    p = ClientPaths(SID, 0.0)
    p.accepted(cands(), 0.0)
    assert [a for _, a in p.route(MSG1, 0.0)] == [HOST_LAN, HOST_SRFLX]
    sent = 0
    t = 0.0
    while t < 4.0:
        t = _due(p.next_timer())
        if t > 4.0:
            break
        sent += len([1 for d, _ in p.take_output(t) if d == MSG1])
    # 3 s / 50 ms resends to two candidates (the fallback relay request is due meanwhile)
    assert 2 * 55 <= sent <= 2 * 61, sent
    assert any(isinstance(e, RelayNeeded) for e in events(p))


def test_first_answer_fixes_the_path_and_later_output_follows_it() -> None:
    p = ClientPaths(SID, 0.0)
    p.accepted(cands(), 0.0)
    p.route(MSG1, 0.0)
    p.receiving = HOST_SRFLX  # msg3/Hello from inside the core's processing of msg2
    assert p.route(transport(1), 0.1) == [(transport(1), HOST_SRFLX)]
    p.receiving = None
    p.received(HOST_SRFLX, True, 0.1, handshake=True)
    assert p.current == HOST_SRFLX and p.kind is PathKind.punched
    change = [e for e in events(p) if isinstance(e, PathChanged)]
    assert change[0].reason == "first answer"
    assert change[0].handshake_s is not None and abs(change[0].handshake_s - 0.1) < 1e-9
    assert p.route(transport(2), 0.2) == [(transport(2), HOST_SRFLX)]
    # no more checks, and while the host talks, no relay
    for t in (0.5, 1.0, 1.5):
        p.received(HOST_SRFLX, True, t, handshake=False)
    assert all(d != MSG1 for d, _ in p.take_output(2.0))
    assert not any(isinstance(e, RelayNeeded) for e in events(p))


def test_a_host_candidate_is_direct() -> None:
    p = ClientPaths(SID, 0.0)
    p.accepted(cands(), 0.0)
    p.route(MSG1, 0.0)
    p.received(HOST_LAN, True, 0.01, handshake=True)
    assert p.kind is PathKind.direct


def test_relay_after_1_5_s_and_the_handshake_through_it() -> None:
    p = ClientPaths(SID, 100.0)
    p.accepted(cands(), 100.0)
    p.route(MSG1, 100.0)
    p.take_output(101.4)
    assert not any(isinstance(e, RelayNeeded) for e in events(p))
    p.take_output(101.5)
    needed = [e for e in events(p) if isinstance(e, RelayNeeded)]
    assert len(needed) == 1 and not needed[0].renewal
    bound_relay(p, 101.6, 5000.0)
    # the pending msg1 goes through the relay as soon as the binding holds
    out = p.take_output(101.6)
    relayed = [d for d, a in out if a == RELAY and d[2] == wire.PacketType.FORWARD]
    assert relayed and relayed[0][20:] == MSG1
    route = RelayRoute(RELAY[0], RELAY[1], str(SID))
    forward = wire.encode_forward(SID, b"RI-msg2")
    assert p.unwrap(forward, RELAY, 101.7) == (b"RI-msg2", route)
    p.received(route, True, 101.7, handshake=True)
    assert p.kind is PathKind.relayed
    # the bare handshake on the relay: from its msg1 (sent when the binding held) to msg2
    assert p.changes[0].handshake_s is not None and abs(p.changes[0].handshake_s - 0.1) < 1e-9
    d, a = p.route(transport(1), 101.8)[0]
    assert a == RELAY and d[20:] == transport(1)
    # relayed: a direct check every 5 s
    due = [e for e in events(p) if isinstance(e, DirectCheckDue)]
    assert not due
    p.take_output(106.8)
    assert [e for e in events(p) if isinstance(e, DirectCheckDue)]
    with p.direct_check():
        assert [a for _, a in p.route(transport(2), 106.8)] == [HOST_LAN, HOST_SRFLX]
    # the host heard the check and answers directly with a higher packet id: we move there
    p.received(HOST_SRFLX, True, 106.85, handshake=False)
    p.authenticated_id(HOST_SRFLX, 50, 106.85)
    assert p.current == HOST_SRFLX and p.kind is PathKind.punched
    # a late relayed datagram with a lower id does not move us back
    p.received(route, True, 106.86, handshake=False)
    p.authenticated_id(route, 49, 106.86)
    assert p.current == HOST_SRFLX
    # nor one with a higher id the host sent on the relay while it validated the direct path
    # (RIFT.md §3: it moves its media only when the client's Pong comes back directly)
    p.authenticated_id(route, 51, 106.87)
    assert p.current == HOST_SRFLX
    assert [c.kind for c in p.changes] == [PathKind.relayed, PathKind.punched]
    # a host that really goes back to the relay is followed once the hold is over
    p.authenticated_id(route, 52, 106.85 + MOVE_BACK_HOLD_S)
    assert p.current == route
    assert [c.kind for c in p.changes] == [PathKind.relayed, PathKind.punched, PathKind.relayed]


def test_a_silent_direct_path_moves_to_the_relay_and_asks_for_one_first() -> None:
    p = ClientPaths(SID, 0.0)
    p.accepted(cands(), 0.0)
    p.route(MSG1, 0.0)
    p.received(HOST_SRFLX, True, 0.05, handshake=True)
    events(p)
    for t in (0.5, 0.9):
        p.received(HOST_SRFLX, True, t, handshake=False)
        p.take_output(t)
    assert not [e for e in events(p) if isinstance(e, RelayNeeded)]
    p.take_output(1.95)
    assert [e for e in events(p) if isinstance(e, RelayNeeded)]
    bound_relay(p, 2.0, 1000.0)
    assert isinstance(p.current, RelayRoute)
    assert p.changes[-1].reason == "the direct path went silent"
    assert p.changes[-1].relay_id == "relay-1"


def test_a_relayed_session_asks_for_a_fresh_lease_before_it_expires() -> None:
    p = ClientPaths(SID, 0.0)
    p.accepted([], 0.0)  # nothing usable: relay at once
    assert [e for e in events(p) if isinstance(e, RelayNeeded)]
    bound_relay(p, 0.1, 1000.0)  # lease ends at wall 1300 = monotonic 300.1
    route = p.relay.route if p.relay else None
    assert route is not None
    p.route(MSG1, 0.2)
    p.received(route, True, 0.3, handshake=True)
    events(p)
    p.take_output(200.0)
    assert not [e for e in events(p) if isinstance(e, RelayNeeded)]
    p.take_output(241.0)
    renew = [e for e in events(p) if isinstance(e, RelayNeeded)]
    assert len(renew) == 1 and renew[0].renewal
    p.relay_granted(grant(lease="v4.public.fresh"), KEY.sign, 242.0, 1242.0)
    out = p.take_output(242.0)
    assert [d[2] for d, _ in out] == [wire.PacketType.LEASE_RENEW]


def _wakeups(p: ClientPaths, start: float, until: float) -> int:
    """Drive ``p`` as the client's adapter does, with nothing arriving: wake at its next
    deadline (every 0.5 s at the latest). A deadline it leaves in the past wakes it again at
    once, and this count explodes."""
    t, n = start, 0
    while t < until and n < 100_000:
        p.take_output(t)
        events(p)
        due = p.next_timer()
        t = min(due, t + 0.5) if due is not None else t + 0.5
        n += 1
    return n


def test_no_path_state_keeps_the_client_timer_spinning() -> None:
    # relayed, the renewal asked for and the gateway silent (restarting)
    p = ClientPaths(SID, 0.0)
    p.accepted([], 0.0)
    bound_relay(p, 0.1, 1000.0)  # lease ends at monotonic 300.1
    assert p.relay is not None
    route = p.relay.route
    p.route(MSG1, 0.2)
    p.received(route, True, 0.3, handshake=True)
    assert _wakeups(p, 0.3, 290.0) < 2_000
    # direct, the path silent, the relay asked for and no grant coming
    p = ClientPaths(SID, 0.0)
    p.accepted(cands(), 0.0)
    p.route(MSG1, 0.0)
    p.received(HOST_SRFLX, True, 0.05, handshake=True)
    assert _wakeups(p, 0.05, 60.0) < 1_000
    assert p._relay_asked
    # direct and silent while the granted binding gets no answer from the relay
    p = ClientPaths(SID, 0.0)
    p.accepted(cands(), 0.0)
    p.route(MSG1, 0.0)
    p.received(HOST_SRFLX, True, 0.05, handshake=True)
    p.relay_granted(grant(), KEY.sign, 0.1, 1000.0)
    assert _wakeups(p, 0.1, 60.0) < 1_000
    # not connected yet, a relay granted (not asked for by us) and still binding
    p = ClientPaths(SID, 0.0)
    p.accepted(cands(), 0.0)
    p.route(MSG1, 0.0)
    p.relay_granted(grant(), KEY.sign, 0.5, 1000.5)
    assert _wakeups(p, 0.5, 30.0) < 1_000


def test_host_probes_candidates_then_keeps_probing_a_relayed_session() -> None:
    m = HostMeetings(KEY.sign)
    client = [Candidate(CandidateKind.srflx, ("11.200.2.2", 40000))]
    m.on_connect(SID, "c" * 43, client, 0.0)
    probe = probe_datagram(SID)
    assert handshake_message_number(probe) == 0 and probe[8:20] == SID.bytes[:12]
    count = 0
    t = 0.0
    while (t := _due(m.next_timer())) < 5.0:
        count += sum(1 for d, _ in m.take_output(t) if d == probe)
        m.handle_timer(t)
    assert 59 <= count <= 62, count  # every 50 ms for 3 s, then quiet
    m.set_relayed({str(SID)}, 10.0)
    assert [a for _, a in m.take_output(10.0)] == [("11.200.2.2", 40000)]
    assert m.next_timer() == 11.0
    # a relayed session keeps its meeting past the TTL; an idle one goes
    m.handle_timer(100.0)
    assert SID in m.meetings
    m.set_relayed(set(), 101.0)
    m.handle_timer(101.0)
    assert SID not in m.meetings


def _bound_meeting(m: HostMeetings) -> None:
    """SID met at t=0, its host binding bound at t=0.03 with a lease ending at t=300."""
    m.on_connect(SID, "c" * 43, [Candidate(CandidateKind.srflx, ("11.200.2.2", 40000))], 0.0)
    m.relay_granted(grant(Role.HOST), 0.0, 1000.0)
    m.take_output(0.0)
    m.unwrap(ack(1300.0), RELAY, 0.03)


def _run_timers(m: HostMeetings, until: float, relayed: bool) -> int:
    """Drive ``m`` as HostSide does (wake at the next deadline, or every 0.5 s at the latest);
    the number of wake-ups before ``until``."""
    t, wakeups = 0.0, 0
    while t < until and wakeups < 100_000:
        m.set_relayed({str(SID)} if relayed else set(), t)
        m.take_output(t)
        m.handle_timer(t)
        due = m.next_timer()
        t = min(due, t + 0.5) if due is not None else t + 0.5
        wakeups += 1
    return wakeups


def test_a_meeting_kept_past_its_ttl_never_asks_for_a_timer_in_the_past() -> None:
    # the meeting outlives MEETING_TTL_S (60 s), kept by a relayed session and then by its
    # valid lease: its deadlines must move on, or the host's timer fires again at once for as
    # long as it lives (a core spun, capture and encode starved: found by `bench connect`)
    for relayed in (True, False):
        m = HostMeetings(KEY.sign)
        _bound_meeting(m)
        wakeups = _run_timers(m, 200.0, relayed)
        assert wakeups <= 200 / 0.5 + 100, wakeups  # the 0.5 s ceiling, probes, re-presents
        assert SID in m.meetings  # the lease (t=300) keeps it
        due = m.next_timer()
        assert due is not None and due > 199.0
    m = HostMeetings(KEY.sign)
    _bound_meeting(m)
    _run_timers(m, 301.0, relayed=False)
    assert SID not in m.meetings  # the lease ran out


def test_a_finished_relayed_session_releases_its_meeting() -> None:
    m = HostMeetings(KEY.sign)
    _bound_meeting(m)
    route = RelayRoute(RELAY[0], RELAY[1], str(SID))
    m.session_ended(str(uuid.uuid4()))  # someone else's: nothing changes
    assert SID in m.meetings and m.wrap(route, b"x") is not None
    m.session_ended(str(SID))
    assert SID not in m.meetings and m.wrap(route, b"x") is None
    assert m.take_output(20.0) == [] and m.next_timer() is None  # no re-presenting


def test_host_relay_binding_wraps_and_unwraps() -> None:
    m = HostMeetings(KEY.sign)
    m.on_connect(SID, "c" * 43, [], 0.0)
    m.relay_granted(grant(Role.HOST), 0.0, 1000.0)
    route = RelayRoute(RELAY[0], RELAY[1], str(SID))
    present = [d for d, a in m.take_output(0.0) if a == RELAY]
    assert present and present[0][2] == wire.PacketType.LEASE_PRESENT
    assert m.unwrap(wire.encode_lease_challenge(SID, Role.HOST, b"k" * 32), RELAY, 0.01) is None
    proof = [d for d, a in m.take_output(0.01) if a == RELAY]
    _header, parsed = wire.decode_lease_proof(proof[0])
    message = wire.proof_message(SID, Role.HOST, b"k" * 32)
    from wavry.rift.identity import verify_signature

    assert verify_signature(KEY.public_key, parsed.signature, message)
    # FORWARD before the binding holds is not taken
    assert m.unwrap(wire.encode_forward(SID, MSG1), RELAY, 0.02) is None
    m.unwrap(ack(1300.0), RELAY, 0.03)
    assert m.unwrap(wire.encode_forward(SID, MSG1), RELAY, 0.04) == (MSG1, route)
    # from another address: not ours
    assert m.unwrap(wire.encode_forward(SID, MSG1), ("10.9.9.9", 4000), 0.05) is None
    wrapped = m.wrap(route, b"RI-data")
    assert wrapped is not None and wrapped[1] == RELAY and wrapped[0][20:] == b"RI-data"


def test_a_route_that_got_no_answer_says_why() -> None:
    from wavry.connectivity.routed import RoutedConnection
    from wavry.rift.client import ClientSession

    p = ClientPaths(SID, 0.0)
    conn = RoutedConnection(ClientSession(KEY), p)
    p.accepted(cands(), 0.0)
    conn.relay_problem = "the gateway has no relay: no healthy relay is available"
    why = conn.no_answer_reason()
    assert "srflx 11.200.1.2:47800" in why and "no healthy relay" in why
    bound_relay(p, 2.0, 1000.0)
    assert "no answer through the relay either" in conn.no_answer_reason()


def test_host_side_releases_a_meeting_when_its_relayed_rift_session_ends() -> None:
    import asyncio
    from types import SimpleNamespace

    from wavry.connectivity.hostside import HostSide

    route = RelayRoute(RELAY[0], RELAY[1], str(SID))
    other = uuid.UUID("87654321-4321-4321-8321-cba987654321")
    sessions: dict[int, object] = {}
    sent: list[tuple[bytes, object]] = []
    server = SimpleNamespace(
        side=None,
        core=SimpleNamespace(sessions=sessions),
        send_raw=lambda data, addr: sent.append((data, addr)),
    )

    async def scenario() -> None:
        side = HostSide(server, KEY.sign, clock=lambda: 1.0, wall_clock=lambda: 1001.0)  # type: ignore[arg-type]
        try:
            m = side.meetings
            _bound_meeting(m)
            m.on_connect(other, "d" * 43, [], 0.0)
            sessions[5] = SimpleNamespace(addr=route)  # relayed
            sessions[6] = SimpleNamespace(addr=("11.200.2.2", 40000))  # direct, never relayed
            side._on_timer()
            assert m.meetings[SID].relayed
            sessions[5] = SimpleNamespace(addr=("11.200.2.2", 40001))  # moved to direct
            side._on_timer()
            assert SID in m.meetings  # still the same session: its binding stays for failover
            del sessions[5], sessions[6]  # both sessions end
            side._on_timer()
            assert SID not in m.meetings  # the relayed one's meeting goes at once
            assert other in m.meetings  # the other waits for its TTL as before
        finally:
            side.close()

    asyncio.run(scenario())
