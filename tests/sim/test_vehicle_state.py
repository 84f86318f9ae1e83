"""The simulated car: physics a user would notice and Tesla's command answers."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import common_pb2, vcsec_pb2
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.sim.vehicle_models import MODELS, make_vin, vin_check_digit
from flotta.sim.vehicle_state import SimVehicle
from flotta.vehicles.signals import SIGNALS, dict_from_payload, payload_from_dict

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
VOID = common_pb2.Void()


def car(model: str = "model3_lr", soc: float | None = None, seed: int = 1) -> SimVehicle:
    v = SimVehicle(make_vin(model, seed), model, random.Random(seed), T0)
    if soc is not None:
        v.soc = soc
        v.advance(T0 + timedelta(seconds=1))
    return v


def run(v: SimVehicle, **action: Any) -> tuple[bool, str]:
    """Execute one VehicleAction field and return (ok, reason)."""
    resp = v.execute(cs.Action(vehicleAction=cs.VehicleAction(**action)))
    ok = resp.actionStatus.result == cs.OPERATIONSTATUS_OK
    return ok, resp.actionStatus.result_reason.plain_text


def start(v: SimVehicle) -> tuple[bool, str]:
    return run(v, chargingStartStopAction=cs.ChargingStartStopAction(start=VOID))


def later(v: SimVehicle, **delta: float) -> None:
    v.advance(v.now + timedelta(**delta))


def test_ac_charging_for_an_hour_adds_a_plausible_amount_and_respects_the_limit() -> None:
    v = car(soc=0.50)
    v.plug_in("ac", evse_amps=48)
    before = v.sig["BatteryLevel"]
    later(v, hours=1)
    gained = v.sig["BatteryLevel"] - before
    # 48 A x 240 V ~ 11.5 kW at the wall, ~10.6 kW into a 78 kWh pack: ~13-14 %/h.
    assert 11.0 < gained < 16.0
    assert 10.0 < v.sig["ChargeEnergyAdded"] < 12.0
    later(v, hours=10)
    assert v.sig["BatteryLevel"] == pytest.approx(80.0)
    assert v.sig["DetailedChargeState"] == "DetailedChargeStateComplete"


def test_ac_current_is_capped_by_the_evse_and_the_request() -> None:
    v = car(soc=0.30)
    v.plug_in("ac", evse_amps=16)
    later(v, minutes=1)
    assert v.sig["ChargerActualCurrent"] == 16
    assert run(v, setChargingAmpsAction=cs.SetChargingAmpsAction(charging_amps=8)) == (True, "")
    later(v, minutes=1)
    assert v.sig["ChargerActualCurrent"] == 8
    assert v.sig["ACChargingPower"] == pytest.approx(8 * 240 / 1000, rel=0.01)


def test_dc_charging_is_much_faster_at_20_than_at_85_percent() -> None:
    low, high = car(soc=0.20), car(soc=0.85)
    high.sig["ChargeLimitSoc"] = 100
    for v in (low, high):
        v.plug_in("dc", station_kw=250)
        later(v, minutes=1)
    assert low.sig["DCChargingPower"] > 200
    assert high.sig["DCChargingPower"] < 50
    low_start, high_start = low.soc, high.soc
    later(low, minutes=5)
    later(high, minutes=5)
    assert (low.soc - low_start) > 4 * (high.soc - high_start)


def test_time_to_full_shrinks_as_the_car_charges() -> None:
    v = car(soc=0.40)
    v.plug_in("ac")
    later(v, minutes=1)
    first = v.sig["TimeToFullCharge"]
    later(v, hours=1)
    assert 0 < v.sig["TimeToFullCharge"] < first


def test_charge_start_reasons_follow_tesla() -> None:
    v = car(soc=0.5)
    assert start(v) == (False, "disconnected")
    v.plug_in("ac")
    assert start(v) == (False, "is_charging")
    v.soc = 0.9
    later(v, seconds=10)
    assert start(v) == (False, "complete")


def test_charge_stop_and_limit_reasons() -> None:
    v = car(soc=0.5)
    stop = cs.ChargingStartStopAction(stop=VOID)
    assert run(v, chargingStartStopAction=stop) == (False, "not_charging")
    v.plug_in("ac")
    assert run(v, chargingStartStopAction=stop) == (True, "")
    assert v.sig["DetailedChargeState"] == "DetailedChargeStateStopped"
    same = cs.ChargingSetLimitAction(percent=80)
    assert run(v, chargingSetLimitAction=same) == (False, "already_set")


def test_raising_the_limit_on_a_complete_car_resumes_charging() -> None:
    v = car(soc=0.79)
    v.plug_in("ac")
    later(v, hours=1)
    assert v.sig["DetailedChargeState"] == "DetailedChargeStateComplete"
    assert run(v, chargingSetLimitAction=cs.ChargingSetLimitAction(percent=90))[0]
    later(v, minutes=10)
    assert v.sig["DetailedChargeState"] == "DetailedChargeStateCharging"
    assert v.sig["BatteryLevel"] > 80


def test_port_door_cannot_close_on_a_cable() -> None:
    v = car()
    v.plug_in("ac")
    assert run(v, chargePortDoorClose=cs.ChargePortDoorClose()) == (False, "cable connected")
    v.unplug()
    assert run(v, chargePortDoorOpen=cs.ChargePortDoorOpen()) == (True, "")
    assert run(v, chargePortDoorClose=cs.ChargePortDoorClose()) == (True, "")
    assert v.sig["ChargePortDoorOpen"] is False


def test_hvac_brings_the_cabin_to_the_setpoint_and_off_drifts_back() -> None:
    v = car()
    v.cabin_c = 40.0
    run(
        v,
        hvacTemperatureAdjustmentAction=cs.HvacTemperatureAdjustmentAction(
            driver_temp_celsius=20.0, passenger_temp_celsius=20.0
        ),
    )
    assert run(v, hvacAutoAction=cs.HvacAutoAction(power_on=True)) == (True, "")
    later(v, minutes=30)
    assert abs(v.sig["InsideTemp"] - 20.0) < 1.0
    run(v, hvacAutoAction=cs.HvacAutoAction(power_on=False))
    later(v, hours=6)
    assert abs(v.sig["InsideTemp"] - 20.0) > 1.0


def test_driving_moves_the_car_and_uses_energy() -> None:
    v = car(soc=0.8)
    where, odo = v.sig["Location"], v.sig["Odometer"]
    v.start_drive()
    later(v, minutes=20)
    assert v.sig["Gear"] == "ShiftStateD"
    assert v.sig["VehicleSpeed"] > 0
    assert v.sig["Location"] != where
    assert 5 < v.sig["Odometer"] - odo < 20
    assert v.sig["BatteryLevel"] < 80
    v.park()
    later(v, seconds=30)
    assert v.sig["Gear"] == "ShiftStateP"
    assert v.sig["VehicleSpeed"] == 0.0


def test_model_specific_features_are_refused_where_absent() -> None:
    sunroof = cs.VehicleControlSunroofOpenCloseAction(vent=VOID)
    assert run(car("model3_lr"), vehicleControlSunroofOpenCloseAction=sunroof) == (
        False,
        "not_supported",
    )
    plaid = car("models_plaid")
    assert run(plaid, vehicleControlSunroofOpenCloseAction=sunroof) == (True, "")
    assert plaid.sig["SunroofState"] == "vent"
    third = cs.HvacSeatHeaterActions.HvacSeatHeaterAction(
        SEAT_HEATER_HIGH=VOID, CAR_SEAT_THIRD_ROW_LEFT=VOID
    )
    seats = cs.HvacSeatHeaterActions(hvacSeatHeaterAction=[third])
    assert run(car("model3_lr"), hvacSeatHeaterActions=seats) == (False, "not_supported")
    y = car("modely")
    assert run(y, hvacSeatHeaterActions=seats) == (True, "")
    assert y.sig["SeatHeaterThirdRowLeft"] == 3


def test_tonneau_moves_only_on_a_cybertruck() -> None:
    req = vcsec_pb2.UnsignedMessage(
        closureMoveRequest=vcsec_pb2.ClosureMoveRequest(tonneau=vcsec_pb2.CLOSURE_MOVE_TYPE_OPEN)
    )
    ok = vcsec_pb2.OPERATIONSTATUS_OK
    assert car("model3_lr").execute_vcsec(req).commandStatus.operationStatus != ok
    truck = car("cybertruck")
    assert truck.execute_vcsec(req).commandStatus.operationStatus == ok
    assert truck.sig["TonneauPosition"] == "TonneauPositionStateFullyOpen"


def test_vcsec_lock_unlock_and_status() -> None:
    v = car()
    unlock = vcsec_pb2.UnsignedMessage(RKEAction=vcsec_pb2.RKE_ACTION_UNLOCK)
    v.execute_vcsec(unlock)
    assert v.sig["Locked"] is False
    frunk = vcsec_pb2.ClosureMoveRequest(frontTrunk=vcsec_pb2.CLOSURE_MOVE_TYPE_OPEN)
    v.execute_vcsec(vcsec_pb2.UnsignedMessage(closureMoveRequest=frunk))
    status = v.execute_vcsec(
        vcsec_pb2.UnsignedMessage(InformationRequest=vcsec_pb2.InformationRequest())
    ).vehicleStatus
    assert status.vehicleLockState == vcsec_pb2.VEHICLELOCKSTATE_UNLOCKED
    assert status.closureStatuses.frontTrunk == vcsec_pb2.CLOSURESTATE_OPEN
    v.execute_vcsec(vcsec_pb2.UnsignedMessage(RKEAction=vcsec_pb2.RKE_ACTION_LOCK))
    assert v.sig["Locked"] is True


def test_unknown_action_is_an_error() -> None:
    resp = car().execute(cs.Action())
    assert resp.actionStatus.result == cs.OPERATIONSTATUS_ERROR
    assert resp.actionStatus.result_reason.plain_text == "unknown_action"


def test_speed_limit_pin_flow() -> None:
    v = car()
    on = cs.DrivingSpeedLimitAction(activate=True, pin="1234")
    assert run(v, drivingSpeedLimitAction=on) == (True, "")
    assert v.sig["SpeedLimitMode"] and v.sig["SpeedLimitPinSet"]
    wrong = cs.DrivingSpeedLimitAction(activate=False, pin="9999")
    assert run(v, drivingSpeedLimitAction=wrong)[0] is False
    assert run(v, drivingClearSpeedLimitPinAdminAction=cs.DrivingClearSpeedLimitPinAdminAction())
    assert not v.sig["SpeedLimitMode"] and not v.sig["SpeedLimitPinSet"]


def test_charge_schedules_add_replace_and_batch_remove() -> None:
    v = car()
    home = common_pb2.ChargeSchedule(
        id=7,
        days_of_week=62,
        start_enabled=True,
        start_time=120,
        enabled=True,
        latitude=v.home[0],
        longitude=v.home[1],
    )
    away = common_pb2.ChargeSchedule(id=8, enabled=True, latitude=40.0, longitude=-74.0)
    run(v, addChargeScheduleAction=home)
    run(v, addChargeScheduleAction=away)
    home.start_time = 180
    run(v, addChargeScheduleAction=home)
    assert [(s["id"], s["start_time"]) for s in v.sig["ChargeSchedules"]] == [(7, 180), (8, 0)]
    run(v, batchRemoveChargeSchedulesAction=cs.BatchRemoveChargeSchedulesAction(home=True))
    assert [s["id"] for s in v.sig["ChargeSchedules"]] == [8]


def test_scheduled_software_update_installs_the_new_version() -> None:
    v = car()
    v.sig.update(SoftwareUpdateStatus="available", SoftwareUpdateVersion="2026.44.1 abc")
    update = cs.VehicleControlScheduleSoftwareUpdateAction(offset_sec=60)
    run(v, vehicleControlScheduleSoftwareUpdateAction=update)
    assert v.sig["SoftwareUpdateStatus"] == "scheduled"
    later(v, minutes=2)
    assert v.sig["SoftwareUpdateStatus"] == "installing"
    later(v, minutes=30)
    assert v.sig["Version"] == "2026.44.1 abc"
    assert v.sig["SoftwareUpdateStatus"] == ""


def test_get_vehicle_data_reports_the_model() -> None:
    v = car(soc=0.5)
    v.plug_in("ac")
    resp = v.execute(cs.Action(vehicleAction=cs.VehicleAction(getVehicleData=cs.GetVehicleData())))
    data = resp.vehicleData
    assert data.charge_state.battery_level == 50
    assert data.charge_state.charging_state.WhichOneof("type") == "Charging"
    assert data.climate_state.inside_temp_celsius == pytest.approx(v.sig["InsideTemp"])
    assert data.drive_state.shift_state.WhichOneof("type") == "P"


def test_changes_reports_only_what_changed() -> None:
    v = car()
    assert set(v.changes()) == set(v.snapshot())
    assert v.changes() == {}
    v.execute_vcsec(vcsec_pb2.UnsignedMessage(RKEAction=vcsec_pb2.RKE_ACTION_UNLOCK))
    assert v.changes() == {"Locked": False}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_signal_is_in_the_table_and_survives_the_wire(model: str) -> None:
    v = car(model)
    v.plug_in("dc")
    later(v, minutes=3)
    snap = v.snapshot()
    assert set(snap) <= set(SIGNALS)
    wire = payload_from_dict(v.vin, v.now, snap).SerializeToString()
    back = dict_from_payload(vehicle_data_pb2.Payload.FromString(wire))
    assert back == snap


def test_long_jumps_are_bounded_and_activity_is_tracked() -> None:
    v = car(soc=0.3)
    v.plug_in("ac")
    began = time.perf_counter()
    v.advance(v.now + timedelta(days=3))
    assert time.perf_counter() - began < 1.0
    assert v.last_activity > T0 + timedelta(hours=2)  # charging counts as activity
    assert not v.busy  # charging finished, nothing else running


@pytest.mark.parametrize("model", sorted(MODELS))
def test_vins_are_well_formed(model: str) -> None:
    vin = make_vin(model, 4321)
    assert len(vin) == 17 and not set(vin) & set("IOQ")
    assert vin[8] == vin_check_digit(vin)
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"  # the textbook example
