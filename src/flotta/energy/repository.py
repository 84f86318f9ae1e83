"""Every query on energy sites, their intervals and backup events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.energy.models import EnergyBackupEvent, EnergyInterval, EnergySite
from flotta.sim.energy_meter import BackupEvent, IntervalTotals
from flotta.sim.energy_site import FLOW_NAMES


class EnergySiteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_id(self, site_id: int) -> EnergySite | None:
        return await self.session.get(EnergySite, site_id)

    async def by_uid(self, site_uid: str) -> EnergySite | None:
        result = await self.session.execute(
            select(EnergySite).where(EnergySite.site_uid == site_uid)
        )
        return result.scalar_one_or_none()

    async def owned_by(self, owner_id: int) -> Sequence[EnergySite]:
        result = await self.session.execute(
            select(EnergySite).where(EnergySite.owner_id == owner_id).order_by(EnergySite.id)
        )
        return result.scalars().all()

    async def max_id(self) -> int | None:
        value = (await self.session.execute(select(func.max(EnergySite.id)))).scalar_one_or_none()
        return int(value) if value is not None else None

    async def add(self, site: EnergySite) -> EnergySite:
        self.session.add(site)
        await self.session.flush()
        return site


class EnergyHistoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def known_starts(self, site_id: int, starts: Sequence[datetime]) -> set[datetime]:
        """Which of these interval starts are already stored (a device may resend)."""
        if not starts:
            return set()
        result = await self.session.execute(
            select(EnergyInterval.start_at).where(
                EnergyInterval.site_id == site_id,
                EnergyInterval.start_at >= min(starts),
                EnergyInterval.start_at <= max(starts),
            )
        )
        return set(result.scalars().all())

    async def add_intervals(self, site_id: int, intervals: Sequence[IntervalTotals]) -> int:
        """Store intervals not seen before; returns how many were new."""
        known = await self.known_starts(site_id, [i.start for i in intervals])
        rows = [
            {"site_id": site_id, "start_at": i.start, "seconds": i.seconds, **i.wh}
            for i in intervals
            if i.start not in known
        ]
        if rows:
            await self.session.execute(insert(EnergyInterval), rows)
        return len(rows)

    async def latest_start(self, site_id: int) -> datetime | None:
        """Start of the newest stored interval (back-fills continue from there)."""
        result = await self.session.execute(
            select(func.max(EnergyInterval.start_at)).where(EnergyInterval.site_id == site_id)
        )
        value = result.scalar_one_or_none()
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # SQLite's aggregate skips the column type
        return value

    async def intervals(
        self, site_id: int, start: datetime, end: datetime
    ) -> list[tuple[datetime, dict[str, int]]]:
        """Intervals starting in [start, end), oldest first, as (start, Wh per flow)."""
        columns = [getattr(EnergyInterval, name) for name in FLOW_NAMES]
        result = await self.session.execute(
            select(EnergyInterval.start_at, *columns)
            .where(
                EnergyInterval.site_id == site_id,
                EnergyInterval.start_at >= start,
                EnergyInterval.start_at < end,
            )
            .order_by(EnergyInterval.start_at)
        )
        return [(row[0], dict(zip(FLOW_NAMES, row[1:], strict=True))) for row in result.all()]

    async def add_backup_event(self, site_id: int, event: BackupEvent) -> None:
        existing = await self.session.execute(
            select(EnergyBackupEvent).where(
                EnergyBackupEvent.site_id == site_id,
                EnergyBackupEvent.started_at == event.start,
            )
        )
        row = existing.scalar_one_or_none()
        if row is None:
            self.session.add(
                EnergyBackupEvent(
                    site_id=site_id, started_at=event.start, duration_s=event.duration_s
                )
            )
        else:
            row.duration_s = event.duration_s  # an outage reported again once it ended

    async def backup_events(
        self, site_id: int, start: datetime, end: datetime
    ) -> Sequence[EnergyBackupEvent]:
        result = await self.session.execute(
            select(EnergyBackupEvent)
            .where(
                EnergyBackupEvent.site_id == site_id,
                EnergyBackupEvent.started_at >= start,
                EnergyBackupEvent.started_at < end,
            )
            .order_by(EnergyBackupEvent.started_at)
        )
        return result.scalars().all()
