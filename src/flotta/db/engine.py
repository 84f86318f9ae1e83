"""Engine and session factory, built once per Runtime (never module-level)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and foreign keys so it behaves like a server DB."""
    kwargs: dict[str, Any] = {"echo": echo}
    if not url.startswith("sqlite"):
        kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL still survives a crash of the process (SIGKILL included): a
            # commit is in the WAL file before it returns, and only a power loss or OS crash
            # can lose the newest commits. FULL's fsync per commit would cap the usage ledger's
            # group commits, and so every billed request, at the disk's sync rate.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


def dialect_insert(db: AsyncSession) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL alike)."""
    return postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
