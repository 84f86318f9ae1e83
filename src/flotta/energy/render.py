"""Tesla's energy shapes (reference §5.4): products item, site_info and site_status."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flotta.energy.models import EnergySite
from flotta.sim.energy_tariff import Tariff, TariffError, parse_tou_settings

TARGETS = {
    "ON_PEAK": "peak",
    "PARTIAL_PEAK": "partial_peak",
    "OFF_PEAK": "off_peak",
    "SUPER_OFF_PEAK": "super_off_peak",
}
FIRMWARE = "25.10.1"


def _num(spec: dict[str, Any], key: str) -> float:
    value = spec.get(key, 0)
    return float(value) if isinstance(value, int | float) else 0.0


def has_battery(site: EnergySite) -> bool:
    return _num(site.spec, "battery_wh") > 0


def wall_connectors(site: EnergySite) -> list[dict[str, Any]]:
    listed = site.spec.get("wall_connectors", [])
    return [w for w in listed if isinstance(w, dict)] if isinstance(listed, list) else []


def components(site: EnergySite) -> dict[str, Any]:
    """The `components` object of a products item."""
    battery = has_battery(site)
    out: dict[str, Any] = {
        "battery": battery,
        "solar": _num(site.spec, "solar_kwp") > 0,
        "solar_type": "pv_panel",
        "grid": True,
        "load_meter": True,
        "market_type": "residential",
        "wall_connectors": [
            {"device_id": w.get("device_id"), "din": w.get("din"), "is_active": True}
            for w in wall_connectors(site)
        ],
    }
    if battery:
        out["battery_type"] = "ac_powerwall"
    return out


def _user_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "storm_mode_enabled": bool(settings.get("storm_mode_enabled", False)),
        "go_off_grid_test_banner_enabled": None,
        "powerwall_onboarding_settings_set": True,
        "powerwall_tesla_electric_interested_in": None,
        "vpp_tour_enabled": None,
        "sync_grid_alert_enabled": True,
        "breaker_alert_enabled": False,
    }


def product_item(site: EnergySite, mirror: dict[str, Any]) -> dict[str, Any]:
    """One energy item of `/api/1/products`; live members from the site's last report."""
    live = mirror.get("live_status", {})
    settings = mirror.get("settings", {})
    item: dict[str, Any] = {
        "energy_site_id": site.id,
        "resource_type": site.resource_type,
        "site_name": site.site_name,
        "id": site.site_uid,
        "gateway_id": site.gateway_din,
        "asset_site_id": f"{site.id:x}",
        "warp_site_number": site.site_uid,
        "solar_power": live.get("solar_power", 0),
        "sync_grid_alert_enabled": True,
        "breaker_alert_enabled": False,
        "components": components(site),
        "features": {"rate_plan_manager_no_pricing_constraint": True},
        "device_type": "energy",
    }
    if has_battery(site):
        item |= {
            "energy_left": live.get("energy_left", 0),
            "total_pack_energy": round(_num(site.spec, "battery_wh")),
            "percentage_charged": live.get("percentage_charged", 0),
            "battery_type": "ac_powerwall",
            "backup_capable": True,
            "battery_power": live.get("battery_power", 0),
            **_user_settings(settings),
        }
    return item


def site_status(site: EnergySite, mirror: dict[str, Any]) -> dict[str, Any]:
    """The owner API's `site_status` summary (teslajsonpy reads it for battery sites)."""
    item = product_item(site, mirror)
    keep = (
        "backup_capable",
        "battery_power",
        "battery_type",
        "breaker_alert_enabled",
        "energy_left",
        "gateway_id",
        "percentage_charged",
        "powerwall_onboarding_settings_set",
        "powerwall_tesla_electric_interested_in",
        "resource_type",
        "site_name",
        "storm_mode_enabled",
        "sync_grid_alert_enabled",
        "total_pack_energy",
    )
    return {key: item[key] for key in keep if key in item} | {"utility": "Flotta Power & Light"}


def tou_schedule(tariff: Tariff) -> dict[str, Any]:
    """`tou_settings` in the schedule form, whatever form the tariff was sent in."""
    schedule = [
        {
            "target": TARGETS[w.period],
            "week_days": list(range(w.first_day, w.last_day + 1)),
            "start_seconds": w.start_minute * 60,
            "end_seconds": w.end_minute * 60,
        }
        for w in tariff.windows
    ]
    return {"optimization_strategy": tariff.strategy, "schedule": schedule}


def site_info(
    site: EnergySite, settings: dict[str, Any], firmware: str = FIRMWARE
) -> dict[str, Any]:
    """`site_info`: the installation from the database, the settings from the site itself."""
    spec = site.spec
    battery = has_battery(site)
    try:
        tariff = parse_tou_settings(settings.get("tou_settings", {}))
        tou: dict[str, Any] = tou_schedule(tariff)
    except TariffError:
        tariff, tou = None, {}
    installed = site.installed_at.astimezone(ZoneInfo(site.time_zone)).replace(microsecond=0)
    info: dict[str, Any] = {
        "id": site.site_uid,
        "energy_site_id": site.id,
        "site_name": site.site_name,
        "resource_type": site.resource_type,
        "backup_reserve_percent": settings.get("backup_reserve_percent", 0),
        "default_real_mode": settings.get("default_real_mode", "self_consumption"),
        "storm_mode_enabled": bool(settings.get("storm_mode_enabled", False)),
        "installation_date": installed.isoformat(),
        "installation_time_zone": site.time_zone,
        "version": firmware,
        "battery_count": int(_num(spec, "battery_count")),
        "nameplate_power": round(_num(spec, "max_discharge_w")),
        "nameplate_energy": round(_num(spec, "battery_wh")),
        "max_site_meter_power_ac": 1_000_000_000,
        "min_site_meter_power_ac": -1_000_000_000,
        "vpp_backup_reserve_percent": 0,
        "off_grid_vehicle_charging_reserve_percent": settings.get(
            "off_grid_vehicle_charging_reserve_percent", 0
        ),
        "user_settings": _user_settings(settings),
        "components": _info_components(site, settings),
        "tou_settings": tou,
    }
    if tariff is not None and "tariff_content_v2" in tariff.document:
        info["tariff_content_v2"] = tariff.document["tariff_content_v2"]
    if not battery:
        info.pop("backup_reserve_percent")
    return info


def _info_components(site: EnergySite, settings: dict[str, Any]) -> dict[str, Any]:
    battery = has_battery(site)
    din = site.gateway_din
    out = components(site) | {
        "backup": battery,
        "gateway": "teg",
        "tou_capable": battery,
        "storm_mode_capable": battery,
        "flex_energy_request_capable": False,
        "car_charging_data_supported": bool(wall_connectors(site)),
        "off_grid_vehicle_charging_reserve_supported": battery,
        "vehicle_charging_performance_view_enabled": False,
        "vehicle_charging_solar_offset_view_enabled": False,
        "battery_solar_offset_view_enabled": battery,
        "solar_value_enabled": True,
        "energy_value_header": "Energy Value",
        "energy_value_subheader": "Estimated Value",
        "energy_service_self_scheduling_enabled": True,
        "show_grid_import_battery_source_cards": battery,
        "set_islanding_mode_enabled": battery,
        "wifi_commissioning_enabled": True,
        "backup_time_remaining_enabled": battery,
        "configurable": True,
        "grid_services_enabled": False,
        "gateways": [_gateway(site, din)],
        "batteries": _batteries(site),
        "disallow_charge_from_grid_with_solar_installed": bool(
            settings.get("disallow_charge_from_grid_with_solar_installed", False)
        ),
        "customer_preferred_export_rule": settings.get("customer_preferred_export_rule", "pv_only"),
        "net_meter_mode": "battery_ok",
        "system_alerts_enabled": True,
    }
    out["wall_connectors"] = [
        {
            "device_id": w.get("device_id"),
            "din": w.get("din"),
            "part_name": "Gen 3 Wall Connector",
            "is_active": True,
        }
        for w in wall_connectors(site)
    ]
    return out


def _gateway(site: EnergySite, din: str) -> dict[str, Any]:
    return {
        "device_id": f"gw-{site.id}",
        "din": din,
        "serial_number": din.rsplit("-", 1)[-1],
        "part_number": "1232100-00-E",
        "part_type": 1120,
        "part_name": "Tesla Backup Gateway 2",
        "is_active": True,
        "site_id": site.site_uid,
        "firmware_version": FIRMWARE,
        "updated_datetime": site.installed_at.isoformat(),
    }


def _batteries(site: EnergySite) -> list[dict[str, Any]]:
    count = int(_num(site.spec, "battery_count"))
    if count <= 0:
        return []
    per_energy = round(_num(site.spec, "battery_wh") / count)
    per_charge = round(_num(site.spec, "max_charge_w") / count)
    per_discharge = round(_num(site.spec, "max_discharge_w") / count)
    return [
        {
            "device_id": f"pw-{site.id}-{n}",
            "din": f"2012170-25-E--TG12{site.id % 10**6:06d}{n:02d}",
            "serial_number": f"TG12{site.id % 10**6:06d}{n:02d}",
            "part_number": "2012170-25-E",
            "part_type": 2,
            "part_name": "Powerwall 2",
            "nameplate_max_charge_power": per_charge,
            "nameplate_max_discharge_power": per_discharge,
            "nameplate_energy": per_energy,
        }
        for n in range(1, count + 1)
    ]
