"""`flotta admin`: list, approve and reject applications and promote admins on a data dir."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from flotta.accounts.models import User
from flotta.apps.repository import AppRepository
from flotta.apps.schemas import ApplicationInput
from flotta.apps.service import ApplicationService
from flotta.cli import admin as admin_module
from flotta.cli.main import app as cli
from flotta.clock import SystemClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head
from flotta.mail.models import OutboxMessage
from flotta.oauth.models import OAuthClient
from flotta.settings import Settings
from tests.apps.support import GOOD_FORM

T = TypeVar("T")
SECRET = "cli-test-secret-key-0123456789"
ENV = {"FLOTTA_SECRET_KEY": SECRET}
DEVELOPER = "dev@example.com"


def on_db(data_dir: Path, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in a committed transaction on the data dir's database."""
    settings = Settings(data_dir=data_dir, secret_key=SECRET)

    async def main() -> T:
        engine = make_engine(settings.database_url)
        try:
            await upgrade_to_head(engine)
            async with make_sessionmaker(engine)() as db, db.begin():
                return await work(db)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A database with one eligible developer and two pending applications."""

    async def seed(db: AsyncSession) -> None:
        now = datetime.now(UTC)
        user = User(email=DEVELOPER, created_at=now, email_verified_at=now, totp_enabled_at=now)
        db.add(user)
        await db.flush()
        service = ApplicationService(db, secret_key=SECRET, clock=SystemClock(), base_url="")
        for name in ("First App", "Second App"):
            data = ApplicationInput(**{**GOOD_FORM, "name": name, "scopes": ("openid",)})
            await service.submit(user, data)

    on_db(tmp_path, seed)
    return tmp_path


def apps(data_dir: Path) -> dict[str, OAuthClient]:
    async def load(db: AsyncSession) -> dict[str, OAuthClient]:
        return {a.name: a for a in await AppRepository(db).of_owner(1)}

    return on_db(data_dir, load)


def mails(data_dir: Path) -> list[OutboxMessage]:
    async def load(db: AsyncSession) -> list[OutboxMessage]:
        return list((await db.execute(select(OutboxMessage))).scalars())

    return on_db(data_dir, load)


def admin(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["admin", *args, "--data-dir", str(data_dir)], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_pending_applications_with_full_client_ids(data_dir: Path) -> None:
    pending = apps(data_dir)
    code, out, _ = admin(data_dir, "apps", "list", "--status", "pending")
    assert code == 0, out
    for app in pending.values():
        assert app.client_id in out and app.name in out
    assert DEVELOPER in out
    code, out, err = admin(data_dir, "apps", "list", "--status", "approved")
    assert code == 0 and "no applications with status approved" in out
    code, _, err = admin(data_dir, "apps", "list", "--status", "maybe")
    assert code == 2 and "unknown status 'maybe'" in err


def test_approve_and_reject_decide_and_mail_the_developer(data_dir: Path) -> None:
    first, second = apps(data_dir)["First App"], apps(data_dir)["Second App"]
    code, out, _ = admin(data_dir, "apps", "approve", first.client_id)
    assert code == 0 and f"approved First App ({first.client_id})" in out
    code, out, _ = admin(
        data_dir, "apps", "reject", second.client_id, "--reason", "Explain the intended use."
    )
    assert code == 0 and "rejected Second App" in out
    decided = apps(data_dir)
    assert decided["First App"].status == "approved" and decided["First App"].reviewed_at
    assert decided["Second App"].status == "rejected"
    assert decided["Second App"].review_reason == "Explain the intended use."
    sent = {m.subject: m for m in mails(data_dir)}
    assert set(sent) == {
        'Your Flotta application "First App" was approved',
        'Your Flotta application "Second App" was not approved',
    }
    assert all(m.to_address == DEVELOPER for m in sent.values())
    assert (
        "Explain the intended use."
        in sent['Your Flotta application "Second App" was not approved'].body_text
    )
    code, _, err = admin(data_dir, "apps", "approve", first.client_id)
    assert code == 1 and "already approved" in err


def test_missing_reason_and_unknown_ids_are_one_line_errors(data_dir: Path) -> None:
    pending = apps(data_dir)["First App"]
    for args in (
        ["apps", "reject", pending.client_id],
        ["apps", "reject", pending.client_id, "--reason", " "],
    ):
        code, _, err = admin(data_dir, *args)
        assert code == 2
        assert (
            err.strip()
            == "error: a reason is required: flotta admin apps reject CLIENT_ID --reason TEXT"
        )
    assert apps(data_dir)["First App"].status == "pending"
    code, _, err = admin(data_dir, "apps", "approve", "0" * 32)
    assert code == 1 and err.strip() == f"error: no application with client_id '{'0' * 32}'"
    code, _, err = admin(data_dir, "users", "promote", "nobody@example.com")
    assert code == 1 and "no account with the e-mail address 'nobody@example.com'" in err
    assert mails(data_dir) == []


def test_promote_makes_an_admin(data_dir: Path) -> None:
    code, out, _ = admin(data_dir, "users", "promote", "DEV@example.com")
    assert code == 0 and "is now an admin" in out
    code, out, _ = admin(data_dir, "users", "promote", DEVELOPER)
    assert code == 0 and "was already an admin" in out

    async def is_admin(db: AsyncSession) -> bool:
        user = await AppRepository(db).user_by_email(DEVELOPER)
        return user is not None and user.is_admin

    assert on_db(data_dir, is_admin)


def test_the_installed_command_runs_in_a_subprocess(data_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flotta.cli", "admin", "apps", "list", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "First App" in result.stdout and "pending" in result.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "flotta.cli", "admin", "apps", "list", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert refused.returncode == 2 and "FLOTTA_SECRET_KEY" in refused.stderr


def test_on_a_terminal_the_table_keeps_whole_ids_and_literal_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = ["f" * 32, "Fleet [bold]beta[/]", "pending", "public", "a@b.c", "-", "2026-01-01"]
    for width in (80, 200):
        screen = io.StringIO()
        terminal = Console(file=screen, force_terminal=True, width=width, color_system=None)
        monkeypatch.setattr(admin_module, "console", terminal)
        admin_module._print_rows([row])
        shown = screen.getvalue()
        assert "f" * 32 in shown  # never shortened, even on a narrow terminal
    assert "Fleet [bold]beta[/]" in shown  # user text is not read as markup
