"""Catalogue round trips, validation errors and ``days_of_week`` parsing."""

from __future__ import annotations

from typing import Any

import pytest
from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import common_pb2 as cm
from tesla_protocol.command import vcsec_pb2 as vc

from flotta.commands import (
    CMDS,
    CMDS_OR_CHARGING,
    COMMAND_NAMES,
    INFOTAINMENT_DOMAIN,
    VCSEC_DOMAIN,
    CommandError,
    command_spec,
    describe_message,
    parse_command,
    parse_days_of_week,
)
from flotta.commands.examples import EXAMPLE_BODIES as VALID_BODIES

DOCUMENTED_TABLE = {
    "actuate_trunk", "add_charge_schedule", "add_precondition_schedule", "adjust_volume",
    "auto_conditioning_start", "auto_conditioning_stop", "cancel_software_update",
    "charge_max_range", "charge_standard", "charge_port_door_open", "charge_port_door_close",
    "charge_start", "charge_stop", "clear_pin_to_drive_admin", "door_lock", "door_unlock",
    "erase_user_data", "flash_lights", "honk_horn", "guest_mode", "media_next_fav",
    "media_prev_fav", "media_next_track", "media_prev_track", "media_toggle_playback",
    "media_volume_down", "navigation_gps_request", "navigation_request",
    "navigation_sc_request", "navigation_waypoints_request",
    "remote_auto_seat_climate_request", "remote_auto_steering_wheel_heat_climate_request",
    "remote_boombox", "remote_seat_cooler_request", "remote_seat_heater_request",
    "remote_start_drive", "remote_steering_wheel_heat_level_request",
    "remote_steering_wheel_heater_request", "remove_charge_schedule",
    "remove_precondition_schedule", "reset_pin_to_drive_pin", "reset_valet_pin",
    "schedule_software_update", "set_bioweapon_mode", "set_cabin_overheat_protection",
    "set_charge_limit", "set_charging_amps", "set_climate_keeper_mode", "set_cop_temp",
    "set_pin_to_drive", "set_preconditioning_max", "set_scheduled_charging",
    "set_scheduled_departure", "set_sentry_mode", "set_temps", "set_valet_mode",
    "set_vehicle_name", "speed_limit_activate", "speed_limit_deactivate",
    "speed_limit_clear_pin", "speed_limit_clear_pin_admin", "speed_limit_set_limit",
    "sun_roof_control", "trigger_homelink", "upcoming_calendar_entries", "window_control",
    # "Other command names seen in sources" and tescmd
    "take_drivenote", "update_calendar_entries", "set_managed_charge_current_request",
    "set_managed_charger_location", "set_managed_scheduled_charging_time", "media_volume_up",
    "open_tonneau", "close_tonneau", "stop_tonneau", "set_low_power_mode",
    "keep_accessory_power_mode", "parental_controls_activate", "parental_controls_deactivate",
    "parental_controls_enable_setting", "parental_controls_set_speed_limit",
    "parental_controls_clear_pin_admin", "batch_remove_charge_schedules",
    "batch_remove_precondition_schedules", "auto_secure_vehicle",
}  # fmt: skip

CHARGING = {
    "add_charge_schedule", "add_precondition_schedule", "charge_max_range", "charge_standard",
    "charge_port_door_open", "charge_port_door_close", "charge_start", "charge_stop",
    "remove_charge_schedule", "remove_precondition_schedule", "set_charge_limit",
    "set_charging_amps", "set_scheduled_charging", "set_scheduled_departure",
}  # fmt: skip


def error_of(name: str, body: Any) -> CommandError:
    """Parse and return the CommandError that must be raised."""
    with pytest.raises(CommandError) as info:
        parse_command(name, body)
    return info.value


def test_catalogue_covers_every_documented_command() -> None:
    assert set(COMMAND_NAMES) >= DOCUMENTED_TABLE
    assert set(VALID_BODIES) == set(COMMAND_NAMES)
    assert list(COMMAND_NAMES) == sorted(COMMAND_NAMES)


def test_charging_commands_accept_either_scope() -> None:
    for name in CHARGING:
        assert command_spec(name).scopes == CMDS_OR_CHARGING
        assert command_spec(name).allows({"vehicle_charging_cmds"})
    assert command_spec("honk_horn").scopes == CMDS
    assert not command_spec("honk_horn").allows({"vehicle_charging_cmds"})


def test_only_the_managed_charger_location_stays_rest_only() -> None:
    rest = {n for n in COMMAND_NAMES if command_spec(n).domain == "rest_only"}
    assert rest == {"set_managed_charger_location"}


def test_navigation_request_shares_the_text_as_the_destination() -> None:
    parsed = parse_command(
        "navigation_request",
        {"type": "share_ext_content_raw", "value": {"android.intent.extra.TEXT": "1 Main St"}},
    )
    assert parsed.domain == "infotainment"
    assert parsed.message.vehicleAction.navigationRequest.destination == "1 Main St"


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_round_trip(name: str) -> None:
    spec = command_spec(name)
    parsed = parse_command(name, VALID_BODIES[name])
    assert (parsed.name, parsed.domain, parsed.scopes) == (name, spec.domain, spec.scopes)
    msg = parsed.message
    if spec.domain == "rest_only":
        assert msg is None
        return
    if spec.domain == "infotainment":
        assert isinstance(msg, cs.Action)
        assert msg.vehicleAction.WhichOneof("vehicle_action_msg") == spec.field
        domain = INFOTAINMENT_DOMAIN
    else:
        assert isinstance(msg, vc.UnsignedMessage)
        assert msg.WhichOneof("sub_message") == spec.field
        domain = VCSEC_DOMAIN
    assert describe_message(domain, msg.SerializeToString()) == spec.canonical


def test_every_parameter_is_documented_with_a_known_kind() -> None:
    for name in COMMAND_NAMES:
        spec = command_spec(name)
        assert spec.summary.endswith(".")
        names = [p.name for p in spec.params]
        assert len(names) == len(set(names)), name


def test_unknown_command() -> None:
    err = error_of("make_coffee", {})
    assert (err.status, err.key, err.field) == (400, "invalid_command", None)


def test_body_must_be_an_object() -> None:
    err = error_of("honk_horn", [1, 2])
    assert (err.status, err.key) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("set_charging_amps", {}, "charging_amps"),
        ("set_charging_amps", None, "charging_amps"),
        ("set_charging_amps", {"charging_amps": None}, "charging_amps"),
        ("set_charge_limit", {"limit": 80}, "percent"),
        ("remote_seat_heater_request", {"level": 1}, "seat_position"),
        (
            "add_charge_schedule",
            {"days_of_week": "All", "enabled": True, "lat": 1, "lon": 2, "start_enabled": True},
            "end_enabled",
        ),
        ("set_bioweapon_mode", {"on": True}, "manual_override"),
        ("speed_limit_activate", {}, "pin"),
        ("window_control", {"lat": 1, "lon": 2}, "command"),
        # Without its text, the share would cancel the car's route and answer success.
        ("navigation_request", {"value": {}}, "value.android.intent.extra.TEXT"),
        (
            "navigation_request",
            {"value": {"unrelated": "Paris"}},
            "value.android.intent.extra.TEXT",
        ),
        (
            "share",
            {"value": {"android.intent.extra.TEXT": None}},
            "value.android.intent.extra.TEXT",
        ),
    ],
)
def test_missing_param(name: str, body: Any, field: str) -> None:
    err = error_of(name, body)
    assert (err.status, err.key, err.field) == (400, "invalid_request", field)
    assert err.message == f"missing {field} param"


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("set_charge_limit", {"percent": 101},
         "invalid percent param: must be an integer between 50 and 100"),
        ("set_charge_limit", {"percent": 80.5},
         "invalid percent param: must be an integer between 50 and 100"),
        ("set_charge_limit", {"percent": True},
         "invalid percent param: must be an integer between 50 and 100"),
        ("set_charging_amps", {"charging_amps": "16"},
         "invalid charging_amps param: must be an integer between 0 and 80"),
        ("adjust_volume", {"volume": 12},
         "invalid volume param: must be a number between 0 and 11"),
        ("set_temps", {"driver_temp": "warm"},
         "invalid driver_temp param: must be a number between 15 and 28"),
        ("set_sentry_mode", {"on": "true"}, "invalid on param: must be a boolean"),
        ("set_sentry_mode", {"on": 1}, "invalid on param: must be a boolean"),
        ("actuate_trunk", {"which_trunk": "side"},
         "invalid which_trunk param: must be one of front, rear"),
        ("sun_roof_control", {"state": "Open"},
         "invalid state param: must be one of vent, close, open, stop"),
        ("speed_limit_activate", {"pin": 1234}, "invalid pin param: must be a string of 4 digits"),
        ("speed_limit_activate", {"pin": "12a4"},
         "invalid pin param: must be a string of 4 digits"),
        ("set_vehicle_name", {"vehicle_name": ""},
         "invalid vehicle_name param: must be a non-empty string"),
        ("take_drivenote", {"note": "x" * 81},
         "invalid note param: must be at most 80 characters"),
        ("navigation_request", {"value": "1 Infinite Loop"},
         "invalid value param: must be an object"),
        *[
            ("navigation_request", {"value": {"android.intent.extra.TEXT": text}},
             "invalid value param: android.intent.extra.TEXT must be a non-empty string: the "
             "address or link to navigate to")
            for text in ({"a": 1}, ["x", 2], 12345, "  ")
        ],
        ("share", {"value": {"android.intent.extra.TEXT": "x" * 501}},
         "invalid value param: android.intent.extra.TEXT must be at most 500 characters"),
        ("remote_seat_heater_request", {"heater": 9, "level": 1},
         "invalid seat_position param: must be an integer between 0 and 8"),
        ("set_scheduled_charging", {"enable": True, "time": 1440},
         "invalid time param: must be an integer between 0 and 1439"),
    ],
)  # fmt: skip
def test_invalid_field(name: str, body: dict[str, Any], message: str) -> None:
    err = error_of(name, body)
    assert (err.status, err.key, err.message) == (400, "invalid_field", message)
    assert err.field is not None and message.startswith(f"invalid {err.field} param")


def test_unknown_keys_and_nulls_are_ignored() -> None:
    parsed = parse_command("honk_horn", {"on": True, "extra": [1]})
    assert parsed.params == {}
    parsed = parse_command("window_control", {"command": "vent", "lat": None, "long": 4.5})
    assert parsed.params == {"command": "vent", "lon": 4.5}


def test_integral_floats_are_integers() -> None:
    assert parse_command("set_charging_amps", {"charging_amps": 16.0}).params == {
        "charging_amps": 16
    }


def test_numeric_strings_tolerated_where_clients_send_them() -> None:
    temps = parse_command("set_temps", {"driver_temp": " 21.5", "passenger_temp": "20"})
    assert temps.params == {"driver_temp": 21.5, "passenger_temp": 20.0}
    assert parse_command("set_charge_limit", {"percent": "90"}).params == {"percent": 90}
    assert error_of("set_charge_limit", {"percent": "nan"}).key == "invalid_field"
    assert error_of("set_temps", {"driver_temp": "1e400"}).key == "invalid_field"


def test_teslajsonpy_max_defrost_sends_integers() -> None:
    assert parse_command("set_preconditioning_max", {"on": 2}).params["on"] is True
    assert parse_command("set_preconditioning_max", {"on": 0}).params["on"] is False
    assert error_of("set_preconditioning_max", {"on": 3}).key == "invalid_field"


def infotainment(name: str, body: dict[str, Any] | None) -> Any:
    """Return the VehicleAction oneof member for a parsed infotainment command."""
    msg = parse_command(name, body).message
    assert isinstance(msg, cs.Action)
    field = msg.vehicleAction.WhichOneof("vehicle_action_msg")
    return getattr(msg.vehicleAction, field)


def test_seat_heater_accepts_legacy_heater_key() -> None:
    action = infotainment("remote_seat_heater_request", {"heater": 1, "level": 3})
    one = action.hvacSeatHeaterAction[0]
    assert one.WhichOneof("seat_position") == "CAR_SEAT_FRONT_RIGHT"
    assert one.WhichOneof("seat_heater_level") == "SEAT_HEATER_HIGH"


def test_parameter_translations() -> None:
    assert infotainment("set_temps", {"driver_temp": 19}).passenger_temp_celsius == 19
    assert infotainment("set_cop_temp", {"cop_temp": 2}).copActivationTemp == 3
    level = infotainment("remote_steering_wheel_heat_level_request", {"level": 1})
    assert level.stw_heat_level == cm.StwHeatLevel_Low
    assert infotainment("sun_roof_control", {"state": "stop"}).delta_level == 0
    assert infotainment("window_control", {"command": "vent"}).HasField("vent")
    assert infotainment("media_volume_down", None).volume_delta == -1
    assert infotainment("speed_limit_deactivate", {"pin": "1234"}).activate is False
    assert infotainment("guest_mode", {"enable": True}).GuestModeActive is True
    assert infotainment("remote_boombox", None).sound == 0


def test_scheduled_departure_policies() -> None:
    body = {"enable": True, "departure_time": 480, "off_peak_charging_weekdays_only": True}
    msg = infotainment("set_scheduled_departure", body)
    assert msg.off_peak_charging_times.WhichOneof("times") == "weekdays"
    assert not msg.HasField("preconditioning_times")
    cleared = infotainment("set_scheduled_departure", {"enable": False, "departure_time": 5})
    assert cleared == cs.ScheduledDepartureAction(enabled=False)


def test_add_charge_schedule_fields() -> None:
    body = {**VALID_BODIES["add_charge_schedule"], "days_of_week": "Weekdays", "id": 7}
    schedule = infotainment("add_charge_schedule", body)
    assert (schedule.id, schedule.days_of_week, schedule.start_time) == (7, 62, 120)
    generated = infotainment("add_charge_schedule", VALID_BODIES["add_charge_schedule"])
    assert generated.id > 1_600_000_000


def test_actuate_trunk_defaults_to_rear() -> None:
    msg = parse_command("actuate_trunk", None).message
    assert isinstance(msg, vc.UnsignedMessage)
    assert msg.closureMoveRequest.rearTrunk == vc.CLOSURE_MOVE_TYPE_MOVE


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("Sunday", 1),
        ("sat", 64),
        ("SUN,SAT", 65),
        ("mon, Tues ,wed", 14),
        ("All", 127),
        ("all", 127),
        ("Weekdays", 62),
        ("WEEKDAYS,Sun", 63),
        ("Thursday,FRI,", 48),
        ("62", 62),
        (127, 127),
        (1, 1),
    ],
)
def test_days_of_week(text: Any, mask: int) -> None:
    assert parse_days_of_week(text) == mask


@pytest.mark.parametrize("value", ["", " , ", "Funday", "Mon;Tue", 0, 128, 1.5, True, ["Mon"]])
def test_days_of_week_rejects(value: Any) -> None:
    with pytest.raises(CommandError) as info:
        parse_days_of_week(value)
    assert (info.value.key, info.value.field) == ("invalid_field", "days_of_week")


def test_days_of_week_error_names_the_day() -> None:
    body = {**VALID_BODIES["add_precondition_schedule"], "days_of_week": "Mon,Funday"}
    err = error_of("add_precondition_schedule", body)
    assert err.message == "invalid days_of_week param: unrecognized day name: Funday"


@pytest.mark.parametrize(
    ("domain", "msg", "name"),
    [
        (VCSEC_DOMAIN, vc.UnsignedMessage(RKEAction=vc.RKE_ACTION_OPEN_FRUNK), "actuate_trunk"),
        (VCSEC_DOMAIN, vc.UnsignedMessage(closureMoveRequest=vc.ClosureMoveRequest(
            chargePort=vc.CLOSURE_MOVE_TYPE_CLOSE)), "charge_port_door_close"),
        (VCSEC_DOMAIN, vc.UnsignedMessage(closureMoveRequest=vc.ClosureMoveRequest(
            chargePort=vc.CLOSURE_MOVE_TYPE_OPEN)), "charge_port_door_open"),
        (VCSEC_DOMAIN, vc.UnsignedMessage(RKEAction=vc.RKE_ACTION_WAKE_VEHICLE), None),
        (VCSEC_DOMAIN, vc.UnsignedMessage(InformationRequest=vc.InformationRequest()), None),
        (VCSEC_DOMAIN, vc.UnsignedMessage(closureMoveRequest=vc.ClosureMoveRequest(
            frontDriverDoor=vc.CLOSURE_MOVE_TYPE_OPEN)), None),
        (INFOTAINMENT_DOMAIN, cs.Action(vehicleAction=cs.VehicleAction(
            remoteStartDrive=cs.RemoteStartDrive())), "remote_start_drive"),
        (INFOTAINMENT_DOMAIN, cs.Action(vehicleAction=cs.VehicleAction(
            navigationRequest=cs.NavigationRequest(destination="x"))), "navigation_request"),
        (INFOTAINMENT_DOMAIN, cs.Action(vehicleAction=cs.VehicleAction(
            ping=cs.Ping(ping_id=1))), None),
        (INFOTAINMENT_DOMAIN, cs.Action(vehicleAction=cs.VehicleAction(
            mediaUpdateVolume=cs.MediaUpdateVolume(volume_delta=0))), None),
        (INFOTAINMENT_DOMAIN, cs.Action(vehicleAction=cs.VehicleAction(
            getVehicleData=cs.GetVehicleData())), None),
        (INFOTAINMENT_DOMAIN, cs.Action(), None),
    ],
)  # fmt: skip
def test_describe_other_forms(domain: int, msg: Any, name: str | None) -> None:
    assert describe_message(domain, msg.SerializeToString()) == name


def test_describe_rejects_garbage_and_unknown_domains() -> None:
    honk = parse_command("honk_horn", None).message
    assert honk is not None
    assert describe_message(0, honk.SerializeToString()) is None
    assert describe_message(INFOTAINMENT_DOMAIN, b"\xff\xff\xff") is None
    assert describe_message(VCSEC_DOMAIN, b"\x12") is None
    assert describe_message(VCSEC_DOMAIN, b"") is None
