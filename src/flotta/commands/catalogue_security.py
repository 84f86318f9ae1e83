"""Security commands: locks, closures, remote start, PINs, valet, speed limit, parental."""

from __future__ import annotations

from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import vcsec_pb2 as vc

from flotta.commands import encode_infotainment as ei
from flotta.commands import encode_vcsec as ev
from flotta.commands.builders import info, vcsec
from flotta.commands.params import boolean, choice, number, pin
from flotta.commands.spec import CommandSpec

_PARENTAL_SETTINGS = tuple(cs.ParentalControlsEnableSettingsAction.ParentalControlsSetting_E.keys())
_SPEED_LIMIT = "drivingSpeedLimitAction"
_PARENTAL = "parentalControlsAction"

# fmt: off
_VCSEC: tuple[CommandSpec, ...] = (
    vcsec("door_lock", "Lock the vehicle.", "RKEAction", ev.rke(vc.RKE_ACTION_LOCK)),
    vcsec("door_unlock", "Unlock the vehicle.", "RKEAction", ev.rke(vc.RKE_ACTION_UNLOCK)),
    vcsec("remote_start_drive", "Enable keyless driving.", "RKEAction",
          ev.rke(vc.RKE_ACTION_REMOTE_DRIVE)),
    vcsec("auto_secure_vehicle", "Lock and close the vehicle.", "RKEAction",
          ev.rke(vc.RKE_ACTION_AUTO_SECURE_VEHICLE), origin="unconfirmed"),
    vcsec("actuate_trunk", "Open or close the front or rear trunk.", "closureMoveRequest",
          ev.actuate_trunk, choice("which_trunk", "front", "rear", default="rear")),
    vcsec("open_tonneau", "Open the tonneau cover (Cybertruck).", "closureMoveRequest",
          ev.closure(tonneau=vc.CLOSURE_MOVE_TYPE_OPEN), origin="sdk"),
    vcsec("close_tonneau", "Close the tonneau cover (Cybertruck).", "closureMoveRequest",
          ev.closure(tonneau=vc.CLOSURE_MOVE_TYPE_CLOSE), origin="sdk"),
    vcsec("stop_tonneau", "Stop the tonneau cover (Cybertruck).", "closureMoveRequest",
          ev.closure(tonneau=vc.CLOSURE_MOVE_TYPE_STOP), origin="sdk"),
)

_INFOTAINMENT: tuple[CommandSpec, ...] = (
    info("flash_lights", "Flash the headlights.", "vehicleControlFlashLightsAction"),
    info("honk_horn", "Honk the horn.", "vehicleControlHonkHornAction"),
    info("set_sentry_mode", "Turn Sentry Mode on or off.", "vehicleControlSetSentryModeAction",
         ei.mapped("vehicleControlSetSentryModeAction", on="on"), boolean("on", required=True)),
    info("set_valet_mode", "Turn Valet Mode on or off.", "vehicleControlSetValetModeAction",
         ei.mapped("vehicleControlSetValetModeAction", on="on", password="password"),
         boolean("on", required=True), pin("password")),
    info("reset_valet_pin", "Clear the Valet Mode PIN.", "vehicleControlResetValetPinAction"),
    info("set_pin_to_drive", "Turn PIN to Drive on or off.",
         "vehicleControlSetPinToDriveAction",
         ei.mapped("vehicleControlSetPinToDriveAction", on="on", password="password"),
         boolean("on", required=True), pin("password")),
    info("reset_pin_to_drive_pin", "Remove the PIN to Drive PIN.",
         "vehicleControlResetPinToDriveAction"),
    info("clear_pin_to_drive_admin", "Turn off PIN to Drive as fleet manager or owner.",
         "vehicleControlResetPinToDriveAdminAction"),
    info("speed_limit_activate", "Activate Speed Limit Mode.", _SPEED_LIMIT,
         ei.mapped(_SPEED_LIMIT, {"activate": True}, pin="pin"), pin("pin", required=True)),
    info("speed_limit_deactivate", "Deactivate Speed Limit Mode.", _SPEED_LIMIT,
         ei.mapped(_SPEED_LIMIT, {"activate": False}, pin="pin"), pin("pin", required=True)),
    info("speed_limit_clear_pin", "Deactivate Speed Limit Mode and clear its PIN.",
         "drivingClearSpeedLimitPinAction",
         ei.mapped("drivingClearSpeedLimitPinAction", pin="pin"), pin("pin", required=True)),
    info("speed_limit_clear_pin_admin", "Clear the Speed Limit PIN as fleet manager or owner.",
         "drivingClearSpeedLimitPinAdminAction"),
    info("speed_limit_set_limit", "Set the Speed Limit Mode maximum speed.",
         "drivingSetSpeedLimitAction",
         ei.mapped("drivingSetSpeedLimitAction", limit_mph="limit_mph"),
         number("limit_mph", 50.0, 90.0, required=True)),
    info("guest_mode", "Turn Guest Mode on or off.", "guestModeAction", ei.guest_mode,
         boolean("enable", required=True)),
    info("erase_user_data", "Erase guest user data.", "eraseUserDataAction"),
    info("parental_controls_activate", "Activate parental controls.", _PARENTAL,
         ei.mapped(_PARENTAL, {"activate": True}, pin="pin"), pin("pin", required=True),
         origin="sdk"),
    info("parental_controls_deactivate", "Deactivate parental controls.", _PARENTAL,
         ei.mapped(_PARENTAL, {"activate": False}, pin="pin"), pin("pin", required=True),
         origin="sdk"),
    info("parental_controls_clear_pin", "Clear the parental controls PIN.",
         "parentalControlsClearPinAction",
         ei.mapped("parentalControlsClearPinAction", pin="pin"), pin("pin", required=True),
         origin="sdk"),
    info("parental_controls_clear_pin_admin", "Clear the parental controls PIN as admin.",
         "parentalControlsClearPinAdminAction", origin="sdk"),
    info("parental_controls_enable_setting", "Enable or disable one parental control.",
         "parentalControlsEnableSettingsAction", ei.parental_setting,
         choice("setting", *_PARENTAL_SETTINGS, required=True),
         boolean("enable", required=True), origin="sdk"),
    info("parental_controls_set_speed_limit", "Set the parental controls speed limit.",
         "parentalControlsSetSpeedLimitAction",
         ei.mapped("parentalControlsSetSpeedLimitAction", limit_mph="limit_mph"),
         number("limit_mph", 0.0, 200.0, required=True), origin="sdk"),
)
# fmt: on

SPECS: tuple[CommandSpec, ...] = _VCSEC + _INFOTAINMENT
