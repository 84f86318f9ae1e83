"""The signal contract: field numbers, value encodings and payload round trips."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tesla_protocol.telemetry import vehicle_data_pb2 as vd

from flotta.vehicles.signals import (
    SIGNALS,
    FlottaField,
    decode_value,
    dict_from_payload,
    encode_value,
    field_name,
    field_number,
    payload_from_dict,
)

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)


def test_names_and_numbers_cover_tesla_and_flotta_fields() -> None:
    assert field_number("BatteryLevel") == 42
    assert field_name(42) == "BatteryLevel"
    assert field_number("BioweaponMode") == FlottaField.BioweaponMode == 100000
    assert field_name(100000) == "BioweaponMode"
    assert field_name(123456) == "Field123456"  # unknown numbers pass through
    assert all(int(f) >= 100000 for f in FlottaField)
    for name in SIGNALS:
        assert field_name(field_number(name)) == name


def test_extension_fields_survive_the_wire() -> None:
    payload = payload_from_dict("5YJ3E1EB8TF000123", NOW, {"BioweaponMode": True, "Locked": True})
    parsed = vd.Payload.FromString(payload.SerializeToString())
    assert [int(d.key) for d in parsed.data] == [100000, 59]
    assert dict_from_payload(parsed) == {"BioweaponMode": True, "Locked": True}
    assert parsed.vin == "5YJ3E1EB8TF000123"
    assert parsed.created_at.ToDatetime(tzinfo=UTC) == NOW


@pytest.mark.parametrize(
    ("field", "value", "oneof"),
    [
        ("BatteryLevel", 55.5, "double_value"),
        ("ChargeLimitSoc", 80, "int_value"),
        ("ScheduledDepartureTime", 1_780_000_000, "long_value"),
        ("Locked", True, "boolean_value"),
        ("VehicleName", "Ziggy", "string_value"),
        ("Location", {"latitude": 37.5, "longitude": -121.9}, "location_value"),
        ("DetailedChargeState", "DetailedChargeStateCharging", "detailed_charge_state_value"),
        ("Gear", "ShiftStateD", "shift_state_value"),
        ("ChargeSchedules", [{"id": 1, "enabled": True}], "string_value"),
    ],
)
def test_values_round_trip_in_their_declared_types(field: str, value: Any, oneof: str) -> None:
    encoded = encode_value(field, value)
    assert encoded.WhichOneof("value") == oneof
    assert decode_value(encoded, field) == value


def test_doors_time_and_invalid() -> None:
    doors = {"DriverFront": True, "TrunkRear": True}
    decoded = decode_value(encode_value("DoorState", doors))
    assert decoded["DriverFront"] and decoded["TrunkRear"] and not decoded["PassengerFront"]
    time_value = vd.Value(time_value=vd.Time(hour=7, minute=30, second=5))
    assert decode_value(time_value) == {"hour": 7, "minute": 30, "second": 5}
    assert encode_value("InsideTemp", None).invalid
    assert decode_value(vd.Value(invalid=True)) is None


def test_enum_kinds_in_the_table_name_real_oneofs() -> None:
    for name, kind in SIGNALS.items():
        if kind.endswith("_value"):
            assert vd.Value.DESCRIPTOR.fields_by_name[kind].enum_type is not None, name
