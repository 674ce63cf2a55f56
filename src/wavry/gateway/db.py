"""Database engine, alembic migrations at start, and session factory."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

__all__ = ["make_engine", "migrate", "prepare_sqlite_file", "private_dir", "sqlite_path"]

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("wavry.gateway")


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) for state only this user may read: a directory the
    gateway creates gets mode 0700; an existing one readable by others gets a warning."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    elif path.is_dir() and stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s is accessible by other users; chmod 700 it", path)


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite+aiosqlite:///FILE`` URL (None for others/in-memory)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def prepare_sqlite_file(url: str) -> None:
    """Create the SQLite file 0600 in a private directory before SQLite opens it (SQLite gives
    its -wal/-shm files the database file's mode); tighten an existing file readable by others.
    The file holds password hashes and e-mail addresses."""
    path = sqlite_path(url)
    if path is None:
        return
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
            log.warning("%s was readable by other users; now mode 0600", path)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists() and stat.S_IMODE(extra.stat().st_mode) & 0o077:
            os.chmod(extra, 0o600)


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            private_dir(path.parent)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: object, _record: object) -> None:
            cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _alembic(conn: Connection, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    if action == "upgrade":
        command.upgrade(cfg, revision)
    else:
        command.downgrade(cfg, revision)


async def migrate(engine: AsyncEngine, revision: str = "head", action: str = "upgrade") -> None:
    """Bring the schema to ``revision`` (default: the newest), upgrading or downgrading; safe to
    run from several instances at once (PostgreSQL: an advisory lock serialises them).

    SQLite: alembic changes a table by copying it into a new one and dropping the old, and with
    foreign keys enforced that drop would cascade into every referencing table (devices and
    sessions gone with ``users``), so they are switched off while migrating (this works only
    outside a transaction, hence first on the connection) and checked afterwards."""
    if action not in ("upgrade", "downgrade"):
        raise ValueError("action must be 'upgrade' or 'downgrade'")
    from sqlalchemy import text

    if engine.dialect.name == "sqlite":
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            try:
                await conn.run_sync(_alembic, action, revision)
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).first()
                if broken is not None:
                    raise RuntimeError(f"migration left a dangling foreign key: {tuple(broken)}")
                await conn.commit()
            finally:
                await conn.rollback()
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        return
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(7466274)"))
        await conn.run_sync(_alembic, action, revision)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)
