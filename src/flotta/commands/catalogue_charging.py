"""Charging commands: start/stop, limits, port door, schedules and managed charging.

All accept ``vehicle_cmds`` or ``vehicle_charging_cmds`` (fleet-api.md §4.4, C/CH).
"""

from __future__ import annotations

from tesla_protocol.command import common_pb2 as cm

from flotta.commands import encode_infotainment as ei
from flotta.commands import encode_schedules as es
from flotta.commands.builders import info, rest
from flotta.commands.params import (
    UINT64_MAX,
    boolean,
    days,
    integer,
    latitude,
    longitude,
    minutes,
    string,
)
from flotta.commands.spec import CMDS_OR_CHARGING as CH
from flotta.commands.spec import CommandSpec

_START_STOP = "chargingStartStopAction"
_AMPS = integer("charging_amps", 0, 80, required=True, doc="amps")
_SCHEDULE_ID = integer("id", 0, UINT64_MAX, required=True)
_LOCATION_FILTER = (boolean("home"), boolean("work"), boolean("other"))

# fmt: off
SPECS: tuple[CommandSpec, ...] = (
    info("charge_start", "Start charging.", _START_STOP,
         ei.fixed(_START_STOP, start=cm.Void()), scopes=CH),
    info("charge_stop", "Stop charging.", _START_STOP,
         ei.fixed(_START_STOP, stop=cm.Void()), scopes=CH),
    info("charge_standard", "Charge to the standard-range limit.", _START_STOP,
         ei.fixed(_START_STOP, start_standard=cm.Void()), scopes=CH),
    info("charge_max_range", "Charge to the max-range limit.", _START_STOP,
         ei.fixed(_START_STOP, start_max_range=cm.Void()), scopes=CH),
    info("charge_port_door_open", "Open the charge port door.", "chargePortDoorOpen",
         scopes=CH),
    info("charge_port_door_close", "Close the charge port door.", "chargePortDoorClose",
         scopes=CH),
    info("set_charge_limit", "Set the charge limit in percent.", "chargingSetLimitAction",
         ei.mapped("chargingSetLimitAction", percent="percent"),
         integer("percent", 50, 100, required=True, lenient=True), scopes=CH),
    info("set_charging_amps", "Set the charging current.", "setChargingAmpsAction",
         ei.mapped("setChargingAmpsAction", charging_amps="charging_amps"), _AMPS, scopes=CH),
    info("set_scheduled_charging", "Set a daily charging start time (pre-2024.26).",
         "scheduledChargingAction", es.scheduled_charging,
         boolean("enable", required=True), minutes("time"), scopes=CH),
    info("set_scheduled_departure", "Set departure time and off-peak charging.",
         "scheduledDepartureAction", es.scheduled_departure,
         boolean("enable", required=True), minutes("departure_time"),
         minutes("end_off_peak_time"), boolean("off_peak_charging_enabled"),
         boolean("off_peak_charging_weekdays_only"), boolean("preconditioning_enabled"),
         boolean("preconditioning_weekdays_only"), scopes=CH),
    info("add_charge_schedule", "Add or replace a charge schedule (fw 2024.26+).",
         "addChargeScheduleAction", es.add_charge_schedule,
         days(), boolean("enabled", required=True), boolean("start_enabled", required=True),
         boolean("end_enabled", required=True), latitude(required=True),
         longitude(required=True), minutes("start_time"), minutes("end_time"),
         integer("id", 0, UINT64_MAX), boolean("one_time"), string("name", max_len=64),
         scopes=CH),
    info("remove_charge_schedule", "Remove a charge schedule.", "removeChargeScheduleAction",
         ei.mapped("removeChargeScheduleAction", id="id"), _SCHEDULE_ID, scopes=CH),
    info("batch_remove_charge_schedules", "Remove charge schedules by location type.",
         "batchRemoveChargeSchedulesAction",
         ei.mapped("batchRemoveChargeSchedulesAction", home="home", work="work", other="other"),
         *_LOCATION_FILTER, scopes=CH, origin="unconfirmed"),
    info("add_precondition_schedule", "Add or replace a preconditioning schedule.",
         "addPreconditionScheduleAction", es.add_precondition_schedule,
         days(), boolean("enabled", required=True), latitude(required=True),
         longitude(required=True), minutes("precondition_time", required=True),
         integer("id", 0, UINT64_MAX), boolean("one_time"), string("name", max_len=64),
         scopes=CH),
    info("remove_precondition_schedule", "Remove a preconditioning schedule.",
         "removePreconditionScheduleAction",
         ei.mapped("removePreconditionScheduleAction", id="id"), _SCHEDULE_ID, scopes=CH),
    info("batch_remove_precondition_schedules",
         "Remove preconditioning schedules by location type.",
         "batchRemovePreconditionSchedulesAction",
         ei.mapped("batchRemovePreconditionSchedulesAction",
                   home="home", work="work", other="other"),
         *_LOCATION_FILTER, scopes=CH, origin="unconfirmed"),
    info("set_managed_charge_current_request", "Fleet managed charging: set the current.",
         "setChargingAmpsAction", ei.mapped("setChargingAmpsAction", charging_amps="charging_amps"),
         _AMPS, scopes=CH, origin="docs-2023", alias_of="set_charging_amps"),
    rest("set_managed_charger_location", "Fleet managed charging: set the charger location.",
         latitude(), longitude(), scopes=CH, origin="docs-2023"),
    info("set_managed_scheduled_charging_time", "Fleet managed charging: set the start time.",
         "scheduledChargingAction", es.managed_schedule, minutes("time", required=True),
         scopes=CH, origin="docs-2023", alias_of="set_scheduled_charging"),
)
# fmt: on
