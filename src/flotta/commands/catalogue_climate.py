"""Climate commands: HVAC, temperatures, seats and steering wheel (all Infotainment, C)."""

from __future__ import annotations

from flotta.commands import encode_infotainment as ei
from flotta.commands.builders import info
from flotta.commands.params import boolean, integer, number
from flotta.commands.spec import CommandSpec

_SEAT_HEATER_DOC = (
    "0 front left, 1 front right, 2 rear left, 3 rear left back, 4 rear center, "
    "5 rear right, 6 rear right back, 7 third row left, 8 third row right"
)

# fmt: off
SPECS: tuple[CommandSpec, ...] = (
    info("auto_conditioning_start", "Start climate control.", "hvacAutoAction",
         ei.fixed("hvacAutoAction", power_on=True)),
    info("auto_conditioning_stop", "Stop climate control.", "hvacAutoAction",
         ei.fixed("hvacAutoAction", power_on=False)),
    info("set_temps", "Set driver and passenger temperatures in Celsius.",
         "hvacTemperatureAdjustmentAction", ei.set_temps,
         number("driver_temp", 15.0, 28.0, required=True, lenient=True),
         number("passenger_temp", 15.0, 28.0, lenient=True)),
    info("set_preconditioning_max", "Turn max defrost on or off.",
         "hvacSetPreconditioningMaxAction",
         ei.mapped("hvacSetPreconditioningMaxAction", on="on",
                   manual_override="manual_override"),
         boolean("on", required=True, lenient=True), boolean("manual_override")),
    info("set_bioweapon_mode", "Turn Bioweapon Defense Mode on or off.",
         "hvacBioweaponModeAction",
         ei.mapped("hvacBioweaponModeAction", on="on", manual_override="manual_override"),
         boolean("on", required=True), boolean("manual_override", required=True)),
    info("set_cabin_overheat_protection", "Configure cabin overheat protection.",
         "setCabinOverheatProtectionAction",
         ei.mapped("setCabinOverheatProtectionAction", on="on", fan_only="fan_only"),
         boolean("on", required=True), boolean("fan_only")),
    info("set_cop_temp", "Set the cabin overheat protection temperature.",
         "setCopTempAction", ei.cop_temp,
         integer("cop_temp", 0, 2, required=True, doc="0 low, 1 medium, 2 high")),
    info("set_climate_keeper_mode", "Set climate keeper mode.", "hvacClimateKeeperAction",
         ei.mapped("hvacClimateKeeperAction", ClimateKeeperAction="climate_keeper_mode",
                   manual_override="manual_override"),
         integer("climate_keeper_mode", 0, 3, required=True,
                 doc="0 off, 1 keep, 2 dog, 3 camp"),
         boolean("manual_override")),
    info("remote_seat_heater_request", "Set one seat heater level.", "hvacSeatHeaterActions",
         ei.seat_heater,
         integer("seat_position", 0, 8, required=True, aliases=("heater",),
                 doc=_SEAT_HEATER_DOC),
         integer("level", 0, 3, required=True, doc="0 off, 1 low, 2 medium, 3 high")),
    info("remote_seat_cooler_request", "Set one front seat cooler level.",
         "hvacSeatCoolerActions", ei.seat_cooler,
         integer("seat_position", 1, 2, required=True, doc="1 front left, 2 front right"),
         integer("seat_cooler_level", 0, 4, required=True,
                 doc="protocol values as sent by the proxy: 1 off, 2 low, 3 medium, 4 high")),
    info("remote_auto_seat_climate_request", "Turn automatic seat climate on or off.",
         "autoSeatClimateAction", ei.auto_seat_climate,
         integer("auto_seat_position", 0, 2, required=True,
                 doc="1 front left, 2 front right (0 = unknown, sent by teslajsonpy)"),
         boolean("auto_climate_on", required=True)),
    info("remote_auto_steering_wheel_heat_climate_request",
         "Turn automatic steering wheel heat on or off.", "autoStwHeatAction",
         ei.mapped("autoStwHeatAction", on="on"), boolean("on", required=True)),
    info("remote_steering_wheel_heater_request", "Turn the steering wheel heater on or off.",
         "hvacSteeringWheelHeaterAction",
         ei.mapped("hvacSteeringWheelHeaterAction", power_on="on"),
         boolean("on", required=True)),
    info("remote_steering_wheel_heat_level_request", "Set the steering wheel heat level.",
         "stwHeatLevelAction", ei.steering_wheel_level,
         integer("level", 0, 3, required=True, doc="0 off, 1 low, 3 high (2 = high)")),
)
# fmt: on
