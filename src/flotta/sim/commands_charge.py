"""Charging-domain command handlers (fleet-api.md §4.4): start/stop, limits, port, schedules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tesla_protocol.command import car_server_pb2

from flotta.sim.route import distance_mi

if TYPE_CHECKING:
    from flotta.sim.vehicle_state import SimVehicle

Handler = Callable[["SimVehicle", Any, car_server_pb2.Response], str | None]
HOME_RADIUS_MI = 0.5
MIN_AMPS = 5
STANDARD_LIMIT = 80


def next_time_of_day(now: datetime, minutes: int) -> int:
    """Epoch seconds of the next `minutes`-after-midnight moment at or after `now` (UTC)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    at = midnight + timedelta(minutes=minutes % 1440)
    if at < now:
        at += timedelta(days=1)
    return int(at.timestamp())


def _set_limit(v: SimVehicle, percent: int) -> None:
    v.sig["ChargeLimitSoc"] = percent
    if v.session is None:
        return
    if v.charge_state == "Complete" and v.soc < v.limit - 1e-6 and v.charge_requested:
        v.charge_state = "Charging"
    elif v.is_charging and v.soc >= v.limit - 1e-6:
        v.charge_state = "Complete"


def charge_start_stop(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """charge_start / charge_stop / charge_standard / charge_max_range."""
    which = msg.WhichOneof("charging_action")
    if which == "start":
        return v._try_start_charging()
    if which == "stop":
        if not v.is_charging:
            return "not_charging"
        v.charge_requested = False
        v.charge_state = "Stopped"
        return None
    if which in ("start_standard", "start_max_range"):
        target = STANDARD_LIMIT if which == "start_standard" else 100
        if v.sig["ChargeLimitSoc"] == target:
            return "already_started"
        if target == 100:
            v.sig["MaxRangeChargeCounter"] = int(v.sig["MaxRangeChargeCounter"]) + 1
        _set_limit(v, target)
        return None
    return "invalid_value"


def set_charge_limit(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_charge_limit: 50-100 %; the same value again answers `already_set`."""
    percent = max(50, min(100, int(msg.percent)))
    if v.sig["ChargeLimitSoc"] == percent:
        return "already_set"
    _set_limit(v, percent)
    return None


def set_charging_amps(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_charging_amps: clamped to what the car's charger supports."""
    amps = max(MIN_AMPS, min(v.model.max_ac_amps, int(msg.charging_amps)))
    v.sig["ChargeCurrentRequest"] = amps
    return None


def port_open(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """charge_port_door_open."""
    if v.driving:
        return "not allowed"
    v.sig["ChargePortDoorOpen"] = True
    return None


def port_close(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """charge_port_door_close, with Tesla's refusal reasons."""
    if v.session is not None:
        return "cable connected"
    if not v.model.motorized_charge_port:
        return "non-motorized charge port"
    if not v.sig["ChargePortDoorOpen"]:
        return "already closed"
    v.sig["ChargePortDoorOpen"] = False
    return None


def scheduled_charging(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_scheduled_charging (pre-2024.26 single start time)."""
    if msg.enabled:
        minutes = int(msg.charging_time)
        v.sig["ScheduledChargingMode"] = "ScheduledChargingModeStartAt"
        v.sig["ScheduledChargingStartTimeMinutes"] = minutes
        v.sig["ScheduledChargingStartTime"] = next_time_of_day(v.now, minutes)
        v.sig["ScheduledChargingPending"] = v.session is not None and not v.is_charging
    else:
        v.sig["ScheduledChargingMode"] = "ScheduledChargingModeOff"
        v.sig["ScheduledChargingStartTime"] = None
        v.sig["ScheduledChargingPending"] = False
    return None


def scheduled_departure(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_scheduled_departure; `enable: false` clears the departure schedule."""
    if not msg.enabled:
        if v.sig["ScheduledChargingMode"] == "ScheduledChargingModeDepartBy":
            v.sig["ScheduledChargingMode"] = "ScheduledChargingModeOff"
        v.sig.update(
            ScheduledDepartureTime=None,
            PreconditioningEnabled=False,
            OffPeakChargingEnabled=False,
        )
        return None
    minutes = int(msg.departure_time)
    precondition = msg.HasField("preconditioning_times")
    off_peak = msg.HasField("off_peak_charging_times")
    v.sig.update(
        ScheduledChargingMode="ScheduledChargingModeDepartBy",
        ScheduledDepartureTimeMinutes=minutes,
        ScheduledDepartureTime=next_time_of_day(v.now, minutes),
        PreconditioningEnabled=precondition,
        PreconditioningTimes=_times(msg.preconditioning_times) if precondition else "all_week",
        PreconditioningWeekdaysOnly=precondition
        and _times(msg.preconditioning_times) == "weekdays",
        OffPeakChargingEnabled=off_peak,
        OffPeakChargingTimes=_times(msg.off_peak_charging_times) if off_peak else "all_week",
        OffPeakHoursEndTime=int(msg.off_peak_hours_end_time),
    )
    return None


def _times(msg: Any) -> str:
    return "weekdays" if msg.WhichOneof("times") == "weekdays" else "all_week"


def _schedule_dict(msg: Any, now: datetime, fields: tuple[str, ...]) -> dict[str, Any]:
    item: dict[str, Any] = {"id": int(msg.id) or int(now.timestamp())}
    for name in fields:
        item[name] = getattr(msg, name)
    item["latitude"] = round(float(msg.latitude), 6)
    item["longitude"] = round(float(msg.longitude), 6)
    return item


_CHARGE_FIELDS = (
    "name",
    "days_of_week",
    "start_enabled",
    "start_time",
    "end_enabled",
    "end_time",
    "one_time",
    "enabled",
)
_PRECONDITION_FIELDS = ("name", "days_of_week", "precondition_time", "one_time", "enabled")


def _upsert(v: SimVehicle, key: str, item: dict[str, Any]) -> None:
    rest = [s for s in v.sig[key] if s["id"] != item["id"]]
    v.sig[key] = sorted([*rest, item], key=lambda s: int(s["id"]))


def add_charge_schedule(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """add_charge_schedule: create, or replace the schedule with the same id."""
    _upsert(v, "ChargeSchedules", _schedule_dict(msg, v.now, _CHARGE_FIELDS))
    return None


def add_precondition_schedule(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """add_precondition_schedule: create, or replace the schedule with the same id."""
    _upsert(v, "PreconditionSchedules", _schedule_dict(msg, v.now, _PRECONDITION_FIELDS))
    return None


def _remover(key: str) -> Handler:
    def remove(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
        v.sig[key] = [s for s in v.sig[key] if s["id"] != int(msg.id)]
        return None

    return remove


def _batch_remover(key: str) -> Handler:
    def remove(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
        # The simulator has no work location, so every non-home schedule counts as "other".
        def doomed(s: dict[str, Any]) -> bool:
            at_home = distance_mi(s["latitude"], s["longitude"], *v.home) <= HOME_RADIUS_MI
            return bool(msg.home) if at_home else bool(msg.other)

        v.sig[key] = [s for s in v.sig[key] if not doomed(s)]
        return None

    return remove


def low_power(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_low_power_mode."""
    v.sig["LowPowerMode"] = bool(msg.low_power_mode)
    return None


def keep_accessory_power(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """keep_accessory_power_mode."""
    v.sig["KeepAccessoryPowerMode"] = bool(msg.keep_accessory_power_mode)
    return None


HANDLERS: dict[str, Handler] = {
    "chargingStartStopAction": charge_start_stop,
    "chargingSetLimitAction": set_charge_limit,
    "setChargingAmpsAction": set_charging_amps,
    "chargePortDoorOpen": port_open,
    "chargePortDoorClose": port_close,
    "scheduledChargingAction": scheduled_charging,
    "scheduledDepartureAction": scheduled_departure,
    "addChargeScheduleAction": add_charge_schedule,
    "removeChargeScheduleAction": _remover("ChargeSchedules"),
    "batchRemoveChargeSchedulesAction": _batch_remover("ChargeSchedules"),
    "addPreconditionScheduleAction": add_precondition_schedule,
    "removePreconditionScheduleAction": _remover("PreconditionSchedules"),
    "batchRemovePreconditionSchedulesAction": _batch_remover("PreconditionSchedules"),
    "setLowPowerModeAction": low_power,
    "setKeepAccessoryPowerModeAction": keep_accessory_power,
}
