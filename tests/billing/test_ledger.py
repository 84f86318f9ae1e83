"""The usage ledger's group-commit writer on a real SQLite file: durable, shared, idempotent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flotta.accounts.models import User
from flotta.billing.categories import Category
from flotta.billing.ledger import Ledger, UsageEvent
from flotta.billing.models import UsageDaily, UsageEventRow
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head

CREATED = datetime(2025, 1, 1, tzinfo=UTC)
AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@dataclass
class Db:
    """A migrated SQLite file with a few developer accounts in it."""

    path: Path
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    accounts: list[int]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def add_accounts(sessions: async_sessionmaker[AsyncSession], count: int) -> list[int]:
    """Developer accounts (usage rows reference users.id, and SQLite enforces it)."""
    async with sessions() as db, db.begin():
        users = [User(email=f"dev{i}@billing.test", created_at=CREATED) for i in range(count)]
        db.add_all(users)
        await db.flush()
        return [user.id for user in users]


async def open_db(path: Path, accounts: int = 3) -> Db:
    """Migrate a fresh file database to head and add `accounts` developer accounts."""
    engine = make_engine(sqlite_url(path))
    try:
        await upgrade_to_head(engine)
        sessions = make_sessionmaker(engine)
        return Db(path, engine, sessions, await add_accounts(sessions, accounts))
    except BaseException:
        await engine.dispose()  # a live aiosqlite thread would keep the test run from exiting
        raise


def usage(
    key: str,
    account_id: int,
    category: Category = Category.DATA,
    quantity: int = 1,
    at: datetime = AT,
    client_id: str = "app-a",
    device: str = "vehicle:5YJ3E1EB0TF000001",
) -> UsageEvent:
    return UsageEvent(key, account_id, client_id, device, category, quantity, at)


async def stored_keys(path: Path) -> set[str]:
    """The ledger's keys, read through a separate engine: only committed rows are seen."""
    engine = make_engine(sqlite_url(path))
    try:
        async with make_sessionmaker(engine)() as db:
            return set((await db.scalars(select(UsageEventRow.key))).all())
    finally:
        await engine.dispose()


async def daily_sum(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as db:
        return int(await db.scalar(select(func.coalesce(func.sum(UsageDaily.quantity), 0))) or 0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Db]:
    db = await open_db(tmp_path / "ledger.db")
    try:
        yield db
    finally:
        await db.engine.dispose()


@pytest.fixture
async def ledger(store: Db) -> AsyncIterator[Ledger]:
    writer = Ledger(store.sessions)
    await writer.start()
    try:
        yield writer
    finally:
        await writer.stop()


async def test_record_returns_once_the_row_is_committed(store: Db, ledger: Ledger) -> None:
    account = store.accounts[0]
    await ledger.record(usage("first", account, quantity=7))
    assert await stored_keys(store.path) == {"first"}
    async with store.sessions() as db:
        daily = (await db.scalars(select(UsageDaily))).all()
    assert [(d.account_id, d.category, d.day, d.quantity) for d in daily] == [
        (account, "data", AT.date(), 7)
    ]


async def test_concurrent_records_share_a_few_transactions(store: Db, ledger: Ledger) -> None:
    commits: list[int] = []

    def counted(_connection: Any) -> None:
        commits.append(1)

    event.listen(store.engine.sync_engine, "commit", counted)
    try:
        events = [usage(f"k{i}", store.accounts[i % 3]) for i in range(300)]
        await asyncio.wait_for(asyncio.gather(*(ledger.record(e) for e in events)), 30)
    finally:
        event.remove(store.engine.sync_engine, "commit", counted)
    assert await stored_keys(store.path) == {e.key for e in events}
    assert await daily_sum(store.sessions) == 300
    # One transaction per request would be 300 commits; group commit needs a handful.
    assert 1 <= len(commits) <= 5, len(commits)


async def test_stop_commits_what_is_queued_and_refuses_more(store: Db) -> None:
    writer = Ledger(store.sessions)
    await writer.start()
    queued = [usage(f"q{i}", store.accounts[0], Category.STREAMING, 1_000) for i in range(50)]
    writer.queue(queued)  # streamed signals: nobody waits for these
    await writer.stop()
    assert await stored_keys(store.path) == {e.key for e in queued}
    assert await daily_sum(store.sessions) == 50_000
    with pytest.raises(RuntimeError, match="stopped"):
        await writer.record(usage("late", store.accounts[0]))


async def test_flushed_waits_for_everything_queued_before(store: Db, ledger: Ledger) -> None:
    ledger.queue([usage("s1", store.accounts[1], Category.STREAMING, 40)])
    ledger.queue([usage("s2", store.accounts[1], Category.STREAMING, 2)])
    await asyncio.wait_for(ledger.flushed(), 10)
    assert await stored_keys(store.path) == {"s1", "s2"}
    assert await daily_sum(store.sessions) == 42


async def test_an_event_queued_twice_in_one_commit_counts_once(store: Db, ledger: Ledger) -> None:
    # A client retrying, or a signal batch re-queued, must not double the bill.
    twice = usage("dup", store.accounts[0], Category.COMMANDS, 5)
    ledger.queue([twice, twice])
    await asyncio.gather(ledger.record(twice), ledger.record_many([twice]))
    await ledger.record(twice)
    assert await stored_keys(store.path) == {"dup"}
    assert await daily_sum(store.sessions) == 5


async def test_an_event_of_a_deleted_account_does_not_block_the_rest(
    store: Db, ledger: Ledger
) -> None:
    """A foreign-key refusal is not transient: the other events of the batch still commit."""
    good = usage("kept", store.accounts[0], quantity=3)
    orphan = usage("orphan", store.accounts[0], quantity=4)._replace(account_id=999_999)
    await asyncio.wait_for(ledger.record_many([good, orphan]), 10)
    assert await stored_keys(store.path) == {"kept"}
    assert await daily_sum(store.sessions) == 3


async def test_a_round_larger_than_a_batch_commits_every_batch_before_flushed_returns(
    store: Db, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second's events commit in several transactions (MAX_BATCH each); a caller waiting for
    the flush is woken only once the last of them is committed."""
    import flotta.billing.ledger as ledger_module

    monkeypatch.setattr(ledger_module, "MAX_BATCH", 2)
    events = [usage(f"b{i}", store.accounts[2], Category.COMMANDS, i + 1) for i in range(5)]
    ledger.queue(events)
    await asyncio.wait_for(ledger.flushed(), 10)
    assert await stored_keys(store.path) == {e.key for e in events}
    assert await daily_sum(store.sessions) == 15
