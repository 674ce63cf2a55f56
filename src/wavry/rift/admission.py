"""Which handshakes a host answers, and how much it sends before an address is proven
(docs/spec/RIFT.md §2 "Admission", docs/security.md).

Everything here runs before any key work, on datagrams anyone can send from any (spoofed)
source address:

* **Amplification**: an address that has not proven it receives what is sent to it gets at most
  3x the bytes it sent. A msg1 is answered with msg2 only once 3 x (bytes of msg1 copies from
  that address for that handshake id) covers msg2: our clients pad msg1 to 128 bytes so the
  first copy does; an unpadded msg1 (as older clients send it) is answered when its first
  retransmission arrives. Duplicates get the cached msg2 again at most `max_msg2_resends`
  times, within the same 3x budget.
* **Cookies** (the idea of WireGuard's cookie reply): while the host is under handshake load
  (many handshakes in flight, or the global handshake budget half spent), a msg1 without a
  valid cookie gets a small cookie reply and no key work; the client sends msg1 again with the
  cookie, which proves it receives at its address. A cookie is a keyed BLAKE2s MAC of the source
  address under a secret that changes every `COOKIE_SECRET_S`: stateless for the host.
* **Rate**: per source first (IPv6 by /64), then all sources together, so one flooding source
  cannot spend the budget of everybody else.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from wavry.rift.config import HostConfig
from wavry.rift.events import Address
from wavry.rift.framing import COOKIE_REPLY, HandshakeDatagram, encode_handshake_header
from wavry.rift.handshake import (
    COOKIE_LEN,
    EPHEMERAL_LEN,
    HandshakeError,
    LocalStatic,
    PeerIdentity,
    ResponderHandshake,
    msg1_cookie,
)
from wavry.rift.ratelimit import KeyedRateLimiter, TokenBucket, source_key

__all__ = ["AMPLIFICATION_FACTOR", "AdmissionCounters", "CookieJar", "HandshakeAdmission"]

AMPLIFICATION_FACTOR = 3
COOKIE_SECRET_S = 120.0
COOKIE_CONTEXT = b"RIFT/1 cookie"
_COMPLETED_MEMORY_S = 30.0
_MAX_CREDITS = 4096


def _address_bytes(addr: Address) -> bytes:
    return f"{addr[0]}|{addr[1]}".encode()


class CookieJar:
    """Stateless address proofs: BLAKE2s-128 keyed with a secret that is replaced every
    `COOKIE_SECRET_S` seconds (the one before stays valid, so a cookie lives 2-4 minutes)."""

    def __init__(self, random_bytes: Callable[[int], bytes], now: float) -> None:
        self._random = random_bytes
        self._secret = random_bytes(32)
        self._previous = random_bytes(32)
        self._rotated_at = now

    def _rotate(self, now: float) -> None:
        if now >= self._rotated_at + COOKIE_SECRET_S or now < self._rotated_at:
            self._previous, self._secret = self._secret, self._random(32)
            self._rotated_at = now

    @staticmethod
    def _mac(secret: bytes, addr: Address) -> bytes:
        data = COOKIE_CONTEXT + _address_bytes(addr)
        return hashlib.blake2s(data, key=secret, digest_size=COOKIE_LEN).digest()

    def make(self, addr: Address, now: float) -> bytes:
        self._rotate(now)
        return self._mac(self._secret, addr)

    def check(self, cookie: bytes, addr: Address, now: float) -> bool:
        self._rotate(now)
        return hmac.compare_digest(cookie, self._mac(self._secret, addr)) or hmac.compare_digest(
            cookie, self._mac(self._previous, addr)
        )


@dataclass
class AdmissionCounters:
    handshakes_started: int = 0
    handshakes_failed: int = 0
    handshakes_rate_limited: int = 0
    duplicate_msg1: int = 0  # copies of a pending msg1 from its source (answered or not)
    msg2_resent: int = 0
    msg1_waiting_for_credit: int = 0  # unpadded msg1 held until a copy makes 3x cover msg2
    cookie_replies: int = 0
    cookies_accepted: int = 0
    bytes_in_unverified: int = 0  # handshake bytes received from sources not yet proven
    bytes_out_unverified: int = 0  # handshake bytes sent to them (msg2, cookie replies)


@dataclass
class PendingHandshake:
    hs: ResponderHandshake
    addr: Address
    created: float
    received: int  # bytes of msg1 copies from `addr`
    sent: int  # bytes sent to `addr` (msg2 and its resends)
    verified: bool  # the address proved itself with a cookie
    resends: int = 0


class HandshakeAdmission:
    """In-flight handshakes of one host endpoint; outputs go to `out` as (datagram, address)."""

    def __init__(
        self,
        config: HostConfig,
        local: LocalStatic,
        random_bytes: Callable[[int], bytes],
        out: Callable[[bytes, Address], None],
        alias_free: Callable[[int], bool],
        now: float = 0.0,
        counters: AdmissionCounters | None = None,
    ) -> None:
        self.config = config
        self.counters = counters if counters is not None else AdmissionCounters()
        self._local = local
        self._random = random_bytes
        self._emit = out
        self._alias_free = alias_free
        self.pending: OrderedDict[bytes, PendingHandshake] = OrderedDict()
        self._reserved: set[int] = set()
        self._completed: OrderedDict[bytes, float] = OrderedDict()
        self._credits: OrderedDict[tuple[object, bytes], int] = OrderedDict()
        self.buckets = KeyedRateLimiter(
            config.handshake_rate_per_ip, config.handshake_burst_per_ip, config.max_tracked_sources
        )
        # all sources together: bounds key work when sources rotate past the per-source table
        self.global_bucket = TokenBucket(
            config.handshake_rate_total, config.handshake_rate_total / 4, now
        )
        self.cookie_buckets = KeyedRateLimiter(
            config.cookie_rate_per_ip, 2 * config.cookie_rate_per_ip, config.max_tracked_sources
        )
        self._cookie_global = TokenBucket(config.cookie_rate_total, config.cookie_rate_total, now)
        self.cookies = CookieJar(random_bytes, now)
        # the largest msg2 this host sends: the 3x rule compares against it
        self.msg2_len = 30 + EPHEMERAL_LEN + 48 + len(local.payload(0xFFFFFFFF)) + 16

    # ---- load -------------------------------------------------------------------------

    def under_load(self, now: float) -> bool:
        """Cookies required: many handshakes in flight, or half the global budget spent."""
        g = self.global_bucket
        g.take(now, 0.0)  # refill to `now`
        return len(self.pending) >= self.config.cookie_pending_threshold or g.tokens < g.burst / 2

    # ---- msg1 -------------------------------------------------------------------------

    def on_msg1(self, dgram: HandshakeDatagram, size: int, addr: Address, now: float) -> None:
        c = self.counters
        hid = dgram.handshake_id
        pending = self.pending.get(hid)
        if pending is not None:
            # a copy: no new key work, and only to the original source, so a spoofed duplicate
            # cannot reflect msg2 at somebody else
            if addr != pending.addr:
                return
            c.duplicate_msg1 += 1
            pending.received += size
            if not pending.verified:
                c.bytes_in_unverified += size
            msg2 = pending.hs.msg2
            budget = AMPLIFICATION_FACTOR * pending.received
            if pending.resends < self.config.max_msg2_resends and (
                pending.verified or pending.sent + len(msg2) <= budget
            ):
                pending.resends += 1
                pending.sent += len(msg2)
                c.msg2_resent += 1
                self._send(msg2, addr, pending.verified)
            return
        if hid in self._completed or hid == bytes(12):
            return
        if len(dgram.payload) < EPHEMERAL_LEN:
            c.handshakes_failed += 1
            return
        if not self.config.cookies:
            verified = False
        else:
            cookie = msg1_cookie(dgram.payload)
            verified = cookie is not None and self.cookies.check(cookie, addr, now)
            if verified:
                c.cookies_accepted += 1
            elif self.under_load(now):
                self._cookie_reply(hid, size, addr, now)
                return
        received = size
        if not verified:
            c.bytes_in_unverified += size
            received = self._credit(addr, hid, size)
            if AMPLIFICATION_FACTOR * received < self.msg2_len:
                c.msg1_waiting_for_credit += 1
                return
        # per source first: one flooding source must not empty the global bucket
        if not self.buckets.allow(source_key(addr[0]), now):
            c.handshakes_rate_limited += 1
            return
        if not self.global_bucket.take(now):
            c.handshakes_rate_limited += 1
            return
        if len(self.pending) >= self.config.max_pending_handshakes:
            self.expire(now)
            if len(self.pending) >= self.config.max_pending_handshakes:
                c.handshakes_rate_limited += 1
                return
        alias = self._new_alias()
        try:
            hs = ResponderHandshake(self._local, hid, alias, dgram.payload)
        except HandshakeError:
            c.handshakes_failed += 1
            return
        self._credits.pop((addr, hid), None)
        c.handshakes_started += 1
        self.pending[hid] = PendingHandshake(hs, addr, now, received, len(hs.msg2), verified)
        self._reserved.add(alias)
        self._send(hs.msg2, addr, verified)

    def _credit(self, addr: Address, hid: bytes, size: int) -> int:
        """Bytes received so far for (address, handshake id), bounded memory (LRU)."""
        key = (addr, hid)
        total = self._credits.pop(key, 0) + size
        self._credits[key] = total
        if len(self._credits) > _MAX_CREDITS:
            self._credits.popitem(last=False)
        return total

    def _cookie_reply(self, hid: bytes, size: int, addr: Address, now: float) -> None:
        reply_len = 30 + COOKIE_LEN
        if reply_len > AMPLIFICATION_FACTOR * size:
            return
        if not self.cookie_buckets.allow(source_key(addr[0]), now) or not (
            self._cookie_global.take(now)
        ):
            self.counters.handshakes_rate_limited += 1
            return
        self.counters.cookie_replies += 1
        self.counters.bytes_in_unverified += size
        reply = encode_handshake_header(hid, COOKIE_REPLY) + self.cookies.make(addr, now)
        self._send(reply, addr, False)

    def _send(self, data: bytes, addr: Address, verified: bool) -> None:
        if not verified:
            self.counters.bytes_out_unverified += len(data)
        self._emit(data, addr)

    def _new_alias(self) -> int:
        while True:
            alias = int.from_bytes(self._random(4), "big")
            if alias and alias not in self._reserved and self._alias_free(alias):
                return alias

    # ---- msg3 -------------------------------------------------------------------------

    def on_msg3(
        self, dgram: HandshakeDatagram, now: float
    ) -> tuple[PendingHandshake, PeerIdentity] | None:
        """The finished handshake and the client's proven identity, or None."""
        p = self.pending.get(dgram.handshake_id)
        if p is None:
            return None  # unknown, or a duplicate msg3 of a completed handshake: ignore
        try:
            peer = p.hs.on_msg3(dgram.payload)
        except HandshakeError:
            self.counters.handshakes_failed += 1
            if p.hs.exhausted:
                self._drop(dgram.handshake_id)
            return None
        self._drop(dgram.handshake_id)
        self._completed[dgram.handshake_id] = now
        return p, peer

    # ---- time -------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        times = []
        if self.pending:
            times.append(next(iter(self.pending.values())).created + self._timeout)
        if self._completed:
            times.append(next(iter(self._completed.values())) + _COMPLETED_MEMORY_S)
        return min(times) if times else None

    def expire(self, now: float) -> None:
        while self.pending:
            hid, p = next(iter(self.pending.items()))
            if now < p.created + self._timeout:
                break
            self._drop(hid)
        while self._completed:
            hid, at = next(iter(self._completed.items()))
            if now < at + _COMPLETED_MEMORY_S:
                break
            del self._completed[hid]

    @property
    def _timeout(self) -> float:
        return self.config.timing.handshake_timeout_s

    def _drop(self, hid: bytes) -> None:
        p = self.pending.pop(hid, None)
        if p is not None:
            self._reserved.discard(p.hs.alias)
