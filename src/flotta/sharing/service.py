"""Share invitations and drivers (reference §4.3). Callers own the unit of work.

Removing a driver also removes the streaming configs that relied on that driver's consent
(issue 5); the caller tells the cars once it has committed (`telemetry.consent.stop_streams`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.devices.models import Vehicle
from flotta.errors import FlottaError, InvalidRequest, NotFound
from flotta.sharing.models import Driver, Invitation
from flotta.sharing.repository import DriverRepository, InvitationRepository
from flotta.telemetry.consent import prune_vehicle
from flotta.telemetry.service import ConfigState

INVITE_TTL = timedelta(hours=24)
MAX_DRIVERS = 5  # Tesla's limit per vehicle
MAX_LISTED = 25  # Tesla's largest invitations page


@dataclass(frozen=True, slots=True)
class Redemption:
    invitation: Invitation
    vehicle: Vehicle


def new_code() -> str:
    """A URL-safe single-use code, unguessable (192 bits)."""
    return secrets.token_urlsafe(24)


async def accessible_vehicle_ids(session: AsyncSession, user_id: int) -> set[int]:
    """Fleet ids of the vehicles this account may see: the ones it owns or drives."""
    return await DriverRepository(session).vehicle_ids_of(user_id)


async def create_invitation(
    session: AsyncSession,
    *,
    vehicle_id: int,
    owner_id: int,
    now: datetime,
    email: str | None = None,
) -> Invitation:
    """A pending 24-hour invite; refused once the vehicle has its maximum of drivers."""
    if await DriverRepository(session).count(vehicle_id) >= MAX_DRIVERS:
        raise InvalidRequest(
            f"this vehicle already has the maximum of {MAX_DRIVERS} drivers; "
            "remove one before inviting another"
        )
    invitation = Invitation(
        vehicle_id=vehicle_id,
        owner_id=owner_id,
        code=new_code(),
        email=email.lower() if email else None,
        state="pending",
        created_at=now,
        expires_at=now + INVITE_TTL,
    )
    return await InvitationRepository(session).add(invitation)


async def list_invitations(session: AsyncSession, vehicle_id: int) -> Sequence[Invitation]:
    """The vehicle's invitations, newest first, at most one Tesla page."""
    return await InvitationRepository(session).for_vehicle(vehicle_id, MAX_LISTED)


@dataclass(frozen=True, slots=True)
class Revocation:
    invitation: Invitation
    # Streaming configs that lost access with the driver the invite had admitted.
    removed_configs: list[ConfigState]


async def revoke_invitation(
    session: AsyncSession, *, vehicle_id: int, invitation_id: int, now: datetime
) -> Revocation:
    """Invalidate an invite; revoking a redeemed one also ends the access it granted."""
    invitation = await InvitationRepository(session).get(vehicle_id, invitation_id)
    if invitation is None:
        raise NotFound(f"no invitation {invitation_id} on this vehicle")
    if invitation.state == "revoked":
        return Revocation(invitation, [])
    removed: list[ConfigState] = []
    driver = invitation.redeemed_by if invitation.state == "redeemed" else None
    if driver is not None and await DriverRepository(session).remove(vehicle_id, driver):
        removed = await _prune(session, vehicle_id)
    invitation.state = "revoked"
    invitation.revoked_at = now
    await session.flush()
    return Revocation(invitation, removed)


async def _prune(session: AsyncSession, vehicle_id: int) -> list[ConfigState]:
    """The vehicle's streaming configs that no remaining owner's or driver's consent covers."""
    vehicle = await session.get(Vehicle, vehicle_id)
    return await prune_vehicle(session, vehicle) if vehicle is not None else []


def _check_redeemable(invitation: Invitation, user_id: int, email: str, now: datetime) -> None:
    if invitation.state == "revoked":
        raise InvalidRequest("invalid code param: this invitation was revoked by the owner")
    if invitation.state == "redeemed":
        raise InvalidRequest("invalid code param: this invitation has already been used")
    if invitation.expires_at <= now:
        raise InvalidRequest(
            f"invalid code param: this invitation expired at {invitation.expires_at.isoformat()}"
        )
    if invitation.owner_id == user_id:
        raise InvalidRequest("invalid code param: you cannot redeem an invite to your own vehicle")
    if invitation.email is not None and invitation.email != email.lower():
        raise InvalidRequest("invalid code param: this invitation was sent to another account")


async def redeem_invitation(
    session: AsyncSession, *, code: str, user_id: int, email: str, now: datetime
) -> Redemption:
    """Make the caller a driver of the invitation's vehicle; the code is then spent."""
    invitation = await InvitationRepository(session).by_code(code)
    if invitation is None:
        raise NotFound("no invitation with this code")
    _check_redeemable(invitation, user_id, email, now)
    vehicle = await session.get(Vehicle, invitation.vehicle_id)
    if vehicle is None:
        raise NotFound("the shared vehicle no longer exists")
    if vehicle.owner_id == user_id:
        raise InvalidRequest("invalid code param: you cannot redeem an invite to your own vehicle")
    drivers = DriverRepository(session)
    if await drivers.exists(vehicle.id, user_id):
        raise InvalidRequest("invalid code param: you are already a driver of this vehicle")
    if await drivers.count(vehicle.id) >= MAX_DRIVERS:
        raise InvalidRequest(f"this vehicle already has the maximum of {MAX_DRIVERS} drivers")
    await drivers.add(Driver(vehicle_id=vehicle.id, user_id=user_id, created_at=now))
    invitation.state = "redeemed"
    invitation.redeemed_at = now
    invitation.redeemed_by = user_id
    await session.flush()
    return Redemption(invitation, vehicle)


async def list_drivers(session: AsyncSession, vehicle_id: int) -> Sequence[tuple[Driver, User]]:
    return await DriverRepository(session).with_users(vehicle_id)


async def remove_driver(
    session: AsyncSession, *, vehicle_id: int, owner_id: int, caller_id: int, share_user_id: int
) -> list[ConfigState]:
    """Owners remove any driver; a driver may remove only themself. Returns the streaming
    configs that relied on the driver's consent, now removed."""
    if caller_id not in (owner_id, share_user_id):
        raise FlottaError(
            "only the vehicle's owner can remove other drivers", status=403, key="forbidden"
        )
    if not await DriverRepository(session).remove(vehicle_id, share_user_id):
        raise NotFound(f"no driver with share_user_id {share_user_id} on this vehicle")
    return await _prune(session, vehicle_id)
