"""Encoders from validated parameters to ``car_server_pb2.Action`` (Infotainment domain).

Generic factories (``empty``, ``fixed``, ``mapped``) cover most commands; the functions below
them handle the ones whose REST parameters need translating into protocol enums or oneofs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import common_pb2 as cm
from tesla_protocol.command import vehicle_pb2 as vh

from flotta.commands.spec import Encoder

Params = Mapping[str, Any]

# remote_seat_heater_request seat_position 0..8 -> HvacSeatHeaterAction seat oneof member.
SEAT_HEATER_POSITIONS: tuple[str, ...] = (
    "CAR_SEAT_FRONT_LEFT",
    "CAR_SEAT_FRONT_RIGHT",
    "CAR_SEAT_REAR_LEFT",
    "CAR_SEAT_REAR_LEFT_BACK",
    "CAR_SEAT_REAR_CENTER",
    "CAR_SEAT_REAR_RIGHT",
    "CAR_SEAT_REAR_RIGHT_BACK",
    "CAR_SEAT_THIRD_ROW_LEFT",
    "CAR_SEAT_THIRD_ROW_RIGHT",
)
# remote_seat_heater_request level 0..3 -> HvacSeatHeaterAction level oneof member.
SEAT_HEATER_LEVELS: tuple[str, ...] = (
    "SEAT_HEATER_OFF",
    "SEAT_HEATER_LOW",
    "SEAT_HEATER_MED",
    "SEAT_HEATER_HIGH",
)
# remote_steering_wheel_heat_level_request level (docs: 0 off, 1 low, 3 high; 2 = high for
# clients that count the three settings 0..2) -> StwHeatLevel enum value.
STW_HEAT_LEVELS: tuple[cm.StwHeatLevel, ...] = (
    cm.StwHeatLevel_Off,
    cm.StwHeatLevel_Low,
    cm.StwHeatLevel_High,
    cm.StwHeatLevel_High,
)


def action(**fields: Any) -> cs.Action:
    """Wrap one ``VehicleAction`` oneof member into an ``Action``."""
    return cs.Action(vehicleAction=cs.VehicleAction(**fields))


def field_class(field: str) -> type[Any]:
    """Return the message class of a ``VehicleAction`` field."""
    return type(getattr(cs.VehicleAction(), field))


def empty(field: str) -> Encoder:
    """Build an encoder for a parameterless action."""
    cls = field_class(field)

    def encode(_: Params) -> cs.Action:
        return action(**{field: cls()})

    return encode


def fixed(field: str, **values: Any) -> Encoder:
    """Build an encoder whose message always carries the same attribute values."""
    cls = field_class(field)

    def encode(_: Params) -> cs.Action:
        return action(**{field: cls(**values)})

    return encode


def mapped(field: str, const: Mapping[str, Any] | None = None, /, **attrs: str) -> Encoder:
    """Build an encoder copying parameters into attributes (``attr="param"``) plus constants."""
    cls = field_class(field)
    fixed_values = dict(const or {})

    def encode(params: Params) -> cs.Action:
        values = {attr: params[name] for attr, name in attrs.items() if name in params}
        return action(**{field: cls(**fixed_values, **values)})

    return encode


def void_choice(field: str, param: str, **members: str) -> Encoder:
    """Build an encoder that sets the ``Void`` oneof member chosen by a string parameter."""
    cls = field_class(field)

    def encode(params: Params) -> cs.Action:
        return action(**{field: cls(**{members[params[param]]: cm.Void()})})

    return encode


def volume_step(delta: int) -> Encoder:
    """Build an encoder for ``media_volume_up`` / ``media_volume_down``."""
    return fixed("mediaUpdateVolume", volume_delta=delta)


def set_temps(params: Params) -> cs.Action:
    """Encode ``set_temps``; the passenger side follows the driver when omitted."""
    driver = params["driver_temp"]
    passenger = params.get("passenger_temp", driver)
    return action(
        hvacTemperatureAdjustmentAction=cs.HvacTemperatureAdjustmentAction(
            driver_temp_celsius=driver, passenger_temp_celsius=passenger
        )
    )


def seat_heater(params: Params) -> cs.Action:
    """Encode ``remote_seat_heater_request`` as one ``HvacSeatHeaterAction``."""
    one = cs.HvacSeatHeaterActions.HvacSeatHeaterAction(
        **{
            SEAT_HEATER_POSITIONS[params["seat_position"]]: cm.Void(),
            SEAT_HEATER_LEVELS[params["level"]]: cm.Void(),
        }
    )
    return action(hvacSeatHeaterActions=cs.HvacSeatHeaterActions(hvacSeatHeaterAction=[one]))


def seat_cooler(params: Params) -> cs.Action:
    """Encode ``remote_seat_cooler_request``; REST values are the protocol enum values."""
    one = cs.HvacSeatCoolerActions.HvacSeatCoolerAction(
        seat_cooler_level=params["seat_cooler_level"], seat_position=params["seat_position"]
    )
    return action(hvacSeatCoolerActions=cs.HvacSeatCoolerActions(hvacSeatCoolerAction=[one]))


def auto_seat_climate(params: Params) -> cs.Action:
    """Encode ``remote_auto_seat_climate_request`` for one seat."""
    seat = cs.AutoSeatClimateAction.CarSeat(
        on=params["auto_climate_on"], seat_position=params["auto_seat_position"]
    )
    return action(autoSeatClimateAction=cs.AutoSeatClimateAction(carseat=[seat]))


def steering_wheel_level(params: Params) -> cs.Action:
    """Encode ``remote_steering_wheel_heat_level_request``."""
    level = STW_HEAT_LEVELS[params["level"]]
    return action(stwHeatLevelAction=cs.StwHeatLevelAction(stw_heat_level=level))


def cop_temp(params: Params) -> cs.Action:
    """Encode ``set_cop_temp``: REST 0/1/2 are the protocol's Low/Medium/High (1/2/3)."""
    temp = params["cop_temp"] + 1
    return action(setCopTempAction=cs.SetCopTempAction(copActivationTemp=temp))


def guest_mode(params: Params) -> cs.Action:
    """Encode ``guest_mode``; the protocol reuses ``VehicleState.GuestMode``."""
    return action(guestModeAction=vh.VehicleState.GuestMode(GuestModeActive=params["enable"]))


def trigger_homelink(params: Params) -> cs.Action:
    """Encode ``trigger_homelink`` with the caller's location."""
    msg = cs.VehicleControlTriggerHomelinkAction(
        location=cm.LatLong(latitude=params["lat"], longitude=params["lon"])
    )
    if "token" in params:
        msg.token = params["token"]
    return action(vehicleControlTriggerHomelinkAction=msg)


def sun_roof(params: Params) -> cs.Action:
    """Encode ``sun_roof_control``; ``stop`` becomes a zero relative move."""
    state = params["state"]
    if state == "stop":
        msg = cs.VehicleControlSunroofOpenCloseAction(delta_level=0)
    else:
        msg = cs.VehicleControlSunroofOpenCloseAction(**{state: cm.Void()})
    return action(vehicleControlSunroofOpenCloseAction=msg)


def parental_setting(params: Params) -> cs.Action:
    """Encode ``parental_controls_enable_setting`` with the setting's enum value."""
    enum = cs.ParentalControlsEnableSettingsAction.ParentalControlsSetting_E
    msg = cs.ParentalControlsEnableSettingsAction(
        setting=enum.Value(params["setting"]), enable=params["enable"]
    )
    return action(parentalControlsEnableSettingsAction=msg)
