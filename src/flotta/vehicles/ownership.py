"""Warranty, offers and as-sold specs derived from a vehicle's model and delivery date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flotta.sim.vehicle_models import MODELS, VehicleModel, vin_model_year

# Tesla's US terms: battery & drive unit cover 150k mi on S/X/Cybertruck, 120k on 3/Y LR.
BASIC = ("NEW_MFG_WARRANTY", "New Vehicle Limited Warranty", 4, 50_000)
LONG_BATTERY_MODELS = frozenset({"models_plaid", "cybertruck"})
DRIVE = {"model3_lr": "AWD", "modely": "AWD", "models_plaid": "AWD", "cybertruck": "AWD"}
MOTORS = {"model3_lr": 2, "modely": 2, "models_plaid": 3, "cybertruck": 2}


@dataclass(frozen=True, slots=True)
class Offer:
    option_code: str
    name: str
    group: str
    monthly: float | None
    price: float | None
    current: str = ""
    excluded_by: str = ""  # an option code that already includes the offer


SUBSCRIPTIONS = (
    Offer("$CPF1", "Premium Connectivity", "CONNECTIVITY", 9.99, None),
    Offer("$APF3", "Full Self-Driving (Supervised)", "AUTOPILOT", 99.0, None, excluded_by="APF2"),
)
UPGRADES: dict[str, tuple[Offer, ...]] = {
    "model3_lr": (Offer("$BTF1", "Acceleration Boost", "PERFORMANCE", None, 2000.0, "$MT353"),),
    "modely": (Offer("$BTF1", "Acceleration Boost", "PERFORMANCE", None, 2000.0, "$MTY13"),),
    "models_plaid": (),
    "cybertruck": (Offer("$TWCT", "Tow Package", "TOWING", None, 1500.0, "$CT01"),),
}
TAX_RATE = 0.0925


def _add_years(at: datetime, years: int) -> datetime:
    try:
        return at.replace(year=at.year + years)
    except ValueError:  # 29 February
        return at.replace(year=at.year + years, day=28)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def warranty_items(
    model_key: str, delivered: datetime, now: datetime, odometer_mi: float | None
) -> dict[str, list[dict[str, Any]]]:
    """Active and expired coverage of one vehicle, by date and, when known, by odometer."""
    battery_mi = 150_000 if model_key in LONG_BATTERY_MODELS else 120_000
    terms = (
        BASIC,
        ("BATTERY_WARRANTY", "Battery Limited Warranty", 8, battery_mi),
        ("DRIVEUNIT_WARRANTY", "Drive Unit Limited Warranty", 8, battery_mi),
    )
    out: dict[str, list[dict[str, Any]]] = {
        "activeWarranty": [],
        "upcomingWarranty": [],
        "expiredWarranty": [],
    }
    for kind, display, years, miles in terms:
        ends = _add_years(delivered, years)
        over_miles = odometer_mi is not None and odometer_mi >= miles
        expired = now >= ends or over_miles
        out["expiredWarranty" if expired else "activeWarranty"].append(
            {
                "warrantyType": kind,
                "warrantyDisplayName": display,
                "expirationDate": _iso(ends),
                "expirationOdometer": miles,
                "odometerUnit": "MI",
                "warrantyExpiredOn": _iso(min(ends, now)) if expired else None,
                "coverageAgeInYears": years,
            }
        )
    return out


def country_of(option_codes: str) -> str:
    codes = option_codes.split(",")
    country = next((c[2:] for c in codes if c.startswith("CO") and len(c) == 4), "US")
    return country


def _pricing(amount: float, period: str | None) -> dict[str, Any]:
    tax = round(amount * TAX_RATE, 2)
    item: dict[str, Any] = {
        "optionCode": "",
        "price": amount,
        "tax": tax,
        "total": round(amount + tax, 2),
        "currencyCode": "USD",
    }
    if period:
        item["billingPeriod"] = period
    return item


def subscription_eligibility(vin: str, option_codes: str, start: datetime) -> dict[str, Any]:
    """Subscriptions the vehicle can still take: those its options do not already include."""
    owned = set(option_codes.split(","))
    eligible = []
    for offer in SUBSCRIPTIONS:
        if offer.excluded_by in owned or offer.monthly is None:
            continue
        billing = {**_pricing(offer.monthly, "MONTHLY"), "optionCode": offer.option_code}
        eligible.append(
            {
                "optionCode": offer.option_code,
                "product": offer.name,
                "startDate": _iso(start),
                "addons": [],
                "billingOptions": [billing],
            }
        )
    return {"country": country_of(option_codes), "vin": vin, "eligible": eligible}


def upgrade_eligibility(vin: str, model_key: str, option_codes: str) -> dict[str, Any]:
    """One-off upgrades offered for the model, minus any already fitted."""
    owned = {f"${c}" for c in option_codes.split(",")}
    eligible = [
        {
            "optionCode": offer.option_code,
            "optionGroup": offer.group,
            "currentOptionCode": offer.current,
            "pricing": [
                {
                    "price": offer.price,
                    "total": offer.price,
                    "currencyCode": "USD",
                    "isPrimary": True,
                }
            ],
        }
        for offer in UPGRADES.get(model_key, ())
        if offer.option_code not in owned and offer.price is not None
    ]
    return {
        "vin": vin,
        "country": country_of(option_codes),
        "type": "VEHICLE",
        "eligible": eligible,
    }


def specs(vin: str, model_key: str, option_codes: str) -> dict[str, Any]:
    """As-sold specification from the model catalogue (battery, range, drive, charging)."""
    model: VehicleModel | None = MODELS.get(model_key)
    base: dict[str, Any] = {
        "vin": vin,
        "model_year": vin_model_year(vin),
        "option_codes": option_codes.split(",") if option_codes else [],
    }
    if model is None:
        return {**base, "model": model_key, "trim": None, "battery": None, "drive": None}
    return {
        **base,
        "model": model.car_type,
        "trim": model.display,
        "trim_badging": model.trim_badging,
        "exterior_color": model.exterior_color,
        "wheel_type": model.wheel_type,
        "drive": {"type": DRIVE.get(model.key, "RWD"), "motors": MOTORS.get(model.key, 1)},
        "battery": {"capacity_kwh": model.battery_kwh, "usable_kwh": model.battery_kwh},
        "range": {"epa_miles": model.rated_range_mi, "efficiency_wh_per_mile": model.wh_per_mi},
        "charging": {
            "port_type": model.charge_port_type,
            "max_ac_amps": model.max_ac_amps,
            "ac_phases": model.ac_phases,
            "max_dc_kw": model.dc_peak_kw,
        },
        "seating": 7 if model.third_row_seats not in ("None", "") else 5,
    }
