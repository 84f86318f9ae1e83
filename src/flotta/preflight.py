"""Checks before serving, so a bad data directory or database is one clear line, not a trace."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from flotta.db.engine import make_engine
from flotta.db.migrate import upgrade_to_head
from flotta.settings import Settings


class StartupError(Exception):
    """Flotta cannot start; the message says what to fix."""


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


async def check_before_start(settings: Settings) -> None:
    """The data directory is writable and the database opens and migrates to head."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"data directory {settings.data_dir} is not writable: {exc}") from exc
    url = settings.database_url
    try:
        engine = make_engine(url)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise StartupError(f"invalid database URL {_safe(url)}: {exc}") from exc
    try:
        await upgrade_to_head(engine)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StartupError(f"cannot open the database {_safe(url)}: {reason}") from exc
    finally:
        await engine.dispose()
