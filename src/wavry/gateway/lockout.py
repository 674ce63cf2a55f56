"""Failed-login lockout per (source address, login), kept in the shared database.

After ``limit`` failures within ``seconds`` for one pair, that pair is refused for ``seconds``.
Keyed on the pair (not the account, not the address alone) so that nobody can lock anyone else
out: a stranger's failures lock only the stranger's own address for that login, and many users
behind one proxy do not lock each other out. The login is the normalised string the client
sent (whether or not such an account exists), so the lock itself reveals nothing about which
logins exist. The address is :func:`wavry.gateway.clientip.limit_key` of the client address.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from wavry.gateway.models import LoginFailure

__all__ = ["LoginLockout"]

_KEY_LEN = 254


class LoginLockout:
    def __init__(self, db: object, limit: int, seconds: float) -> None:
        self.db = db  # async_sessionmaker
        self.limit = limit
        self.seconds = seconds

    async def locked_for(self, ip: str, login: str, now: float) -> float:
        """Seconds this pair stays locked (0 when it is not)."""
        async with self.db() as s:  # type: ignore[operator]
            row = await s.get(LoginFailure, (ip, login[:_KEY_LEN]))
        return max(0.0, row.locked_until - now) if row is not None else 0.0

    async def failed(self, ip: str, login: str, now: float) -> None:
        for attempt in range(2):  # a concurrent first failure elsewhere: update instead
            try:
                await self._failed(ip, login[:_KEY_LEN], now)
                return
            except IntegrityError:
                if attempt:
                    raise

    async def _failed(self, ip: str, login: str, now: float) -> None:
        async with self.db() as s, s.begin():  # type: ignore[operator]
            row = await s.get(LoginFailure, (ip, login), with_for_update=True)
            if row is None:
                row = LoginFailure(
                    ip=ip, login=login, failures=0, window_start=now, locked_until=0.0
                )
                s.add(row)
            elif row.window_start <= now - self.seconds and row.locked_until <= now:
                row.failures, row.window_start, row.locked_until = 0, now, 0.0
            row.failures += 1
            if row.failures >= self.limit:
                row.failures, row.window_start = 0, now
                row.locked_until = now + self.seconds

    async def succeeded(self, ip: str, login: str) -> None:
        async with self.db() as s, s.begin():  # type: ignore[operator]
            await s.execute(
                delete(LoginFailure).where(
                    LoginFailure.ip == ip, LoginFailure.login == login[:_KEY_LEN]
                )
            )

    async def purge(self, now: float) -> None:
        """Forget pairs whose window and lock are both over."""
        async with self.db() as s, s.begin():  # type: ignore[operator]
            await s.execute(
                delete(LoginFailure).where(
                    LoginFailure.window_start <= now - self.seconds,
                    LoginFailure.locked_until <= now,
                )
            )
