"""`flotta admin`: review applications and promote operators on the configured database.

The database and application modules are imported by the commands that use them: `flotta` loads
this module for every command (`flotta billing estimate` included), and they took most of its
start-up time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flotta.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from flotta.apps.service import ApplicationService
    from flotta.oauth.models import OAuthClient

T = TypeVar("T")

admin_app = typer.Typer(
    help="Operator tasks: review applications, promote admins.", no_args_is_help=True
)
apps_app = typer.Typer(help="Developer applications.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
admin_app.add_typer(apps_app, name="apps")
admin_app.add_typer(users_app, name="users")
console = Console()
errors = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where SQLite, keys and demo.json live")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    # Escaped: names and IDs come from users, and rich would read "[…]" in them as markup.
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def settings_for(data_dir: Path) -> Settings:
    """The configured settings; a demo data directory (demo.json) uses the demo's secret."""
    if data_dir.exists() and not data_dir.is_dir():
        raise _fail(f"--data-dir {data_dir} is a file, not a data directory", 2)
    missing = (
        f"no data directory at {data_dir}: give --data-dir the directory `flotta demo` or "
        "`flotta serve` keeps its data in"
    )
    try:
        if (data_dir / "demo.json").exists():
            return Settings(demo=True, data_dir=data_dir)
        settings = Settings(data_dir=data_dir)
    except ValueError as exc:
        if not data_dir.exists():  # most likely a mistyped path, not a missing secret
            raise _fail(missing, 2) from exc
        raise _fail(f"configuration error: {exc}", 2) from exc
    if not data_dir.exists() and not settings.db.url:
        # The database would be a new, empty SQLite file there: nothing to administer.
        raise _fail(missing, 2)
    return settings


def _run(data_dir: Path, work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Run `work` in one committed unit of work on the configured database."""
    from flotta.apps.errors import AppError
    from flotta.db.migrate import migrated

    settings = settings_for(data_dir)

    async def main() -> T:
        async with migrated(settings.database_url) as sessions, sessions() as db, db.begin():
            return await work(db, settings)

    try:
        return asyncio.run(main())
    except AppError as exc:
        raise _fail(exc.message) from exc


def _service(db: AsyncSession, settings: Settings) -> ApplicationService:
    from flotta.apps.service import ApplicationService
    from flotta.clock import SystemClock

    return ApplicationService(
        db, secret_key=settings.secret_key, clock=SystemClock(), base_url=settings.public_base_url
    )


@apps_app.command("list")
def list_apps(
    status: Annotated[str | None, typer.Option(help="pending, approved or rejected")] = None,
    data_dir: DataDir = Path("./data"),
) -> None:
    """List applications: pending first (oldest first), then the decided ones."""
    from flotta.apps.repository import STATUSES, AppRepository

    if status is not None and status not in STATUSES:
        raise _fail(f"unknown status {status!r}; use one of {', '.join(STATUSES)}", 2)

    async def work(db: AsyncSession, _: Settings) -> list[tuple[OAuthClient, str | None]]:
        return await AppRepository(db).for_review(status)

    rows = _run(data_dir, work)
    if not rows:
        _say("no applications" + (f" with status {status}" if status else ""))
        return
    _print_rows(
        [
            [
                a.client_id,
                a.name,
                a.status,
                a.client_type,
                email or "-",
                a.domain or "-",
                f"{a.created_at:%Y-%m-%d %H:%M}",
            ]
            for a, email in rows
        ]
    )


def _print_rows(rows: list[list[str]]) -> None:
    """A table on a terminal; tab-separated lines when piped, so scripts can cut columns."""
    titles = ["client_id", "name", "status", "type", "developer", "domain", "submitted"]
    if not console.is_terminal:
        for row in [titles, *rows]:
            print("\t".join(cell.replace("\t", " ") for cell in row))
        return
    table = Table()
    # The ID is what operators copy into approve/reject: never shorten it, fold the rest.
    table.add_column(titles[0], no_wrap=True, min_width=32)
    for title in titles[1:]:
        table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


@apps_app.command("approve")
def approve(
    client_id: Annotated[str, typer.Argument(help="The application's client ID")],
    note: Annotated[str, typer.Option(help="Optional note e-mailed to the developer")] = "",
    data_dir: DataDir = Path("./data"),
) -> None:
    """Approve a pending application and e-mail the developer."""

    async def work(db: AsyncSession, settings: Settings) -> OAuthClient:
        return await _service(db, settings).approve(client_id, note)

    app = _run(data_dir, work)
    _say(f"approved {app.name} ({app.client_id}); the developer was e-mailed")


@apps_app.command("reject")
def reject(
    client_id: Annotated[str, typer.Argument(help="The application's client ID")],
    reason: Annotated[
        str | None, typer.Option(help="Why (required; e-mailed to the developer)")
    ] = None,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Reject a pending application with a reason, and e-mail the developer."""
    if reason is None or not reason.strip():
        raise _fail("a reason is required: flotta admin apps reject CLIENT_ID --reason TEXT", 2)

    async def work(db: AsyncSession, settings: Settings) -> OAuthClient:
        return await _service(db, settings).reject(client_id, reason)

    app = _run(data_dir, work)
    _say(f"rejected {app.name} ({app.client_id}); the developer was e-mailed")


@users_app.command("promote")
def promote(
    email: Annotated[str, typer.Argument(help="The account's e-mail address")],
    data_dir: DataDir = Path("./data"),
) -> None:
    """Make an account an operator (admin pages of the portal)."""
    from flotta.apps.errors import AppError
    from flotta.apps.repository import AppRepository

    async def work(db: AsyncSession, _: Settings) -> bool:
        user = await AppRepository(db).user_by_email(email)
        if user is None:
            raise AppError(f"no account with the e-mail address {email!r}")
        already = user.is_admin
        user.is_admin = True
        return already

    already = _run(data_dir, work)
    _say(f"{email} {'was already' if already else 'is now'} an admin")
