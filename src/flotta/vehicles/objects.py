"""Tesla's vehicle object (list, get, wake_up, products): reference §5.1."""

from __future__ import annotations

import hashlib
from typing import Any

from flotta.devices.directory import VehicleRecord

# One value for the vehicle object and vehicle_state.api_version, which clients compare.
API_VERSION = 84


def _tokens(vin: str) -> list[str]:
    digest = hashlib.sha256(f"flotta-tokens:{vin}".encode()).hexdigest()
    return [digest[:16], digest[16:32]]


def vehicle_object(record: VehicleRecord, state: str, access: str = "OWNER") -> dict[str, Any]:
    """The vehicle object as `/vehicles`, `/vehicles/{tag}` and `wake_up` return it."""
    return {
        "id": record.id,
        "vehicle_id": record.vehicle_id,
        "vin": record.vin,
        "color": None,
        "access_type": access,
        "display_name": record.display_name,
        "option_codes": record.option_codes or None,
        "granular_access": {"hide_private": False},
        "tokens": _tokens(record.vin),
        "state": state,
        "in_service": False,
        "id_s": str(record.id),
        "calendar_enabled": True,
        "api_version": API_VERSION,
        "backseat_token": None,
        "backseat_token_updated_at": None,
        "ble_autopair_enrolled": False,
    }


def product_object(record: VehicleRecord, state: str, access: str = "OWNER") -> dict[str, Any]:
    """A vehicle as `/products` lists it: the vehicle object plus product members."""
    return {
        **vehicle_object(record, state, access),
        "cached_data": "",
        "device_type": "vehicle",
        "command_signing": record.command_signing,
        "release_notes_supported": True,
    }
