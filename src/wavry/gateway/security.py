"""Password hashing (Argon2id off the event loop), session tokens, TOTP secrets and codes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import multiprocessing
import os
import secrets
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

import pyotp
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from wavry.gateway.errors import ApiError

__all__ = [
    "Passwords",
    "PasswordsBusy",
    "TotpBox",
    "hash_token",
    "new_token",
]

T = TypeVar("T")


class PasswordsBusy(ApiError):
    """Every hashing slot is taken and the wait queue is full: answer 503 + Retry-After."""

    def __init__(self) -> None:
        super().__init__(503, "busy", "too many password checks in progress, retry shortly", 1.0)


# --- worker side (the process pool's processes) ---------------------------------------------

_worker_hasher: PasswordHasher | None = None


def _exit_with_parent(parent: int, period: float = 1.0) -> None:
    """A pool process blocks on its task pipe forever if the gateway is killed (it holds the
    pipe's write end too): leave as soon as the parent is gone."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period)
        os._exit(0)

    threading.Thread(target=watch, name="argon2-parent-watch", daemon=True).start()


def _worker_init(nice: int, params: tuple[int, int, int, int, int], parent: int = 0) -> None:
    """Runs first in each pool process: lower its CPU priority (Argon2's lane threads, started
    later from this thread, inherit it) so the event loop wins the CPU whenever it is runnable."""
    global _worker_hasher
    if parent:
        _exit_with_parent(parent)
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    t, m, p, hash_len, salt_len = params
    _worker_hasher = PasswordHasher(t, m, p, hash_len, salt_len, type=Type.ID)


def _hasher_here(hasher: PasswordHasher | None) -> PasswordHasher:
    return hasher if hasher is not None else (_worker_hasher or PasswordHasher())


def _hash(password: str, hasher: PasswordHasher | None = None) -> str:
    return _hasher_here(hasher).hash(password)


def _verify(
    encoded: str | None, dummy: str, password: str, hasher: PasswordHasher | None = None
) -> bool:
    try:
        ok = _hasher_here(hasher).verify(encoded or dummy, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and encoded is not None


class Passwords:
    """Argon2id (argon2-cffi defaults: RFC 9106 low-memory profile, t=3, m=64 MiB, p=4) off the
    event loop, at most ``concurrency`` hashes at a time and at most ``queue`` more waiting
    (beyond that :class:`PasswordsBusy`, i.e. 503, instead of an unbounded backlog).

    ``executor="process"`` (default): a pool of ``concurrency`` worker processes at niceness
    ``nice``: on a small machine a login flood then takes only the CPU the event loop leaves
    (signaling stays responsive). ``executor="thread"``: a thread pool in this process at the
    loop's own priority (the former behaviour, kept as the benchmark baseline).
    """

    def __init__(
        self,
        concurrency: int = 2,
        *,
        executor: str = "process",
        nice: int = 10,
        queue: int = 64,
        hasher: PasswordHasher | None = None,
    ) -> None:
        if executor not in ("process", "thread"):
            raise ValueError("executor must be 'process' or 'thread'")
        self._hasher = hasher or PasswordHasher()
        self.concurrency = concurrency
        self.queue = queue
        self.executor = executor
        self.nice = nice
        self._inflight = 0
        self._sem = asyncio.Semaphore(concurrency)
        self._pool: Executor
        if executor == "process":
            hp = self._hasher
            params = (hp.time_cost, hp.memory_cost, hp.parallelism, hp.hash_len, hp.salt_len)
            self._pool = ProcessPoolExecutor(
                concurrency,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(nice, params, os.getpid()),
            )
        else:
            self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="argon2")
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    @property
    def in_flight(self) -> int:
        """Hashes running or waiting for a slot."""
        return self._inflight

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._inflight >= self.concurrency + self.queue:
            raise PasswordsBusy()
        self._inflight += 1
        try:
            async with self._sem:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._pool, fn, *args)
        finally:
            self._inflight -= 1

    async def hash(self, password: str) -> str:
        if self.executor == "process":
            return await self._run(_hash, password)
        return await self._run(_hash, password, self._hasher)

    async def verify(self, encoded: str | None, password: str) -> bool:
        """Check ``password``; with ``encoded=None`` burn the same time and return False."""
        if self.executor == "process":
            return await self._run(_verify, encoded, self._dummy, password)
        return await self._run(_verify, encoded, self._dummy, password, self._hasher)

    async def warm_up(self) -> None:
        """Start the worker processes now rather than on the first login."""
        if self.executor == "process":
            loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(loop.run_in_executor(self._pool, os.getpid) for _ in range(self.concurrency))
            )

    def close(self) -> None:
        # processes: wait (at most one running hash each) so none outlives the gateway
        self._pool.shutdown(wait=self.executor == "process", cancel_futures=True)


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
    def matching_step(secret: str, code: str, now: float) -> int | None:
        """RFC 6238 (SHA-1, 6 digits, 30 s steps): the time step within ±1 step of ``now``
        whose code is ``code``, or None. The caller accepts a step only once (§5.2)."""
        if not (len(code) == 6 and code.isdigit()):
            return None
        try:
            totp = pyotp.TOTP(secret)
            current = int(now) // 30
            for step in (current - 1, current, current + 1):
                if hmac.compare_digest(totp.generate_otp(step), code):
                    return step
        except (ValueError, TypeError):
            return None
        return None
