"""Migration 0011 moves the record log into groups without changing a cursor, and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from flotta.db.engine import make_engine, make_sessionmaker
from flotta.db.migrate import downgrade_to, upgrade_to, upgrade_to_head
from flotta.telemetry.record_groups import NewGroup
from flotta.telemetry.recordlog import RecordLog
from tests.postgres import fresh_database

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
OLD_ROWS = [  # id, client_id, vin, topic, txid, signals, payload
    (3, "app", "5YJ3E1EA7KF000001", "V", "7", 20, b"\x0a\x02\x08\x01"),
    (4, "other", "5YJ3E1EA7KF000001", "alerts", "a-1", 1, b"alert"),
    (9, "app", "5YJ3E1EA7KF000002", "errors", "e\u00e9", 0, b""),
]


async def check_round_trip(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade_to(engine, "0010")
        async with engine.begin() as conn:
            for row_id, client_id, vin, topic, txid, signals, payload in OLD_ROWS:
                await conn.execute(
                    text(
                        "INSERT INTO telemetry_records (id, client_id, vin, topic, txid, signals, "
                        "created_at, payload) VALUES (:i, :c, :v, :t, :x, :s, :at, :p)"
                    ),
                    {"i": row_id, "c": client_id, "v": vin, "t": topic, "x": txid, "s": signals,
                     "at": T0 + timedelta(seconds=row_id), "p": payload},
                )  # fmt: skip
        await upgrade_to_head(engine)
        log = RecordLog(make_sessionmaker(engine))
        try:
            kept = await log.after("app", 0, 10) + await log.after("other", 0, 10)
            read = [
                (r.cursor, r.client_id, r.vin, r.topic, r.txid, r.signals, r.payload) for r in kept
            ]
            assert sorted(read) == sorted(OLD_ROWS)
            assert {r.cursor: r.created_at for r in kept} == {
                row[0]: T0 + timedelta(seconds=row[0]) for row in OLD_ROWS
            }
            assert "a-1" in await log.find_txids("other", "5YJ3E1EA7KF000001", ["a-1"])
            fresh = NewGroup("app", "5YJ3E1EA7KF000002")
            fresh.add(b"new", "V", 2, b"p")
            assert await log.commit([fresh], T0) == [10]  # after the newest old id
        finally:
            log.close()
        await downgrade_to(engine, "0010")
        async with engine.begin() as conn:
            # New rows continue after the restored ids (PostgreSQL: its sequence was moved on).
            await conn.execute(
                text(
                    "INSERT INTO telemetry_records (client_id, vin, topic, txid, signals, "
                    "created_at, payload) VALUES ('app', 'V', 'V', 'next', 1, :at, :p)"
                ),
                {"at": T0, "p": b""},
            )
            rows = (
                await conn.execute(
                    text("SELECT id, txid, signals FROM telemetry_records ORDER BY id")
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (3, "7", 20),
            (4, "a-1", 1),
            (9, "e\u00e9", 0),
            (10, "new", 2),
            (11, "next", 1),
        ]
        await upgrade_to_head(engine)  # and forward again
    finally:
        await engine.dispose()


async def test_sqlite_record_log_keeps_its_cursors_through_0011_and_back(tmp_path: Path) -> None:
    await check_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_postgres_record_log_keeps_its_cursors_through_0011_and_back() -> None:
    async with fresh_database() as url:
        await check_round_trip(url)
