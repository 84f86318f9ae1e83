"""Streaming configs per app and vehicle: create or replace, skip reasons, get, delete, acks.

Tesla's behaviour (fleet-api.md §9.1): a config goes to every listed vehicle that can take it;
the others are reported under `skipped_vehicles` by reason. Services never commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flotta.sim.vehicle_models import MODELS
from flotta.telemetry.config import TelemetryConfig
from flotta.telemetry.fields import VEHICLE_LOCATION_SCOPE_FIELDS
from flotta.telemetry.models import TelemetryConfigRow, TelemetryErrorRow
from flotta.telemetry.repository import TelemetryRepository

MAX_CONFIGS_PER_VEHICLE = 5
"""Tesla's docs say a car streams to five apps at a time (another passage says three)."""

# Tesla: firmware 2023.20 for configs sent directly (legacy apps), 2024.26 through the proxy.
MIN_FIRMWARE_DIRECT = (2023, 20)
MIN_FIRMWARE_SIGNED = (2024, 26)
# Tesla: pre-2021 Model S/X cannot stream, except those with the Intel Atom computer (MCU2)
# on firmware 2025.20 or later (fleet-api.md §9.1).
MIN_FIRMWARE_ATOM_SX = (2025, 20)

SKIP_REASONS = ("missing_key", "unsupported_hardware", "unsupported_firmware", "max_configs")
# Flotta's addition to Tesla's reasons: listed VINs the token cannot reach are named, not hidden.
NOT_FOUND = "not_found"

DATA_SCOPE = "vehicle_device_data"
LOCATION_SCOPE = "vehicle_location"
CONFIG_ERROR = "config_rejected"
"""`fleet_telemetry_errors` name of a car refusing a config (the ack's reason is the error)."""

_VERSION = re.compile(r"^\s*(\d{4})\.(\d{1,3})")


@dataclass(frozen=True, slots=True)
class Target:
    """A listed vehicle the caller may configure, with what decides whether it can stream."""

    vin: str
    firmware: str
    key_paired: bool
    model: str = ""  # the model catalogue's key (flotta.sim.vehicle_models), for the hardware


@dataclass(frozen=True, slots=True)
class ConfigState:
    """A stored config detached from its session: what a car is sent and GET shows."""

    id: int
    client_id: str
    vin: str
    version: int
    config: Mapping[str, Any]
    status: str
    error: str | None
    updated_at: datetime
    synced_at: datetime | None

    @classmethod
    def of(cls, row: TelemetryConfigRow) -> ConfigState:
        return cls(
            row.id,
            row.client_id,
            row.vin,
            row.version,
            dict(row.config),
            row.status,
            row.error,
            row.updated_at,
            row.synced_at,
        )


@dataclass
class ApplyResult:
    """Tesla's `{updated_vehicles, skipped_vehicles}` plus the configs to send to cars."""

    applied: list[ConfigState] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(
        default_factory=lambda: {reason: [] for reason in SKIP_REASONS}
    )

    def to_json(self) -> dict[str, Any]:
        """The `response` member of the create endpoints."""
        skipped = {k: v for k, v in self.skipped.items() if k in SKIP_REASONS or v}
        return {"updated_vehicles": len(self.applied), "skipped_vehicles": skipped}


def firmware_at_least(firmware: str, minimum: tuple[int, int]) -> bool:
    """Whether a version such as `2024.44.25.3 abc123` is at least `minimum` (year, release)."""
    found = _VERSION.match(firmware)
    if found is None:
        return False
    return (int(found.group(1)), int(found.group(2))) >= minimum


def hardware_supported(model_key: str, firmware: str) -> bool:
    """Whether the car's hardware can stream: not a pre-2021 S/X, unless Intel Atom on 2025.20+.

    Models outside the catalogue (devices of other makes) are taken as supported.
    """
    model = MODELS.get(model_key)
    if model is None or model.car_type not in ("models", "modelx") or model.model_year >= 2021:
        return True
    return model.mcu == "MCU2" and firmware_at_least(firmware, MIN_FIRMWARE_ATOM_SX)


def is_key_paired(
    vehicle_config: Mapping[str, Any], app_public_key: str | None, *, first_party: bool
) -> bool:
    """Whether the app's virtual key is on the car, as far as the server knows.

    Like fleet_status: the app's public key among the record's `paired_keys`, or the record's
    `key_paired` flag (the demo pairs every app) unless the owner removed that key since
    (`removed_keys`). The owner's own (first-party) apps need no virtual key.
    """
    if first_party:
        return True
    key = app_public_key.lower() if app_public_key else None
    if key is not None and key in listed_keys(vehicle_config, "paired_keys"):
        return True
    if vehicle_config.get("key_paired") is not True:
        return False
    return key is None or key not in listed_keys(vehicle_config, "removed_keys")


def listed_keys(vehicle_config: Mapping[str, Any], name: str) -> set[str]:
    """A list of public keys in a vehicle's config (e.g. `paired_keys`), lower-cased."""
    found = vehicle_config.get(name)
    return {str(key).lower() for key in found} if isinstance(found, list) else set()


def location_fields(config: Mapping[str, Any] | TelemetryConfig) -> list[str]:
    """The configured fields Tesla streams only with the vehicle_location scope."""
    fields = config.fields if isinstance(config, TelemetryConfig) else config.get("fields", {})
    return sorted(name for name in fields if name in VEHICLE_LOCATION_SCOPE_FIELDS)


async def apply_config(
    session: AsyncSession,
    *,
    client_id: str,
    config: TelemetryConfig,
    targets: Sequence[Target],
    not_found: Sequence[str],
    signed: bool,
    now: datetime,
) -> ApplyResult:
    """Create or replace the app's config on each target; a change bumps the version."""
    repo = TelemetryRepository(session)
    result = ApplyResult()
    if not_found:
        result.skipped[NOT_FOUND] = list(not_found)
    minimum = MIN_FIRMWARE_SIGNED if signed else MIN_FIRMWARE_DIRECT
    wanted = config.to_json()
    for target in targets:
        existing = await repo.config(client_id, target.vin)
        if not target.key_paired:
            result.skipped["missing_key"].append(target.vin)
        elif not hardware_supported(target.model, target.firmware):
            result.skipped["unsupported_hardware"].append(target.vin)
        elif not firmware_at_least(target.firmware, minimum):
            result.skipped["unsupported_firmware"].append(target.vin)
        elif existing is None and await repo.other_apps_on(target.vin, client_id) >= (
            MAX_CONFIGS_PER_VEHICLE
        ):
            result.skipped["max_configs"].append(target.vin)
        else:
            row = await _store(repo, existing, client_id, target.vin, wanted, now)
            result.applied.append(ConfigState.of(row))
    return result


async def _store(
    repo: TelemetryRepository,
    row: TelemetryConfigRow | None,
    client_id: str,
    vin: str,
    wanted: dict[str, Any],
    now: datetime,
) -> TelemetryConfigRow:
    """Insert, or replace when different: version + 1 and back to pending."""
    if row is None:
        return await repo.add(
            TelemetryConfigRow(
                client_id=client_id,
                vin=vin,
                config=wanted,
                version=1,
                status="pending",
                created_at=now,
                updated_at=now,
            )
        )
    if row.config != wanted:
        row.config = wanted
        row.version += 1
        row.status, row.error, row.synced_at = "pending", None, None
        row.updated_at = now
        await repo.session.flush()
    return row


async def get_config(session: AsyncSession, client_id: str, vin: str) -> ConfigState | None:
    """The app's config on the vehicle."""
    row = await TelemetryRepository(session).config(client_id, vin)
    return ConfigState.of(row) if row is not None else None


async def limit_reached(session: AsyncSession, client_id: str, vin: str) -> bool:
    """Whether the car already streams to as many other apps as it can."""
    others = await TelemetryRepository(session).other_apps_on(vin, client_id)
    return others >= MAX_CONFIGS_PER_VEHICLE


def config_view(state: ConfigState | None, *, key_paired: bool, limit: bool) -> dict[str, Any]:
    """GET fleet_telemetry_config: Tesla's four members, then Flotta's sync details."""
    if state is None:
        return {
            "synced": False,
            "config": None,
            "limit_reached": limit,
            "key_paired": key_paired,
            "version": None,
            "status": None,
            "updated_at": None,
            "synced_at": None,
            "error": None,
        }
    return {
        "synced": state.status == "synced",
        "config": dict(state.config),
        "limit_reached": limit,
        "key_paired": key_paired,
        "version": state.version,
        "status": state.status,
        "updated_at": state.updated_at.isoformat(),
        "synced_at": state.synced_at.isoformat() if state.synced_at else None,
        "error": state.error,
    }


async def delete_config(session: AsyncSession, client_id: str, vin: str) -> ConfigState | None:
    """Remove the app's config from the vehicle; None when there was none."""
    repo = TelemetryRepository(session)
    row = await repo.config(client_id, vin)
    if row is None:
        return None
    state = ConfigState.of(row)
    await repo.remove(row)
    return state


async def record_ack(
    session: AsyncSession,
    *,
    config_id: int,
    vin: str,
    version: int,
    error: str | None,
    now: datetime,
) -> ConfigState | None:
    """A car's TELEMETRY_CONFIG_ACK: synced, or error with its reason (for that version only)."""
    repo = TelemetryRepository(session)
    row = await repo.by_id(config_id)
    if row is None or row.vin != vin or row.version != version:
        return None  # a late ack of a replaced or removed config
    if error is None:
        # The same version acked again (the config re-sent unchanged, a reconnect) changes
        # nothing: synced_at stays when the car first confirmed it.
        if row.status != "synced" or row.synced_at is None:
            row.status, row.error, row.synced_at = "synced", None, now
    else:
        row.status, row.error, row.synced_at = "error", error, None
        await repo.add_error(
            TelemetryErrorRow(
                client_id=row.client_id, vin=vin, name=CONFIG_ERROR, body=error, created_at=now
            )
        )
    await session.flush()
    return ConfigState.of(row)


def error_entries(rows: Iterable[TelemetryErrorRow]) -> list[dict[str, str]]:
    """Tesla's `{name, error, vin}` list; `name` is the app's client id."""
    return [
        {
            "name": row.client_id,
            "error": f"{row.name}: {row.body}" if row.body else row.name,
            "vin": row.vin,
            "created_at": row.created_at.isoformat(),
        }
        for row in rows
    ]
