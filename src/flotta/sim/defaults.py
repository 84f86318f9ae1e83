"""Initial signal values and static configuration of a freshly built simulated vehicle."""

from __future__ import annotations

import copy
import random
from typing import Any

from flotta.sim.vehicle_models import VehicleModel

DEFAULT_HOME = (37.4925, -121.9447)  # Fremont factory car park
API_VERSION = 84
UPDATE_VERSION = "2026.44.1 0f1e2d3c4b5a"


BASE_SIGNALS: dict[str, Any] = {
    "ChargeLimitSoc": 80,
    "ChargePortColdWeatherMode": False,
    "ChargePortDoorOpen": False,
    "ScheduledChargingMode": "ScheduledChargingModeOff",
    "ScheduledChargingPending": False,
    "ScheduledChargingStartTime": None,
    "ScheduledChargingStartTimeMinutes": 0,
    "ScheduledDepartureTime": None,
    "ScheduledDepartureTimeMinutes": 0,
    "PreconditioningEnabled": False,
    "PreconditioningTimes": "all_week",
    "PreconditioningWeekdaysOnly": False,
    "OffPeakChargingEnabled": False,
    "OffPeakChargingTimes": "all_week",
    "OffPeakHoursEndTime": 360,
    "SuperchargerSessionTripPlanner": False,
    "MaxRangeChargeCounter": 0,
    "HvacLeftTemperatureRequest": 21.0,
    "HvacRightTemperatureRequest": 21.0,
    "HvacPower": "HvacPowerStateOff",
    "HvacAutoMode": "HvacAutoModeStateOn",
    "SeatHeaterLeft": 0,
    "SeatHeaterRight": 0,
    "SeatHeaterRearLeft": 0,
    "SeatHeaterRearRight": 0,
    "SeatHeaterRearCenter": 0,
    "SeatHeaterRearLeftBack": 0,
    "SeatHeaterRearRightBack": 0,
    "SeatHeaterThirdRowLeft": 0,
    "SeatHeaterThirdRowRight": 0,
    "AutoSeatClimateLeft": False,
    "AutoSeatClimateRight": False,
    "ClimateSeatCoolingFrontLeft": 0,
    "ClimateSeatCoolingFrontRight": 0,
    "HvacSteeringWheelHeatAuto": False,
    "HvacSteeringWheelHeatLevel": 0,
    "SteeringWheelHeater": False,
    "ClimateKeeperMode": "ClimateKeeperModeStateOff",
    "CabinOverheatProtectionMode": "CabinOverheatProtectionModeStateOn",
    "CabinOverheatProtectionTemperatureLimit": "ClimateOverheatProtectionTempLimitHigh",
    "DefrostMode": "DefrostModeStateOff",
    "RearDefrostEnabled": False,
    "WiperHeatEnabled": False,
    "BioweaponMode": False,
    "PreconditioningMax": False,
    "Locked": True,
    "DoorState": {
        "DriverFront": False,
        "DriverRear": False,
        "PassengerFront": False,
        "PassengerRear": False,
        "TrunkFront": False,
        "TrunkRear": False,
    },
    "FdWindow": "WindowStateClosed",
    "FpWindow": "WindowStateClosed",
    "RdWindow": "WindowStateClosed",
    "RpWindow": "WindowStateClosed",
    "SentryMode": "SentryModeStateOff",
    "SpeedLimitMode": False,
    "CurrentLimitMph": 85.0,
    "SpeedLimitPinSet": False,
    "ValetModeEnabled": False,
    "ValetPinNeeded": True,
    "GuestModeEnabled": False,
    "PinToDriveEnabled": False,
    "RemoteStartEnabled": False,
    "RemoteStartActive": False,
    "HomelinkNearby": False,
    "HomelinkDeviceCount": 1,
    "CenterDisplay": "DisplayStateOff",
    "ServiceMode": False,
    "MediaPlaybackStatus": "MediaStatusStopped",
    "MediaPlaybackSource": "Spotify",
    "MediaAudioVolume": 3.0,
    "MediaAudioVolumeIncrement": 0.333,
    "MediaAudioVolumeMax": 11.0,
    "MediaNowPlayingTitle": "Flotta FM",
    "MediaNowPlayingArtist": "",
    "MediaNowPlayingAlbum": "",
    "MediaNowPlayingStation": "",
    "MediaNowPlayingDuration": 0,
    "MediaNowPlayingElapsed": 0,
    "TonneauOpenPercent": 0.0,
    "LightsHazardsActive": False,
    "SunroofPercentOpen": 0,
    "ChargeSchedules": [],
    "PreconditionSchedules": [],
    "LowPowerMode": False,
    "KeepAccessoryPowerMode": False,
    "IsUserPresent": False,
    "LastDriveNote": "",
    "DestinationName": "",
    "DestinationLocation": None,
    "MilesToArrival": None,
    "MinutesToArrival": None,
    "RouteTrafficMinutesDelay": None,
    "ExpectedEnergyPercentAtTripArrival": None,
    "SettingDistanceUnit": "DistanceUnitMiles",
    "SettingTemperatureUnit": "TemperatureUnitFahrenheit",
    "SettingTirePressureUnit": "PressureUnitPsi",
    "SettingChargeUnit": "ChargeUnitDistance",
    "Setting24HourTime": False,
}


def initial_signals(model: VehicleModel, rng: random.Random) -> dict[str, Any]:
    """Settings-type signals a new car starts with; physics-derived ones are published later."""
    update_available = rng.random() < 0.5
    return {
        **copy.deepcopy(BASE_SIGNALS),
        "ChargeCurrentRequest": model.max_ac_amps,
        "ChargeCurrentRequestMax": model.max_ac_amps,
        "VehicleName": f"Flotta {model.display}",
        "Version": model.firmware,
        "SoftwareUpdateStatus": "available" if update_available else "",
        "SoftwareUpdateVersion": UPDATE_VERSION if update_available else "",
        "SoftwareUpdateScheduledStartTime": None,
        "SoftwareUpdateDownloadPercentComplete": 100 if update_available else 0,
        "SoftwareUpdateInstallationPercentComplete": 0,
        "SoftwareUpdateExpectedDurationMinutes": 25 if update_available else 0,
        "TonneauPosition": (
            "TonneauPositionStateClosed" if model.has_tonneau else "TonneauPositionStateInvalid"
        ),
        "SunroofState": "closed" if model.has_sunroof else "unknown",
    }


def static_config(model: VehicleModel) -> dict[str, Any]:
    """Per-vehicle constants the renderer needs, grouped by vehicle_data sub-object."""
    return {
        "model": model.key,
        "model_code": model.model_code,
        "vehicle_config": {
            "can_actuate_trunks": True,
            "car_special_type": "base",
            "car_type": model.car_type,
            "charge_port_type": model.charge_port_type,
            "exterior_color": model.exterior_color,
            "has_air_suspension": model.has_air_suspension,
            "has_ludicrous_mode": model.key == "models_plaid",
            "has_seat_cooling": model.has_seat_cooling,
            "motorized_charge_port": model.motorized_charge_port,
            "performance_package": "Plaid" if model.key == "models_plaid" else "Base",
            "rear_seat_heaters": model.rear_seat_heaters,
            "sun_roof_installed": 1 if model.has_sunroof else None,
            "third_row_seats": model.third_row_seats,
            "trim_badging": model.trim_badging,
            "wheel_type": model.wheel_type,
            "eu_vehicle": model.charge_port_type in ("EU", "CCS"),
        },
        "vehicle_state": {
            "api_version": API_VERSION,
            "sentry_mode_available": True,
            "remote_start_supported": True,
        },
        "charge_state": {
            "charge_current_request_max": model.max_ac_amps,
            "charge_limit_soc_max": 100,
            "charge_limit_soc_min": 50,
            "charge_limit_soc_std": 80,
        },
        "climate_state": {
            "max_avail_temp": 28.0,
            "min_avail_temp": 15.0,
            "supports_fan_only_cabin_overheat_protection": True,
        },
        "option_codes": model.option_codes,
        "has_tonneau": model.has_tonneau,
        "has_sunroof": model.has_sunroof,
        "battery_kwh": model.battery_kwh,
        "rated_range_mi": model.rated_range_mi,
    }
