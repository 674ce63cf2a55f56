"""The client's path manager, without I/O (docs/spec/CONTROL_PLANE.md §6, RIFT.md §10).

It sits between the client's RIFT core and its one UDP socket and decides where each datagram
goes. Nothing in RIFT depends on addresses, so this is the whole of hole punching, relay
fallback and migration on the client:

- **checks**: every RIFT msg1 goes to every host candidate (and to the relay once bound), and the
  latest msg1 is resent to all of them every 50 ms for 3 s; the first msg2 the core accepts fixes
  the path (``direct`` to a host candidate, ``punched`` to anything else, ``relayed``).
- **fallback**: no path 1.5 s after the host's ``accept`` → :class:`RelayNeeded`; the grant's
  binding (:class:`~wavry.connectivity.relaypath.RelayBinding`) joins the checks.
- **migration**: an authenticated datagram with a higher packet id than any before, arriving on
  another path, moves the session there (both ways: relay → direct when a direct check answers,
  direct → relay when the host follows us there).
- **upgrade**: while relayed, a check every 5 s (:class:`DirectCheckDue`: the adapter sends a Ping
  only to the direct candidates; a host that hears it moves there and so do we).
- **failover**: on a direct path, 1 s without an authenticated datagram moves the session to the
  relay (asking for one first when there is none).
- **leases**: a relayed session asks for a fresh lease a minute before expiry.

All times are the adapter's monotonic clock.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from wavry.connectivity.candidates import Address, Candidate, CandidateKind
from wavry.connectivity.relaypath import (
    RENEW_BEFORE_S,
    RelayBinding,
    RelayBindingState,
    RelayGrant,
    RelayRoute,
)
from wavry.net.addr import format_hostport

__all__ = [
    "CHECK_INTERVAL_S",
    "CHECK_WINDOW_S",
    "DIRECT_CHECK_S",
    "DIRECT_SILENCE_S",
    "MOVE_BACK_HOLD_S",
    "RELAY_AFTER_S",
    "ClientPaths",
    "DirectCheckDue",
    "Path",
    "PathChanged",
    "PathKind",
    "RelayNeeded",
    "describe_path",
    "handshake_message_number",
    "transport_packet_id",
]

CHECK_INTERVAL_S = 0.05
CHECK_WINDOW_S = 3.0
RELAY_AFTER_S = 1.5
DIRECT_CHECK_S = 5.0
DIRECT_SILENCE_S = 1.0
SILENCE_RECHECK_S = 0.25
#: after following the host to a new path, its datagrams on the path just left do not move the
#: session back for this long: the host keeps sending there while it validates the new path
#: (RIFT.md §3, a round trip), and those carry higher packet ids than its first on the new one
MOVE_BACK_HOLD_S = 0.25

Path = Address | RelayRoute


class PathKind(StrEnum):
    direct = "direct"
    punched = "punched"
    relayed = "relayed"


@dataclass(frozen=True, slots=True)
class PathChanged:
    at: float
    kind: PathKind
    path: Path
    relay_id: str | None
    reason: str
    #: a handshake fixed the path: from the first msg1 on this path to its msg2 (seconds)
    handshake_s: float | None = None


@dataclass(frozen=True, slots=True)
class RelayNeeded:
    """Send ``relay_request`` for the session (``renewal``: a fresh lease for the same one)."""

    reason: str
    renewal: bool = False


@dataclass(frozen=True, slots=True)
class DirectCheckDue:
    """Relayed: send a Ping inside ``ClientPaths.direct_check()`` (it goes to the direct
    candidates only)."""


PathEvent = PathChanged | RelayNeeded | DirectCheckDue


def describe_path(path: Path) -> str:
    if isinstance(path, RelayRoute):
        return f"relay {format_hostport(path.host, path.port)}"
    return format_hostport(*path)


def handshake_message_number(data: bytes) -> int | None:
    """The message number of a RIFT handshake datagram (RIFT.md §1), None for anything else."""
    if len(data) >= 30 and data[4:8] == b"\x00\x00\x00\x00" and data[:2] == b"RI":
        return int.from_bytes(data[20:28], "big")
    return None


def transport_packet_id(data: bytes) -> int | None:
    if len(data) >= 18 and data[4:8] != b"\x00\x00\x00\x00" and data[:2] == b"RI":
        return int.from_bytes(data[8:16], "big")
    return None


@dataclass(slots=True)
class PathCounters:
    checks_sent: int = 0
    direct_checks: int = 0
    dropped_no_path: int = 0
    relay_requests: int = 0


@dataclass(slots=True)
class _Remote:
    candidates: list[Candidate] = field(default_factory=list)
    kinds: dict[Address, CandidateKind] = field(default_factory=dict)

    def add(self, c: Candidate) -> bool:
        if c.kind is CandidateKind.relay or c.addr in self.kinds:
            return False
        self.candidates.append(c)
        self.kinds[c.addr] = c.kind
        return True

    @property
    def addresses(self) -> list[Address]:
        return [c.addr for c in self.candidates]


class ClientPaths:
    def __init__(self, session: uuid.UUID, now: float) -> None:
        self.session = session
        self.remote = _Remote()
        self.current: Path | None = None
        self.kind: PathKind | None = None
        self.relay: RelayBinding | None = None
        self.changes: list[PathChanged] = []
        self.counters = PathCounters()
        self.created = now
        #: the path of the datagram the core is processing (msg3 answers a msg2 there)
        self.receiving: Path | None = None
        self._accepted_at: float | None = None
        self._msg1: bytes | None = None
        self._checks_until = 0.0
        self._next_check = 0.0
        self._relay_asked = False
        self._highest_id = 0
        self._left: Path | None = None  # the path the host moved us away from, and when
        self._left_at = 0.0
        self._last_auth: dict[Path, float] = {}
        self._last_current_rx = now
        #: while the direct path is silent and nothing could be done about it yet (the relay
        #: asked for, or still binding), look again at this time
        self._silence_recheck = 0.0
        self._msg1_first: dict[Path, float] = {}
        self._next_direct_check = 0.0
        self._in_direct_check = False
        self._events: deque[PathEvent] = deque()
        self._out: list[tuple[bytes, Address]] = []

    # ---- what the signaling side tells us ----------------------------------------------

    def accepted(self, candidates: list[Candidate], now: float) -> None:
        """The host's ``accept``: its candidates; the relay fallback clock starts."""
        self._accepted_at = now
        self.add_candidates(candidates, now)
        usable = bool(self.remote.candidates)
        if not usable:
            self._ask_relay("the host offered no usable candidate")
        if self._msg1 is not None:
            self._fan_out(self._msg1, now)
            self._start_checks(now)

    def add_candidates(self, candidates: list[Candidate], now: float) -> None:
        fresh = [c for c in candidates if self.remote.add(c)]
        if fresh and self._msg1 is not None and self.current is None:
            for c in fresh:
                self._out.append((self._msg1, c.addr))
                self._msg1_first.setdefault(c.addr, now)

    def relay_granted(
        self, grant: RelayGrant, sign: Callable[[bytes], bytes], now: float, wall: float
    ) -> None:
        """A ``relay_grant`` for this session: a new binding, or a renewal of the current one.
        ``sign`` is the device key's signing function (the relay's address proof)."""
        self._relay_asked = False
        b = self.relay
        if b is not None and b.route == grant.route and b.state is not RelayBindingState.FAILED:
            b.renew(grant, now)
            return
        self.relay = RelayBinding(grant, sign, now, wall)

    # ---- routing the core's output -----------------------------------------------------

    def route(self, datagram: bytes, now: float) -> list[tuple[bytes, Address]]:
        """Where one datagram of the RIFT core goes (wrapped for the relay when relayed)."""
        if handshake_message_number(datagram) == 1:
            self._msg1 = datagram
            if self._accepted_at is not None:
                self._start_checks(now)
            return self._fan(datagram, now)
        if self._in_direct_check:
            self.counters.direct_checks += 1
            return [(datagram, a) for a in self.remote.addresses]
        path = self.current or self.receiving
        if path is None:
            self.counters.dropped_no_path += 1
            return []
        return [self._to(path, datagram)]

    @contextmanager
    def direct_check(self) -> Iterator[None]:
        """Datagrams routed inside this block go to the direct candidates only."""
        self._in_direct_check = True
        try:
            yield
        finally:
            self._in_direct_check = False

    def take_output(self, now: float) -> list[tuple[bytes, Address]]:
        """Check resends and relay control datagrams due now."""
        self.handle_timer(now)
        out, self._out = self._out, []
        b = self.relay
        if b is not None:
            relay = b.route.relay
            out.extend((d, relay) for d in b.take_output(now))
        return out

    # ---- input -------------------------------------------------------------------------

    def unwrap(self, data: bytes, addr: Address, now: float) -> tuple[bytes, RelayRoute] | None:
        """A datagram with the relay header from ``addr``: a FORWARD yields its RIFT datagram
        and the route it came by; control datagrams are handled here (None)."""
        b = self.relay
        if (
            b is None
            or addr != b.route.relay
            or len(data) < 20
            or data[4:20] != b.grant.session.bytes
        ):
            return None
        if data[2] == 0x10:  # FORWARD
            if len(data) == 20 or not b.bound:
                return None
            b.on_forward_bytes(len(data))
            return data[20:], b.route
        was_bound = b.bound
        b.on_control(data, now)
        if b.bound and not was_bound:
            self._relay_bound(now)
        return None

    def received(self, path: Path, authenticated: bool, now: float, *, handshake: bool) -> None:
        """The core took a datagram that came by ``path``: ``authenticated`` when it verified,
        ``handshake`` when it completed a handshake (a msg2 the core accepted)."""
        if handshake:
            self._last_auth[path] = now
            if path != self.current:
                reason = "first answer" if self.current is None else "new handshake"
                sent = self._msg1_first.get(path)
                if sent is None and not isinstance(path, RelayRoute):  # a peer-reflexive answer
                    sent = min(self._msg1_first.values(), default=None)
                self._set(path, now, reason, None if sent is None else now - sent)
            self._msg1_first.clear()
            self._last_current_rx = now
            return
        if not authenticated:
            return
        self._last_auth[path] = now
        if path == self.current:
            self._last_current_rx = now

    def authenticated_id(self, path: Path, packet_id: int, now: float) -> None:
        """An authenticated transport datagram with ``packet_id`` came by ``path``: a higher
        id than any before on another path moves the session (RIFT.md §10)."""
        if packet_id <= self._highest_id:
            return
        self._highest_id = packet_id
        if self.current is not None and path != self.current:
            if path == self._left and now - self._left_at < MOVE_BACK_HOLD_S:
                return  # sent while the host validated the path it moved us to
            self._left, self._left_at = self.current, now
            self._set(path, now, "the host moved here")
            self._last_current_rx = now

    def reset_packet_ids(self) -> None:
        """A new handshake (reconnect): packet ids start again."""
        self._highest_id = 0

    # ---- timers ------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        due: list[float] = []
        checking = self.current is None and self._msg1 is not None and self._checks_until
        if checking and self._next_check < self._checks_until:
            due.append(self._next_check)
        # every deadline here is one that handle_timer acts on and then moves on: one left in
        # the past would wake the caller again at once, for as long as that state lasts
        b = self.relay
        if (
            self.current is None
            and self._accepted_at is not None
            and not self._relay_asked
            and b is None
        ):
            due.append(self._accepted_at + RELAY_AFTER_S)
        if b is not None and (t := b.next_timer()) is not None:
            due.append(t)
            renew = b.expires_at is not None and not b.renewing
            if renew and isinstance(self.current, RelayRoute):
                assert b.expires_at is not None
                due.append(b.expires_at - RENEW_BEFORE_S)
        if isinstance(self.current, RelayRoute):
            due.append(self._next_direct_check)
        elif self.current is not None:
            due.append(max(self._last_current_rx + DIRECT_SILENCE_S, self._silence_recheck))
        return min(due) if due else None

    def handle_timer(self, now: float) -> None:
        if self.current is None:
            if self._msg1 is not None and self._checks_until and now >= self._next_check:
                if now < self._checks_until:
                    self._fan_out(self._msg1)
                    self.counters.checks_sent += 1
                self._next_check = now + CHECK_INTERVAL_S
            if (
                self._accepted_at is not None
                and now >= self._accepted_at + RELAY_AFTER_S
                and self.relay is None
            ):
                self._ask_relay("no direct answer within 1.5 s")
        b = self.relay
        if b is not None:
            b.handle_timer(now)
            if isinstance(self.current, RelayRoute) and b.needs_renewal(now):
                b.renewal_asked()
                self._events.append(RelayNeeded("the lease is about to expire", renewal=True))
                self.counters.relay_requests += 1
        current = self.current
        if isinstance(current, RelayRoute):
            if now >= self._next_direct_check:
                self._next_direct_check = now + DIRECT_CHECK_S
                if self.remote.candidates:
                    self._events.append(DirectCheckDue())
        elif current is not None and now - self._last_current_rx >= DIRECT_SILENCE_S:
            if b is not None and b.bound and b.lease_valid(now):
                self._set(b.route, now, f"no packets on the direct path for {DIRECT_SILENCE_S:g} s")
                self._last_current_rx = now
            else:
                if b is None or b.state is RelayBindingState.FAILED:
                    self._ask_relay("the direct path went silent")
                # a grant or the binding's answer moves the session (_relay_bound); until
                # then, look again now and then rather than at every wake-up
                self._silence_recheck = now + SILENCE_RECHECK_S

    def next_event(self) -> PathEvent | None:
        return self._events.popleft() if self._events else None

    # ---- helpers -----------------------------------------------------------------------

    def classify(self, path: Path) -> PathKind:
        if isinstance(path, RelayRoute):
            return PathKind.relayed
        if self.remote.kinds.get(path) is CandidateKind.host:
            return PathKind.direct
        return PathKind.punched

    def _set(self, path: Path, now: float, reason: str, handshake_s: float | None = None) -> None:
        self.current = path
        self.kind = self.classify(path)
        relay_id = (
            self.relay.grant.relay_id if isinstance(path, RelayRoute) and self.relay else None
        )
        change = PathChanged(now, self.kind, path, relay_id, reason, handshake_s)
        self.changes.append(change)
        self._events.append(change)
        if isinstance(path, RelayRoute):
            self._next_direct_check = now + DIRECT_CHECK_S

    def _ask_relay(self, reason: str) -> None:
        if self._relay_asked or (
            self.relay is not None and self.relay.state is not RelayBindingState.FAILED
        ):
            return
        self._relay_asked = True
        self.counters.relay_requests += 1
        self._events.append(RelayNeeded(reason))

    def _relay_bound(self, now: float) -> None:
        b = self.relay
        assert b is not None
        if self.current is None:
            if self._msg1 is not None:
                self._out.append(self._to(b.route, self._msg1))
                self._msg1_first.setdefault(b.route, now)
        elif not isinstance(self.current, RelayRoute):
            if now - self._last_current_rx >= DIRECT_SILENCE_S:
                self._set(b.route, now, "the direct path went silent")
                self._last_current_rx = now
        elif self.current != b.route:
            self._set(b.route, now, "moved to a new relay")
            self._last_current_rx = now

    def _start_checks(self, now: float) -> None:
        if not self._checks_until:
            self._checks_until = now + CHECK_WINDOW_S
            self._next_check = now + CHECK_INTERVAL_S

    def _fan(self, datagram: bytes, now: float | None = None) -> list[tuple[bytes, Address]]:
        out = [(datagram, a) for a in self.remote.addresses]
        b = self.relay
        if b is not None and b.bound:
            out.append(self._to(b.route, datagram))
        if now is not None:
            for a in self.remote.addresses:
                self._msg1_first.setdefault(a, now)
            if b is not None and b.bound:
                self._msg1_first.setdefault(b.route, now)
        return out

    def _fan_out(self, datagram: bytes, now: float | None = None) -> None:
        self._out.extend(self._fan(datagram, now))

    def _to(self, path: Path, datagram: bytes) -> tuple[bytes, Address]:
        if isinstance(path, RelayRoute):
            b = self.relay
            if b is not None and b.route == path:
                return b.wrap(datagram), path.relay
            return datagram, path.relay  # a stale route: the relay drops it
        return datagram, path
