"""Presence history on a real SQLite file: a deleted vehicle's events never cost the others'."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select

from flotta.devices.models import PresenceEvent, Vehicle
from flotta.gateway.presence import PresenceRecorder
from tests.billing.test_ledger import open_db

AT = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


async def test_events_of_a_vehicle_deleted_meanwhile_are_dropped_and_the_rest_kept(
    tmp_path: Path,
) -> None:
    store = await open_db(tmp_path / "presence.db", accounts=1)
    try:
        async with store.sessions() as db, db.begin():
            for number in (1, 2):
                db.add(
                    Vehicle(
                        id=number,
                        vehicle_id=1000 + number,
                        vin=f"5YJ3E1EB0TF00000{number}",
                        owner_id=store.accounts[0],
                        model="model3",
                        credential_hash="x" * 64,
                        created_at=AT,
                    )
                )
        recorder = PresenceRecorder(store.sessions)
        recorder.record(1, "connected", AT)
        recorder.record(2, "connected", AT)
        recorder.record(2, "disconnected", AT)
        async with store.sessions() as db, db.begin():
            await db.execute(delete(Vehicle).where(Vehicle.id == 2))
        await recorder.stop()  # flushes the queued batch
        async with store.sessions() as db:
            events = (await db.execute(select(PresenceEvent.vehicle_id, PresenceEvent.kind))).all()
            seen = await db.scalar(select(Vehicle.last_seen_at).where(Vehicle.id == 1))
        assert [tuple(e) for e in events] == [(1, "connected")]
        assert seen == AT
    finally:
        await store.engine.dispose()
