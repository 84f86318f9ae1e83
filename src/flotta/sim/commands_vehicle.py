"""Vehicle-control command handlers (fleet-api.md §4.4): security, PINs, media, navigation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tesla_protocol.command import car_server_pb2

from flotta.sim.route import distance_mi

if TYPE_CHECKING:
    from flotta.sim.vehicle_state import SimVehicle

Handler = Callable[["SimVehicle", Any, car_server_pb2.Response], str | None]

ROAD_FACTOR = 1.3  # road distance over great-circle distance
NAV_AVG_MPH = 35.0
MIN_LIMIT_MPH, MAX_LIMIT_MPH = 50.0, 90.0
TRACKS = ("Flotta FM", "Regen Braking Blues", "Ludicrous Mode", "Over the Air", "Sentry Lullaby")


def _pin_ok(pin: str) -> bool:
    return len(pin) == 4 and pin.isdigit()


def sentry(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_sentry_mode."""
    v.sig["SentryMode"] = "SentryModeStateArmed" if msg.on else "SentryModeStateOff"
    return None


def valet(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_valet_mode: the first PIN given becomes the valet PIN; turning off must match it."""
    password = str(msg.password)
    if msg.on:
        if password and v.valet_pin is None:
            if not _pin_ok(password):
                return "invalid_pin"
            v.valet_pin = password
        v.sig["ValetModeEnabled"] = True
    else:
        if v.valet_pin is not None and password and password != v.valet_pin:
            return "incorrect pin"
        v.sig["ValetModeEnabled"] = False
    v.sig["ValetPinNeeded"] = v.valet_pin is None
    return None


def reset_valet_pin(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """reset_valet_pin: only with valet mode off."""
    if v.sig["ValetModeEnabled"]:
        return "valet_mode_active"
    v.valet_pin = None
    v.sig["ValetPinNeeded"] = True
    return None


def speed_limit(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """speed_limit_activate / speed_limit_deactivate: the first PIN used becomes the PIN."""
    pin = str(msg.pin)
    if not _pin_ok(pin):
        return "invalid_pin"
    if v.speed_limit_pin is None and msg.activate:
        v.speed_limit_pin = pin
    elif pin != v.speed_limit_pin:
        return "incorrect pin"
    v.sig["SpeedLimitMode"] = bool(msg.activate)
    v.sig["SpeedLimitPinSet"] = v.speed_limit_pin is not None
    return None


def speed_limit_set(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """speed_limit_set_limit: 50-90 mph."""
    limit = float(msg.limit_mph)
    if not MIN_LIMIT_MPH <= limit <= MAX_LIMIT_MPH:
        return "invalid_value"
    v.sig["CurrentLimitMph"] = limit
    return None


def speed_limit_clear_pin(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """speed_limit_clear_pin: needs the current PIN."""
    if v.speed_limit_pin is not None and str(msg.pin) != v.speed_limit_pin:
        return "incorrect pin"
    return speed_limit_clear_admin(v, msg, resp)


def speed_limit_clear_admin(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """speed_limit_clear_pin_admin: clears PIN and limit without the PIN."""
    v.speed_limit_pin = None
    v.sig["SpeedLimitMode"] = False
    v.sig["SpeedLimitPinSet"] = False
    return None


def pin_to_drive(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_pin_to_drive."""
    password = str(msg.password)
    if msg.on:
        if not _pin_ok(password):
            return "invalid_pin"
        v.pin_to_drive = password
        v.sig["PinToDriveEnabled"] = True
        return None
    if v.pin_to_drive is not None and password and password != v.pin_to_drive:
        return "incorrect pin"
    v.sig["PinToDriveEnabled"] = False
    return None


def reset_pin_to_drive(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """reset_pin_to_drive_pin / clear_pin_to_drive_admin."""
    v.pin_to_drive = None
    v.sig["PinToDriveEnabled"] = False
    return None


def guest_mode(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """guest_mode."""
    v.sig["GuestModeEnabled"] = bool(msg.GuestModeActive)
    return None


def vehicle_name(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """set_vehicle_name: refused in guest mode."""
    if v.sig["GuestModeEnabled"]:
        return "guest_mode_active"
    v.sig["VehicleName"] = str(msg.vehicleName)
    return None


def media_toggle(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """media_toggle_playback."""
    playing = v.sig["MediaPlaybackStatus"] == "MediaStatusPlaying"
    v.sig["MediaPlaybackStatus"] = "MediaStatusPaused" if playing else "MediaStatusPlaying"
    return None


def media_volume(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """adjust_volume / media_volume_up / media_volume_down."""
    top = float(v.sig["MediaAudioVolumeMax"])
    if msg.WhichOneof("media_volume") == "volume_absolute_float":
        volume = float(msg.volume_absolute_float)
    else:
        step = float(v.sig["MediaAudioVolumeIncrement"])
        volume = float(v.sig["MediaAudioVolume"]) + step * int(msg.volume_delta)
    v.sig["MediaAudioVolume"] = round(max(0.0, min(top, volume)), 3)
    return None


def _track(offset: int) -> Handler:
    def skip(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
        title = str(v.sig["MediaNowPlayingTitle"])
        index = TRACKS.index(title) if title in TRACKS else 0
        v.sig["MediaNowPlayingTitle"] = TRACKS[(index + offset) % len(TRACKS)]
        v.sig["MediaPlaybackStatus"] = "MediaStatusPlaying"
        return None

    return skip


def _navigate_to(v: SimVehicle, name: str, lat: float, lon: float) -> None:
    miles = distance_mi(v.latitude, v.longitude, lat, lon) * ROAD_FACTOR
    need = miles * v.model.wh_per_mi / 1000.0 / v.model.battery_kwh * 100.0
    v.sig.update(
        DestinationName=name,
        DestinationLocation={"latitude": lat, "longitude": lon},
        MilesToArrival=round(miles, 2),
        MinutesToArrival=round(miles / NAV_AVG_MPH * 60.0, 1),
        RouteTrafficMinutesDelay=0.0,
        ExpectedEnergyPercentAtTripArrival=round(max(0.0, v.soc * 100.0 - need), 1),
    )


def _near(v: SimVehicle, seed: str) -> tuple[float, float]:
    """A deterministic pseudo-location a few miles away, for destinations given by name."""
    h = sum(ord(c) * (i + 1) for i, c in enumerate(seed))
    return v.latitude + ((h % 200) - 100) / 2000.0, v.longitude + ((h // 200 % 200) - 100) / 2000.0


def nav_request(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """navigation_request (share an address)."""
    destination = str(msg.destination)
    _navigate_to(v, destination, *_near(v, destination))
    return None


def nav_gps(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """navigation_gps_request."""
    lat, lon = float(msg.lat), float(msg.lon)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return "invalid_value"
    _navigate_to(v, f"{lat:.5f}, {lon:.5f}", lat, lon)
    return None


def nav_supercharger(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """navigation_sc_request."""
    name = f"Supercharger {int(msg.id)}"
    _navigate_to(v, name, *_near(v, name))
    return None


def nav_waypoints(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """navigation_waypoints_request: `refId:<place>,refId:<place>`; the last is the destination."""
    places = [p.split(":", 1)[-1] for p in str(msg.waypoints).split(",") if p.strip()]
    if not places:
        return "invalid_value"
    _navigate_to(v, places[-1], *_near(v, places[-1]))
    return None


def homelink(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """trigger_homelink."""
    if int(v.sig["HomelinkDeviceCount"]) == 0:
        return "not_supported"
    return None


def sunroof(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """sun_roof_control: vent, close, open or an absolute level."""
    if not v.model.has_sunroof:
        return "not_supported"
    which = msg.WhichOneof("action")
    if which is None and msg.WhichOneof("sunroof_level") == "absolute_level":
        percent = max(0, min(100, int(msg.absolute_level)))
    else:
        percent = {"vent": 15, "close": 0, "open": 100}.get(str(which), -1)
    if percent < 0:
        return "invalid_value"
    state = "closed" if percent == 0 else "vent" if percent <= 15 else "open"
    v.sig.update(SunroofPercentOpen=percent, SunroofState=state)
    return None


def windows(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """window_control: vent or close all four windows."""
    which = msg.WhichOneof("action")
    if which not in ("vent", "close"):
        return "invalid_value"
    state = "WindowStatePartiallyOpen" if which == "vent" else "WindowStateClosed"
    for w in ("FdWindow", "FpWindow", "RdWindow", "RpWindow"):
        v.sig[w] = state
    return None


def parked_only(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """flash_lights, honk_horn, remote_boombox: park required."""
    return "vehicle_moving" if v.driving else None


def remote_start(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """remote_start_drive (infotainment form)."""
    v.sig["RemoteStartActive"] = True
    return None


def schedule_update(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """schedule_software_update: a no-op when no update is waiting."""
    if v.sig["SoftwareUpdateStatus"] in ("available", "scheduled"):
        v.sig["SoftwareUpdateStatus"] = "scheduled"
        start = int(v.now.timestamp()) + max(0, int(msg.offset_sec))
        v.sig["SoftwareUpdateScheduledStartTime"] = start
    return None


def cancel_update(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """cancel_software_update: possible only before installation begins."""
    if v.sig["SoftwareUpdateStatus"] == "installing":
        return "installing"
    if v.sig["SoftwareUpdateStatus"] == "scheduled":
        v.sig["SoftwareUpdateStatus"] = "available"
        v.sig["SoftwareUpdateScheduledStartTime"] = None
    return None


def drive_note(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """take_drivenote: at most 80 characters."""
    v.sig["LastDriveNote"] = str(msg.note)[:80]
    return None


def erase_user_data(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """erase_user_data: needs the car parked and in guest mode."""
    if v.driving:
        return "vehicle_moving"
    if not v.sig["GuestModeEnabled"]:
        return "not_in_guest_mode"
    v.sig.update(ChargeSchedules=[], PreconditionSchedules=[], LastDriveNote="", DestinationName="")
    return None


def accept(v: SimVehicle, msg: Any, resp: car_server_pb2.Response) -> str | None:
    """Commands the car accepts without visible state (calendar sync, route, etc.)."""
    return None


HANDLERS: dict[str, Handler] = {
    "vehicleControlSetSentryModeAction": sentry,
    "vehicleControlSetValetModeAction": valet,
    "vehicleControlResetValetPinAction": reset_valet_pin,
    "drivingSpeedLimitAction": speed_limit,
    "drivingSetSpeedLimitAction": speed_limit_set,
    "drivingClearSpeedLimitPinAction": speed_limit_clear_pin,
    "drivingClearSpeedLimitPinAdminAction": speed_limit_clear_admin,
    "vehicleControlSetPinToDriveAction": pin_to_drive,
    "vehicleControlResetPinToDriveAction": reset_pin_to_drive,
    "vehicleControlResetPinToDriveAdminAction": reset_pin_to_drive,
    "guestModeAction": guest_mode,
    "setVehicleNameAction": vehicle_name,
    "mediaPlayAction": media_toggle,
    "mediaUpdateVolume": media_volume,
    "mediaNextFavorite": _track(1),
    "mediaPreviousFavorite": _track(-1),
    "mediaNextTrack": _track(1),
    "mediaPreviousTrack": _track(-1),
    "navigationRequest": nav_request,
    "navigationGpsRequest": nav_gps,
    "navigationSuperchargerRequest": nav_supercharger,
    "navigationWaypointsRequest": nav_waypoints,
    "navigationRouteAction": accept,
    "vehicleControlTriggerHomelinkAction": homelink,
    "vehicleControlSunroofOpenCloseAction": sunroof,
    "vehicleControlWindowAction": windows,
    "vehicleControlFlashLightsAction": parked_only,
    "vehicleControlHonkHornAction": parked_only,
    "boomboxAction": parked_only,
    "remoteStartDrive": remote_start,
    "vehicleControlScheduleSoftwareUpdateAction": schedule_update,
    "vehicleControlCancelSoftwareUpdateAction": cancel_update,
    "uiSetUpcomingCalendarEntries": accept,
    "takeDrivenoteAction": drive_note,
    "eraseUserDataAction": erase_user_data,
}
