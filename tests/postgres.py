"""Throwaway PostgreSQL databases on the machine's server, for tests that need one."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.db.migrate import migrated
from tests.conftest import service_reachable

PG_HOST = os.environ.get("FLOTTA_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FLOTTA_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FLOTTA_TEST_PG_USER", "postgres")


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")


async def create_database() -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    service_reachable(PG_HOST, PG_PORT, "PostgreSQL")
    name = f"flotta_test_{secrets.token_hex(4)}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """An empty database for the block, dropped afterwards."""
    url = await create_database()
    try:
        yield url
    finally:
        await drop_database(url)


@asynccontextmanager
async def migrated_sessions(
    kind: str, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database migrated to head: `kind` "sqlite" (a file in `tmp_path`) or
    "postgresql" (a fresh database, dropped afterwards)."""
    async with contextlib.AsyncExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'flotta.db'}"
        else:
            url = await stack.enter_async_context(fresh_database())
        yield await stack.enter_async_context(migrated(url))
