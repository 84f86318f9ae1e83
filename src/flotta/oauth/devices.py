"""The devices a consent grant can name, for the consent page and the owner console."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.energy.repository import EnergySiteRepository
from flotta.energy.service import SITE_REF_PREFIX, site_ref
from flotta.oauth.consent import vehicle_ids, vehicle_ref
from flotta.runtime import Runtime


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """One checkbox: the grant reference it stands for, a name and what identifies it."""

    ref: str
    name: str
    detail: str


def reaches_vehicles(scopes: Iterable[str]) -> bool:
    return any(s.startswith("vehicle_") for s in scopes)


def reaches_sites(scopes: Iterable[str]) -> bool:
    return any(s.startswith("energy_") for s in scopes)


async def owner_devices(
    db: AsyncSession, runtime: Runtime, user_id: int, scopes: Iterable[str]
) -> list[DeviceChoice]:
    """What the owner may choose for an app asking `scopes`: vehicles, then energy sites."""
    wanted = list(scopes)
    choices: list[DeviceChoice] = []
    if reaches_vehicles(wanted):
        for record in await runtime.directory.visible_to(user_id):
            name = record.display_name or record.vin
            choices.append(DeviceChoice(vehicle_ref(record.id), name, f"VIN {record.vin}"))
    if reaches_sites(wanted):
        for site in await EnergySiteRepository(db).owned_by(user_id):
            choices.append(_site_choice(site.id, site.site_name))
    return choices


async def granted_devices(
    db: AsyncSession, runtime: Runtime, refs: Iterable[str]
) -> list[DeviceChoice]:
    """A grant's devices by name; one deleted since is shown by its id."""
    refs = list(refs)
    choices: list[DeviceChoice] = []
    for fleet_id in sorted(vehicle_ids(refs)):
        record = await runtime.directory.vehicle(str(fleet_id))
        if record is None:
            choices.append(DeviceChoice(vehicle_ref(fleet_id), f"Vehicle {fleet_id}", ""))
        else:
            name = record.display_name or record.vin
            choices.append(DeviceChoice(vehicle_ref(fleet_id), name, f"VIN {record.vin}"))
    sites = EnergySiteRepository(db)
    for ref in sorted(r for r in refs if r.startswith(SITE_REF_PREFIX)):
        raw = ref[len(SITE_REF_PREFIX) :]
        site = await sites.by_id(int(raw)) if raw.isdigit() and len(raw) < 20 else None
        choices.append(
            _site_choice(site.id, site.site_name) if site else DeviceChoice(ref, ref, "")
        )
    return choices


def _site_choice(site_id: int, name: str) -> DeviceChoice:
    return DeviceChoice(
        site_ref(site_id), name or f"Energy site {site_id}", f"Energy site {site_id}"
    )
