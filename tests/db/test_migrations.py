"""Migrations take an empty database to head (and back) on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from flotta.db.engine import make_engine
from flotta.db.migrate import downgrade_to, upgrade_to_head
from flotta.db.models import metadata
from tests.postgres import fresh_database


async def _assert_schema_matches_models(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade_to_head(engine)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(metadata.tables) <= tables
        assert "alembic_version" in tables
        # Columns, types, indexes and constraints of head match the models exactly.
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
        assert diff == []
        # Running again is a no-op, not an error.
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def test_sqlite_migrates_from_empty_to_head(tmp_path: Path) -> None:
    await _assert_schema_matches_models(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_postgres_migrates_from_empty_to_head() -> None:
    async with fresh_database() as url:
        await _assert_schema_matches_models(url)


async def test_downgrade_to_base_removes_every_table(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    engine = make_engine(url)
    await upgrade_to_head(engine)
    await downgrade_to(engine, "base")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    assert tables <= {"alembic_version"}
