"""Media, navigation, windows, software, calendar and power-mode commands (scope C)."""

from __future__ import annotations

from flotta.commands import encode_infotainment as ei
from flotta.commands import encode_schedules as es
from flotta.commands.builders import info
from flotta.commands.params import (
    INT32_MAX,
    boolean,
    choice,
    integer,
    latitude,
    longitude,
    number,
    share,
    string,
)
from flotta.commands.spec import CommandSpec

_ORDER = integer("order", 0, 3, doc="0 unknown, 1 replace, 2 prepend, 3 append")
_NAV_SHARE = (
    share("value", doc='{"android.intent.extra.TEXT": "<address or link>"}'),
    string("type", doc="share_ext_content_raw"),
    string("locale"),
    string("timestamp_ms"),
)

# fmt: off
_MEDIA: tuple[CommandSpec, ...] = (
    info("media_toggle_playback", "Toggle play/pause.", "mediaPlayAction"),
    info("media_next_track", "Skip to the next track.", "mediaNextTrack"),
    info("media_prev_track", "Go back to the previous track.", "mediaPreviousTrack"),
    info("media_next_fav", "Skip to the next favourite.", "mediaNextFavorite"),
    info("media_prev_fav", "Go back to the previous favourite.", "mediaPreviousFavorite"),
    info("media_volume_up", "Turn the volume up one step.", "mediaUpdateVolume",
         ei.volume_step(1), origin="sdk"),
    info("media_volume_down", "Turn the volume down one step.", "mediaUpdateVolume",
         ei.volume_step(-1)),
    info("adjust_volume", "Set the media volume (0-11).", "mediaUpdateVolume",
         ei.mapped("mediaUpdateVolume", volume_absolute_float="volume"),
         number("volume", 0.0, 11.0, required=True)),
    info("remote_boombox", "Play a sound through the external speaker.", "boomboxAction",
         ei.mapped("boomboxAction", sound="sound"),
         integer("sound", 0, INT32_MAX, default=0, doc="0 fart, 2000 locate ping")),
)

_NAVIGATION: tuple[CommandSpec, ...] = (
    info("navigation_gps_request", "Navigate to coordinates.", "navigationGpsRequest",
         es.navigation_gps, latitude(required=True), longitude(required=True), _ORDER),
    info("navigation_sc_request", "Navigate to a Supercharger.",
         "navigationSuperchargerRequest", es.navigation_supercharger,
         integer("id", 0, 2**63 - 1, doc="Supercharger id"), _ORDER),
    info("navigation_waypoints_request", "Navigate through Google place ids.",
         "navigationWaypointsRequest",
         ei.mapped("navigationWaypointsRequest", waypoints="waypoints"),
         string("waypoints", required=True, min_len=1, doc="refId:<place id>,refId:...")),
    info("navigation_request", "Share an address or link with the vehicle.",
         "navigationRequest", es.navigation_share, *_NAV_SHARE),
    info("share", "Share an address or link with the vehicle (tescmd name).",
         "navigationRequest", es.navigation_share, *_NAV_SHARE, origin="tescmd",
         alias_of="navigation_request"),
    info("trigger_homelink", "Trigger HomeLink near the given location.",
         "vehicleControlTriggerHomelinkAction", ei.trigger_homelink,
         latitude(required=True), longitude(required=True), string("token")),
)

_BODY_AND_SOFTWARE: tuple[CommandSpec, ...] = (
    info("window_control", "Vent or close all windows.", "vehicleControlWindowAction",
         ei.void_choice("vehicleControlWindowAction", "command", vent="vent", close="close"),
         choice("command", "vent", "close", required=True),
         latitude(), longitude(aliases=("long",))),
    info("sun_roof_control", "Move the panoramic sunroof.",
         "vehicleControlSunroofOpenCloseAction", ei.sun_roof,
         choice("state", "vent", "close", "open", "stop", required=True)),
    info("schedule_software_update", "Install the pending update after a delay.",
         "vehicleControlScheduleSoftwareUpdateAction",
         ei.mapped("vehicleControlScheduleSoftwareUpdateAction", offset_sec="offset_sec"),
         integer("offset_sec", 0, INT32_MAX, required=True)),
    info("cancel_software_update", "Cancel a scheduled software update.",
         "vehicleControlCancelSoftwareUpdateAction"),
    info("set_vehicle_name", "Rename the vehicle.", "setVehicleNameAction",
         ei.mapped("setVehicleNameAction", vehicleName="vehicle_name"),
         string("vehicle_name", required=True, min_len=1, max_len=100)),
    info("upcoming_calendar_entries", "Send upcoming calendar entries.",
         "uiSetUpcomingCalendarEntries",
         ei.mapped("uiSetUpcomingCalendarEntries", calendar_data="calendar_data"),
         string("calendar_data", required=True)),
    info("update_calendar_entries", "Send calendar entries (2023 name).",
         "uiSetUpcomingCalendarEntries",
         ei.mapped("uiSetUpcomingCalendarEntries", calendar_data="calendar_data"),
         string("calendar_data", required=True), origin="docs-2023",
         alias_of="upcoming_calendar_entries"),
    info("take_drivenote", "Save a drive note.", "takeDrivenoteAction",
         ei.mapped("takeDrivenoteAction", note="note"),
         string("note", required=True, max_len=80), origin="docs-2023"),
    info("set_low_power_mode", "Turn low power mode on or off.", "setLowPowerModeAction",
         ei.mapped("setLowPowerModeAction", low_power_mode="enable"),
         boolean("enable", required=True), origin="tescmd"),
    info("keep_accessory_power_mode", "Keep accessory power on or off.",
         "setKeepAccessoryPowerModeAction",
         ei.mapped("setKeepAccessoryPowerModeAction", keep_accessory_power_mode="enable"),
         boolean("enable", required=True), origin="tescmd"),
)
# fmt: on

SPECS: tuple[CommandSpec, ...] = _MEDIA + _NAVIGATION + _BODY_AND_SOFTWARE
