"""Climate-domain command handlers (fleet-api.md §4.4): HVAC, seats, steering wheel, modes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tesla_protocol.command import car_server_pb2, common_pb2, vehicle_pb2

from flotta.sim.climate import clamp_setpoint

if TYPE_CHECKING:
    from flotta.sim.vehicle_state import SimVehicle

Handler = Callable[["SimVehicle", Any, car_server_pb2.Response], str | None]

_SEAT_LEVELS = {
    "SEAT_HEATER_OFF": 0,
    "SEAT_HEATER_LOW": 1,
    "SEAT_HEATER_MED": 2,
    "SEAT_HEATER_HIGH": 3,
}
_SEATS = {
    "CAR_SEAT_FRONT_LEFT": "SeatHeaterLeft",
    "CAR_SEAT_FRONT_RIGHT": "SeatHeaterRight",
    "CAR_SEAT_REAR_LEFT": "SeatHeaterRearLeft",
    "CAR_SEAT_REAR_LEFT_BACK": "SeatHeaterRearLeftBack",
    "CAR_SEAT_REAR_CENTER": "SeatHeaterRearCenter",
    "CAR_SEAT_REAR_RIGHT": "SeatHeaterRearRight",
    "CAR_SEAT_REAR_RIGHT_BACK": "SeatHeaterRearRightBack",
    "CAR_SEAT_THIRD_ROW_LEFT": "SeatHeaterThirdRowLeft",
    "CAR_SEAT_THIRD_ROW_RIGHT": "SeatHeaterThirdRowRight",
}
_COOLER_SEATS = {
    "HvacSeatCoolerPosition_FrontLeft": "ClimateSeatCoolingFrontLeft",
    "HvacSeatCoolerPosition_FrontRight": "ClimateSeatCoolingFrontRight",
}
_COOLER_LEVELS = {
    "HvacSeatCoolerLevel_Off": 0,
    "HvacSeatCoolerLevel_Low": 1,
    "HvacSeatCoolerLevel_Med": 2,
    "HvacSeatCoolerLevel_High": 3,
}
_STW_LEVELS = {"StwHeatLevel_Off": 0, "StwHeatLevel_Low": 1, "StwHeatLevel_High": 3}
_KEEPER_MODES = {
    "ClimateKeeperAction_Off": "ClimateKeeperModeStateOff",
    "ClimateKeeperAction_On": "ClimateKeeperModeStateOn",
    "ClimateKeeperAction_Dog": "ClimateKeeperModeStateDog",
    "ClimateKeeperAction_Camp": "ClimateKeeperModeStateParty",
}
_COP_TEMPS = {
    "CopActivationTempLow": "ClimateOverheatProtectionTempLimitLow",
    "CopActivationTempMedium": "ClimateOverheatProtectionTempLimitMedium",
    "CopActivationTempHigh": "ClimateOverheatProtectionTempLimitHigh",
}


def _hvac(v: SimVehicle, on: bool) -> None:
    v.sig["HvacPower"] = "HvacPowerStateOn" if on else "HvacPowerStateOff"
    if not on:
        v.sig.update(
            PreconditioningMax=False,
            DefrostMode="DefrostModeStateOff",
            BioweaponMode=False,
            ClimateKeeperMode="ClimateKeeperModeStateOff",
        )


def hvac_auto(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """auto_conditioning_start / auto_conditioning_stop."""
    _hvac(v, bool(msg.power_on))
    v.sig["HvacAutoMode"] = (
        "HvacAutoModeStateOverride" if msg.manual_override else "HvacAutoModeStateOn"
    )
    return None


def set_temps(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_temps: driver and passenger setpoints in °C, clamped to 15-28."""
    driver = msg.driver_temp_celsius or msg.absolute_celsius
    passenger = msg.passenger_temp_celsius or driver
    if not driver:
        return "invalid_value"
    v.sig["HvacLeftTemperatureRequest"] = round(clamp_setpoint(float(driver)), 1)
    v.sig["HvacRightTemperatureRequest"] = round(clamp_setpoint(float(passenger)), 1)
    return None


def seat_heaters(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """remote_seat_heater_request: one or more seats, levels 0-3."""
    updates: dict[str, int] = {}
    for item in msg.hvacSeatHeaterAction:
        signal = _SEATS.get(str(item.WhichOneof("seat_position")))
        level = _SEAT_LEVELS.get(str(item.WhichOneof("seat_heater_level")))
        if signal is None or level is None:
            return "invalid_value"
        rear = "Rear" in signal
        if (rear and not v.model.rear_seat_heaters) or (
            "ThirdRow" in signal and not v.model.has_third_row_heaters
        ):
            return "not_supported"
        updates[signal] = level
    for signal, level in updates.items():
        v.sig[signal] = level
        # A manual level overrides auto seat climate on that front seat, as in the car.
        for side in ("Left", "Right"):
            if signal == f"SeatHeater{side}":
                v.sig[f"AutoSeatClimate{side}"] = False
    return None


def seat_coolers(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """remote_seat_cooler_request: front seats, levels 0-3."""
    if not v.model.has_seat_cooling:
        return "not_supported"
    for item in msg.hvacSeatCoolerAction:
        pos = car_server_pb2.HvacSeatCoolerActions.HvacSeatCoolerPosition_E.Name(item.seat_position)
        lvl = car_server_pb2.HvacSeatCoolerActions.HvacSeatCoolerLevel_E.Name(
            item.seat_cooler_level
        )
        if pos not in _COOLER_SEATS or lvl not in _COOLER_LEVELS:
            return "invalid_value"
        v.sig[_COOLER_SEATS[pos]] = _COOLER_LEVELS[lvl]
    return None


def auto_seat_climate(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """remote_auto_seat_climate_request."""
    for seat in msg.carseat:
        pos = car_server_pb2.AutoSeatClimateAction.AutoSeatPosition_E.Name(seat.seat_position)
        side = {"AutoSeatPosition_FrontLeft": "Left", "AutoSeatPosition_FrontRight": "Right"}.get(
            pos
        )
        if side is None:
            return "invalid_value"
        v.sig[f"AutoSeatClimate{side}"] = bool(seat.on)
    return None


def _stw(v: SimVehicle, level: int) -> None:
    v.sig["HvacSteeringWheelHeatLevel"] = level
    v.sig["SteeringWheelHeater"] = level > 0
    v.sig["HvacSteeringWheelHeatAuto"] = False


def stw_heater(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """remote_steering_wheel_heater_request."""
    _stw(v, 3 if msg.power_on else 0)
    return None


def stw_level(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """remote_steering_wheel_heat_level_request."""
    name = common_pb2.StwHeatLevel.Name(msg.stw_heat_level)
    if name not in _STW_LEVELS:
        return "invalid_value"
    _stw(v, _STW_LEVELS[name])
    return None


def stw_auto(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """remote_auto_steering_wheel_heat_climate_request."""
    v.sig["HvacSteeringWheelHeatAuto"] = bool(msg.on)
    return None


def bioweapon(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_bioweapon_mode: runs the HVAC with HEPA filtration at full fan."""
    v.sig["BioweaponMode"] = bool(msg.on)
    if msg.on:
        v.sig["HvacPower"] = "HvacPowerStateOn"
    return None


def climate_keeper(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_climate_keeper_mode: keep/dog/camp hold the HVAC on; off stops it."""
    name = car_server_pb2.HvacClimateKeeperAction.ClimateKeeperAction_E.Name(
        msg.ClimateKeeperAction
    )
    mode = _KEEPER_MODES.get(name)
    if mode is None:
        return "invalid_value"
    if mode == "ClimateKeeperModeStateOff":
        _hvac(v, False)
    else:
        v.sig["HvacPower"] = "HvacPowerStateOn"
        v.sig["ClimateKeeperMode"] = mode
    return None


def cabin_overheat(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_cabin_overheat_protection."""
    mode = "Off" if not msg.on else ("FanOnly" if msg.fan_only else "On")
    v.sig["CabinOverheatProtectionMode"] = f"CabinOverheatProtectionModeState{mode}"
    return None


def cop_temp(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_cop_temp: 0 low (30 °C), 1 medium (35 °C), 2 high (40 °C)."""
    name = vehicle_pb2.ClimateState.CopActivationTemp.Name(msg.copActivationTemp)
    if name not in _COP_TEMPS:
        return "invalid_value"
    v.sig["CabinOverheatProtectionTemperatureLimit"] = _COP_TEMPS[name]
    return None


def preconditioning_max(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_preconditioning_max: max heat and defrost, as before a frosty departure."""
    v.sig["PreconditioningMax"] = bool(msg.on)
    if msg.on:
        v.sig["HvacPower"] = "HvacPowerStateOn"
        v.sig["DefrostMode"] = "DefrostModeStateMax"
    else:
        v.sig["DefrostMode"] = "DefrostModeStateOff"
    return None


HANDLERS: dict[str, Handler] = {
    "hvacAutoAction": hvac_auto,
    "hvacTemperatureAdjustmentAction": set_temps,
    "hvacSeatHeaterActions": seat_heaters,
    "hvacSeatCoolerActions": seat_coolers,
    "autoSeatClimateAction": auto_seat_climate,
    "hvacSteeringWheelHeaterAction": stw_heater,
    "stwHeatLevelAction": stw_level,
    "autoStwHeatAction": stw_auto,
    "hvacBioweaponModeAction": bioweapon,
    "hvacClimateKeeperAction": climate_keeper,
    "setCabinOverheatProtectionAction": cabin_overheat,
    "setCopTempAction": cop_temp,
    "hvacSetPreconditioningMaxAction": preconditioning_max,
}
