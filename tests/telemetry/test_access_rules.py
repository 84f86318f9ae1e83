"""Which configs survive a change of access: consent narrowed, a driver removed, a key removed,
the vehicle transferred. Each test builds its own owner, car and apps in the shared demo's
database and calls the services as the endpoints do, inside one transaction."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.accounts.models import User
from flotta.auth.scopes import OWNER_SCOPES
from flotta.devices.models import Vehicle
from flotta.devices.service import ensure_owner, provision_vehicle
from flotta.oauth.consent import ConsentService
from flotta.oauth.grants import oauth_service
from flotta.oauth.models import ConsentGrant, OAuthClient
from flotta.sharing import service as sharing
from flotta.sharing.models import Driver, Invitation
from flotta.sim.vehicle_models import make_vin
from flotta.telemetry.consent import prune_for_grant
from flotta.telemetry.models import TelemetryConfigRow
from flotta.telemetry.service import is_key_paired
from flotta.vehicles import keys, lifecycle
from tests.live import LiveDemo

T = TypeVar("T")
DATA_ONLY = ["openid", "offline_access", "vehicle_device_data", "vehicle_cmds"]
LOCATED = {"fields": {"Location": {"interval_seconds": 10}}}
PLAIN = {"fields": {"Odometer": {"interval_seconds": 10}}}


@dataclass
class World:
    owner: User
    vehicle: Vehicle
    apps: list[OAuthClient]
    keys: list[str]


def public_key_hex() -> str:
    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    return point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


def run(live: LiveDemo, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`work` in one committed transaction on the demo's database."""

    async def go() -> T:
        async with live.handle.runtime.sessions() as session, session.begin():
            return await work(session)

    return live.call(go())


async def account(session: AsyncSession, live: LiveDemo, name: str) -> User:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    return await ensure_owner(session, email, name.title(), live.handle.runtime.clock)


async def world(session: AsyncSession, live: LiveDemo, apps: int = 1) -> World:
    """An owner with a car whose record pairs every app (as the demo does), and third-party
    apps with registered keys; no consent yet."""
    runtime = live.handle.runtime
    owner = await account(session, live, "owner")
    made = await provision_vehicle(
        session, owner=owner, vin=make_vin("modely", secrets.randbelow(800_000) + 100_000),
        model="modely", display_name="car", option_codes="", config={"key_paired": True},
        secret_key=runtime.settings.secret_key, clock=runtime.clock,
    )  # fmt: skip
    developer = await account(session, live, "dev")
    made_apps, app_keys = [], []
    for index in range(apps):
        app, _ = await oauth_service(session, runtime).register_client(
            name=f"Rules {uuid.uuid4().hex[:6]} {index}", owner_id=developer.id,
            confidential=True, scopes=OWNER_SCOPES, redirect_uris=["https://a.example.com/cb"],
        )  # fmt: skip
        app.status = "approved"
        app.public_key = public_key_hex()
        made_apps.append(app)
        app_keys.append(app.public_key)
    await session.flush()
    return World(owner, made.vehicle, made_apps, app_keys)


async def grant(
    session: AsyncSession, user: User, app: OAuthClient, vehicle: Vehicle, scopes: list[str]
) -> ConsentGrant:
    now = vehicle.created_at
    row = ConsentGrant(
        user_id=user.id, client_pk=app.id, scopes=scopes,
        devices=[f"vehicle:{vehicle.id}"], created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(row)
    await session.flush()
    return row


async def configure(
    session: AsyncSession, client_id: str, vehicle: Vehicle, config: dict[str, Any]
) -> TelemetryConfigRow:
    now = vehicle.created_at
    row = TelemetryConfigRow(
        client_id=client_id, vin=vehicle.vin, config=config, version=1, status="synced",
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(row)
    await session.flush()
    return row


async def driver(session: AsyncSession, live: LiveDemo, vehicle: Vehicle) -> User:
    user = await account(session, live, "driver")
    session.add(Driver(vehicle_id=vehicle.id, user_id=user.id, created_at=vehicle.created_at))
    await session.flush()
    return user


async def apps_streaming(session: AsyncSession, vin: str) -> set[str]:
    rows = await session.scalars(select(TelemetryConfigRow).where(TelemetryConfigRow.vin == vin))
    return {row.client_id for row in rows}


def test_removing_a_driver_removes_only_configs_no_one_else_consents_to(live: LiveDemo) -> None:
    async def work(session: AsyncSession) -> tuple[set[str], set[str], list[str]]:
        w = await world(session, live, apps=3)
        relied, located, shared = w.apps
        dana = await driver(session, live, w.vehicle)
        # The owner consents to `shared` (all scopes) and to `located` without location.
        await grant(session, w.owner, shared, w.vehicle, list(OWNER_SCOPES))
        await grant(session, w.owner, located, w.vehicle, DATA_ONLY)
        for app in w.apps:
            await grant(session, dana, app, w.vehicle, list(OWNER_SCOPES))
        await configure(session, relied.client_id, w.vehicle, PLAIN)  # Dana's consent only
        await configure(session, located.client_id, w.vehicle, LOCATED)  # location from Dana only
        await configure(session, shared.client_id, w.vehicle, LOCATED)  # the owner covers it all
        before = await apps_streaming(session, w.vehicle.vin)
        removed = await sharing.remove_driver(
            session, vehicle_id=w.vehicle.id, owner_id=w.owner.id,
            caller_id=w.owner.id, share_user_id=dana.id,
        )  # fmt: skip
        after = await apps_streaming(session, w.vehicle.vin)
        assert before == {relied.client_id, located.client_id, shared.client_id}
        return after, {shared.client_id}, sorted(s.client_id for s in removed)

    after, expected, removed = run(live, work)
    assert after == expected
    assert len(removed) == 2 and expected.isdisjoint(removed)


def test_revoking_a_redeemed_invitation_removes_the_drivers_streams(live: LiveDemo) -> None:
    async def work(session: AsyncSession) -> tuple[int, set[str]]:
        w = await world(session, live)
        dana = await account(session, live, "driver")
        now = w.vehicle.created_at
        invitation = await sharing.create_invitation(
            session, vehicle_id=w.vehicle.id, owner_id=w.owner.id, now=now
        )
        await sharing.redeem_invitation(
            session, code=invitation.code, user_id=dana.id, email=dana.email, now=now
        )
        await grant(session, dana, w.apps[0], w.vehicle, list(OWNER_SCOPES))
        await configure(session, w.apps[0].client_id, w.vehicle, PLAIN)
        done = await sharing.revoke_invitation(
            session, vehicle_id=w.vehicle.id, invitation_id=invitation.id, now=now
        )
        return len(done.removed_configs), await apps_streaming(session, w.vehicle.vin)

    removed, left = run(live, work)
    assert removed == 1 and left == set()


def test_a_driver_narrowing_consent_leaves_the_owners_streams_alone(live: LiveDemo) -> None:
    """Before issue 5's rule, a driver's narrowed grant removed configs the owner consents to."""

    async def work(session: AsyncSession) -> tuple[set[str], set[str]]:
        w = await world(session, live)
        app = w.apps[0]
        dana = await driver(session, live, w.vehicle)
        await grant(session, w.owner, app, w.vehicle, list(OWNER_SCOPES))
        danas = await grant(session, dana, app, w.vehicle, list(OWNER_SCOPES))
        await configure(session, app.client_id, w.vehicle, LOCATED)
        consent = ConsentService(session, live.handle.runtime.clock)
        await consent.narrow(danas, set(DATA_ONLY), {f"vehicle:{w.vehicle.id}"})
        kept = await prune_for_grant(session, danas)
        streaming = await apps_streaming(session, w.vehicle.vin)
        owners = await consent.active(w.owner.id, app.id)
        assert owners is not None and not kept
        await consent.narrow(owners, set(DATA_ONLY), {f"vehicle:{w.vehicle.id}"})
        await prune_for_grant(session, owners)
        return streaming, await apps_streaming(session, w.vehicle.vin)

    after_driver, after_owner = run(live, work)
    assert len(after_driver) == 1  # the owner still consents, location included
    assert after_owner == set()  # now nobody grants vehicle_location for its Location field


def test_removing_an_apps_key_removes_its_configs_and_no_other(live: LiveDemo) -> None:
    async def work(session: AsyncSession) -> dict[str, Any]:
        w = await world(session, live, apps=2)
        gone, stays = w.apps
        for app in w.apps:
            await grant(session, w.owner, app, w.vehicle, list(OWNER_SCOPES))
            await configure(session, app.client_id, w.vehicle, PLAIN)
        removed = await keys.remove_key(session, w.vehicle, gone.public_key or "")
        again = await keys.remove_key(session, w.vehicle, gone.public_key or "")
        config = dict(w.vehicle.config)
        left = await apps_streaming(session, w.vehicle.vin)
        await keys.pair_key(session, w.vehicle, gone.public_key or "")
        return {
            "removed": [s.client_id for s in removed or []],
            "again": again,
            "left": left,
            "expected": {stays.client_id},
            "gone_paired": is_key_paired(config, gone.public_key, first_party=False),
            "stays_paired": is_key_paired(config, stays.public_key, first_party=False),
            "repaired": keys.key_paired(w.vehicle, gone.public_key or ""),
            "gone": gone.client_id,
        }

    found = run(live, work)
    assert found["removed"] == [found["gone"]] and found["again"] is None
    assert found["left"] == found["expected"]
    assert found["gone_paired"] is False and found["stays_paired"] is True
    assert found["repaired"] is True


def test_transferring_a_car_ends_every_stream_share_and_invitation(live: LiveDemo) -> None:
    async def work(session: AsyncSession) -> tuple[int, set[str], int, str | None, bool]:
        w = await world(session, live)
        buyer = await account(session, live, "buyer")
        await driver(session, live, w.vehicle)
        now = w.vehicle.created_at
        pending = await sharing.create_invitation(
            session, vehicle_id=w.vehicle.id, owner_id=w.owner.id, now=now
        )
        await grant(session, w.owner, w.apps[0], w.vehicle, list(OWNER_SCOPES))
        await configure(session, w.apps[0].client_id, w.vehicle, PLAIN)
        # The owner's own tool's config goes too: the buyer did not set it up.
        await configure(session, "flotta-cli", w.vehicle, PLAIN)
        removed = await lifecycle.transfer_vehicle(session, w.vehicle, buyer, now)
        drivers = await sharing.list_drivers(session, w.vehicle.id)
        state = await session.scalar(select(Invitation.state).where(Invitation.id == pending.id))
        left = await apps_streaming(session, w.vehicle.vin)
        return len(removed), left, len(drivers), state, w.vehicle.owner_id == buyer.id

    removed, left, drivers, invitation, bought = run(live, work)
    assert removed == 2 and left == set()
    assert drivers == 0 and invitation == "revoked" and bought


def test_deleting_a_car_returns_its_configs_to_tell_the_cars(live: LiveDemo) -> None:
    async def work(session: AsyncSession) -> tuple[list[str], set[str], Vehicle | None]:
        w = await world(session, live)
        await grant(session, w.owner, w.apps[0], w.vehicle, list(OWNER_SCOPES))
        await configure(session, w.apps[0].client_id, w.vehicle, PLAIN)
        vin = w.vehicle.vin
        removed = await lifecycle.delete_vehicle(session, w.vehicle)
        left = await apps_streaming(session, vin)
        return [s.vin for s in removed], left, await session.get(Vehicle, w.vehicle.id)

    removed, left, vehicle = run(live, work)
    assert len(removed) == 1 and left == set() and vehicle is None
