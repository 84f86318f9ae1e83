"""The record log as its readers see it: records stored a group per app, car and batch, each
with its own cursor, read back by cursor, car or time, found by txid; on a SQLite file (the
log's own writer thread) and on PostgreSQL (the pool, under the commit-order lock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import upgrade_to_head
from flotta.telemetry.envelope import decode_envelope
from flotta.telemetry.record_groups import NewGroup
from flotta.telemetry.recordlog import GROUPS_PER_READ, RecordLog
from tests.postgres import fresh_database

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
VIN_A, VIN_B = "5YJ3E1EA7KF000001", "5YJ3E1EA7KF000002"
KINDS = ["sqlite", "postgres"]


@asynccontextmanager
async def record_logs(kind: str, tmp_path: Path, count: int = 1) -> AsyncIterator[list[RecordLog]]:
    """`count` record logs on one fresh, migrated database (as several processes would have)."""

    async def opened(url: str) -> AsyncIterator[list[RecordLog]]:
        engine = make_engine(url)
        await upgrade_to_head(engine)
        logs = [RecordLog(make_sessionmaker(engine)) for _ in range(count)]
        try:
            yield logs
        finally:
            for log in logs:
                log.close()
            await engine.dispose()

    if kind == "sqlite":
        async for logs in opened(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"):
            yield logs
    else:
        async with fresh_database() as url:
            async for logs in opened(url):
                yield logs


def group(client_id: str, vin: str, *records: tuple[str, str, int]) -> NewGroup:
    """(txid, topic, signals) records; each payload names its txid."""
    made = NewGroup(client_id, vin)
    for txid, topic, signals in records:
        made.add(txid.encode(), topic, signals, b"payload of " + txid.encode())
    return made


@pytest.mark.parametrize("kind", KINDS)
async def test_each_record_has_its_own_cursor_read_back_by_app_car_and_time(
    kind: str, tmp_path: Path
) -> None:
    async with record_logs(kind, tmp_path) as (log,):
        first = await log.commit(
            [
                group("app", VIN_A, ("a1", "V", 3), ("a2", "alerts", 2)),
                group("other", VIN_A, ("o1", "V", 5)),
                group("app", VIN_B, ("b1", "errors", 0), ("b2", "V", 1), ("b3", "V", 4)),
            ],
            T0,
        )
        later = await log.commit(
            [group("app", VIN_A, ("a3", "connectivity", 0))], T0 + timedelta(minutes=5)
        )
        assert first == [1, 3, 4] and later == [7]

        records = await log.after("app", 0, 100)
        assert [(r.cursor, r.vin, r.txid, r.topic, r.signals) for r in records] == [
            (1, VIN_A, "a1", "V", 3),
            (2, VIN_A, "a2", "alerts", 2),
            (4, VIN_B, "b1", "errors", 0),
            (5, VIN_B, "b2", "V", 1),
            (6, VIN_B, "b3", "V", 4),
            (7, VIN_A, "a3", "connectivity", 0),
        ]
        assert all(r.payload == b"payload of " + r.txid.encode() for r in records)
        assert [r.created_at for r in records] == [T0] * 5 + [T0 + timedelta(minutes=5)]
        # Resuming inside a group starts right after the cursor, and the limit is exact.
        assert [r.cursor for r in await log.after("app", 4, 2)] == [5, 6]
        assert [r.txid for r in await log.car_records("app", VIN_A, 1, 10)] == ["a2", "a3"]
        assert [r.txid for r in await log.after("other", 0, 10)] == ["o1"]
        window = await log.between("app", T0, T0 + timedelta(minutes=1), 4, 10)
        assert [r.txid for r in window] == ["b2", "b3"]
        first_minute = await log.count_between("app", T0, T0 + timedelta(minutes=1))
        assert first_minute == {VIN_A: 2, VIN_B: 3}
        later_on = await log.count_between(
            "app", T0 + timedelta(minutes=4), T0 + timedelta(hours=1)
        )
        assert later_on == {VIN_A: 1}
        assert await log.last_cursor() == 7
        assert await log.signal_totals() == {"app": 10, "other": 5}
        # The envelope a receiver gets is built from what was stored.
        envelope = decode_envelope(records[1].envelope)
        assert (envelope.topic, envelope.txid, envelope.payload, envelope.device_id) == (
            "alerts",
            b"a2",
            b"payload of a2",
            VIN_A,
        )


@pytest.mark.parametrize("kind", KINDS)
async def test_pages_cross_many_groups_without_a_gap_or_a_repeat(kind: str, tmp_path: Path) -> None:
    async with record_logs(kind, tmp_path) as (log,):
        batches = [
            [group("app", VIN_A, *((f"t{b}-{i}", "V", 1) for i in range(b % 3 + 1)))]
            for b in range(2 * GROUPS_PER_READ + 5)
        ]
        for batch in batches:
            await log.commit(batch, T0)
        expected = [txid.decode() for batch in batches for txid in batch[0].txids]
        seen: list[str] = []
        cursor = 0
        while page := await log.after("app", cursor, 7):
            assert len(page) == 7 or len(seen) + len(page) == len(expected)
            seen += [r.txid for r in page]
            cursor = page[-1].cursor
        assert seen == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_a_txid_is_found_exactly_never_by_pattern_case_or_part(
    kind: str, tmp_path: Path
) -> None:
    async with record_logs(kind, tmp_path) as (log,):
        txids = ["ab%", "a_c", "ABC", "abcd", "100", "tx'; --"]
        await log.commit([group("app", VIN_A, *((t, "V", 1) for t in txids))], T0)
        await log.commit([group("app", VIN_A, ("later", "V", 2))], T0)
        found = await log.find_txids(
            "app", VIN_A, ["ab%", "abc", "a%", "abc_", "10", "later", "tx'; --"]
        )
        assert sorted(found) == ["ab%", "later", "tx'; --"]
        assert (found["ab%"].first_cursor, found["ab%"].last_cursor, found["ab%"].signals) == (
            1,
            6,
            6,
        )
        assert found["later"].first_cursor == found["later"].last_cursor == 7
        assert await log.find_txids("app", VIN_B, ["ab%"]) == {}
        assert await log.find_txids("other", VIN_A, ["ab%"]) == {}
        found = await log.find_txids("app", VIN_A, ["a_c", "abc"])
        assert set(found) == {"a_c"}


@pytest.mark.parametrize("kind", KINDS)
async def test_two_writers_never_give_a_cursor_twice(kind: str, tmp_path: Path) -> None:
    async with record_logs(kind, tmp_path, count=2) as (one, two):

        async def write(log: RecordLog, name: str) -> None:
            for batch in range(20):
                records = ((f"{name}{batch}-{i}", "V", 1) for i in range(batch % 4 + 1))
                await log.commit([group("app", VIN_A if name == "x" else VIN_B, *records)], T0)

        await asyncio.gather(write(one, "x"), write(two, "y"))
        stored = await one.after("app", 0, 10_000)
        assert [r.cursor for r in stored] == list(range(1, len(stored) + 1))
        assert len(stored) == 2 * sum(b % 4 + 1 for b in range(20))
        assert len({r.txid for r in stored}) == len(stored)
