"""Pairing codes and proofs (docs/spec/RIFT.md §4 step 4)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

PAIR_CONTEXT = b"RIFT/1 pair"
CODE_LIFETIME_S = 300.0
MAX_ATTEMPTS = 5
# After a code is burnt by failed attempts, wait this long before issuing another one, so
# guessing cannot be sped up by cycling through codes.
REISSUE_COOLDOWN_S = 30.0


def pairing_proof(code: str, handshake_hash: bytes) -> bytes:
    """BLAKE2s-256 keyed with the code's ASCII digits over "RIFT/1 pair" || handshake hash."""
    return hashlib.blake2s(
        PAIR_CONTEXT + handshake_hash, key=code.encode("ascii"), digest_size=32
    ).digest()


def is_valid_code_format(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit()


@dataclass(slots=True)
class _ActiveCode:
    code: str
    expires_at: float
    attempts_left: int


class PairingVerdict:
    OK = "ok"
    WRONG = "wrong"
    NO_CODE = "no_code"


class PairingCodes:
    """The host's one active pairing code: 6 digits, 5 minutes, 5 attempts, one use."""

    def __init__(self, random_bytes: Callable[[int], bytes]) -> None:
        self._random = random_bytes
        self._active: _ActiveCode | None = None
        self._cooldown_until = 0.0

    def active_code(self, now: float) -> str | None:
        a = self._active
        if a is None or now >= a.expires_at or a.attempts_left <= 0:
            self._active = None
            return None
        return a.code

    def issue(self, now: float) -> tuple[str, float] | None:
        """Issue a new code (replacing any active one) unless in the post-burn cooldown."""
        if now < self._cooldown_until:
            return None
        n = int.from_bytes(self._random(8), "big") % 1_000_000
        code = f"{n:06d}"
        self._active = _ActiveCode(code, now + CODE_LIFETIME_S, MAX_ATTEMPTS)
        return code, now + CODE_LIFETIME_S

    def ensure(self, now: float) -> tuple[str, float] | None:
        """Issue a code if none is active. Returns the new code, or None if one was active."""
        if self.active_code(now) is not None:
            return None
        return self.issue(now)

    def verify(self, proof: bytes, handshake_hash: bytes, now: float) -> tuple[str, int]:
        """(verdict, attempts left). A correct proof consumes the code."""
        a = self._active
        if self.active_code(now) is None or a is None:
            return PairingVerdict.NO_CODE, 0
        if hmac.compare_digest(proof, pairing_proof(a.code, handshake_hash)):
            self._active = None
            return PairingVerdict.OK, 0
        a.attempts_left -= 1
        if a.attempts_left <= 0:
            self._active = None
            self._cooldown_until = now + REISSUE_COOLDOWN_S
        return PairingVerdict.WRONG, max(0, a.attempts_left)
