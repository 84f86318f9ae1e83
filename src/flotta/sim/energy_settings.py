"""The owner's site settings in Tesla's names: validation, application and their JSON form.

The API validates a write with `validate_patch` before it reaches the site; the site applies
the same patch with `apply_settings`, so both sides agree on what is valid.
"""

from __future__ import annotations

from typing import Any

from flotta.sim.energy_site import EXPORT_RULES, MODES, SiteSettings
from flotta.sim.energy_tariff import TariffError, parse_tou_settings


class SettingError(ValueError):
    """A bad setting; `field` is the member to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid {field} param: {message}")
        self.field = field


def _percent(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise SettingError(field, "must be a number from 0 to 100")
    if isinstance(value, float) and not value.is_integer():
        raise SettingError(field, "must be a whole percent")
    return int(value)


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise SettingError(field, "must be true or false")
    return value


def _choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingError(field, f"must be one of {', '.join(choices)}")
    return str(value)


def validate_patch(patch: dict[str, Any]) -> dict[str, Any]:
    """Check each member of a settings patch; returns it normalised."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        if key in ("backup_reserve_percent", "off_grid_vehicle_charging_reserve_percent"):
            out[key] = _percent(value, key)
        elif key in ("storm_mode_enabled", "disallow_charge_from_grid_with_solar_installed"):
            out[key] = _flag(value, key)
        elif key == "default_real_mode":
            out[key] = _choice(value, key, MODES)
        elif key == "customer_preferred_export_rule":
            out[key] = _choice(value, key, EXPORT_RULES)
        elif key == "tou_settings":
            try:
                parse_tou_settings(value)
            except TariffError as exc:
                raise SettingError(exc.field, str(exc).split(" param: ", 1)[-1]) from None
            out[key] = value
        else:
            raise SettingError(key, "is not a site setting")
    return out


def apply_settings(settings: SiteSettings, patch: dict[str, Any]) -> None:
    """Validate and apply a patch; nothing changes unless all of it is valid."""
    valid = validate_patch(patch)
    tariff = parse_tou_settings(valid["tou_settings"]) if "tou_settings" in valid else None
    for key, value in valid.items():
        if key == "backup_reserve_percent":
            settings.backup_reserve_percent = value
        elif key == "off_grid_vehicle_charging_reserve_percent":
            settings.off_grid_vehicle_charging_reserve_percent = value
        elif key == "storm_mode_enabled":
            settings.storm_mode_enabled = value
        elif key == "disallow_charge_from_grid_with_solar_installed":
            settings.disallow_grid_charging = value
        elif key == "default_real_mode":
            settings.mode = value
        elif key == "customer_preferred_export_rule":
            settings.export_rule = value
    if tariff is not None:
        settings.tariff = tariff


def settings_json(settings: SiteSettings) -> dict[str, Any]:
    return {
        "backup_reserve_percent": settings.backup_reserve_percent,
        "default_real_mode": settings.mode,
        "storm_mode_enabled": settings.storm_mode_enabled,
        "customer_preferred_export_rule": settings.export_rule,
        "disallow_charge_from_grid_with_solar_installed": settings.disallow_grid_charging,
        "off_grid_vehicle_charging_reserve_percent": (
            settings.off_grid_vehicle_charging_reserve_percent
        ),
        "tou_settings": settings.tariff.document,
    }
