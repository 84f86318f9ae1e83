"""The entitlement refresher: right answers, and a cost that does not grow with the fleet."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.auth.scopes import OWNER_SCOPES
from flotta.clock import ManualClock
from flotta.devices.directory import Directory
from flotta.devices.service import ensure_owner, provision_vehicle
from flotta.oauth.models import ConsentGrant, OAuthClient
from flotta.settings import Settings
from flotta.sharing.models import Driver
from flotta.sim.vehicle_models import make_vin
from flotta.telemetry.entitlements import Entitlements
from flotta.telemetry.models import TelemetryConfigRow
from tests.billing.test_ledger import open_db
from tests.postgres import migrated_sessions
from tests.telemetry.test_ingest_support import add_streaming_car

Pair = tuple[str, str]


async def _car(s: AsyncSession, runtime: Any, app: OAuthClient, consent_by: str) -> Pair:
    """A car with its own owner and a config for `app`; consented by its "owner", by a
    "driver" it is shared with, or by "nobody"."""
    clock, tag = runtime.clock, uuid.uuid4().hex[:8]
    owner = await ensure_owner(s, f"owner-{tag}@example.com", "Owner", clock)
    vin = make_vin("modely", secrets.randbelow(800_000) + 100_000)
    made = await provision_vehicle(
        s, owner=owner, vin=vin, model="modely", display_name=tag, option_codes="",
        config={}, secret_key=runtime.settings.secret_key, clock=clock,
    )  # fmt: skip
    now = clock.now()
    consenting = owner
    if consent_by == "driver":
        consenting = await ensure_owner(s, f"driver-{tag}@example.com", "Driver", clock)
        s.add(Driver(vehicle_id=made.vehicle.id, user_id=consenting.id, created_at=now))
    if consent_by != "nobody":
        grant = ConsentGrant(
            user_id=consenting.id, client_pk=app.id, scopes=list(OWNER_SCOPES),
            devices=[f"vehicle:{made.vehicle.id}"], created_at=now, updated_at=now,
        )  # fmt: skip
        s.add(grant)
    config = TelemetryConfigRow(
        client_id=app.client_id, vin=vin, config={"fields": {"VehicleSpeed": {}}},
        version=1, status="synced", created_at=now, updated_at=now, synced_at=now,
    )  # fmt: skip
    s.add(config)
    await s.flush()
    return app.client_id, vin


async def _refresh_cost(tmp_path: Path, cars: int) -> tuple[int, set[Pair], set[Pair]]:
    """Statements one refresh round runs for a fleet of one app's `cars` cars (one in three
    consented by a driver, one not at all) and `cars // 3` other apps' cars, what streams, and
    what should."""
    db = await open_db(tmp_path / f"fleet-{cars}.db", accounts=1)
    clock = ManualClock()
    try:
        settings = Settings(data_dir=tmp_path, secret_key=secrets.token_urlsafe(32))
        runtime: Any = SimpleNamespace(settings=settings, clock=clock)
        async with db.sessions() as s, s.begin():
            first = await add_streaming_car(s, runtime)
            app = (
                await s.scalars(select(OAuthClient).where(OAuthClient.client_id == first.client_id))
            ).one()
            pairs = {(first.client_id, first.vin)}
            expected = set(pairs)
            for n in range(cars - 1):
                how = "nobody" if n == 0 else ("driver" if n % 3 == 1 else "owner")
                pair = await _car(s, runtime, app, how)
                pairs.add(pair)
                if how != "nobody":
                    expected.add(pair)
            for _ in range(cars // 3):  # and more apps, each with a car of its own
                other = await add_streaming_car(s, runtime)
                pairs.add((other.client_id, other.vin))
                expected.add((other.client_id, other.vin))
        entitlements = Entitlements(db.sessions, Directory(db.sessions, clock), clock)
        assert await entitlements.streaming_pairs(pairs) == expected
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        await entitlements.refresh()
        ran = len(statements)
        clock.advance(1.0)  # within the TTL of what the round read: no query at all
        streaming = await entitlements.streaming_pairs(pairs)
        assert len(statements) == ran
        return ran, streaming, expected
    finally:
        await db.engine.dispose()


def test_a_refresh_round_costs_the_same_queries_for_three_cars_as_for_twelve_and_more_apps(
    tmp_path: Path,
) -> None:
    small, streaming, expected = asyncio.run(_refresh_cost(tmp_path, 3))
    assert streaming == expected
    large, streaming, expected = asyncio.run(_refresh_cost(tmp_path, 12))
    assert streaming == expected
    assert len(expected) == 11 + 4  # the owners', and the drivers' consent alone, keep a stream
    assert large == small


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_more_config_ids_and_cars_than_a_statement_can_bind_are_looked_up_and_refreshed(
    kind: str, tmp_path: Path
) -> None:
    """Cars choose the config ids they send: one car sending 40,000 of them, or a large fleet,
    must not push an IN list past what a statement binds (asyncpg: 32,767 parameters)."""
    clock = ManualClock()
    settings = Settings(data_dir=tmp_path, secret_key=secrets.token_urlsafe(32))
    runtime: Any = SimpleNamespace(settings=settings, clock=clock)
    async with migrated_sessions(kind, tmp_path) as sessions:
        async with sessions() as s, s.begin():
            car = await add_streaming_car(s, runtime)
        entitlements = Entitlements(sessions, Directory(sessions, clock), clock)
        ids = set(range(car.config_id, car.config_id + 40_000))
        found = await entitlements.configs(ids)
        known = {i: ref for i, ref in found.items() if ref is not None}
        assert set(found) == ids and list(known) == [car.config_id]
        assert known[car.config_id].vin == car.vin
        strangers = {(car.client_id, make_vin("modely", n)) for n in range(100_000, 140_000)}
        pairs = strangers | {(car.client_id, car.vin)}
        assert await entitlements.streaming_pairs(pairs) == {(car.client_id, car.vin)}
        await entitlements.refresh()  # every id and pair above, read again
        clock.advance(1.0)
        assert (await entitlements.configs(ids))[car.config_id] == known[car.config_id]
        assert await entitlements.streaming_pairs(pairs) == {(car.client_id, car.vin)}
