"""Rendered vehicle_data: Tesla's shapes and units from a simulated car's signals."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import common_pb2, vcsec_pb2
from tesla_protocol.telemetry import vehicle_data_pb2 as vd

from flotta.sim.vehicle_models import make_vin
from flotta.sim.vehicle_state import SimVehicle
from flotta.vehicles.render import render_vehicle_data
from flotta.vehicles.signals import dict_from_payload, payload_from_dict

T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)
NOW_MS = int(T0.timestamp() * 1000)

# Key lists from fleet-api.md §5.2.
CHARGE_KEYS = [
    "battery_heater_on",
    "battery_level",
    "usable_battery_level",
    "battery_range",
    "est_battery_range",
    "ideal_battery_range",
    "charge_amps",
    "charge_current_request",
    "charge_current_request_max",
    "charger_actual_current",
    "charger_pilot_current",
    "charge_enable_request",
    "charge_energy_added",
    "charge_limit_soc",
    "charge_limit_soc_max",
    "charge_limit_soc_min",
    "charge_limit_soc_std",
    "charge_miles_added_ideal",
    "charge_miles_added_rated",
    "charge_port_cold_weather_mode",
    "charge_port_color",
    "charge_port_door_open",
    "charge_port_latch",
    "charge_rate",
    "charger_phases",
    "charger_power",
    "charger_voltage",
    "charging_state",
    "conn_charge_cable",
    "fast_charger_brand",
    "fast_charger_type",
    "fast_charger_present",
    "managed_charging_active",
    "managed_charging_start_time",
    "managed_charging_user_canceled",
    "max_range_charge_counter",
    "minutes_to_full_charge",
    "time_to_full_charge",
    "not_enough_power_to_heat",
    "off_peak_charging_enabled",
    "off_peak_charging_times",
    "off_peak_hours_end_time",
    "preconditioning_enabled",
    "preconditioning_times",
    "scheduled_charging_mode",
    "scheduled_charging_pending",
    "scheduled_charging_start_time",
    "scheduled_charging_start_time_app",
    "scheduled_departure_time",
    "scheduled_departure_time_minutes",
    "supercharger_session_trip_planner",
    "trip_charging",
    "user_charge_enable_request",
    "module_temp_min",
    "module_temp_max",
    "energy_remaining",
    "lifetime_energy_used",
    "charging_schedule_override",
    "timestamp",
]
CLIMATE_KEYS = [
    "allow_cabin_overheat_protection",
    "auto_seat_climate_left",
    "auto_seat_climate_right",
    "auto_steering_wheel_heat",
    "battery_heater",
    "battery_heater_no_power",
    "bioweapon_mode",
    "cabin_overheat_protection",
    "cabin_overheat_protection_actively_cooling",
    "climate_keeper_mode",
    "cop_activation_temperature",
    "defrost_mode",
    "driver_temp_setting",
    "passenger_temp_setting",
    "fan_status",
    "hvac_auto_request",
    "inside_temp",
    "outside_temp",
    "is_auto_conditioning_on",
    "is_climate_on",
    "is_front_defroster_on",
    "is_rear_defroster_on",
    "is_preconditioning",
    "left_temp_direction",
    "right_temp_direction",
    "max_avail_temp",
    "min_avail_temp",
    "remote_heater_control_enabled",
    "seat_heater_left",
    "seat_heater_right",
    "seat_heater_rear_left",
    "seat_heater_rear_center",
    "seat_heater_rear_right",
    "side_mirror_heaters",
    "steering_wheel_heat_level",
    "steering_wheel_heater",
    "supports_fan_only_cabin_overheat_protection",
    "wiper_blade_heater",
    "timestamp",
]
STATE_KEYS = [
    "api_version",
    "autopark_state_v3",
    "autopark_style",
    "last_autopark_error",
    "calendar_supported",
    "car_version",
    "center_display_state",
    "dashcam_clip_save_available",
    "dashcam_state",
    "df",
    "dr",
    "pf",
    "pr",
    "ft",
    "rt",
    "fd_window",
    "fp_window",
    "rd_window",
    "rp_window",
    "feature_bitmask",
    "homelink_device_count",
    "homelink_nearby",
    "is_user_present",
    "locked",
    "media_info",
    "media_state",
    "notifications_supported",
    "odometer",
    "parsed_calendar_supported",
    "remote_start",
    "remote_start_enabled",
    "remote_start_supported",
    "santa_mode",
    "sentry_mode",
    "sentry_mode_available",
    "service_mode",
    "service_mode_plus",
    "smart_summon_available",
    "summon_standby_mode_enabled",
    "software_update",
    "speed_limit_mode",
    "sun_roof_state",
    "vehicle_state_sun_roof_percent_open",
    "tpms_pressure_fl",
    "tpms_pressure_fr",
    "tpms_pressure_rl",
    "tpms_pressure_rr",
    "tpms_last_seen_pressure_time_fl",
    "tpms_hard_warning_fl",
    "tpms_soft_warning_fl",
    "tpms_rcp_front_value",
    "tpms_rcp_rear_value",
    "valet_mode",
    "valet_pin_needed",
    "vehicle_name",
    "vehicle_self_test_progress",
    "vehicle_self_test_requested",
    "webcam_available",
    "timestamp",
]
CONFIG_KEYS = [
    "aux_park_lamps",
    "badge_version",
    "can_accept_navigation_requests",
    "can_actuate_trunks",
    "car_special_type",
    "car_type",
    "charge_port_type",
    "cop_user_set_temp_supported",
    "dashcam_clip_save_supported",
    "default_charge_to_max",
    "driver_assist",
    "ece_restrictions",
    "efficiency_package",
    "eu_vehicle",
    "exterior_color",
    "exterior_trim",
    "exterior_trim_override",
    "has_air_suspension",
    "has_ludicrous_mode",
    "has_seat_cooling",
    "headlamp_type",
    "interior_trim_type",
    "key_version",
    "motorized_charge_port",
    "paint_color_override",
    "performance_package",
    "plg",
    "pws",
    "rear_drive_unit",
    "rear_seat_heaters",
    "rear_seat_type",
    "rhd",
    "roof_color",
    "seat_type",
    "spoiler_type",
    "sun_roof_installed",
    "supports_qr_pairing",
    "third_row_seats",
    "trim_badging",
    "use_range_badging",
    "utc_offset",
    "webcam_selfie_supported",
    "webcam_supported",
    "wheel_type",
    "timestamp",
]
GUI_KEYS = [
    "gui_24_hour_time",
    "gui_charge_rate_units",
    "gui_distance_units",
    "gui_range_display",
    "gui_temperature_units",
    "gui_tirepressure_units",
    "show_range_units",
    "timestamp",
]
LOCATION_KEYS = [
    "gps_as_of",
    "heading",
    "latitude",
    "longitude",
    "native_latitude",
    "native_longitude",
    "native_location_supported",
    "native_type",
]


def mirror_of(v: SimVehicle) -> dict[str, Any]:
    """What the server holds: the car's signals after a trip over the wire."""
    wire = payload_from_dict(v.vin, v.now, v.snapshot()).SerializeToString()
    return dict_from_payload(vd.Payload.FromString(wire))


def car(model: str = "model3_lr") -> SimVehicle:
    return SimVehicle(make_vin(model, 9), model, random.Random(9), T0)


def render(v: SimVehicle, endpoints: set[str], location: bool = False) -> dict[str, Any]:
    return render_vehicle_data(mirror_of(v), v.config(), endpoints, location, NOW_MS)


def test_default_endpoints_give_the_classic_set_with_reference_keys() -> None:
    data = render(car(), set())
    assert set(data) == {
        "charge_state",
        "climate_state",
        "drive_state",
        "gui_settings",
        "vehicle_config",
        "vehicle_state",
    }
    for section, keys in (
        ("charge_state", CHARGE_KEYS),
        ("climate_state", CLIMATE_KEYS),
        ("vehicle_state", STATE_KEYS),
        ("vehicle_config", CONFIG_KEYS),
        ("gui_settings", GUI_KEYS),
    ):
        missing = set(keys) - set(data[section])
        assert not missing, (section, missing)
        assert data[section]["timestamp"] == NOW_MS
    assert not set(LOCATION_KEYS) & set(data["drive_state"])


def test_only_requested_sections_are_rendered() -> None:
    data = render(car(), {"charge_state", "closures_state"})
    assert set(data) == {"charge_state", "closures_state"}


def test_location_appears_in_drive_state_only_when_granted() -> None:
    v = car()
    assert not set(LOCATION_KEYS) & set(render(v, {"location_data"})["drive_state"])
    drive = render(v, {"location_data"}, location=True)["drive_state"]
    assert set(LOCATION_KEYS) <= set(drive)
    assert abs(drive["latitude"] - v.latitude) < 1e-5
    assert drive["native_type"] == "wgs"


def test_units_and_types_follow_tesla() -> None:
    v = car()
    v.soc = 0.5
    v.plug_in("ac")
    v.advance(T0 + timedelta(minutes=30))
    data = render(v, {"charge_state", "climate_state", "drive_state", "vehicle_state"})
    charge = data["charge_state"]
    assert isinstance(charge["battery_level"], int)
    assert charge["charging_state"] == "Charging"
    assert charge["conn_charge_cable"] == "SAE"
    assert charge["charger_power"] in (11, 12)  # 48 A x 240 V = 11.5 kW
    assert 0.5 * 341 < charge["battery_range"] < 0.6 * 341  # miles, not km
    assert charge["charge_energy_added"] > 4.0
    assert isinstance(data["climate_state"]["inside_temp"], float)
    state = data["vehicle_state"]
    assert 2.5 < state["tpms_pressure_fl"] < 3.2  # bar
    assert state["odometer"] == round(v.odometer_mi, 2)
    assert data["drive_state"]["shift_state"] == "P"


def test_lock_command_shows_in_vehicle_state() -> None:
    v = car()
    v.execute_vcsec(vcsec_pb2.UnsignedMessage(RKEAction=vcsec_pb2.RKE_ACTION_UNLOCK))
    assert render(v, {"vehicle_state"})["vehicle_state"]["locked"] is False
    v.execute_vcsec(vcsec_pb2.UnsignedMessage(RKEAction=vcsec_pb2.RKE_ACTION_LOCK))
    assert render(v, {"vehicle_state"})["vehicle_state"]["locked"] is True


def test_climate_commands_show_in_climate_state() -> None:
    v = car()
    keeper = cs.HvacClimateKeeperAction(
        ClimateKeeperAction=cs.HvacClimateKeeperAction.ClimateKeeperAction_Dog
    )
    v.execute(cs.Action(vehicleAction=cs.VehicleAction(hvacClimateKeeperAction=keeper)))
    bio = cs.HvacBioweaponModeAction(on=True)
    v.execute(cs.Action(vehicleAction=cs.VehicleAction(hvacBioweaponModeAction=bio)))
    climate = render(v, {"climate_state"})["climate_state"]
    assert climate["climate_keeper_mode"] == "dog"
    assert climate["bioweapon_mode"] is True
    assert climate["is_climate_on"] is True


def test_schedules_render_in_schedule_data() -> None:
    v = car()
    sched = common_pb2.ChargeSchedule(id=5, days_of_week=127, start_enabled=True, start_time=60)
    v.execute(cs.Action(vehicleAction=cs.VehicleAction(addChargeScheduleAction=sched)))
    data = render(v, {"charge_schedule_data", "preconditioning_schedule_data"})
    [item] = data["charge_schedule_data"]["charge_schedules"]
    assert (item["id"], item["start_time"], item["days_of_week"]) == (5, 60, 127)
    assert data["preconditioning_schedule_data"]["precondition_schedules"] == []


def test_cybertruck_config_and_tonneau() -> None:
    truck = car("cybertruck")
    data = render(truck, {"vehicle_config", "closures_state"})
    assert data["vehicle_config"]["car_type"] == "cybertruck"
    assert data["closures_state"]["tonneau_state"] == "closed"
