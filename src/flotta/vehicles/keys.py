"""Virtual keys paired on a vehicle, as the platform records them (fleet-api.md §3.3).

The server knows a car's keychain through the vehicle record: `paired_keys` (the apps' public
keys, hex `04…`), or the demo's `key_paired` flag (every app paired) minus `removed_keys`.
fleet_status and the telemetry skip reasons read it (`telemetry.service.is_key_paired`).
Removing an app's key removes its streaming configs on the car, as Tesla does. Services never
commit; the caller tells the cars once it has (`telemetry.consent.stop_streams`).
"""

from __future__ import annotations

import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncSession

from flotta.devices.models import Vehicle
from flotta.errors import InvalidRequest
from flotta.telemetry.consent import prune_vehicle
from flotta.telemetry.repository import TelemetryRepository
from flotta.telemetry.service import ConfigState, is_key_paired, listed_keys

_HEX_POINT = re.compile(r"04[0-9a-f]{128}")


def parse_public_key(text: str) -> str:
    """A P-256 public key as Tesla writes it: the uncompressed point, 130 hex characters."""
    key = text.strip().lower()
    if not _HEX_POINT.fullmatch(key):
        raise InvalidRequest(
            "invalid public_key param: send the uncompressed P-256 point as 130 hex characters "
            "starting with 04 (as GET /api/1/partner_accounts/public_key shows it)"
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(key))
    except ValueError as exc:
        raise InvalidRequest("invalid public_key param: not a point on P-256") from exc
    return key


def key_paired(vehicle: Vehicle, public_key: str) -> bool:
    """Whether the key is paired on the car, as fleet_status reports it."""
    return is_key_paired(vehicle.config or {}, public_key, first_party=False)


async def pair_key(session: AsyncSession, vehicle: Vehicle, public_key: str) -> None:
    """Enrol the key on the car (the owner approved it, as in Tesla's app)."""
    config: dict[str, Any] = dict(vehicle.config or {})
    config["paired_keys"] = sorted(listed_keys(config, "paired_keys") | {public_key})
    _set_removed(config, listed_keys(config, "removed_keys") - {public_key})
    vehicle.config = config  # a new dict, so the JSON column is written
    await session.flush()


async def remove_key(
    session: AsyncSession, vehicle: Vehicle, public_key: str
) -> list[ConfigState] | None:
    """Take the key off the car; the streaming configs of the apps it belongs to are removed.

    None when the key was not paired.
    """
    if not key_paired(vehicle, public_key):
        return None
    config: dict[str, Any] = dict(vehicle.config or {})
    config["paired_keys"] = sorted(listed_keys(config, "paired_keys") - {public_key})
    if config.get("key_paired") is True:
        # The demo's blanket pairing stays for the other apps; this key is out of it.
        _set_removed(config, listed_keys(config, "removed_keys") | {public_key})
    vehicle.config = config
    await session.flush()
    apps = await TelemetryRepository(session).apps_with_public_key(public_key)
    return await prune_vehicle(session, vehicle, apps) if apps else []


def _set_removed(config: dict[str, Any], keys: set[str]) -> None:
    if keys:
        config["removed_keys"] = sorted(keys)
    else:
        config.pop("removed_keys", None)
