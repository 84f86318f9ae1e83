"""Which telemetry config streams for which app and car, and whether the car's owner or one of
its drivers still consents: what ingest, the Fleet API streams and the sinks ask before a
record moves.

Answers are cached for `ENTITLEMENT_TTL_S`, and a background refresher re-reads what was
looked up recently before it goes stale (a few queries a round), so the hot paths never wait
for the database; `forget()` (a config removed, consent revoked here) takes effect at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.clock import Clock
from flotta.db.chunks import chunked
from flotta.devices.directory import AppRecord, Directory, GrantRecord, VehicleRecord
from flotta.devices.models import Vehicle
from flotta.oauth.models import OAuthClient
from flotta.oauth.repository import OAuthRepository
from flotta.sharing.repository import DriverRepository
from flotta.telemetry.models import TelemetryConfigRow

log = structlog.get_logger(__name__)

ENTITLEMENT_TTL_S = 2.0
# Entries the hot path has not looked up for this long are no longer refreshed ahead.
REFRESH_UNUSED_S = 30.0


@dataclass(frozen=True, slots=True)
class ConfigRef:
    """A telemetry config as ingest and delivery need it: whose, which car, its receiver."""

    id: int
    client_id: str
    vin: str
    hostname: str
    port: int
    ca: str | None
    # fleet-telemetry acknowledges records only for `delivery_policy: latest` configs (the car
    # re-sends what was not acked); other receivers, tescmd's among them, never ack.
    awaits_acks: bool = False


class Entitlements:
    """Which config streams for which app and car, and whether the app still has the consent of
    the car's owner or a driver: cached for `ttl_s`, so the hot path rarely asks the database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: Directory,
        clock: Clock,
        ttl_s: float = ENTITLEMENT_TTL_S,
    ) -> None:
        self._sessions = sessions
        self._directory = directory
        self._clock = clock
        self._ttl = ttl_s
        self._by_id: dict[int, tuple[float, ConfigRef | None]] = {}
        self._by_car: dict[tuple[str, str], tuple[float, ConfigRef | None]] = {}
        # Consent as the refresher read it from the database (never from the directory's
        # longer-lived cache), so an entry here is at most `ttl_s` old.
        self._consent: dict[tuple[str, str], tuple[float, AppRecord | None]] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._used: dict[int | tuple[str, str], float] = {}  # key -> when last looked up
        self._generation = 0

    def start(self) -> None:
        """Refresh what the hot path uses before it goes stale, so it never waits for a query."""
        loop = asyncio.get_running_loop()
        self._refresher = loop.create_task(self._refresh_loop(), name="telemetry-entitlements")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    async def _refresh_loop(self) -> None:
        while True:
            await self._clock.sleep(self._ttl / 4)
            try:
                await self.refresh()
            except Exception:  # the database went away: the hot path loads on expiry instead
                log.exception("telemetry entitlement refresh failed")

    async def refresh(self) -> None:
        """Reload every config and consent the hot path looked up recently (a few queries)."""
        generation, now = self._generation, self._clock.monotonic()
        keep = now - REFRESH_UNUSED_S
        self._used = {key: at for key, at in self._used.items() if at >= keep}
        ids = {key for key in self._used if isinstance(key, int)}
        cars = {key for key in self._used if isinstance(key, tuple)}
        rows = await self._load_ids(ids)
        by_id = {r.id: r for r in rows}
        by_car = await self._load_pairs(cars) if cars else {}
        pairs = {(r.client_id, r.vin) for r in by_id.values()} | set(by_car)
        fresh = _Prefetched(self._sessions, self._clock)  # read now, each row once this round
        await fresh.load(pairs)
        consent = {pair: await _consented(fresh, *pair) for pair in pairs}
        if generation != self._generation:
            return  # forgotten meanwhile (consent revoked?): what was read may predate that
        self._by_id.update({i: (now, by_id.get(i)) for i in ids})
        self._by_car.update({pair: (now, by_car.get(pair)) for pair in cars})
        self._consent.update({pair: (now, app) for pair, app in consent.items()})
        # Forget what nobody looked up lately: the ids are the cars' to choose, so the caches
        # would otherwise grow with every id a car ever sent.
        used = self._used
        self._by_id = {i: hit for i, hit in self._by_id.items() if i in used}
        self._by_car = {pair: hit for pair, hit in self._by_car.items() if pair in used}
        wanted = pairs | {pair for pair in used if isinstance(pair, tuple)}
        self._consent = {pair: hit for pair, hit in self._consent.items() if pair in wanted}

    async def configs(self, config_ids: set[int]) -> dict[int, ConfigRef | None]:
        """Several configs by id, those not cached (or stale) loaded in one query."""
        now = self._clock.monotonic()
        found: dict[int, ConfigRef | None] = {}
        missing: list[int] = []
        for config_id in config_ids:
            self._used[config_id] = now
            hit = self._by_id.get(config_id)
            if hit is not None and now - hit[0] < self._ttl:
                found[config_id] = hit[1]
            else:
                missing.append(config_id)
        if missing:
            rows = await self._load_ids(missing)
            loaded = {ref.id: ref for ref in rows}
            for config_id in missing:
                ref = loaded.get(config_id)
                self._by_id[config_id] = (now, ref)
                found[config_id] = ref
        return found

    async def config_for(self, client_id: str, vin: str) -> ConfigRef | None:
        """The app's config on this car, if any."""
        self._used[(client_id, vin)] = self._clock.monotonic()
        hit = self._by_car.get((client_id, vin))
        if hit is not None and self._clock.monotonic() - hit[0] < self._ttl:
            return hit[1]
        ref = await self._load(
            (TelemetryConfigRow.client_id == client_id) & (TelemetryConfigRow.vin == vin)
        )
        self._by_car[(client_id, vin)] = (self._clock.monotonic(), ref)
        return ref

    async def consented_all(self, pairs: list[tuple[str, str]]) -> list[AppRecord | None]:
        """`consented` for each (app, car): refreshed answers at once, the rest concurrently."""
        now = self._clock.monotonic()
        hits = [self._consent.get(pair) for pair in pairs]
        if all(hit is not None and now - hit[0] < self._ttl for hit in hits):
            return [hit[1] for hit in hits if hit is not None]
        return list(await asyncio.gather(*(self.consented(*pair) for pair in pairs)))

    async def consented(self, client_id: str, vin: str) -> AppRecord | None:
        """The app, if it is approved and the car's owner consents to it reaching the car."""
        hit = self._consent.get((client_id, vin))
        if hit is not None and self._clock.monotonic() - hit[0] < self._ttl:
            return hit[1]
        return await _consented(self._directory, client_id, vin)

    async def streaming_pairs(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (app, car) pairs may stream now; stale configs reloaded in one query."""
        now = self._clock.monotonic()
        self._used.update(dict.fromkeys(pairs, now))
        stale = [
            pair
            for pair in pairs
            if (hit := self._by_car.get(pair)) is None or now - hit[0] >= self._ttl
        ]
        if stale:
            loaded = await self._load_pairs(set(stale))
            for pair in stale:
                self._by_car[pair] = (now, loaded.get(pair))
        configured = [pair for pair in pairs if self._by_car[pair][1] is not None]
        apps = await self.consented_all(configured)
        return {pair for pair, app in zip(configured, apps, strict=True) if app is not None}

    def forget(self) -> None:
        """Drop cached configs (after a config changes or consent is revoked in this process)."""
        self._by_id.clear()
        self._by_car.clear()
        self._consent.clear()
        self._generation += 1

    async def _load(self, where: Any) -> ConfigRef | None:
        refs = await self._load_all(where)
        return refs[0] if refs else None

    async def _load_ids(self, ids: Iterable[int]) -> list[ConfigRef]:
        return await self._load_all(*(TelemetryConfigRow.id.in_(chunk) for chunk in chunked(ids)))

    async def _load_pairs(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], ConfigRef]:
        refs = await self._load_all(
            *(
                TelemetryConfigRow.client_id.in_({client_id for client_id, _ in chunk})
                & TelemetryConfigRow.vin.in_({vin for _, vin in chunk})
                for chunk in chunked(pairs)
            )
        )
        return {(r.client_id, r.vin): r for r in refs if (r.client_id, r.vin) in pairs}

    async def _load_all(self, *wheres: Any) -> list[ConfigRef]:
        """The configs each condition selects, read in one session."""
        refs: list[ConfigRef] = []
        if not wheres:
            return refs
        async with self._sessions() as db:
            for where in wheres:
                rows = await db.scalars(select(TelemetryConfigRow).where(where))
                refs += [_config_ref(row) for row in rows]
        return refs


class _Prefetched(Directory):
    """A directory read afresh for one refresh round: its apps, cars, the cars' drivers and the
    consents that could cover them, loaded in one query each. A query per car every quarter of
    the TTL was most of what the refresher cost, and it grew with the fleet."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        super().__init__(sessions, clock)
        self._apps_by_id: dict[str, AppRecord] = {}
        self._cars: dict[str, VehicleRecord] = {}
        self._drivers_by_car: dict[int, frozenset[int]] = {}
        self._grants_asked: tuple[set[int], set[int]] = (set(), set())
        self._grants_found: dict[tuple[int, int], GrantRecord] = {}
        self._db = sessions

    async def load(self, pairs: set[tuple[str, str]]) -> None:
        """Everything `_consented` reads for these (app, car) pairs."""
        async with self._db() as db:
            ids_of_apps = {client_id for client_id, _ in pairs}
            for chunk in chunked(ids_of_apps):
                apps = await db.scalars(select(OAuthClient).where(OAuthClient.client_id.in_(chunk)))
                self._apps_by_id.update({app.client_id: AppRecord.of(app) for app in apps})
            for chunk in chunked({vin for _, vin in pairs}):
                cars = await db.scalars(select(Vehicle).where(Vehicle.vin.in_(chunk)))
                self._cars.update({car.vin: VehicleRecord.of(car) for car in cars})
            ids = {car.id for car in self._cars.values()}
            drivers = await DriverRepository(db).drivers_by_vehicle(ids) if ids else {}
            self._drivers_by_car = {car: frozenset(drivers.get(car, ())) for car in ids}
            accounts = {car.owner_id for car in self._cars.values()}
            accounts.update(*self._drivers_by_car.values())
            app_pks = {app.pk for app in self._apps_by_id.values()}
            if accounts and app_pks:
                grants = await OAuthRepository(db).active_grants(accounts, app_pks)
                self._grants_asked = (accounts, app_pks)
                self._grants_found = {key: GrantRecord.of(row) for key, row in grants.items()}

    async def app(self, client_id: str) -> AppRecord | None:
        found = self._apps_by_id.get(client_id)
        return found if found is not None else await super().app(client_id)

    async def vehicle(self, tag: str) -> VehicleRecord | None:
        return self._cars.get(tag) or await super().vehicle(tag)

    async def drivers_of(self, fleet_id: int) -> frozenset[int]:
        found = self._drivers_by_car.get(fleet_id)
        return found if found is not None else await super().drivers_of(fleet_id)

    async def grant(self, user_id: int, app_pk: int) -> GrantRecord | None:
        accounts, app_pks = self._grants_asked
        if user_id in accounts and app_pk in app_pks:
            return self._grants_found.get((user_id, app_pk))
        return await super().grant(user_id, app_pk)


async def _consented(directory: Directory, client_id: str, vin: str) -> AppRecord | None:
    """The app, if approved and consented to for this car by its owner or one of its drivers
    (the accounts whose consent keeps a config, see `consent.prune_vehicle`), as `directory`
    sees it."""
    app = await directory.app(client_id)
    if app is None or not app.approved:
        return None
    if app.first_party:
        return app
    vehicle = await directory.vehicle(vin)
    if vehicle is None:
        return None
    for account in (vehicle.owner_id, *sorted(await directory.drivers_of(vehicle.id))):
        grant = await directory.grant(account, app.pk)
        if grant is not None and vehicle.id in grant.vehicle_ids:
            return app
    return None


def _config_ref(row: TelemetryConfigRow) -> ConfigRef:
    config = row.config or {}
    ca = config.get("ca")
    return ConfigRef(
        id=row.id,
        client_id=row.client_id,
        vin=row.vin,
        hostname=str(config.get("hostname", "")),
        port=int(config.get("port", 0) or 0),
        ca=str(ca) if ca else None,
        awaits_acks=config.get("delivery_policy") == "latest",
    )
