"""How an address comes to be bound to a role of a relay session (docs/spec/CONTROL_PLANE.md §4).

Leases travel in cleartext, so a lease alone proves nothing about who presents it: anyone who
saw one could replay it from their own address (or a spoofed one) and take the role over. So:

- a LEASE_PRESENT / LEASE_RENEW whose role is already bound to the sending address, to the same
  identity (lease ``sub``), refreshes the binding at once (keep-alive, renewal): LEASE_ACK;
- any other valid presentation (role unbound, or bound elsewhere) gets a LEASE_CHALLENGE with a
  cookie: a MAC over (session, role, source address, token) and a timestamp, so the relay keeps
  no state for addresses that have not proved anything (a flood of presentations costs memory
  nothing);
- the peer answers with a LEASE_PROOF from that same address: the cookie, the lease again, and
  an Ed25519 signature over ``wavry-relay-proof:`` ‖ session id ‖ role ‖ cookie by the key of the
  lease's ``sub`` (a Wavry ID is that key). Only then is the address bound — the peer can
  receive there, and holds the device key the gateway named;
- the first identity bound to a role is pinned for the session's life: a lease naming another
  ``sub`` for that session and role is refused (reason 7), even if validly signed.

Every reply is smaller than the request that caused it (a valid lease is > 200 bytes; a
challenge 53, an ack 36, a reject 22), so none of this amplifies.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import struct
import uuid
from typing import TYPE_CHECKING, Any

from wavry.controlplane import TokenBucket
from wavry.controlplane.lease import LeaseClaims, LeaseError, RejectReason
from wavry.relay import wire
from wavry.relay.wire import PacketType, Role, WireError
from wavry.rift.identity import InvalidWavryId, public_key_from_wavry_id, verify_signature

if TYPE_CHECKING:
    from wavry.relay.server import RelayServer

__all__ = ["COOKIE_LIFETIME", "Binding", "CookieJar", "LeaseAdmission", "RelaySession"]

log = logging.getLogger("wavry.relay")

Addr = tuple[Any, ...]
COOKIE_LIFETIME = 10.0  # seconds a challenge may be answered
_TS = struct.Struct("!I")


class Binding:
    __slots__ = ("addr", "expires_at", "hard_kbps", "soft_kbps", "sub")

    def __init__(self, addr: Addr, sub: str, expires_at: float, soft: int, hard: int) -> None:
        self.addr = addr
        self.sub = sub
        self.expires_at = expires_at
        self.soft_kbps = soft
        self.hard_kbps = hard


class RelaySession:
    __slots__ = ("bindings", "bucket", "last_activity", "pinned", "sid")

    def __init__(self, sid: uuid.UUID, now: float) -> None:
        self.sid = sid
        self.bindings: dict[Role, Binding] = {}
        self.pinned: dict[Role, str] = {}  # role -> the identity first bound to it
        self.last_activity = now
        self.bucket: TokenBucket | None = None


class CookieJar:
    """Stateless challenge cookies: 4-byte timestamp (monotonic seconds) ‖ 28-byte MAC."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def _mac(self, ts: bytes, sid: uuid.UUID, role: Role, addr: Addr, token: str) -> bytes:
        msg = b"|".join(
            (
                ts,
                sid.bytes,
                bytes((role,)),
                f"{addr[0]}|{addr[1]}".encode(),
                hashlib.sha256(token.encode("utf-8")).digest(),
            )
        )
        return hmac.new(self._secret, msg, hashlib.sha256).digest()[:28]

    def mint(self, sid: uuid.UUID, role: Role, addr: Addr, token: str, now: float) -> bytes:
        ts = _TS.pack(int(now) & 0xFFFFFFFF)
        return ts + self._mac(ts, sid, role, addr, token)

    def check(
        self, cookie: bytes, sid: uuid.UUID, role: Role, addr: Addr, token: str, now: float
    ) -> bool:
        if len(cookie) != wire.COOKIE_LEN:
            return False
        ts = cookie[:4]
        age = (int(now) - _TS.unpack(ts)[0]) & 0xFFFFFFFF
        if age > COOKIE_LIFETIME:
            return False
        return hmac.compare_digest(cookie[4:], self._mac(ts, sid, role, addr, token))


class LeaseAdmission:
    """The lease half of a :class:`~wavry.relay.server.RelayServer`: who gets bound where."""

    def __init__(self, server: RelayServer, cookies: CookieJar | None = None) -> None:
        self.srv = server
        self.cookies = cookies or CookieJar()

    def admit(self, data: bytes, header: wire.Header, addr: Addr, mono: float) -> None:
        """LEASE_PRESENT, LEASE_RENEW or LEASE_PROOF from ``addr``."""
        srv = self.srv
        sid = header.session_id
        proof: wire.LeaseProof | None = None
        try:
            if header.type is PacketType.LEASE_PROOF:
                _, proof = wire.decode_lease_proof(data)
                role, token = proof.role, proof.token
            else:
                _, present = wire.decode_lease_present(data)
                role, token = present.role, present.token
        except WireError:
            srv.stats.dropped["malformed"] += 1
            return
        ip = str(addr[0])
        # (the per-IP lease rate was checked by the server before decoding)
        if ip in srv.banned_ips:
            srv._reject(sid, addr, RejectReason.BANNED, "banned_ip")
            return
        if proof is not None and not self.cookies.check(proof.cookie, sid, role, addr, token, mono):
            srv._reject(sid, addr, RejectReason.BAD_PROOF, "stale_cookie")
            return
        wall = srv.clock()
        try:
            claims = srv.verifier.verify(token, wall, sid, role.claim)
        except LeaseError as exc:
            log.debug("lease from %s refused: %s", addr, exc.message)
            srv._reject(sid, addr, exc.reason_code, exc.kind)
            return
        if claims.sub in srv.banned_identities:
            srv._reject(sid, addr, RejectReason.BANNED, "banned_identity")
            return
        try:
            key = public_key_from_wavry_id(claims.sub)
        except InvalidWavryId:  # no key to prove possession with: the lease is unusable here
            srv._reject(sid, addr, RejectReason.BAD_PROOF, "sub_not_a_key")
            return
        renew = header.type is PacketType.LEASE_RENEW
        s = srv._sessions.get(sid)
        if s is not None and not srv._check_alive(s, wall, mono):
            s = None
        if s is None and renew:
            srv._reject(sid, addr, RejectReason.EXPIRED, "session_gone")
            return
        pinned = s.pinned.get(role) if s is not None else None
        if pinned is not None and pinned != claims.sub:
            srv._reject(sid, addr, RejectReason.IDENTITY_MISMATCH, "identity_mismatch")
            return
        bound = s.bindings.get(role) if s is not None else None
        if proof is None and (bound is None or bound.addr != addr):
            # New address for this role: prove it first (the cookie is all the state there is).
            cookie = self.cookies.mint(sid, role, addr, token, mono)
            srv.stats.challenges += 1
            srv._send(wire.encode_lease_challenge(sid, role, cookie), addr, "challenge")
            return
        if proof is not None:
            message = wire.proof_message(sid, role, proof.cookie)
            if not verify_signature(key, proof.signature, message):
                srv._reject(sid, addr, RejectReason.BAD_PROOF, "bad_proof")
                return
        if not srv._id_leases.allow(claims.sub, mono):
            srv._reject(sid, addr, RejectReason.RATE_LIMITED, "identity_lease_rate")
            return
        if s is None:
            s = self._open_session(sid, addr, mono)
            if s is None:
                return
        self._bind(s, role, claims, addr, mono, renew)

    def _open_session(self, sid: uuid.UUID, addr: Addr, mono: float) -> RelaySession | None:
        srv = self.srv
        if len(srv._sessions) >= srv.config.max_sessions:
            srv.sweep()
        if len(srv._sessions) >= srv.config.max_sessions:
            srv._reject(sid, addr, RejectReason.SESSION_FULL, "session_full")
            return None
        s = RelaySession(sid, mono)
        srv._sessions[sid] = s
        srv._by_raw[sid.bytes] = s
        srv.stats.sessions_created += 1
        return s

    def _bind(
        self,
        s: RelaySession,
        role: Role,
        claims: LeaseClaims,
        addr: Addr,
        mono: float,
        renew: bool,
    ) -> None:
        srv = self.srv
        hard = claims.hlimit
        if srv.config.max_bitrate_kbps is not None:
            hard = min(hard, srv.config.max_bitrate_kbps)
        soft = min(claims.slimit, hard)
        expires_at = claims.exp.timestamp()
        s.pinned.setdefault(role, claims.sub)
        b = s.bindings.get(role)
        if b is None:
            b = Binding(addr, claims.sub, expires_at, soft, hard)
            s.bindings[role] = b
        else:
            if b.addr != addr:
                srv.stats.rebinds += 1
                log.debug("session %s %s moved %s -> %s", s.sid, role.claim, b.addr, addr)
            b.addr = addr
            b.expires_at = max(b.expires_at, expires_at)
            b.soft_kbps, b.hard_kbps = soft, hard
        if renew:
            srv.stats.renewals += 1
        srv.stats.leases_accepted += 1
        s.last_activity = mono
        srv._configure_bucket(s, mono)
        ack = wire.encode_lease_ack(s.sid, int(b.expires_at * 1000), b.soft_kbps, b.hard_kbps)
        srv._send(ack, addr, "ack")
