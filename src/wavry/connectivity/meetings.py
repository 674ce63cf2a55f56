"""The host's side of meeting clients through the gateway, without I/O (CONTROL_PLANE.md §6).

One :class:`Meeting` per signaling session (a client's ``connect``): the client's candidates,
the probes the host sends them (RIFT.md §1: a handshake header with packet id 0 and the
session's handshake id, never answered) to open its own NAT for the client's msg1, and the
session's relay binding when one is granted. The RIFT handshake itself needs nothing from
here: the host core answers a msg1 at the address it really came from (a peer-reflexive
candidate, as ICE would call it), which is what lets an address-restricted host meet a
symmetric client directly.

While a RIFT session runs through a meeting's relay, the host keeps probing the client's
candidates once a second, so that the client's periodic direct check (every 5 s) finds the
host's NAT open as soon as the path allows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from wavry.connectivity.candidates import Address, Candidate, CandidateKind
from wavry.connectivity.relaypath import (
    RelayBinding,
    RelayBindingState,
    RelayGrant,
    RelayRoute,
)
from wavry.rift.framing import encode_handshake_header

__all__ = [
    "MEETING_TTL_S",
    "PROBE_INTERVAL_S",
    "PROBE_WINDOW_S",
    "RELAYED_PROBE_S",
    "HostMeetings",
    "Meeting",
    "probe_datagram",
]

PROBE_INTERVAL_S = 0.05
PROBE_WINDOW_S = 3.0
RELAYED_PROBE_S = 1.0
MEETING_TTL_S = 60.0
MAX_MEETINGS = 256


def probe_datagram(session: uuid.UUID) -> bytes:
    """RIFT.md §1: handshake header, handshake id = the session UUID's first 12 bytes, packet
    id 0, no payload."""
    return encode_handshake_header(session.bytes[:12], 0)


@dataclass(slots=True)
class Meeting:
    session: uuid.UUID
    client_id: str
    started: float
    candidates: list[Address] = field(default_factory=list)
    relay: RelayBinding | None = None
    relayed: bool = False  # a RIFT session currently runs through this meeting's relay
    probes_sent: int = 0
    _probe: bytes = b""
    _probe_until: float = 0.0
    _next_probe: float = 0.0

    def add(self, candidates: Iterable[Candidate]) -> None:
        for c in candidates:
            if c.kind is not CandidateKind.relay and c.addr not in self.candidates:
                self.candidates.append(c.addr)

    def probing_due(self) -> float | None:
        if not self.candidates:
            return None
        if self._next_probe < self._probe_until or self.relayed:
            return self._next_probe
        return None


class HostMeetings:
    def __init__(self, sign: Callable[[bytes], bytes]) -> None:
        self._sign = sign
        self.meetings: dict[uuid.UUID, Meeting] = {}
        self._by_relay: dict[RelayRoute, RelayBinding] = {}

    # ---- signaling ---------------------------------------------------------------------

    def on_connect(
        self, session: uuid.UUID, client_id: str, candidates: Iterable[Candidate], now: float
    ) -> Meeting:
        m = self.meetings.get(session)
        if m is None:
            self._make_room(now)
            m = Meeting(session, client_id, now)
            m._probe = probe_datagram(session)
            self.meetings[session] = m
        m.add(candidates)
        m._probe_until = now + PROBE_WINDOW_S
        m._next_probe = now
        return m

    def add_candidates(
        self, session: uuid.UUID, candidates: Iterable[Candidate], now: float
    ) -> None:
        m = self.meetings.get(session)
        if m is None:
            return
        before = len(m.candidates)
        m.add(candidates)
        if len(m.candidates) > before:
            m._next_probe = now

    def relay_granted(self, grant: RelayGrant, now: float, wall: float) -> RelayBinding:
        m = self.meetings.get(grant.session)
        if m is None:  # a grant for a session we met long ago (the client lost its direct path)
            self._make_room(now)
            m = Meeting(grant.session, "", now)
            m._probe = probe_datagram(grant.session)
            self.meetings[grant.session] = m
        b = m.relay
        if b is not None and b.route == grant.route and b.state is not RelayBindingState.FAILED:
            b.renew(grant, now)
            return b
        # a grant naming another relay: the old binding stays routable until the session moves
        b = RelayBinding(grant, self._sign, now, wall)
        m.relay = b
        self._by_relay[b.route] = b
        return b

    # ---- the socket --------------------------------------------------------------------

    def unwrap(self, data: bytes, addr: Address, now: float) -> tuple[bytes, RelayRoute] | None:
        """A relay-header datagram from ``addr``: FORWARD → (RIFT datagram, route); control
        datagrams are handled here (None)."""
        if len(data) < 20:
            return None
        try:
            sid = uuid.UUID(bytes=bytes(data[4:20]))
        except ValueError:
            return None
        b = self._by_relay.get(RelayRoute(str(addr[0]), int(addr[1]), str(sid)))
        if b is None:
            return None
        if data[2] == 0x10:
            if len(data) == 20 or not b.bound:
                return None
            b.on_forward_bytes(len(data))
            return data[20:], b.route
        b.on_control(data, now)
        return None

    def wrap(self, route: RelayRoute, datagram: bytes) -> tuple[bytes, Address] | None:
        b = self._by_relay.get(route)
        if b is None:
            return None
        return b.wrap(datagram), route.relay

    def set_relayed(self, sessions: set[str], now: float) -> None:
        """The sessions (UUID text) whose RIFT session currently runs through their relay."""
        for m in self.meetings.values():
            relayed = str(m.session) in sessions
            if relayed and not m.relayed:
                m._next_probe = now
            m.relayed = relayed

    def take_output(self, now: float) -> list[tuple[bytes, Address]]:
        out: list[tuple[bytes, Address]] = []
        for m in self.meetings.values():
            due = m.probing_due()
            if due is not None and now >= due:
                out.extend((m._probe, a) for a in m.candidates)
                m.probes_sent += 1
                in_window = now < m._probe_until
                m._next_probe = now + (PROBE_INTERVAL_S if in_window else RELAYED_PROBE_S)
            b = m.relay
            if b is not None:
                out.extend((d, b.route.relay) for d in b.take_output(now))
        return out

    # ---- timers ------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        due: list[float] = []
        for m in self.meetings.values():
            if (t := m.probing_due()) is not None:
                due.append(t)
            if m.relay is not None and (t := m.relay.next_timer()) is not None:
                due.append(t)
            if (t := self._expiry(m)) is not None:
                due.append(t)
        return min(due) if due else None

    @staticmethod
    def _expiry(m: Meeting) -> float | None:
        """When ``m`` may be forgotten, if nothing changes before (None: not while its RIFT
        session runs through the relay; :meth:`set_relayed` wakes the caller when that ends).
        Never a time already past for a meeting that stays: a deadline in the past would make
        the caller's timer fire again at once, for as long as the meeting lives."""
        if m.relayed:
            return None
        end = m.started + MEETING_TTL_S
        b = m.relay
        if b is not None and b.bound and b.expires_at is not None:
            end = max(end, b.expires_at)
        return end

    def handle_timer(self, now: float) -> None:
        for m in list(self.meetings.values()):
            b = m.relay
            if b is not None:
                b.handle_timer(now)
            if self._expired(m, now):
                self._forget(m)

    def _expired(self, m: Meeting, now: float) -> bool:
        end = self._expiry(m)
        return end is not None and now >= end

    def session_ended(self, session: str) -> None:
        """The RIFT session that ran through this meeting's relay has ended: its binding has
        nothing left to carry. Forgotten at once rather than kept re-presenting its lease to
        the relay every 15 s until the lease runs out (the relay limits lease datagrams per
        identity: a host with many short relayed sessions would otherwise run into that
        limit). A client that comes back asks for a new grant, which makes a new binding."""
        for m in list(self.meetings.values()):
            if str(m.session) == session:
                self._forget(m)

    def _make_room(self, now: float) -> None:
        if len(self.meetings) < MAX_MEETINGS:
            return
        self.handle_timer(now)
        while len(self.meetings) >= MAX_MEETINGS:
            self._forget(min(self.meetings.values(), key=lambda m: (m.relayed, m.started)))

    def _forget(self, m: Meeting) -> None:
        del self.meetings[m.session]
        text = str(m.session)
        for route in [r for r in self._by_relay if r.session == text]:
            del self._by_relay[route]
