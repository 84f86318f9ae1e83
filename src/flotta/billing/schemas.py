"""The spend estimate's input and output (`POST /flotta/v1/billing/estimate`, CLI, portal)."""

from __future__ import annotations

import difflib
import re
from datetime import date
from fractions import Fraction
from functools import cache
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from tesla_protocol.telemetry import vehicle_data_pb2 as vd

MAX_PER_DAY = 1_000_000
_SHARE = re.compile(r"^\d+(\.\d+)?$|^\d+/[1-9]\d*$")
# Longer than any share anyone writes; Python refuses to read integers of 4,300+ digits.
MAX_SHARE_CHARACTERS = 40
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def whole_number(value: object) -> object:
    """A count's input as given, unless it is a boolean (pydantic would read true as 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    return value


def parse_month(text: str) -> str:
    """Validate "YYYY-MM" and return it; ValueError with a usable message otherwise."""
    try:
        parsed = date.fromisoformat(f"{text}-01")
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, e.g. 2026-11 (got {text!r})") from None
    if len(text) != 7:
        raise ValueError(f"month must be YYYY-MM, e.g. 2026-11 (got {text!r})")
    if (parsed.year, parsed.month) == (9999, 12):  # its cycle would end in the year 10000
        raise ValueError("month must be 9999-11 at the latest (the calendar ends there)")
    return f"{parsed.year:04d}-{parsed.month:02d}"


Month = Annotated[
    str,
    AfterValidator(parse_month),
    WithJsonSchema({"type": "string", "pattern": _MONTH.pattern}),
]


@cache
def telemetry_field_names() -> frozenset[str]:
    """Names of Tesla's telemetry `Field` enum a config may stream (not `Unknown`)."""
    return frozenset(name for name in vd.Field.DESCRIPTOR.values_by_name if name != "Unknown")


def _share_text(value: object) -> object:
    # JSON numbers arrive as floats; their shortest repr is the number the client wrote
    # (0.1 → "0.1"), which is then read exactly. Strings may also be fractions ("1/24").
    if isinstance(value, bool):
        raise ValueError("active_share must be a number from 0 to 1")
    if isinstance(value, int | float):
        return repr(value)
    return value


ShareText = Annotated[
    str,
    BeforeValidator(_share_text),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": _SHARE.pattern},
            ],
            "description": 'Share of the day the field is active, 0 to 1: 0.1, "0.1" or "1/24"',
        }
    ),
]


def parse_share(text: str) -> Fraction:
    """An exact share of the day, 0 ≤ share ≤ 1, from "0.1" or "1/24"."""
    if len(text.strip()) > MAX_SHARE_CHARACTERS:
        raise ValueError(
            f"active_share {text.strip()[:12]!r}… is longer than {MAX_SHARE_CHARACTERS} "
            "characters: write it as a decimal (0.1) or a fraction (1/24)"
        )
    if not _SHARE.match(text.strip()):
        raise ValueError(f"active_share {text!r} is not a number from 0 to 1 (e.g. 0.1 or 1/24)")
    share = Fraction(text.strip())
    if share > 1:
        raise ValueError(f"active_share {text!r} is more than 1 (the whole day)")
    return share


class StreamedField(BaseModel):
    """One field of a telemetry config: how often it sends and how much of the day."""

    name: str = Field(description="A name of Tesla's telemetry Field enum, e.g. Location")
    interval_seconds: int = Field(
        ge=1, le=31 * 86_400, description="Seconds between values: at most one per interval"
    )
    active_share: ShareText = "1"

    _count = field_validator("interval_seconds", mode="before")(whole_number)

    @field_validator("name")
    @classmethod
    def _known_field(cls, name: str) -> str:
        if name not in telemetry_field_names():
            close = difflib.get_close_matches(name, sorted(telemetry_field_names()), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "e.g. Location, Soc, Odometer"
            raise ValueError(f"{name!r} is not a telemetry field of Tesla's Field enum; {hint}")
        return name

    @field_validator("active_share")
    @classmethod
    def _share_in_range(cls, text: str) -> str:
        parse_share(text)
        return text.strip()


class EstimateRequest(BaseModel):
    """A fleet's usage per vehicle and day; the estimate covers one month."""

    vehicles: int = Field(ge=1, le=MAX_PER_DAY, description="Number of vehicles")
    fields: list[StreamedField] = Field(default_factory=list, max_length=300)
    commands_per_day: int = Field(default=0, ge=0, le=MAX_PER_DAY, description="Per vehicle")
    data_per_day: int = Field(default=0, ge=0, le=MAX_PER_DAY, description="Per vehicle")
    wakes_per_day: int = Field(default=0, ge=0, le=MAX_PER_DAY, description="Per vehicle")
    days: int | None = Field(default=None, ge=1, le=31, description="Days billed; default 30")
    month: Month | None = Field(
        default=None, description="YYYY-MM: use that month's real length instead of `days`"
    )

    _counts = field_validator(
        "vehicles", "commands_per_day", "data_per_day", "wakes_per_day", "days", mode="before"
    )(whole_number)

    @field_validator("fields")
    @classmethod
    def _each_field_once(cls, fields: list[StreamedField]) -> list[StreamedField]:
        seen: set[str] = set()
        for item in fields:
            if item.name in seen:
                raise ValueError(f"{item.name} is listed twice; a config streams a field once")
            seen.add(item.name)
        return fields

    @field_validator("month")
    @classmethod
    def _month_or_days(cls, month: str | None, info: ValidationInfo) -> str | None:
        if month is not None and info.data.get("days") is not None:
            raise ValueError("give either days or month, not both")
        return month


class FieldEstimate(BaseModel):
    name: str
    interval_seconds: int
    active_share: str
    signals: int = Field(description="Values in the month, at most (rounded up)")


class CategoryLine(BaseModel):
    category: str = Field(description="streaming, commands, data or wakes")
    unit: str
    quantity: int
    units_per_currency_unit: int
    cost: str = Field(description="Shown rounded to the cent; totals use the exact cost")
    cost_exact: str = Field(description='Exact: a decimal ("1.211") or a fraction ("1/150")')


class EstimateResult(BaseModel):
    currency: str
    vehicles: int
    days: int
    month: str | None
    fields: list[FieldEstimate]
    categories: list[CategoryLine]
    subtotal: str
    subtotal_exact: str
    monthly_credit: str
    credit_applied: str
    credit_applied_exact: str
    total: str = Field(description="After the credit, rounded half up to the cent")
    total_exact: str
    rounding: str
    notes: list[str]


class EstimateEnvelope(BaseModel):
    response: EstimateResult
