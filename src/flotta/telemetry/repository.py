"""Every query of streaming configs and the errors cars report (telemetry_configs, _errors)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.oauth.models import OAuthClient
from flotta.telemetry.models import TelemetryConfigRow, TelemetryErrorRow

MAX_ERRORS_LISTED = 100
"""The newest errors an errors endpoint lists; older ones stay in the table."""


class TelemetryRepository:
    """Queries over one session; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def config(self, client_id: str, vin: str) -> TelemetryConfigRow | None:
        """The app's config on the vehicle, if any."""
        return await self.session.scalar(
            select(TelemetryConfigRow).where(
                TelemetryConfigRow.client_id == client_id, TelemetryConfigRow.vin == vin
            )
        )

    async def by_id(self, config_id: int) -> TelemetryConfigRow | None:
        return await self.session.get(TelemetryConfigRow, config_id)

    async def configs_on(self, vin: str) -> Sequence[TelemetryConfigRow]:
        """Every app's config on one vehicle, oldest first (what the car is sent on connect)."""
        rows = await self.session.scalars(
            select(TelemetryConfigRow)
            .where(TelemetryConfigRow.vin == vin)
            .order_by(TelemetryConfigRow.id)
        )
        return rows.all()

    async def other_apps_on(self, vin: str, client_id: str) -> int:
        """How many other apps stream from the vehicle (Tesla caps a car at five)."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(TelemetryConfigRow)
            .where(TelemetryConfigRow.vin == vin, TelemetryConfigRow.client_id != client_id)
        )
        return int(count or 0)

    async def add(self, row: TelemetryConfigRow) -> TelemetryConfigRow:
        self.session.add(row)
        await self.session.flush()
        return row

    async def remove(self, row: TelemetryConfigRow) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def app_public_key(self, client_id: str) -> str | None:
        """The app's registered public key (hex `04…`), as partner_accounts stored it."""
        key = await self.session.scalar(
            select(OAuthClient.public_key).where(OAuthClient.client_id == client_id)
        )
        return key or None

    async def apps_with_public_key(self, public_key: str) -> list[str]:
        """The client ids of the apps that registered this public key (hex, any case)."""
        rows = await self.session.scalars(
            select(OAuthClient.client_id).where(
                func.lower(OAuthClient.public_key) == public_key.lower()
            )
        )
        return list(rows.all())

    async def errors_of(
        self, client_id: str, vin: str | None = None, limit: int = MAX_ERRORS_LISTED
    ) -> Sequence[TelemetryErrorRow]:
        """The newest errors cars reported while streaming for the app (one VIN or all)."""
        query = select(TelemetryErrorRow).where(TelemetryErrorRow.client_id == client_id)
        if vin is not None:
            query = query.where(TelemetryErrorRow.vin == vin)
        rows = await self.session.scalars(query.order_by(TelemetryErrorRow.id.desc()).limit(limit))
        return rows.all()

    async def error_vins(self, client_id: str) -> list[str]:
        """The VINs that reported errors for the app, sorted."""
        rows = await self.session.scalars(
            select(TelemetryErrorRow.vin)
            .where(TelemetryErrorRow.client_id == client_id)
            .distinct()
            .order_by(TelemetryErrorRow.vin)
        )
        return list(rows.all())

    async def add_error(self, row: TelemetryErrorRow) -> None:
        self.session.add(row)
        await self.session.flush()
