"""Run Alembic migrations programmatically (no alembic.ini to find)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

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
