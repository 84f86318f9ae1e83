"""Run Alembic migrations programmatically (no alembic.ini to find)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flotta.db.engine import make_engine, make_sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    return cfg


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Migrate the engine's database to the newest revision."""
    await _migrate(engine, command.upgrade, "head")


@contextlib.asynccontextmanager
async def migrated(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the database at `url`, migrated to head first; the engine is disposed after
    (one-shot commands: the CLI, token minting)."""
    engine = make_engine(url)
    try:
        await upgrade_to_head(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def upgrade_to(engine: AsyncEngine, revision: str) -> None:
    """Migrate the engine's database forward to `revision` (tests of one migration)."""
    await _migrate(engine, command.upgrade, revision)


async def downgrade_to(engine: AsyncEngine, revision: str) -> None:
    """Migrate the engine's database back to `revision` (`base` empties it)."""
    await _migrate(engine, command.downgrade, revision)


async def _migrate(engine: AsyncEngine, step: Callable[[Config, str], None], revision: str) -> None:
    url = engine.url.render_as_string(hide_password=False)

    def run(connection: object) -> None:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        step(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)
