"""The `flotta` command starts without the web and database stack: the commands that need it
(serve, demo, admin, db) import it themselves, so `flotta billing estimate` or `--help` answer
in well under a second instead of about two and a half on the reference machine."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn")


def test_loading_the_command_line_leaves_the_web_and_database_stack_unloaded() -> None:
    probe = (
        f"import sys, flotta.cli.main; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == ""
