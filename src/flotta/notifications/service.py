"""Register mobile devices for vehicle push notifications (Tesla's legacy subscriptions)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.notifications.models import PushSubscription

DEVICE_TYPES = ("android", "ios-development", "ios-enterprise", "ios-beta", "ios-production")


async def subscribed_vehicle_ids(
    session: AsyncSession, user_id: int, device_token: str
) -> list[int]:
    """Fleet ids this account's device receives notifications from, in id order."""
    rows = await session.execute(
        select(PushSubscription.vehicle_id)
        .where(PushSubscription.user_id == user_id, PushSubscription.device_token == device_token)
        .order_by(PushSubscription.vehicle_id)
    )
    return [int(v) for v in rows.scalars()]


async def replace_subscriptions(
    session: AsyncSession,
    *,
    user_id: int,
    device_token: str,
    device_type: str,
    vehicle_ids: Iterable[int],
    now: datetime,
) -> list[int]:
    """Make the device follow exactly `vehicle_ids`; the caller has checked they are visible."""
    await session.execute(
        delete(PushSubscription).where(
            PushSubscription.user_id == user_id, PushSubscription.device_token == device_token
        )
    )
    wanted = sorted(set(vehicle_ids))
    session.add_all(
        PushSubscription(
            user_id=user_id,
            vehicle_id=vehicle_id,
            device_token=device_token,
            device_type=device_type,
            created_at=now,
        )
        for vehicle_id in wanted
    )
    await session.flush()
    return wanted
