"""vehicle_state, closures and schedule sub-objects of `vehicle_data` (fleet-api.md §5.2)."""

from __future__ import annotations

from typing import Any

from flotta.vehicles.objects import API_VERSION

INVALID = "<invalid>"


class MirrorReader:
    """Typed reads from the mirror with Tesla's fallbacks for missing signals."""

    def __init__(self, mirror: dict[str, Any]) -> None:
        self.m = mirror

    def get(self, name: str, default: Any = None) -> Any:
        value = self.m.get(name)
        return default if value is None else value

    def num(self, name: str, default: float = 0.0) -> float:
        return float(self.get(name, default))

    def whole(self, name: str, default: int = 0) -> int:
        return round(float(self.get(name, default)))

    def flag(self, name: str, default: bool = False) -> bool:
        return bool(self.get(name, default))

    def enum(self, name: str, prefix: str, default: str = INVALID) -> str:
        """Enum name without its type prefix; Unknown/SNA become Tesla's `<invalid>`."""
        value = self.get(name)
        if not isinstance(value, str):
            return default
        short = value.removeprefix(prefix)
        return default if short in ("Unknown", "SNA", "") else short


_WINDOW = {"WindowStatePartiallyOpen": 1, "WindowStateOpened": 2}

_DISPLAY_STATE = {
    "DisplayStateOff": 0,
    "DisplayStateDim": 1,
    "DisplayStateAccessory": 2,
    "DisplayStateOn": 2,
    "DisplayStateDriving": 2,
    "DisplayStateCharging": 3,
    "DisplayStateLock": 4,
    "DisplayStateSentry": 7,
    "DisplayStateDog": 8,
    "DisplayStateEntertainment": 9,
}


def _door(doors: dict[str, Any], key: str) -> int:
    return 1 if doors.get(key) else 0


def closures(r: MirrorReader) -> dict[str, Any]:
    """Doors, trunks, windows, locks, sunroof and tonneau in vehicle_state's REST names."""
    doors = r.get("DoorState", {})
    percent = r.whole("SunroofPercentOpen")
    out: dict[str, Any] = {
        "df": _door(doors, "DriverFront"),
        "dr": _door(doors, "DriverRear"),
        "pf": _door(doors, "PassengerFront"),
        "pr": _door(doors, "PassengerRear"),
        "ft": _door(doors, "TrunkFront"),
        "rt": _door(doors, "TrunkRear"),
        "fd_window": _WINDOW.get(str(r.get("FdWindow")), 0),
        "fp_window": _WINDOW.get(str(r.get("FpWindow")), 0),
        "rd_window": _WINDOW.get(str(r.get("RdWindow")), 0),
        "rp_window": _WINDOW.get(str(r.get("RpWindow")), 0),
        "locked": r.flag("Locked"),
        "is_user_present": r.flag("IsUserPresent"),
        "sun_roof_state": r.get("SunroofState", "unknown"),
        "sun_roof_percent_open": percent,
        "vehicle_state_sun_roof_percent_open": percent,
    }
    tonneau = r.enum("TonneauPosition", "TonneauPositionState")
    if tonneau not in (INVALID, "Invalid"):
        out["tonneau_state"] = tonneau.lower()
        out["tonneau_percent_open"] = r.whole("TonneauOpenPercent")
    return out


def vehicle_state(r: MirrorReader, config: dict[str, Any]) -> dict[str, Any]:
    """`vehicle_state`: closures, security, media, software update and TPMS."""
    sentry = r.get("SentryMode", "SentryModeStateOff")
    out: dict[str, Any] = {
        "api_version": API_VERSION,
        "autopark_state_v3": "standby",
        "autopark_style": "dead_man",
        "last_autopark_error": "no_error",
        "calendar_supported": True,
        "car_version": r.get("Version", ""),
        "center_display_state": _DISPLAY_STATE.get(str(r.get("CenterDisplay")), 0),
        "dashcam_clip_save_available": True,
        "dashcam_state": "Recording" if sentry != "SentryModeStateOff" else "Unavailable",
        "feature_bitmask": "fbdffbff,187f",
        "homelink_device_count": r.whole("HomelinkDeviceCount"),
        "homelink_nearby": r.flag("HomelinkNearby"),
        "media_info": _media_info(r),
        "media_state": {"remote_control_enabled": True},
        "notifications_supported": True,
        "odometer": round(r.num("Odometer"), 6),
        "parsed_calendar_supported": True,
        "remote_start": r.flag("RemoteStartActive"),
        "remote_start_enabled": r.flag("RemoteStartEnabled", True),
        "remote_start_supported": True,
        "santa_mode": 0,
        "sentry_mode": sentry != "SentryModeStateOff",
        "sentry_mode_available": True,
        "service_mode": r.flag("ServiceMode"),
        "service_mode_plus": False,
        "smart_summon_available": True,
        "summon_standby_mode_enabled": False,
        "software_update": _software_update(r),
        "speed_limit_mode": {
            "active": r.flag("SpeedLimitMode"),
            "current_limit_mph": r.num("CurrentLimitMph", 85.0),
            "max_limit_mph": 90,
            "min_limit_mph": 50,
            "pin_code_set": r.flag("SpeedLimitPinSet"),
        },
        "valet_mode": r.flag("ValetModeEnabled"),
        "valet_pin_needed": r.flag("ValetPinNeeded", True),
        "vehicle_name": r.get("VehicleName", ""),
        "vehicle_self_test_progress": 0,
        "vehicle_self_test_requested": False,
        "webcam_available": True,
    }
    out.update(closures(r))
    out.update(_tpms(r))
    out.update(config.get("vehicle_state", {}))
    return out


def _media_info(r: MirrorReader) -> dict[str, Any]:
    return {
        "a2dp_source_name": "",
        "audio_volume": r.num("MediaAudioVolume"),
        "audio_volume_increment": r.num("MediaAudioVolumeIncrement", 0.333),
        "audio_volume_max": r.num("MediaAudioVolumeMax", 11.0),
        "media_playback_status": r.enum("MediaPlaybackStatus", "MediaStatus", "Stopped"),
        "now_playing_album": r.get("MediaNowPlayingAlbum", ""),
        "now_playing_artist": r.get("MediaNowPlayingArtist", ""),
        "now_playing_duration": r.whole("MediaNowPlayingDuration"),
        "now_playing_elapsed": r.whole("MediaNowPlayingElapsed"),
        "now_playing_source": r.get("MediaPlaybackSource", ""),
        "now_playing_station": r.get("MediaNowPlayingStation", ""),
        "now_playing_title": r.get("MediaNowPlayingTitle", ""),
    }


def _software_update(r: MirrorReader) -> dict[str, Any]:
    return {
        "download_perc": r.whole("SoftwareUpdateDownloadPercentComplete"),
        "expected_duration_sec": r.whole("SoftwareUpdateExpectedDurationMinutes") * 60,
        "install_perc": r.whole("SoftwareUpdateInstallationPercentComplete"),
        "scheduled_time_ms": (r.whole("SoftwareUpdateScheduledStartTime") * 1000) or None,
        "status": r.get("SoftwareUpdateStatus", ""),
        "version": r.get("SoftwareUpdateVersion", "") or " ",
    }


def _tpms(r: MirrorReader) -> dict[str, Any]:
    out: dict[str, Any] = {"tpms_rcp_front_value": 2.9, "tpms_rcp_rear_value": 2.9}
    for corner in ("fl", "fr", "rl", "rr"):
        cap = corner.capitalize()
        out[f"tpms_pressure_{corner}"] = r.get(f"TpmsPressure{cap}")
        out[f"tpms_last_seen_pressure_time_{corner}"] = r.get(f"TpmsLastSeenPressureTime{cap}")
        out[f"tpms_hard_warning_{corner}"] = False
        out[f"tpms_soft_warning_{corner}"] = False
    return out


def charge_schedule_data(r: MirrorReader) -> dict[str, Any]:
    """`charge_schedule_data`: the car's charge schedules (fw 2024.26+ model)."""
    keys = [
        *("id", "name", "days_of_week", "start_enabled", "start_time", "end_enabled"),
        *("end_time", "one_time", "enabled", "latitude", "longitude"),
    ]
    schedules = [{k: s.get(k) for k in keys} for s in r.get("ChargeSchedules", [])]
    return {
        "charge_schedules": schedules,
        "charge_schedule_window": {"enabled": False, "start_time": 0, "end_time": 0},
        "charge_buffer": 0,
        "max_num_charge_schedules": 10,
        "next_schedule": False,
        "show_schedule_complete_state": False,
    }


def preconditioning_schedule_data(r: MirrorReader) -> dict[str, Any]:
    """`preconditioning_schedule_data`: the car's departure preconditioning schedules."""
    keys = [
        *("id", "name", "days_of_week", "precondition_time", "one_time", "enabled"),
        *("latitude", "longitude"),
    ]
    schedules = [{k: s.get(k) for k in keys} for s in r.get("PreconditionSchedules", [])]
    return {
        "precondition_schedules": schedules,
        "preconditioning_schedule_window": {"enabled": False, "start_time": 0, "end_time": 0},
        "max_num_precondition_schedules": 10,
        "next_schedule": False,
    }
