"""Typed parameter declarations and the JSON parser for command bodies.

Type rules follow ``tesla-http-proxy`` (fleet-api.md §10.8): numbers must be JSON numbers
(``true``/``false`` are not numbers), booleans JSON booleans and strings JSON strings.
Deliberate departures, each limited to what a real client sends:

* ``null`` counts as absent (teslajsonpy sends ``lat: null`` when it has no location).
* Unknown keys are ignored (teslajsonpy sends ``honk_horn`` with ``{"on": true}``).
* ``lenient`` numbers also accept numeric strings; only ``set_temps`` and
  ``set_charge_limit`` use it (TeslaPy passes caller values through unchanged).
* ``lenient`` booleans also accept the integers 0-2 (teslajsonpy sends
  ``set_preconditioning_max`` with ``on: 2`` / ``on: 0``).
* An integer parameter accepts an integral JSON float such as ``80.0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flotta.commands.errors import CommandError

Kind = Literal["bool", "int", "number", "string", "pin", "choice", "days", "object", "share"]

INT32_MAX = 2**31 - 1
UINT64_MAX = 2**64 - 1
MINUTES_PER_DAY = 1440

_NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_PIN = re.compile(r"\d{4}")

DAY_BITS: dict[str, int] = {
    "SUN": 1, "SUNDAY": 1,
    "MON": 2, "MONDAY": 2,
    "TUE": 4, "TUES": 4, "TUESDAY": 4,
    "WED": 8, "WEDNESDAY": 8,
    "THU": 16, "THUR": 16, "THURS": 16, "THURSDAY": 16,
    "FRI": 32, "FRIDAY": 32,
    "SAT": 64, "SATURDAY": 64,
    "ALL": 127, "WEEKDAYS": 62,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Param:
    """One body parameter of a command: JSON type, constraints and accepted aliases."""

    name: str
    kind: Kind
    required: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    default: Any = None
    lenient: bool = False
    doc: str = ""


def boolean(name: str, *, required: bool = False, lenient: bool = False, doc: str = "") -> Param:
    """Declare a JSON boolean parameter (absent optional booleans default to false)."""
    return Param(name, "bool", required, default=False, lenient=lenient, doc=doc)


def integer(
    name: str,
    low: int,
    high: int,
    *,
    required: bool = False,
    aliases: tuple[str, ...] = (),
    default: int | None = None,
    lenient: bool = False,
    doc: str = "",
) -> Param:
    """Declare a bounded integer parameter."""
    return Param(name, "int", required, low, high, (), aliases, default, lenient, doc)


def number(
    name: str,
    low: float,
    high: float,
    *,
    required: bool = False,
    aliases: tuple[str, ...] = (),
    lenient: bool = False,
    doc: str = "",
) -> Param:
    """Declare a bounded (float) number parameter."""
    return Param(name, "number", required, low, high, (), aliases, None, lenient, doc)


def string(
    name: str,
    *,
    required: bool = False,
    min_len: int = 0,
    max_len: int | None = None,
    doc: str = "",
) -> Param:
    """Declare a JSON string parameter with optional length limits."""
    high = None if max_len is None else float(max_len)
    return Param(name, "string", required, float(min_len), high, doc=doc)


def pin(name: str, *, required: bool = False, doc: str = "") -> Param:
    """Declare a four-digit PIN passed as a JSON string."""
    return Param(name, "pin", required, doc=doc)


def choice(
    name: str, *choices: str, required: bool = False, default: str | None = None, doc: str = ""
) -> Param:
    """Declare a string parameter restricted to a fixed set of values."""
    return Param(name, "choice", required, choices=choices, default=default, doc=doc)


def days(name: str = "days_of_week", *, required: bool = True) -> Param:
    """Declare a ``days_of_week`` parameter, normalised to a Sun=1..Sat=64 bit mask."""
    return Param(name, "days", required, 1, 127, doc="day names, All, Weekdays or bit mask")


def obj(name: str, *, required: bool = False, doc: str = "") -> Param:
    """Declare a JSON object parameter, passed through unchanged."""
    return Param(name, "object", required, doc=doc)


# What an Android share carries: the text (an address or a link) navigation_request sends on.
SHARE_TEXT = "android.intent.extra.TEXT"
MAX_SHARE_CHARS = 500


def share(name: str = "value", *, required: bool = True, doc: str = "") -> Param:
    """Declare an Android share object, `{"android.intent.extra.TEXT": "<address or link>"}`."""
    return Param(name, "share", required, doc=doc)


def minutes(name: str, *, required: bool = False) -> Param:
    """Declare a time of day given as minutes after midnight."""
    return integer(name, 0, MINUTES_PER_DAY - 1, required=required, doc="minutes after midnight")


def latitude(name: str = "lat", *, required: bool = False) -> Param:
    """Declare a latitude in degrees."""
    return number(name, -90.0, 90.0, required=required)


def longitude(name: str = "lon", *, required: bool = False, aliases: tuple[str, ...] = ()) -> Param:
    """Declare a longitude in degrees."""
    return number(name, -180.0, 180.0, required=required, aliases=aliases)


_DAYS_RULE = "must be a comma-separated list of day names or a bit mask between 1 and 127"


def parse_params(params: tuple[Param, ...], body: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``body`` against ``params`` and return canonical names with typed values."""
    out: dict[str, Any] = {}
    for param in params:
        raw = _lookup(param, body)
        if raw is None:
            if param.required:
                raise CommandError.missing(param.name)
            if param.default is not None:
                out[param.name] = param.default
            continue
        out[param.name] = _CONVERTERS[param.kind](param, raw)
    return out


def parse_days_of_week(value: object, field: str = "days_of_week") -> int:
    """Turn day names (case-insensitive, comma separated) or a bit mask into a bit mask."""
    if isinstance(value, bool):
        raise CommandError.invalid(field, _DAYS_RULE)
    if isinstance(value, int | float):
        return _days_from_number(value, field)
    if not isinstance(value, str):
        raise CommandError.invalid(field, _DAYS_RULE)
    text = value.strip()
    if text.isdigit():
        return _days_from_number(int(text), field)
    mask = 0
    for token in text.split(","):
        name = token.strip().upper()
        if not name:
            continue
        if name not in DAY_BITS:
            raise CommandError.invalid(field, f"unrecognized day name: {token.strip()}")
        mask |= DAY_BITS[name]
    if mask == 0:
        raise CommandError.invalid(field, _DAYS_RULE)
    return mask


def _days_from_number(value: float, field: str) -> int:
    if not _is_integral(value) or not 1 <= value <= 127:
        raise CommandError.invalid(field, _DAYS_RULE)
    return int(value)


def _is_integral(value: float) -> bool:
    if isinstance(value, int):
        return True
    return math.isfinite(value) and value.is_integer()


def _lookup(param: Param, body: Mapping[str, Any]) -> Any:
    for key in (param.name, *param.aliases):
        value = body.get(key)
        if value is not None:
            return value
    return None


def _range_text(param: Param, noun: str) -> str:
    if param.low is not None and param.high is not None:
        return f"must be {noun} between {_fmt(param.low)} and {_fmt(param.high)}"
    return f"must be {noun}"


def _fmt(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _as_number(param: Param, raw: Any) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else None
    if param.lenient and isinstance(raw, str) and _NUMERIC.fullmatch(raw.strip()):
        text = raw.strip()
        if len(text) <= 30 and text.lstrip("+-").isdigit():
            return int(text)
        parsed = float(text)
        return parsed if math.isfinite(parsed) else None
    return None


def _in_range(param: Param, value: float) -> bool:
    low = -math.inf if param.low is None else param.low
    high = math.inf if param.high is None else param.high
    return low <= value <= high


def _to_int(param: Param, raw: Any) -> int:
    value = _as_number(param, raw)
    if value is None or not _is_integral(value) or not _in_range(param, value):
        raise CommandError.invalid(param.name, _range_text(param, "an integer"))
    return int(value)


def _to_number(param: Param, raw: Any) -> float:
    value = _as_number(param, raw)
    if value is None or not _in_range(param, value):
        raise CommandError.invalid(param.name, _range_text(param, "a number"))
    return float(value)


def _to_bool(param: Param, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if param.lenient and isinstance(raw, int) and 0 <= raw <= 2:
        return raw != 0
    raise CommandError.invalid(param.name, "must be a boolean")


def _to_string(param: Param, raw: Any) -> str:
    low = int(param.low or 0)
    if not isinstance(raw, str):
        raise CommandError.invalid(param.name, "must be a string")
    if len(raw) < low:
        raise CommandError.invalid(param.name, "must be a non-empty string")
    if param.high is not None and len(raw) > param.high:
        raise CommandError.invalid(param.name, f"must be at most {_fmt(param.high)} characters")
    return raw


def _to_pin(param: Param, raw: Any) -> str:
    if not isinstance(raw, str) or not _PIN.fullmatch(raw):
        raise CommandError.invalid(param.name, "must be a string of 4 digits")
    return raw


def _to_choice(param: Param, raw: Any) -> str:
    if not isinstance(raw, str) or raw not in param.choices:
        raise CommandError.invalid(param.name, "must be one of " + ", ".join(param.choices))
    return raw


def _to_days(param: Param, raw: Any) -> int:
    return parse_days_of_week(raw, param.name)


def _to_object(param: Param, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise CommandError.invalid(param.name, "must be an object")
    return dict(raw)


def _to_share(param: Param, raw: Any) -> dict[str, Any]:
    # Without its text the share would cancel the car's route; anything but a string would
    # reach the car as Python's rendering of it.
    shared = _to_object(param, raw)
    text = shared.get(SHARE_TEXT)
    if text is None:
        raise CommandError.missing(f"{param.name}.{SHARE_TEXT}")
    if not isinstance(text, str) or not text.strip():
        rule = f"{SHARE_TEXT} must be a non-empty string: the address or link to navigate to"
        raise CommandError.invalid(param.name, rule)
    if len(text) > MAX_SHARE_CHARS:
        raise CommandError.invalid(
            param.name, f"{SHARE_TEXT} must be at most {MAX_SHARE_CHARS} characters"
        )
    return shared


_CONVERTERS: dict[Kind, Callable[[Param, Any], Any]] = {
    "bool": _to_bool,
    "int": _to_int,
    "number": _to_number,
    "string": _to_string,
    "pin": _to_pin,
    "choice": _to_choice,
    "days": _to_days,
    "object": _to_object,
    "share": _to_share,
}
