"""Encoders for schedule, departure and navigation commands (Infotainment domain)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import common_pb2 as cm

from flotta.commands.encode_infotainment import action
from flotta.commands.params import SHARE_TEXT

Params = Mapping[str, Any]


def schedule_id(params: Params) -> int:
    """Return the schedule id; like the proxy, 0 or absent means "now" in Unix seconds."""
    value = int(params.get("id", 0))
    return value or int(time.time())


def add_charge_schedule(params: Params) -> cs.Action:
    """Encode ``add_charge_schedule`` as a ``ChargeSchedule``."""
    schedule = cm.ChargeSchedule(
        id=schedule_id(params),
        days_of_week=params["days_of_week"],
        enabled=params["enabled"],
        start_enabled=params["start_enabled"],
        end_enabled=params["end_enabled"],
        start_time=params.get("start_time", 0),
        end_time=params.get("end_time", 0),
        one_time=params.get("one_time", False),
        latitude=params["lat"],
        longitude=params["lon"],
        name=params.get("name", ""),
    )
    return action(addChargeScheduleAction=schedule)


def add_precondition_schedule(params: Params) -> cs.Action:
    """Encode ``add_precondition_schedule`` as a ``PreconditionSchedule``."""
    schedule = cm.PreconditionSchedule(
        id=schedule_id(params),
        days_of_week=params["days_of_week"],
        enabled=params["enabled"],
        precondition_time=params["precondition_time"],
        one_time=params.get("one_time", False),
        latitude=params["lat"],
        longitude=params["lon"],
        name=params.get("name", ""),
    )
    return action(addPreconditionScheduleAction=schedule)


def _policy(enabled: bool, weekdays_only: bool) -> dict[str, cm.Void]:
    """Map the proxy's enabled/weekdays-only pair onto the ``times`` oneof (unset = off)."""
    if weekdays_only:
        return {"weekdays": cm.Void()}
    if enabled:
        return {"all_week": cm.Void()}
    return {}


def scheduled_departure(params: Params) -> cs.Action:
    """Encode ``set_scheduled_departure``; ``enable: false`` clears the schedule."""
    if not params["enable"]:
        return action(scheduledDepartureAction=cs.ScheduledDepartureAction(enabled=False))
    precondition = _policy(
        params["preconditioning_enabled"], params["preconditioning_weekdays_only"]
    )
    off_peak = _policy(
        params["off_peak_charging_enabled"], params["off_peak_charging_weekdays_only"]
    )
    msg = cs.ScheduledDepartureAction(
        enabled=True,
        departure_time=params.get("departure_time", 0),
        off_peak_hours_end_time=params.get("end_off_peak_time", 0),
    )
    if precondition:
        msg.preconditioning_times.CopyFrom(cm.PreconditioningTimes(**precondition))
    if off_peak:
        msg.off_peak_charging_times.CopyFrom(cm.OffPeakChargingTimes(**off_peak))
    return action(scheduledDepartureAction=msg)


def scheduled_charging(params: Params) -> cs.Action:
    """Encode ``set_scheduled_charging``."""
    msg = cs.ScheduledChargingAction(enabled=params["enable"], charging_time=params.get("time", 0))
    return action(scheduledChargingAction=msg)


def navigation_share(params: Params) -> cs.Action:
    """Encode ``navigation_request``: the shared text (an address or link) is the destination."""
    text: str = params["value"][SHARE_TEXT]  # a non-empty string (params.share)
    return action(navigationRequest=cs.NavigationRequest(destination=text))


def managed_schedule(params: Params) -> cs.Action:
    """Encode ``set_managed_scheduled_charging_time`` as a daily scheduled charge."""
    msg = cs.ScheduledChargingAction(enabled=True, charging_time=params["time"])
    return action(scheduledChargingAction=msg)


def navigation_gps(params: Params) -> cs.Action:
    """Encode ``navigation_gps_request``."""
    msg = cs.NavigationGpsRequest(
        lat=params["lat"], lon=params["lon"], order=params.get("order", 0)
    )
    return action(navigationGpsRequest=msg)


def navigation_supercharger(params: Params) -> cs.Action:
    """Encode ``navigation_sc_request``."""
    msg = cs.NavigationSuperchargerRequest(
        id=params.get("id", 0), remote_nav_trip_order=params.get("order", 0)
    )
    return action(navigationSuperchargerRequest=msg)
