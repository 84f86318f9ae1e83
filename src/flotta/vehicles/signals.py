"""Vehicle state as fleet-telemetry records: the contract between simulator and renderer.

State travels as `telemetry.vehicle_data.Payload` (§9.5 of the reference): one `Datum` per
signal, keyed by Tesla's `Field` enum. Tesla's enum lacks some state that `vehicle_data`
shows, so Flotta adds extension field numbers from 100000 up; proto3 enums are open, so those
numbers survive serialisation and a Tesla-only consumer simply ignores them.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import IntEnum
from typing import Any, cast

from tesla_protocol.telemetry import vehicle_data_pb2 as vd

EXTENSION_BASE = 100000


class FlottaField(IntEnum):
    """Extension signals for state that Tesla's `Field` enum does not carry."""

    BioweaponMode = 100000
    SunroofState = 100001
    SunroofPercentOpen = 100002
    ChargeSchedules = 100003
    PreconditionSchedules = 100004
    SpeedLimitPinSet = 100005
    ValetPinNeeded = 100006
    OffPeakChargingEnabled = 100007
    OffPeakChargingTimes = 100008
    OffPeakHoursEndTime = 100009
    PreconditioningTimes = 100010
    LowPowerMode = 100011
    KeepAccessoryPowerMode = 100012
    SoftwareUpdateStatus = 100013
    PreconditioningMax = 100014
    SeatHeaterRearLeftBack = 100015
    SeatHeaterRearRightBack = 100016
    SeatHeaterThirdRowLeft = 100017
    SeatHeaterThirdRowRight = 100018
    ChargeEnergyAdded = 100019
    ChargeMilesAddedRated = 100020
    ChargerActualCurrent = 100021
    ChargerPilotCurrent = 100022
    DrivePower = 100023
    ScheduledChargingStartTimeMinutes = 100024
    ScheduledDepartureTimeMinutes = 100025
    SteeringWheelHeater = 100026
    IsUserPresent = 100027
    LastDriveNote = 100028
    PreconditioningWeekdaysOnly = 100029
    MaxRangeChargeCounter = 100030


# Value kinds: scalar oneof names, structured kinds, or an enum oneof name ending in `_value`.
STRING, INT, LONG, FLOAT, DOUBLE, BOOL = "string", "int", "long", "float", "double", "bool"
LOCATION, DOORS, TIME, JSON = "location", "doors", "time", "json"

_SCALAR_ONEOF = {
    STRING: "string_value",
    INT: "int_value",
    LONG: "long_value",
    FLOAT: "float_value",
    DOUBLE: "double_value",
    BOOL: "boolean_value",
}

_E = "_value"  # enum kinds are the Value oneof name, e.g. "detailed_charge_state_value"

# The per-field table: every signal the simulator emits must appear here.
SIGNALS: dict[str, str] = {
    # charge
    "BatteryLevel": DOUBLE,
    "Soc": DOUBLE,
    "RatedRange": DOUBLE,
    "EstBatteryRange": DOUBLE,
    "IdealBatteryRange": DOUBLE,
    "EnergyRemaining": DOUBLE,
    "LifetimeEnergyUsed": DOUBLE,
    "ChargeLimitSoc": INT,
    "DetailedChargeState": "detailed_charge_state" + _E,
    "ChargeAmps": DOUBLE,
    "ChargeCurrentRequest": INT,
    "ChargeCurrentRequestMax": INT,
    "ChargeEnableRequest": BOOL,
    "ChargerPhases": INT,
    "ChargerVoltage": DOUBLE,
    "ACChargingPower": DOUBLE,
    "DCChargingPower": DOUBLE,
    "ACChargingEnergyIn": DOUBLE,
    "DCChargingEnergyIn": DOUBLE,
    "ChargeRateMilePerHour": DOUBLE,
    "TimeToFullCharge": DOUBLE,
    "EstimatedHoursToChargeTermination": DOUBLE,
    "FastChargerPresent": BOOL,
    "FastChargerType": "fast_charger" + _E,
    "ChargingCableType": "cable_type" + _E,
    "ChargePortDoorOpen": BOOL,
    "ChargePortLatch": "charge_port_latch" + _E,
    "ChargePortColdWeatherMode": BOOL,
    "BatteryHeaterOn": BOOL,
    "NotEnoughPowerToHeat": BOOL,
    "ModuleTempMin": DOUBLE,
    "ModuleTempMax": DOUBLE,
    "ScheduledChargingMode": "scheduled_charging_mode" + _E,
    "ScheduledChargingPending": BOOL,
    "ScheduledChargingStartTime": LONG,
    "ScheduledDepartureTime": LONG,
    "PreconditioningEnabled": BOOL,
    "SuperchargerSessionTripPlanner": BOOL,
    # climate
    "InsideTemp": DOUBLE,
    "OutsideTemp": DOUBLE,
    "HvacLeftTemperatureRequest": DOUBLE,
    "HvacRightTemperatureRequest": DOUBLE,
    "HvacPower": "hvac_power" + _E,
    "HvacAutoMode": "hvac_auto_mode" + _E,
    "HvacACEnabled": BOOL,
    "HvacFanStatus": INT,
    "HvacFanSpeed": INT,
    "SeatHeaterLeft": INT,
    "SeatHeaterRight": INT,
    "SeatHeaterRearLeft": INT,
    "SeatHeaterRearRight": INT,
    "SeatHeaterRearCenter": INT,
    "AutoSeatClimateLeft": BOOL,
    "AutoSeatClimateRight": BOOL,
    "ClimateSeatCoolingFrontLeft": INT,
    "ClimateSeatCoolingFrontRight": INT,
    "HvacSteeringWheelHeatAuto": BOOL,
    "HvacSteeringWheelHeatLevel": INT,
    "ClimateKeeperMode": "climate_keeper_mode" + _E,
    "CabinOverheatProtectionMode": "cabin_overheat_protection_mode" + _E,
    "CabinOverheatProtectionTemperatureLimit": "cabin_overheat_protection_temperature_limit" + _E,
    "DefrostMode": "defrost_mode" + _E,
    "RearDefrostEnabled": BOOL,
    "WiperHeatEnabled": BOOL,
    # drive
    "Location": LOCATION,
    "GpsHeading": DOUBLE,
    "VehicleSpeed": DOUBLE,
    "Gear": "shift_state" + _E,
    "Odometer": DOUBLE,
    "DestinationName": STRING,
    "DestinationLocation": LOCATION,
    "MilesToArrival": DOUBLE,
    "MinutesToArrival": DOUBLE,
    "RouteTrafficMinutesDelay": DOUBLE,
    "ExpectedEnergyPercentAtTripArrival": DOUBLE,
    # vehicle state
    "Locked": BOOL,
    "DoorState": DOORS,
    "FdWindow": "window_state" + _E,
    "FpWindow": "window_state" + _E,
    "RdWindow": "window_state" + _E,
    "RpWindow": "window_state" + _E,
    "VehicleName": STRING,
    "SentryMode": "sentry_mode_state" + _E,
    "SpeedLimitMode": BOOL,
    "CurrentLimitMph": DOUBLE,
    "Version": STRING,
    "TpmsPressureFl": DOUBLE,
    "TpmsPressureFr": DOUBLE,
    "TpmsPressureRl": DOUBLE,
    "TpmsPressureRr": DOUBLE,
    "TpmsLastSeenPressureTimeFl": LONG,
    "TpmsLastSeenPressureTimeFr": LONG,
    "TpmsLastSeenPressureTimeRl": LONG,
    "TpmsLastSeenPressureTimeRr": LONG,
    "ValetModeEnabled": BOOL,
    "GuestModeEnabled": BOOL,
    "PinToDriveEnabled": BOOL,
    "RemoteStartEnabled": BOOL,
    "RemoteStartActive": BOOL,
    "HomelinkNearby": BOOL,
    "HomelinkDeviceCount": INT,
    "CenterDisplay": "display_state" + _E,
    "ServiceMode": BOOL,
    "SoftwareUpdateVersion": STRING,
    "SoftwareUpdateScheduledStartTime": LONG,
    "SoftwareUpdateDownloadPercentComplete": INT,
    "SoftwareUpdateInstallationPercentComplete": INT,
    "SoftwareUpdateExpectedDurationMinutes": INT,
    "MediaPlaybackStatus": "media_status" + _E,
    "MediaPlaybackSource": STRING,
    "MediaAudioVolume": DOUBLE,
    "MediaAudioVolumeIncrement": DOUBLE,
    "MediaAudioVolumeMax": DOUBLE,
    "MediaNowPlayingTitle": STRING,
    "MediaNowPlayingArtist": STRING,
    "MediaNowPlayingAlbum": STRING,
    "MediaNowPlayingStation": STRING,
    "MediaNowPlayingDuration": INT,
    "MediaNowPlayingElapsed": INT,
    "TonneauPosition": "tonneau_position" + _E,
    "TonneauOpenPercent": DOUBLE,
    "LightsHazardsActive": BOOL,
    # settings (gui_settings)
    "SettingDistanceUnit": "distance_unit" + _E,
    "SettingTemperatureUnit": "temperature_unit" + _E,
    "SettingTirePressureUnit": "pressure_unit" + _E,
    "SettingChargeUnit": "charge_unit_preference" + _E,
    "Setting24HourTime": BOOL,
    # Flotta extensions
    "BioweaponMode": BOOL,
    "SunroofState": STRING,
    "SunroofPercentOpen": INT,
    "ChargeSchedules": JSON,
    "PreconditionSchedules": JSON,
    "SpeedLimitPinSet": BOOL,
    "ValetPinNeeded": BOOL,
    "OffPeakChargingEnabled": BOOL,
    "OffPeakChargingTimes": STRING,
    "OffPeakHoursEndTime": INT,
    "PreconditioningTimes": STRING,
    "PreconditioningWeekdaysOnly": BOOL,
    "LowPowerMode": BOOL,
    "KeepAccessoryPowerMode": BOOL,
    "SoftwareUpdateStatus": STRING,
    "PreconditioningMax": BOOL,
    "SeatHeaterRearLeftBack": INT,
    "SeatHeaterRearRightBack": INT,
    "SeatHeaterThirdRowLeft": INT,
    "SeatHeaterThirdRowRight": INT,
    "ChargeEnergyAdded": DOUBLE,
    "ChargeMilesAddedRated": DOUBLE,
    "ChargerActualCurrent": INT,
    "ChargerPilotCurrent": INT,
    "DrivePower": INT,
    "ScheduledChargingStartTimeMinutes": INT,
    "ScheduledDepartureTimeMinutes": INT,
    "SteeringWheelHeater": BOOL,
    "IsUserPresent": BOOL,
    "LastDriveNote": STRING,
    "MaxRangeChargeCounter": INT,
}

_DOOR_KEYS = (
    "DriverFront",
    "DriverRear",
    "PassengerFront",
    "PassengerRear",
    "TrunkFront",
    "TrunkRear",
)


def field_number(name: str) -> int:
    """Wire number of a Tesla `Field` or a Flotta extension, by name."""
    if name in FlottaField.__members__:
        return int(FlottaField[name])
    return int(vd.Field.Value(name))


def field_name(number: int) -> str:
    """Name of a field number; unknown numbers become `Field<number>` so they pass through."""
    if number >= EXTENSION_BASE:
        try:
            return FlottaField(number).name
        except ValueError:
            return f"Field{number}"
    try:
        return str(vd.Field.Name(cast(vd.Field, number)))
    except ValueError:
        return f"Field{number}"


def _kind_of(field: str | int, value: Any) -> str:
    name = field if isinstance(field, str) else field_name(field)
    kind = SIGNALS.get(name)
    if kind is not None:
        return kind
    # Fields outside the table are encoded by their Python type.
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return LONG
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        return STRING
    return JSON


def encode_value(field: str | int, value: Any) -> vd.Value:
    """Encode a Python value as the telemetry `Value` the field table prescribes."""
    if value is None:
        return vd.Value(invalid=True)
    kind = _kind_of(field, value)
    if kind in _SCALAR_ONEOF:
        converted: Any = {
            STRING: str,
            INT: int,
            LONG: int,
            FLOAT: float,
            DOUBLE: float,
            BOOL: bool,
        }[kind](value)
        return vd.Value(**{_SCALAR_ONEOF[kind]: converted})
    if kind == LOCATION:
        loc = vd.LocationValue(latitude=value["latitude"], longitude=value["longitude"])
        return vd.Value(location_value=loc)
    if kind == DOORS:
        return vd.Value(door_value=vd.Doors(**{k: bool(value.get(k, False)) for k in _DOOR_KEYS}))
    if kind == TIME:
        t = vd.Time(hour=value["hour"], minute=value["minute"], second=value.get("second", 0))
        return vd.Value(time_value=t)
    if kind == JSON:
        return vd.Value(string_value=json.dumps(value, separators=(",", ":"), sort_keys=True))
    enum_type = vd.Value.DESCRIPTOR.fields_by_name[kind].enum_type
    number = enum_type.values_by_name[value].number
    return vd.Value(**{kind: number})


def decode_value(value: vd.Value, field: str | int | None = None) -> Any:
    """Decode a telemetry `Value` to Python; with `field`, JSON extension strings are parsed."""
    which = value.WhichOneof("value")
    if which is None or which == "invalid":
        return None
    if which == "location_value":
        loc = value.location_value
        return {"latitude": loc.latitude, "longitude": loc.longitude}
    if which == "door_value":
        return {k: bool(getattr(value.door_value, k)) for k in _DOOR_KEYS}
    if which == "time_value":
        t = value.time_value
        return {"hour": t.hour, "minute": t.minute, "second": t.second}
    if which == "tire_location_value":
        tl = value.tire_location_value
        return {f.name: bool(getattr(tl, f.name)) for f in tl.DESCRIPTOR.fields}
    raw = getattr(value, which)
    field_desc = vd.Value.DESCRIPTOR.fields_by_name[which]
    if field_desc.enum_type is not None:
        enum_value = field_desc.enum_type.values_by_number.get(raw)
        return enum_value.name if enum_value is not None else int(raw)
    if which == "string_value" and field is not None and _kind_of(field, raw) == JSON:
        return json.loads(raw) if raw else None
    return raw


def payload_from_dict(vin: str, created_at: datetime, values: dict[str, Any]) -> vd.Payload:
    """Build a telemetry `Payload` from `{field name: python value}`."""
    payload = vd.Payload(vin=vin)
    payload.created_at.FromDatetime(created_at)
    for name, value in values.items():
        datum = payload.data.add()
        datum.key = cast(vd.Field, field_number(name))
        datum.value.CopyFrom(encode_value(name, value))
    return payload


def dict_from_payload(payload: vd.Payload) -> dict[str, Any]:
    """Decode a telemetry `Payload` to `{field name: python value}`."""
    out: dict[str, Any] = {}
    for datum in payload.data:
        name = field_name(int(datum.key))
        value = decode_value(datum.value, name)
        # Enum names repeat across every car's mirror: share one string object (memory).
        out[name] = sys.intern(value) if isinstance(value, str) and len(value) <= 64 else value
    return out
