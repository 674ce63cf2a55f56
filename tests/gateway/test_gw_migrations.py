"""Database migrations (issue 21 item 12): from the first schema to head and back down, on SQLite
and PostgreSQL, with rows inserted at every revision and checked after every step."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from wavry.gateway.db import make_engine, migrate, prepare_sqlite_file

REVISIONS = ["0001", "0002", "0003"]
U1 = "a" * 32
U2 = "b" * 32
U3 = "c" * 32
DEV = "D" * 43
HOST = "H" * 43


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    return set(names) - {"alembic_version"}


async def _version(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        try:
            row = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).first()
        except sa.exc.DBAPIError:
            return None
    return row[0] if row else None


async def _exec(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(sql), params)


async def _rows(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(sa.text(sql))).all()]


async def _insert_at(engine: AsyncEngine, revision: str) -> None:
    if revision == "0001":
        await _exec(
            engine,
            "INSERT INTO users (id, email, username, display_name, password_hash, totp_secret,"
            " created_at, failed_logins, locked_until, banned_until, ban_reason) VALUES"
            f" ('{U1}', 'one@example.com', 'one', 'One', '$argon2id$x', 'sealed', 1.0, 2, 0.0,"
            " NULL, NULL)",
        )
        await _exec(
            engine,
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, revoked, ip)"
            f" VALUES ('{'1' * 64}', '{U1}', 1.0, 2.0, :f, '127.0.0.1')",
            f=False,
        )
        for wid, kind in ((DEV, "client"), (HOST, "host")):
            await _exec(
                engine,
                "INSERT INTO devices (wavry_id, user_id, name, kind, created_at, online_instance,"
                f" last_seen) VALUES ('{wid}', '{U1}', 'dev-{kind}', '{kind}', 1.0, NULL, 0.0)",
            )
        await _exec(
            engine,
            "INSERT INTO relays (relay_id, public_addr, region, max_sessions, max_bitrate_kbps,"
            " load_pct, sessions, registered_at, last_heartbeat, grants, failures) VALUES"
            " ('r1', '1.2.3.4:4000', 'eu', 10, 1000, 1.0, 0, 1.0, 1.0, 3, 0)",
        )
        await _exec(
            engine,
            "INSERT INTO audit_log (at, actor, action, target, detail, ip) VALUES"
            " (1.0, 'admin', 'user.ban', 'x', 'd', '::1')",
        )
    elif revision == "0002":
        await _exec(
            engine,
            "INSERT INTO users (id, email, username, display_name, password_hash, totp_secret,"
            " created_at, failed_logins, locked_until, banned_until, ban_reason) VALUES"
            f" ('{U2}', 'two@example.com', 'two', 'Two', '$argon2id$y', NULL, 2.0, 0, 0.0,"
            " NULL, NULL)",
        )
        await _exec(
            engine,
            "INSERT INTO host_shares (host_wavry_id, user_id, created_at) VALUES"
            f" ('{HOST}', '{U2}', 2.0)",
        )
    elif revision == "0003":
        await _exec(
            engine,
            "INSERT INTO users (id, email, username, display_name, password_hash, totp_secret,"
            " totp_last_step, created_at, banned_until, ban_reason) VALUES"
            f" ('{U3}', 'three@example.com', 'three', 'Three', '$argon2id$z', 'sealed3',"
            " 59000000, 3.0, NULL, NULL)",
        )
        await _exec(
            engine,
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, revoked, ip,"
            f" device_wavry_id) VALUES ('{'3' * 64}', '{U1}', 3.0, 4.0, :f, '::1', '{HOST}')",
            f=False,
        )
        await _exec(engine, f"INSERT INTO device_logins VALUES ('{HOST}', 1700000000)")
        await _exec(
            engine,
            "INSERT INTO login_failures (ip, login, failures, window_start, locked_until) VALUES"
            " ('127.0.0.1', 'one', 3, 3.0, 0.0)",
        )


async def _check(engine: AsyncEngine, revision: str | None, inserted: list[str]) -> None:
    """Everything inserted so far that this revision's schema can hold is there, unchanged."""
    assert await _version(engine) == revision
    if revision is None:
        assert await _tables(engine) == set()
        return
    level = REVISIONS.index(revision)
    if not inserted:
        assert await _rows(engine, "SELECT id FROM users") == []
        return
    users = await _rows(engine, "SELECT id, username, email, password_hash FROM users ORDER BY id")
    expect = [(U1, "one", "one@example.com", "$argon2id$x")]
    if "0002" in inserted:
        expect.append((U2, "two", "two@example.com", "$argon2id$y"))
    if "0003" in inserted:
        expect.append((U3, "three", "three@example.com", "$argon2id$z"))
    assert users == expect
    assert await _rows(engine, "SELECT wavry_id, user_id, kind FROM devices ORDER BY wavry_id") == [
        (DEV, U1, "client"),
        (HOST, U1, "host"),
    ]
    assert await _rows(engine, "SELECT relay_id, grants FROM relays") == [("r1", 3)]
    assert await _rows(engine, "SELECT action, ip FROM audit_log") == [("user.ban", "::1")]
    tokens = [r[0][0] for r in await _rows(engine, "SELECT token_hash FROM sessions")]
    assert sorted(tokens) == (["1", "3"] if "0003" in inserted else ["1"])
    tables = await _tables(engine)
    assert ("host_shares" in tables) == (level >= 1)
    if level >= 1 and "0002" in inserted:
        assert await _rows(engine, "SELECT host_wavry_id, user_id FROM host_shares") == [(HOST, U2)]
    assert ({"device_logins", "login_failures"} <= tables) == (level >= 2)
    if level >= 2:
        totp = await _rows(engine, "SELECT id, totp_secret, totp_last_step FROM users ORDER BY id")
        assert totp[0] == (U1, "sealed", None)
        if "0003" in inserted:
            assert totp[-1] == (U3, "sealed3", 59000000)
            assert await _rows(engine, "SELECT * FROM device_logins") == [(HOST, 1700000000)]
            bound = await _rows(
                engine, "SELECT device_wavry_id FROM sessions WHERE device_wavry_id IS NOT NULL"
            )
            assert bound == [(HOST,)]
    else:
        # the columns 0003 dropped come back with their defaults
        assert (await _rows(engine, f"SELECT failed_logins FROM users WHERE id = '{U1}'"))[0][
            0
        ] in (
            0,
            2,
        )


async def _walk(engine: AsyncEngine) -> None:
    inserted: list[str] = []
    assert await _version(engine) is None
    for rev in REVISIONS:  # up, one revision at a time, adding rows at each
        await migrate(engine, rev)
        await _check(engine, rev, inserted)
        await _insert_at(engine, rev)
        inserted.append(rev)
        await _check(engine, rev, inserted)
    await migrate(engine, "head")  # idempotent
    await _check(engine, REVISIONS[-1], inserted)
    for rev in reversed(REVISIONS[:-1]):  # down, keeping what the older schema can hold
        await migrate(engine, rev, action="downgrade")
        await _check(engine, rev, inserted)
    await migrate(engine, "base", action="downgrade")
    await _check(engine, None, inserted)
    await migrate(engine)  # and up again from nothing
    assert await _version(engine) == REVISIONS[-1]


def _run(engine: AsyncEngine) -> None:
    import asyncio

    async def main() -> None:
        try:
            await asyncio.wait_for(_walk(engine), 60)
        finally:
            await engine.dispose()

    asyncio.run(main())


def test_migrations_up_and_down_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state' / 'gateway.db'}"
    prepare_sqlite_file(url)
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700
    _run(make_engine(url))


def test_migrations_up_and_down_on_postgres(postgres: Any) -> None:
    _run(make_engine(postgres.create_db()))


def test_downgrade_refuses_shared_email_addresses(tmp_path: Path) -> None:
    """0003 lets two accounts share an e-mail address; 0002 cannot hold that: the downgrade
    stops with the database error and leaves the database at 0003."""
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    engine = make_engine(url)

    async def main() -> None:
        try:
            await migrate(engine)
            for uid, name in ((U1, "one"), (U2, "two")):
                await _exec(
                    engine,
                    "INSERT INTO users (id, email, username, display_name, password_hash,"
                    f" created_at) VALUES ('{uid}', 'same@example.com', '{name}', 'N', 'h', 1.0)",
                )
            with pytest.raises(sa.exc.IntegrityError):
                await migrate(engine, "0002", action="downgrade")
            assert await _version(engine) == "0003"
            assert len(await _rows(engine, "SELECT id FROM users")) == 2
        finally:
            await engine.dispose()

    asyncio.run(main())
