"""A throwaway PostgreSQL database on the machine's server, for tests that need one."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from tests.conftest import service_reachable

PG_HOST = os.environ.get("FLOTTA_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FLOTTA_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FLOTTA_TEST_PG_USER", "postgres")


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    service_reachable(PG_HOST, PG_PORT, "PostgreSQL")
    name = f"flotta_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
