"""Password hashing (Argon2id off the event loop), session tokens, TOTP secrets, lockouts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

__all__ = ["IpLockout", "Passwords", "TotpBox", "hash_token", "new_token"]


class Passwords:
    """Argon2id hashing in a thread pool, at most ``concurrency`` hashes at a time."""

    def __init__(self, concurrency: int = 2) -> None:
        self._hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._sem = asyncio.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="argon2")
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    async def hash(self, password: str) -> str:
        async with self._sem:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self._hasher.hash, password)

    def _verify(self, encoded: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(encoded or self._dummy, password) and encoded is not None
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, encoded: str | None, password: str) -> bool:
        """Check ``password``; with ``encoded=None`` burn the same time and return False."""
        async with self._sem:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self._verify, encoded, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def new_token() -> str:
    """32 random bytes, url-safe base64 (shown to the user once)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TotpBox:
    """Encrypts TOTP secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256) and checks codes."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode("ascii"))

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("ascii")).decode("ascii")

    def open(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            return None

    @staticmethod
    def new_secret() -> str:
        return str(pyotp.random_base32())

    @staticmethod
    def check(secret: str, code: str) -> bool:
        """RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step of tolerance."""
        if not (len(code) == 6 and code.isdigit()):
            return False
        try:
            return bool(pyotp.TOTP(secret).verify(code, valid_window=1))
        except (ValueError, TypeError):
            return False


class IpLockout:
    """Failed logins per source IP; locked for ``seconds`` after ``limit`` failures."""

    def __init__(self, limit: int, seconds: float, max_keys: int = 65536) -> None:
        self.limit = limit
        self.seconds = seconds
        self.max_keys = max_keys
        self._fails: dict[str, tuple[int, float]] = {}  # ip -> (count, locked_until)

    def locked_for(self, ip: str, now: float) -> float:
        until = self._fails.get(ip, (0, 0.0))[1]
        return max(0.0, until - now)

    def failed(self, ip: str, now: float) -> None:
        count, until = self._fails.pop(ip, (0, 0.0))
        if until and until <= now:
            count = 0
        count += 1
        until = now + self.seconds if count >= self.limit else 0.0
        self._fails[ip] = (count, until)
        while len(self._fails) > self.max_keys:
            self._fails.pop(next(iter(self._fails)))

    def succeeded(self, ip: str) -> None:
        self._fails.pop(ip, None)
