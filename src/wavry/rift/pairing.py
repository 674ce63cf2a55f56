"""Pairing codes and proofs (docs/spec/RIFT.md §4 step 4).

Who gets a code, and how many guesses anyone gets, is host policy (docs/spec/RIFT.md §4 notes):

- **The owner's code** (``issue``: `wavry host --pair`, the desktop app) is not tied to a
  device. Strangers' wrong guesses never burn it: each source (an IP, an IPv6 /64) has at most
  ``MAX_ATTEMPTS`` guesses at it, and all wrong guesses together are limited to
  ``GUESSES_PER_MINUTE`` (beyond that a guess is not checked at all, it is answered "too many
  attempts", and nothing is burnt).
- **A code for a device that asks** (``ensure``, on an untrusted Hello) is tied to the source
  that asked: only guesses from there count against it, and ``MAX_ATTEMPTS`` wrong ones burn it
  and keep that source from getting another for ``REISSUE_COOLDOWN_S``. Each source gets at
  most ``CODES_PER_SOURCE_BURST`` codes, then one per ``CODE_EVERY_S``; all sources together
  ``CODES_PER_MINUTE``. While the owner's code is active, nobody is issued another: a device
  that asks uses the owner's.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Final

from wavry.rift.ratelimit import KeyedRateLimiter, TokenBucket

PAIR_CONTEXT = b"RIFT/1 pair"
CODE_LIFETIME_S = 300.0
MAX_ATTEMPTS = 5
# After a source burnt its code with wrong attempts, it gets no new one for this long, so
# guessing cannot be sped up by cycling through codes.
REISSUE_COOLDOWN_S = 30.0
CODES_PER_SOURCE_BURST = 2
CODE_EVERY_S = 60.0
CODES_PER_MINUTE = 6.0
GUESSES_PER_MINUTE = 10.0
MAX_DEVICE_CODES = 64  # codes for devices that asked, active at once (memory bound)

OWNER: Hashable = ("owner",)  # the key of the owner's code (no source)


def pairing_proof(code: str, handshake_hash: bytes) -> bytes:
    """BLAKE2s-256 keyed with the code's ASCII digits over "RIFT/1 pair" || handshake hash."""
    return hashlib.blake2s(
        PAIR_CONTEXT + handshake_hash, key=code.encode("ascii"), digest_size=32
    ).digest()


def is_valid_code_format(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit()


@dataclass
class _ActiveCode:
    code: str
    expires_at: float
    #: wrong attempts per source (the owner's code counts each source apart)
    wrong: dict[Hashable, int] = field(default_factory=dict)

    def left(self, source: Hashable) -> int:
        return max(0, MAX_ATTEMPTS - self.wrong.get(source, 0))


class PairingVerdict:
    OK: Final = "ok"
    WRONG: Final = "wrong"
    NO_CODE: Final = "no_code"
    LIMITED: Final = "limited"  # too many wrong guesses lately: this one was not checked


class PairingCodes:
    """The host's active pairing codes: 6 digits, 5 minutes, 5 attempts per source, one use."""

    def __init__(self, random_bytes: Callable[[int], bytes]) -> None:
        self._random = random_bytes
        self._codes: OrderedDict[Hashable, _ActiveCode] = OrderedDict()  # OWNER or a source
        self._cooldown: OrderedDict[Hashable, float] = OrderedDict()
        self._per_source = KeyedRateLimiter(1.0 / CODE_EVERY_S, CODES_PER_SOURCE_BURST)
        self._issuing: TokenBucket | None = None
        self._guessing: TokenBucket | None = None

    def _new_code(self, now: float) -> _ActiveCode:
        n = int.from_bytes(self._random(8), "big") % 1_000_000
        return _ActiveCode(f"{n:06d}", now + CODE_LIFETIME_S)

    def _live(self, key: Hashable, now: float) -> _ActiveCode | None:
        a = self._codes.get(key)
        if a is not None and now >= a.expires_at:
            del self._codes[key]
            return None
        return a

    def active_code(self, now: float, source: Hashable | None = None) -> str | None:
        """The code ``source`` would type (its own, else the owner's); with no source, the
        owner's."""
        own = self._live(source, now) if source is not None else None
        a = own or self._live(OWNER, now)
        return a.code if a is not None else None

    def issue(self, now: float) -> tuple[str, float] | None:
        """The owner asks for a code (replacing their previous one). Never refused: strangers'
        attempts cannot lock the owner out of pairing."""
        a = self._new_code(now)
        self._codes[OWNER] = a
        return a.code, a.expires_at

    def ensure(self, now: float, source: Hashable = OWNER) -> tuple[str, float] | None:
        """A device at ``source`` asks to pair: a new code for it, or None (it has one, the
        owner's is active, or the limits say not now)."""
        if self._live(OWNER, now) is not None or (
            source != OWNER and self._live(source, now) is not None
        ):
            return None
        if source == OWNER:
            return self.issue(now)
        if now < self._cooldown.get(source, -1.0):
            return None
        for key in list(self._codes):  # expired ones free their place
            self._live(key, now)
        if len(self._codes) >= MAX_DEVICE_CODES:
            return None
        if self._issuing is None:
            self._issuing = TokenBucket(CODES_PER_MINUTE / 60.0, CODES_PER_MINUTE, now)
        if not self._per_source.allow(source, now) or not self._issuing.take(now):
            return None
        a = self._new_code(now)
        self._codes[source] = a
        return a.code, a.expires_at

    def verify(
        self, proof: bytes, handshake_hash: bytes, now: float, source: Hashable = OWNER
    ) -> tuple[str, int]:
        """(verdict, attempts left for this source). A correct proof consumes the code."""
        candidates = [
            (key, a)
            for key in dict.fromkeys((source, OWNER))
            if (a := self._live(key, now)) is not None and a.left(source) > 0
        ]
        if not candidates:
            return PairingVerdict.NO_CODE, 0
        guessing = self._guessing
        if guessing is None:
            guessing = self._guessing = TokenBucket(
                GUESSES_PER_MINUTE / 60.0, GUESSES_PER_MINUTE, now
            )
        guessing.take(now, 0.0)  # brings the bucket up to now without taking anything
        if guessing.tokens < 1.0:
            return PairingVerdict.LIMITED, max(a.left(source) for _, a in candidates)
        for key, a in candidates:
            if hmac.compare_digest(proof, pairing_proof(a.code, handshake_hash)):
                del self._codes[key]
                return PairingVerdict.OK, 0
        guessing.take(now)  # a wrong guess spends one of the minute's
        left = 0
        for key, a in candidates:
            a.wrong[source] = a.wrong.get(source, 0) + 1
            if key == source and source != OWNER and a.left(source) == 0:
                del self._codes[key]  # the device's own code is burnt
                self._cooldown[source] = now + REISSUE_COOLDOWN_S
                if len(self._cooldown) > 4 * MAX_DEVICE_CODES:
                    self._cooldown.popitem(last=False)
            left = max(left, a.left(source))
        return PairingVerdict.WRONG, left
