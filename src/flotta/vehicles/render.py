"""Render Tesla's `vehicle_data` sub-objects (fleet-api.md §5.2) from a signal mirror.

The mirror is `{signal name: value}` as `signals.dict_from_payload` returns it, merged over
time; `config` holds per-vehicle constants. Units follow Tesla: miles, °C, bar, mph, kW and
ms timestamps, whatever the car's GUI settings say.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flotta.vehicles.render_vehicle_state import (
    INVALID,
    MirrorReader,
    charge_schedule_data,
    closures,
    preconditioning_schedule_data,
    vehicle_state,
)

CLASSIC_ENDPOINTS = frozenset(
    {"charge_state", "climate_state", "drive_state", "gui_settings", "vehicle_config"}
    | {"vehicle_state"}
)
_KEEPER = {
    "ClimateKeeperModeStateOn": "keep",
    "ClimateKeeperModeStateDog": "dog",
    "ClimateKeeperModeStateParty": "camp",
}
_DEFROST = {"DefrostModeStateNormal": 1, "DefrostModeStateMax": 2, "DefrostModeStateAutoDefog": 1}


def _charge_power(r: MirrorReader) -> float:
    return r.num("ACChargingPower") + r.num("DCChargingPower")


def _charger_fields(r: MirrorReader, charging: bool, fast: bool) -> dict[str, Any]:
    return {
        "charger_actual_current": r.whole("ChargerActualCurrent"),
        "charger_pilot_current": r.whole("ChargerPilotCurrent"),
        "charge_enable_request": r.flag("ChargeEnableRequest"),
        "user_charge_enable_request": None,
        "charge_port_latch": r.enum("ChargePortLatch", "ChargePortLatch"),
        "charge_rate": round(r.num("ChargeRateMilePerHour"), 1),
        "charger_phases": (r.whole("ChargerPhases") or None) if charging and not fast else None,
        "charger_power": round(_charge_power(r)),
        "charger_voltage": r.whole("ChargerVoltage"),
    }


def charge_state(r: MirrorReader, config: dict[str, Any]) -> dict[str, Any]:
    """`charge_state`: battery, charger and session values."""
    charging_state = r.enum("DetailedChargeState", "DetailedChargeState", "Disconnected")
    charging = charging_state in ("Charging", "Starting")
    fast = r.flag("FastChargerPresent")
    hours = r.num("TimeToFullCharge")
    level = r.whole("BatteryLevel")
    out: dict[str, Any] = {
        "battery_heater_on": r.flag("BatteryHeaterOn"),
        "battery_level": level,
        "usable_battery_level": level,
        "battery_range": round(r.num("RatedRange"), 2),
        "est_battery_range": round(r.num("EstBatteryRange"), 2),
        "ideal_battery_range": round(r.num("IdealBatteryRange"), 2),
        "charge_amps": r.whole("ChargeCurrentRequest"),
        "charge_current_request": r.whole("ChargeCurrentRequest"),
        "charge_current_request_max": r.whole(
            "ChargeCurrentRequestMax", config.get("charge_current_request_max", 48)
        ),
        "charge_energy_added": round(r.num("ChargeEnergyAdded"), 2),
        "charge_limit_soc": r.whole("ChargeLimitSoc", 80),
        "charge_limit_soc_max": 100,
        "charge_limit_soc_min": 50,
        "charge_limit_soc_std": 80,
        "charge_miles_added_ideal": round(r.num("ChargeMilesAddedRated"), 1),
        "charge_miles_added_rated": round(r.num("ChargeMilesAddedRated"), 1),
        "charge_port_cold_weather_mode": r.flag("ChargePortColdWeatherMode"),
        "charge_port_color": INVALID,
        "charge_port_door_open": r.flag("ChargePortDoorOpen"),
        "charging_state": charging_state,
        "conn_charge_cable": r.enum("ChargingCableType", "CableType"),
        "fast_charger_brand": "Tesla" if fast else INVALID,
        "fast_charger_type": r.enum("FastChargerType", "FastCharger") if fast else INVALID,
        "fast_charger_present": fast,
        "minutes_to_full_charge": round(hours * 60),
        "time_to_full_charge": round(hours, 2),
        "not_enough_power_to_heat": r.get("NotEnoughPowerToHeat"),
        "trip_charging": fast,
        "module_temp_min": r.get("ModuleTempMin"),
        "module_temp_max": r.get("ModuleTempMax"),
        "energy_remaining": r.get("EnergyRemaining"),
        "lifetime_energy_used": r.get("LifetimeEnergyUsed"),
        "max_range_charge_counter": r.whole("MaxRangeChargeCounter"),
    }
    out.update(_charger_fields(r, charging, fast))
    out.update(config.get("charge_state", {}))
    out.update(_charge_schedule_fields(r))
    return out


def _charge_schedule_fields(r: MirrorReader) -> dict[str, Any]:
    mode = r.enum("ScheduledChargingMode", "ScheduledChargingMode", "Off")
    return {
        "managed_charging_active": False,
        "managed_charging_start_time": None,
        "managed_charging_user_canceled": False,
        "off_peak_charging_enabled": r.flag("OffPeakChargingEnabled"),
        "off_peak_charging_times": r.get("OffPeakChargingTimes", "all_week"),
        "off_peak_hours_end_time": r.whole("OffPeakHoursEndTime", 360),
        "preconditioning_enabled": r.flag("PreconditioningEnabled"),
        "preconditioning_times": r.get("PreconditioningTimes", "all_week"),
        "scheduled_charging_mode": mode,
        "scheduled_charging_pending": r.flag("ScheduledChargingPending"),
        "scheduled_charging_start_time": r.get("ScheduledChargingStartTime"),
        "scheduled_charging_start_time_app": r.whole("ScheduledChargingStartTimeMinutes"),
        "scheduled_departure_time": r.get("ScheduledDepartureTime"),
        "scheduled_departure_time_minutes": r.whole("ScheduledDepartureTimeMinutes"),
        "supercharger_session_trip_planner": r.flag("SuperchargerSessionTripPlanner"),
        "charging_schedule_override": False,
    }


def _cop(r: MirrorReader) -> tuple[str, str]:
    mode = r.enum("CabinOverheatProtectionMode", "CabinOverheatProtectionModeState", "Off")
    limit = r.enum(
        "CabinOverheatProtectionTemperatureLimit", "ClimateOverheatProtectionTempLimit", "High"
    )
    return mode, limit


def climate_state(r: MirrorReader, config: dict[str, Any]) -> dict[str, Any]:
    """`climate_state`: temperatures, HVAC, seats, steering wheel and keeper modes."""
    power = r.get("HvacPower", "HvacPowerStateOff")
    on = power in ("HvacPowerStateOn", "HvacPowerStatePrecondition")
    inside, left, right = (
        r.get("InsideTemp"),
        r.num("HvacLeftTemperatureRequest", 21.0),
        r.num("HvacRightTemperatureRequest", 21.0),
    )
    cop_mode, cop_limit = _cop(r)
    defrost = _DEFROST.get(str(r.get("DefrostMode")), 0)
    out: dict[str, Any] = {
        "allow_cabin_overheat_protection": cop_mode != "Off",
        "auto_seat_climate_left": r.flag("AutoSeatClimateLeft"),
        "auto_seat_climate_right": r.flag("AutoSeatClimateRight"),
        "auto_steering_wheel_heat": r.flag("HvacSteeringWheelHeatAuto"),
        "battery_heater": r.flag("BatteryHeaterOn"),
        "battery_heater_no_power": None,
        "bioweapon_mode": r.flag("BioweaponMode"),
        "cabin_overheat_protection": cop_mode,
        "cabin_overheat_protection_actively_cooling": r.flag("HvacACEnabled") and not on,
        "climate_keeper_mode": _KEEPER.get(str(r.get("ClimateKeeperMode")), "off"),
        "cop_activation_temperature": cop_limit,
        "defrost_mode": defrost,
        "driver_temp_setting": left,
        "passenger_temp_setting": right,
        "fan_status": r.whole("HvacFanStatus"),
        "hvac_auto_request": r.enum("HvacAutoMode", "HvacAutoModeState", "On"),
        "inside_temp": inside,
        "outside_temp": r.get("OutsideTemp"),
        "is_auto_conditioning_on": on,
        "is_climate_on": on,
        "is_front_defroster_on": defrost > 0,
        "is_rear_defroster_on": r.flag("RearDefrostEnabled"),
        "is_preconditioning": power == "HvacPowerStatePrecondition" or r.flag("PreconditioningMax"),
        "left_temp_direction": _direction(on, inside, left),
        "right_temp_direction": _direction(on, inside, right),
        "max_avail_temp": 28.0,
        "min_avail_temp": 15.0,
        "remote_heater_control_enabled": on,
        "side_mirror_heaters": False,
        "steering_wheel_heat_level": r.whole("HvacSteeringWheelHeatLevel"),
        "steering_wheel_heater": r.flag("SteeringWheelHeater"),
        "supports_fan_only_cabin_overheat_protection": True,
        "wiper_blade_heater": r.flag("WiperHeatEnabled"),
        "seat_fan_front_left": r.whole("ClimateSeatCoolingFrontLeft"),
        "seat_fan_front_right": r.whole("ClimateSeatCoolingFrontRight"),
    }
    out.update(_seat_heaters(r, config))
    out.update(config.get("climate_state", {}))
    return out


def _direction(on: bool, inside: Any, setpoint: float) -> int:
    # Tesla reports the vent mix as a signed number: positive heats, negative cools.
    if not on or inside is None:
        return 0
    return round((setpoint - float(inside)) * 30)


def _seat_heaters(r: MirrorReader, config: dict[str, Any]) -> dict[str, Any]:
    seats = {
        "seat_heater_left": "SeatHeaterLeft",
        "seat_heater_right": "SeatHeaterRight",
        "seat_heater_rear_left": "SeatHeaterRearLeft",
        "seat_heater_rear_center": "SeatHeaterRearCenter",
        "seat_heater_rear_right": "SeatHeaterRearRight",
    }
    if config.get("vehicle_config", {}).get("third_row_seats", "None") != "None":
        seats["seat_heater_third_row_left"] = "SeatHeaterThirdRowLeft"
        seats["seat_heater_third_row_right"] = "SeatHeaterThirdRowRight"
    return {key: r.whole(signal) for key, signal in seats.items()}


def drive_state(r: MirrorReader, include_location: bool, now_ms: int) -> dict[str, Any]:
    """`drive_state`; location members only when location was requested and granted."""
    shift = r.enum("Gear", "ShiftState", "P")
    moving = shift in ("D", "R", "N")
    out: dict[str, Any] = {
        "power": r.whole("DrivePower"),
        "shift_state": shift if shift != INVALID else None,
        "speed": r.whole("VehicleSpeed") if moving else None,
    }
    if r.get("DestinationName"):
        dest = r.get("DestinationLocation", {})
        out.update(
            active_route_destination=r.get("DestinationName"),
            active_route_latitude=dest.get("latitude"),
            active_route_longitude=dest.get("longitude"),
            active_route_miles_to_arrival=r.get("MilesToArrival"),
            active_route_minutes_to_arrival=r.get("MinutesToArrival"),
            active_route_traffic_minutes_delay=r.num("RouteTrafficMinutesDelay"),
            active_route_energy_at_arrival=r.get("ExpectedEnergyPercentAtTripArrival"),
        )
    location = r.get("Location")
    if include_location and isinstance(location, dict):
        lat, lon = location.get("latitude"), location.get("longitude")
        out.update(
            gps_as_of=now_ms // 1000,
            heading=r.whole("GpsHeading") % 360,
            latitude=lat,
            longitude=lon,
            native_latitude=lat,
            native_longitude=lon,
            native_location_supported=1,
            native_type="wgs",
        )
    return out


def gui_settings(r: MirrorReader, config: dict[str, Any]) -> dict[str, Any]:
    """`gui_settings`: display preferences."""
    metric = r.get("SettingDistanceUnit") == "DistanceUnitKilometers"
    percent = r.get("SettingChargeUnit") == "ChargeUnitPercent"
    out: dict[str, Any] = {
        "gui_24_hour_time": r.flag("Setting24HourTime"),
        "gui_charge_rate_units": "kW" if percent else ("km/hr" if metric else "mi/hr"),
        "gui_distance_units": "km/hr" if metric else "mi/hr",
        "gui_range_display": "Rated",
        "gui_temperature_units": (
            "C" if r.get("SettingTemperatureUnit") == "TemperatureUnitCelsius" else "F"
        ),
        "gui_tirepressure_units": (
            "Bar" if r.get("SettingTirePressureUnit") == "PressureUnitBar" else "Psi"
        ),
        "show_range_units": False,
    }
    out.update(config.get("gui_settings", {}))
    return out


VEHICLE_CONFIG_DEFAULTS: dict[str, Any] = {
    "aux_park_lamps": "NaPremium",
    "badge_version": 0,
    "can_accept_navigation_requests": True,
    "can_actuate_trunks": True,
    "car_special_type": "base",
    "car_type": "model3",
    "charge_port_type": "US",
    "cop_user_set_temp_supported": True,
    "dashcam_clip_save_supported": True,
    "default_charge_to_max": False,
    "driver_assist": "TeslaAP4",
    "ece_restrictions": False,
    "efficiency_package": "Default",
    "eu_vehicle": False,
    "exterior_color": "PearlWhite",
    "exterior_trim": "Black",
    "exterior_trim_override": "",
    "has_air_suspension": False,
    "has_ludicrous_mode": False,
    "has_seat_cooling": False,
    "headlamp_type": "Premium",
    "interior_trim_type": "Black2",
    "key_version": 2,
    "motorized_charge_port": True,
    "paint_color_override": "0,0,0,0.1,0.04",
    "performance_package": "Base",
    "plg": True,
    "pws": True,
    "rear_drive_unit": "PM216MOSFET",
    "rear_seat_heaters": 1,
    "rear_seat_type": 0,
    "rhd": False,
    "roof_color": "RoofColorGlass",
    "seat_type": None,
    "spoiler_type": "None",
    "sun_roof_installed": None,
    "supports_qr_pairing": True,
    "third_row_seats": "None",
    "trim_badging": "74d",
    "use_range_badging": True,
    "utc_offset": 0,
    "webcam_selfie_supported": True,
    "webcam_supported": True,
    "wheel_type": "Pinwheel18CapKit",
}


def vehicle_config(r: MirrorReader, config: dict[str, Any]) -> dict[str, Any]:
    """`vehicle_config`: static build options from the per-vehicle config."""
    out = dict(VEHICLE_CONFIG_DEFAULTS)
    out.update(config.get("vehicle_config", {}))
    return out


def render_vehicle_data(
    mirror: dict[str, Any],
    config: dict[str, Any],
    endpoints: set[str],
    include_location: bool,
    now_ms: int,
) -> dict[str, dict[str, Any]]:
    """The requested `vehicle_data` sub-objects; no endpoints means Tesla's classic set."""
    wanted = set(endpoints) or set(CLASSIC_ENDPOINTS)
    if "vehicle_data_combo" in wanted:
        wanted |= CLASSIC_ENDPOINTS
    if "location_data" in wanted:
        wanted.add("drive_state")  # Tesla puts location members in drive_state
    r = MirrorReader(mirror)
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "charge_state": lambda: charge_state(r, config),
        "climate_state": lambda: climate_state(r, config),
        "drive_state": lambda: drive_state(r, include_location, now_ms),
        "gui_settings": lambda: gui_settings(r, config),
        "vehicle_config": lambda: vehicle_config(r, config),
        "vehicle_state": lambda: vehicle_state(r, config),
        "charge_schedule_data": lambda: charge_schedule_data(r),
        "preconditioning_schedule_data": lambda: preconditioning_schedule_data(r),
        "closures_state": lambda: closures(r),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, build in builders.items():
        if name in wanted:
            out[name] = {**build(), "timestamp": now_ms}
    return out
