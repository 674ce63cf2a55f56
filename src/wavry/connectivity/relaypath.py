"""A peer's binding at a relay, without I/O (docs/spec/CONTROL_PLANE.md §4, RIFT.md §10).

One :class:`RelayBinding` per session and relay: it presents the lease the gateway granted
(LEASE_PRESENT, resent until answered), answers the relay's LEASE_CHALLENGE with a LEASE_PROOF
signed by the device key (the lease's ``sub``), keeps the binding (and the NAT mapping towards
the relay) alive by re-presenting every 15 s, and renews with a fresh lease (LEASE_RENEW) when
given one. Its datagrams go out of the RIFT socket itself, so the relay binds the address the
RIFT session already uses: direct and relayed datagrams share one socket and one NAT mapping.

:class:`RelayRoute` is how a relayed path is named where an address is expected: a 3-tuple
``(relay ip, relay port, session uuid)`` — the RIFT cores key nothing on addresses, and the
host core's per-source checks see the relay's address in position 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from wavry.connectivity.candidates import Address, CandidateError, parse_ip_port
from wavry.relay import wire
from wavry.relay.wire import PacketType, Role

__all__ = [
    "RelayBinding",
    "RelayBindingState",
    "RelayGrant",
    "RelayRoute",
    "parse_grant",
]

#: resend LEASE_PRESENT after these many seconds without an answer (doubling), give up after
PRESENT_RETRY_S = 0.2
PRESENT_RETRY_MAX_S = 1.0
BIND_GIVE_UP_S = 5.0
#: re-presentation period (the spec's keep-alive; also the NAT mapping's)
REPRESENT_S = 15.0
#: ask for a fresh lease this long before the current one expires
RENEW_BEFORE_S = 60.0


class RelayRoute(NamedTuple):
    """A relayed path: the relay's address and the session it carries."""

    host: str
    port: int
    session: str  # the signaling session's UUID, canonical text

    @property
    def relay(self) -> Address:
        return self.host, self.port


@dataclass(frozen=True, slots=True)
class RelayGrant:
    """A ``relay_grant`` from the gateway (CONTROL_PLANE.md §3)."""

    session: uuid.UUID
    relay_id: str
    relay_addr: Address
    lease: str
    role: Role
    expires_at: str

    @property
    def route(self) -> RelayRoute:
        return RelayRoute(self.relay_addr[0], self.relay_addr[1], str(self.session))


def parse_grant(msg: dict[str, Any]) -> RelayGrant:
    """A ``relay_grant`` message → RelayGrant; ValueError naming what is wrong."""
    try:
        sid = uuid.UUID(str(msg["session"]))
        relay_id = str(msg["relay_id"])
        addr = parse_ip_port(str(msg["relay_addr"]))
        lease = str(msg["lease"])
        role = Role.HOST if msg["role"] == "host" else Role.CLIENT
        if msg["role"] not in ("host", "client") or not lease:
            raise ValueError("role must be host or client, with a lease")
    except (KeyError, ValueError, CandidateError) as exc:
        raise ValueError(f"malformed relay_grant: {exc}") from None
    return RelayGrant(sid, relay_id, addr, lease, role, str(msg.get("expires_at", "")))


class RelayBindingState(Enum):
    PRESENTING = "presenting"
    BOUND = "bound"
    FAILED = "failed"


class RelayBinding:
    """The state of one peer's binding at one relay; all times are the caller's monotonic
    clock, except ``wall`` arguments (Unix seconds) for the lease expiry the relay states."""

    def __init__(
        self, grant: RelayGrant, sign: Callable[[bytes], bytes], now: float, wall: float
    ) -> None:
        self.grant = grant
        self.route = grant.route
        self._sign = sign
        self.state = RelayBindingState.PRESENTING
        self.started = now
        self.bound_at: float | None = None
        self.expires_at: float | None = None  # monotonic
        self.failure = ""
        self.challenges = 0
        self.acks = 0
        self._out: list[bytes] = []
        self._retry = PRESENT_RETRY_S
        self._next = now
        self._reproved = False
        self._renewing = False
        self._wall_offset = wall - now
        self._forward_header = wire.encode_header(PacketType.FORWARD, grant.session)
        self.rx_bytes = 0
        self.tx_bytes = 0

    # ---- output --------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self.state is RelayBindingState.BOUND

    def take_output(self, now: float) -> list[bytes]:
        """Relay control datagrams due now (all go to ``route.relay``)."""
        if self.state is not RelayBindingState.FAILED and now >= self._next:
            self._present(now)
        out, self._out = self._out, []
        return out

    def wrap(self, datagram: bytes) -> bytes:
        """A RIFT datagram as a FORWARD to the relay."""
        self.tx_bytes += len(datagram)
        return self._forward_header + datagram

    def next_timer(self) -> float | None:
        if self.state is RelayBindingState.FAILED:
            return None
        if self.state is RelayBindingState.PRESENTING:
            return min(self._next, self.started + BIND_GIVE_UP_S)
        return self._next

    def handle_timer(self, now: float) -> None:
        if self.state is RelayBindingState.PRESENTING and now >= self.started + BIND_GIVE_UP_S:
            self._fail("no answer from the relay")

    def lease_valid(self, now: float) -> bool:
        return self.bound and self.expires_at is not None and now < self.expires_at

    def needs_renewal(self, now: float) -> bool:
        """Bound, no renewal asked for yet, and the lease ends within RENEW_BEFORE_S."""
        return (
            self.bound
            and not self._renewing
            and self.expires_at is not None
            and now >= self.expires_at - RENEW_BEFORE_S
        )

    @property
    def renewing(self) -> bool:
        """A fresh lease was asked for and has not come yet."""
        return self._renewing

    def renewal_asked(self) -> None:
        self._renewing = True

    def renew(self, grant: RelayGrant, now: float) -> None:
        """A fresh lease for the same relay and session: LEASE_RENEW at once."""
        self.grant = grant
        self._renewing = False
        self._out.append(
            wire.encode_lease_present(grant.session, grant.role, grant.lease, renew=True)
        )
        self._next = now + (REPRESENT_S if self.bound else self._retry)

    # ---- input ---------------------------------------------------------------------------

    def on_control(self, data: bytes, now: float) -> None:
        """A relay datagram other than FORWARD for this session (ACK, CHALLENGE, REJECT)."""
        try:
            header = wire.decode_header(data)
        except wire.WireError:
            return
        if header.session_id != self.grant.session:
            return
        if header.type is PacketType.LEASE_ACK:
            try:
                _, ack = wire.decode_lease_ack(data)
            except wire.WireError:
                return
            self.acks += 1
            self._reproved = False
            self.expires_at = ack.expires_unix_ms / 1000 - self._wall_offset
            if self.state is not RelayBindingState.BOUND:
                self.state = RelayBindingState.BOUND
                self.bound_at = now
            self._next = now + REPRESENT_S
        elif header.type is PacketType.LEASE_CHALLENGE:
            try:
                proof = wire.answer_challenge(data, self.grant.lease, self._sign)
            except wire.WireError:
                return
            self.challenges += 1
            self._out.append(proof)
        elif header.type is PacketType.LEASE_REJECT:
            try:
                _, rej = wire.decode_lease_reject(data)
            except wire.WireError:
                return
            if rej.reason == wire.RejectReason.BAD_PROOF and not self._reproved:
                self._reproved = True  # the cookie may have aged: present once more
                self._present(now)
                return
            known = rej.known_reason
            self._fail(
                f"the relay refused the lease ({known.name.lower() if known else rej.reason})"
            )

    def on_forward_bytes(self, n: int) -> None:
        self.rx_bytes += n

    # ---- helpers -------------------------------------------------------------------------

    def _present(self, now: float) -> None:
        g = self.grant
        self._out.append(wire.encode_lease_present(g.session, g.role, g.lease))
        if self.state is RelayBindingState.PRESENTING:
            self._next = now + self._retry
            self._retry = min(self._retry * 2, PRESENT_RETRY_MAX_S)
        else:
            self._next = now + REPRESENT_S

    def _fail(self, why: str) -> None:
        self.state = RelayBindingState.FAILED
        self.failure = why
        self._out.clear()
