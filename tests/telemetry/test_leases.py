"""Leases on SQLite and PostgreSQL: one owner at a time, renewal, expiry and takeover, and the
fence that stops a process which lost its lease before it moves a position."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.clock import ManualClock
from flotta.telemetry.leases import LeaseLost, Leases, forget_lease
from tests.postgres import migrated_sessions

TTL_S = 10.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_sessions(request.param, tmp_path) as sessions:
        yield sessions


async def test_one_owner_until_the_lease_expires_then_another_takes_over(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = ManualClock()
    a = Leases(sessions, clock, TTL_S, owner="process-a")
    b = Leases(sessions, clock, TTL_S, owner="process-b")
    assert await a.acquire("sink:1")
    assert not await b.acquire("sink:1")
    assert await a.acquire("sink:1")  # ours already: taken again (and extended)
    assert await b.acquire("sink:2")  # another name is independent

    clock.advance(TTL_S * 0.9)
    assert await a.renew() == set()  # renewed before it ran out
    clock.advance(TTL_S * 0.9)
    assert not await b.acquire("sink:1")  # still a's: the renewal moved the expiry

    clock.advance(TTL_S + 1)  # a stopped renewing, as a dead process would
    assert await b.acquire("sink:1")
    assert b.holds("sink:1")
    assert await a.renew() == {"sink:1"}  # a learns it lost the lease...
    assert not a.holds("sink:1")
    async with sessions() as db, db.begin():
        with pytest.raises(LeaseLost):  # ...and cannot move a position under it
            await a.fence(db, "sink:1")
    async with sessions() as db, db.begin():
        await b.fence(db, "sink:1")  # the holder can


async def test_release_hands_over_at_once_and_forgetting_stops_the_holder(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = ManualClock()
    a = Leases(sessions, clock, TTL_S, owner="process-a")
    b = Leases(sessions, clock, TTL_S, owner="process-b")
    assert await a.acquire("receivers:app")
    await a.release(["receivers:app"])
    assert not a.holds("receivers:app")
    assert await b.acquire("receivers:app")  # no need to wait for the term to run out
    taken = await b.taken()
    assert taken["receivers:app"][0] == "process-b"
    assert taken["receivers:app"][1] == clock.now() + timedelta(seconds=TTL_S)

    async with sessions() as db, db.begin():
        await forget_lease(db, "receivers:app")  # the sink (here: app) was deleted
    async with sessions() as db, db.begin():
        with pytest.raises(LeaseLost):
            await b.fence(db, "receivers:app")
