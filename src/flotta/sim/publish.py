"""Turn a simulated car's physics into telemetry signals, rounded as a car reports them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flotta.sim import charging

if TYPE_CHECKING:
    from flotta.sim.vehicle_state import SimVehicle

IDEAL_RANGE_FACTOR = 1.0  # Tesla reports rated and ideal ranges as equal on current cars
EST_RANGE_FACTOR = 0.88  # estimated range reflects recent, less efficient driving


def derived_signals(v: SimVehicle) -> dict[str, Any]:
    """Signals computed from physics state (battery, charging, climate, drive)."""
    out: dict[str, Any] = {}
    out.update(_battery(v))
    out.update(_charging(v))
    out.update(_climate(v))
    out.update(_drive(v))
    out.update(_tpms(v))
    return out


def _battery(v: SimVehicle) -> dict[str, Any]:
    rated = v.soc * v.model.rated_range_mi
    return {
        "BatteryLevel": round(v.soc * 100.0, 2),
        "Soc": round(v.soc * 100.0, 2),
        "RatedRange": round(rated, 2),
        "IdealBatteryRange": round(rated * IDEAL_RANGE_FACTOR, 2),
        "EstBatteryRange": round(rated * EST_RANGE_FACTOR, 2),
        "EnergyRemaining": round(v.soc * v.model.battery_kwh, 2),
        "LifetimeEnergyUsed": round(v.lifetime_kwh, 1),
        "ModuleTempMin": round(max(v.outside_c, 15.0) + (8.0 if v.is_charging else 0.0), 1),
        "ModuleTempMax": round(max(v.outside_c, 15.0) + (10.0 if v.is_charging else 1.0), 1),
        "BatteryHeaterOn": False,
        "NotEnoughPowerToHeat": False,
    }


def _charging(v: SimVehicle) -> dict[str, Any]:
    session = v.session
    plugged = session is not None
    dc = plugged and session is not None and session.kind == "dc"
    amps = v._ac_amps() if plugged and not dc else 0
    power = v.charge_power_kw if v.is_charging else 0.0
    hours = 0.0
    if v.is_charging and session is not None:
        hours = charging.hours_to_limit(v.model, v.soc, v.limit, amps, session)
    actual = 0
    if v.is_charging and session is not None:
        actual = amps if not dc else int(power * 1000.0 / session.voltage)
    pack_kw = charging.pack_power_kw(session, power) if session else 0.0
    return {
        "DetailedChargeState": f"DetailedChargeState{v.charge_state}",
        "ChargeEnableRequest": v.charge_requested,
        "ChargeAmps": float(actual),
        "ChargerActualCurrent": actual,
        "ChargerPilotCurrent": (session.evse_amps if session and not dc else 0),
        "ChargerPhases": (session.phases if session and not dc and v.is_charging else 0),
        "ChargerVoltage": (float(round(session.voltage)) if session and v.is_charging else 0.0),
        "ACChargingPower": round(power, 2) if plugged and not dc else 0.0,
        "DCChargingPower": round(power, 2) if dc else 0.0,
        "ACChargingEnergyIn": round(v.energy_added_kwh, 2) if plugged and not dc else 0.0,
        "DCChargingEnergyIn": round(v.energy_added_kwh, 2) if dc else 0.0,
        "ChargeEnergyAdded": round(v.energy_added_kwh, 2),
        "ChargeMilesAddedRated": round(v.miles_added, 1),
        "ChargeRateMilePerHour": round(pack_kw * 1000.0 / v.model.wh_per_mi, 1),
        "TimeToFullCharge": round(hours, 2),
        "EstimatedHoursToChargeTermination": round(hours, 2),
        "FastChargerPresent": dc,
        "FastChargerType": "FastChargerSupercharger" if dc else "FastChargerUnknown",
        "ChargingCableType": (
            ("CableTypeIEC" if v.model.charge_port_type in ("EU", "CCS") else "CableTypeSAE")
            if plugged
            else "CableTypeSNA"
        ),
        "ChargePortLatch": "ChargePortLatchEngaged" if plugged else "ChargePortLatchDisengaged",
    }


def _climate(v: SimVehicle) -> dict[str, Any]:
    hvac = v.hvac_on or v.cop_cooling
    return {
        "InsideTemp": round(v.cabin_c, 1),
        "OutsideTemp": round(v.outside_c, 1),
        "HvacACEnabled": hvac,
        "HvacFanStatus": 4 if hvac else 0,
        "HvacFanSpeed": 4 if hvac else 0,
    }


def _drive(v: SimVehicle) -> dict[str, Any]:
    return {
        "Location": {"latitude": round(v.latitude, 6), "longitude": round(v.longitude, 6)},
        "GpsHeading": float(round(v.heading)),
        "VehicleSpeed": round(v.speed_mph, 1) if v.driving else 0.0,
        "Gear": "ShiftStateD" if v.driving else "ShiftStateP",
        "Odometer": round(v.odometer_mi, 2),
        "DrivePower": round(v.drive_power_kw - v.charge_power_kw),
        "CenterDisplay": (
            "DisplayStateDriving"
            if v.driving
            else "DisplayStateCharging"
            if v.is_charging
            else "DisplayStateOff"
        ),
    }


def _tpms(v: SimVehicle) -> dict[str, Any]:
    seen = int(v.tpms_seen.timestamp())
    out: dict[str, Any] = {}
    for corner, bar in zip(("Fl", "Fr", "Rl", "Rr"), v.tpms_bar, strict=True):
        out[f"TpmsPressure{corner}"] = bar
        out[f"TpmsLastSeenPressureTime{corner}"] = seen
    return out
