"""Validate `POST /api/1/vehicles/fleet_telemetry_config` bodies and JWS claims (fleet-api.md §9.1).

Every mistake is collected with its JSON path, so a developer fixes a config in one round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from flotta.errors import InvalidRequest
from flotta.telemetry.checks import (
    MISSING,
    ConfigProblem,
    Problems,
    check_ca,
    check_exp,
    check_hostname,
    check_port,
    check_vins,
    is_int,
    key_path,
    kind,
    num,
    reject_unknown_keys,
    unknown,
)
from flotta.telemetry.fields import FIELD_NAMES, MINIMUM_DELTA_AT_LEAST_ONE_FIELDS

__all__ = [
    "ALERT_TYPES",
    "DELIVERY_POLICIES",
    "ConfigLimits",
    "ConfigProblem",
    "FieldRule",
    "TelemetryConfig",
    "TelemetryConfigError",
    "validate_config",
    "validate_config_claims",
]

DEFAULT_PORT = 443
# The alert proto's audiences are Customer, Service and ServiceFix; Tesla's docs write them in
# lower case and recommend only "service".
ALERT_TYPES = ("customer", "service", "service_fix")
# "latest": the car re-sends data the server did not acknowledge (client >= 1.0.0, §9.1).
# "drop": the historical behaviour, and what an absent key means: un-acked data is discarded.
DELIVERY_POLICIES = ("drop", "latest")
BODY_KEYS = ("vins", "config")
CONFIG_KEYS = (
    "hostname",
    "port",
    "ca",
    "exp",
    "fields",
    "alert_types",
    "prefer_typed",
    "delivery_policy",
)
# The proxy overwrites these two claims when it signs a config; the JWS verifier checks them.
JWS_ONLY_CLAIMS = ("iss", "aud")
RULE_KEYS = ("interval_seconds", "minimum_delta", "resend_interval_seconds")
_EXAMPLE_RULE = '{"interval_seconds": 10}'


@dataclass(frozen=True)
class ConfigLimits:
    """Operator-tunable bounds; each default's reason is in its comment."""

    max_vins: int = 1000  # Tesla documents no cap; bounded so one request stays cheap to apply
    max_fields: int = len(FIELD_NAMES)  # every streamable field, once
    max_interval_s: int = 86_400  # a day: anything rarer belongs in resend_interval_seconds
    max_resend_interval_s: int = 86_400  # a day, so even a quiet field proves it is alive daily
    max_exp_ahead_s: int = 366 * 86_400  # a (leap) year: configs get renewed, never eternal
    max_ca_chars: int = 65_536  # a dozen certificates fit with room to spare


@dataclass(frozen=True)
class FieldRule:
    """How one field streams: at most every `interval_seconds`, on a change of `minimum_delta`."""

    interval_seconds: int
    minimum_delta: Decimal | None = None
    resend_interval_seconds: int | None = None

    def to_json(self) -> dict[str, int | float]:
        """The rule as Tesla's GET shows it."""
        out: dict[str, int | float] = {"interval_seconds": self.interval_seconds}
        delta = self.minimum_delta
        if delta is not None:
            # A whole number as an integer only while it fits 64 bits (orjson stops there);
            # 1e20 stays a float.
            whole = delta == delta.to_integral_value() and abs(delta) < 2**63
            out["minimum_delta"] = int(delta) if whole else float(delta)
        if self.resend_interval_seconds is not None:
            out["resend_interval_seconds"] = self.resend_interval_seconds
        return out


class TelemetryConfigError(InvalidRequest):
    """A config with one or more problems; `messages` maps each JSON path to its messages."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        messages: dict[str, list[str]] = {}
        for problem in self.problems:
            messages.setdefault(problem.path, []).append(problem.message)
        first, more = self.problems[0], len(self.problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''}, see messages)" if more else ""
        super().__init__(
            f"invalid fleet telemetry config: {first.path}: {first.message}{tail}",
            messages=messages,
        )


@dataclass(frozen=True)
class TelemetryConfig:
    """A validated config for `vins`, normalised: port defaulted, deltas as Decimal."""

    vins: tuple[str, ...]
    hostname: str
    port: int
    ca: str
    fields: Mapping[str, FieldRule]
    exp: int | None = None
    alert_types: tuple[str, ...] | None = None
    prefer_typed: bool | None = None
    delivery_policy: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `config` object as Tesla's GET shows it (without the VINs it was sent for)."""
        out: dict[str, Any] = {"hostname": self.hostname, "port": self.port, "ca": self.ca}
        if self.exp is not None:
            out["exp"] = self.exp
        out["fields"] = {name: rule.to_json() for name, rule in self.fields.items()}
        if self.alert_types is not None:
            out["alert_types"] = list(self.alert_types)
        if self.prefer_typed is not None:
            out["prefer_typed"] = self.prefer_typed
        if self.delivery_policy is not None:
            out["delivery_policy"] = self.delivery_policy
        return out


def validate_config(raw: object, *, limits: ConfigLimits, now: datetime) -> TelemetryConfig:
    """Validate a `fleet_telemetry_config` body `{"vins": [...], "config": {...}}` at `now`."""
    _require_aware(now)
    problems = Problems()
    if not isinstance(raw, dict):
        problems.add("body", f"the body must be an object with vins and config, not {kind(raw)}")
        raise TelemetryConfigError(problems)
    if "token" in raw:
        problems.add("token", "a signed token goes to fleet_telemetry_config_jws; send config here")
    unexpected = {key: value for key, value in raw.items() if key != "token"}
    reject_unknown_keys(unexpected, BODY_KEYS, "", "request body key", problems)
    vins = check_vins(raw.get("vins", MISSING), problems, max_vins=limits.max_vins)
    config = _check_config(raw.get("config", MISSING), "config", (), limits, now, problems)
    if problems or vins is None or config is None:
        raise TelemetryConfigError(problems)
    return replace(config, vins=vins)


def validate_config_claims(
    vins: object, claims: object, *, limits: ConfigLimits, now: datetime
) -> TelemetryConfig:
    """Validate `fleet_telemetry_config_jws`: the body's `vins` and the verified token's claims.

    Problems inside the claims are reported under `token.` (e.g. `token.fields.Soc`).
    """
    _require_aware(now)
    problems = Problems()
    checked_vins = check_vins(vins, problems, max_vins=limits.max_vins)
    config = _check_config(claims, "token", JWS_ONLY_CLAIMS, limits, now, problems)
    if problems or checked_vins is None or config is None:
        raise TelemetryConfigError(problems)
    return replace(config, vins=checked_vins)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (the injected Clock's now())")


def _check_config(
    raw: object,
    path: str,
    ignored: tuple[str, ...],
    limits: ConfigLimits,
    now: datetime,
    problems: Problems,
) -> TelemetryConfig | None:
    if raw is MISSING:
        problems.add(path, f"{path} is required: an object with hostname, ca and fields")
        return None
    if not isinstance(raw, dict):
        problems.add(path, f"{path} must be an object, not {kind(raw)}")
        return None
    reject_unknown_keys(raw, CONFIG_KEYS + ignored, path, "config key", problems)
    at = f"{path}."
    hostname = check_hostname(raw.get("hostname", MISSING), at + "hostname", problems)
    port = check_port(_or(raw.get("port"), DEFAULT_PORT), at + "port", problems)
    ca = check_ca(
        raw.get("ca", MISSING),
        at + "ca",
        problems,
        now=now,
        max_chars=limits.max_ca_chars,
    )
    exp = check_exp(
        raw.get("exp"), at + "exp", problems, now=now, max_ahead_s=limits.max_exp_ahead_s
    )
    fields = _check_fields(raw.get("fields", MISSING), at + "fields", limits, problems)
    alert_types = _check_alert_types(raw.get("alert_types"), at + "alert_types", problems)
    prefer_typed = _check_prefer_typed(raw.get("prefer_typed"), at + "prefer_typed", problems)
    policy = _check_delivery_policy(raw.get("delivery_policy"), at + "delivery_policy", problems)
    if hostname is None or port is None or ca is None or fields is None:
        return None
    return TelemetryConfig(
        vins=(),
        hostname=hostname,
        port=port,
        ca=ca,
        fields=fields,
        exp=exp,
        alert_types=alert_types,
        prefer_typed=prefer_typed,
        delivery_policy=policy,
    )


def _or(value: object, default: object) -> object:
    """An explicit JSON null means "not set", like an absent key."""
    return default if value is None else value


def _check_fields(
    raw: object, path: str, limits: ConfigLimits, problems: Problems
) -> Mapping[str, FieldRule] | None:
    if raw is MISSING:
        problems.add(path, f'fields is required, e.g. {{"VehicleSpeed": {_EXAMPLE_RULE}}}')
        return None
    if not isinstance(raw, dict):
        problems.add(
            path, f"fields must be an object mapping field names to rules, not {kind(raw)}"
        )
        return None
    count = len(problems)
    if not raw:
        problems.add(path, "fields must configure at least one field")
    if len(raw) > limits.max_fields:
        problems.add(path, f"{len(raw)} fields configured; at most {limits.max_fields}")
    rules: dict[str, FieldRule] = {}
    for name, rule in raw.items():
        at = key_path(path, str(name))
        if name == "Unknown":
            problems.add(at, "'Unknown' is the enum's zero value, not a field a car can stream")
        elif name not in FIELD_NAMES:
            problems.add(at, unknown("field", str(name), FIELD_NAMES))
        checked = _check_rule(str(name), rule, at, limits, problems)
        if checked is not None:
            rules[name] = checked
    return MappingProxyType(rules) if len(problems) == count else None


def _check_rule(
    name: str, raw: object, path: str, limits: ConfigLimits, problems: Problems
) -> FieldRule | None:
    if not isinstance(raw, dict):
        problems.add(
            path, f"a field rule must be an object such as {_EXAMPLE_RULE}, not {kind(raw)}"
        )
        return None
    count = len(problems)
    reject_unknown_keys(raw, RULE_KEYS, path, "field rule key", problems)
    at = f"{path}."
    interval = _check_interval(
        raw.get("interval_seconds"), at + "interval_seconds", limits, problems
    )
    delta = _check_delta(name, raw.get("minimum_delta"), at + "minimum_delta", problems)
    resend = _check_resend(
        raw.get("resend_interval_seconds"),
        interval,
        at + "resend_interval_seconds",
        limits,
        problems,
    )
    if len(problems) > count or interval is None:
        return None
    return FieldRule(interval, delta, resend)


def _check_interval(raw: object, path: str, limits: ConfigLimits, problems: Problems) -> int | None:
    high = limits.max_interval_s
    if raw is None:
        problems.add(path, "interval_seconds is required: the fewest seconds between two values")
    elif not is_int(raw):
        problems.add(path, f"interval_seconds must be a whole number of seconds, not {kind(raw)}")
    elif not 1 <= raw <= high:
        problems.add(path, f"interval_seconds {num(raw)} is out of range: use 1-{high}")
    else:
        return raw
    return None


def _check_resend(
    raw: object, interval: int | None, path: str, limits: ConfigLimits, problems: Problems
) -> int | None:
    high = limits.max_resend_interval_s
    if raw is None:
        return None
    if not is_int(raw):
        message = f"resend_interval_seconds must be a whole number of seconds, not {kind(raw)}"
    elif interval is not None and raw < interval:
        message = (
            f"resend_interval_seconds {num(raw)} is shorter than interval_seconds {interval}: "
            f"use {interval}-{high}"
        )
    elif not 1 <= raw <= high:
        message = f"resend_interval_seconds {num(raw)} is out of range: use 1-{high}"
    else:
        return raw
    problems.add(path, message)
    return None


def _check_delta(name: str, raw: object, path: str, problems: Problems) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        problems.add(path, f"minimum_delta must be a number, not {kind(raw)}")
        return None
    if isinstance(raw, float) and not math.isfinite(raw):
        problems.add(path, "minimum_delta must be a finite number")
        return None
    # repr() is the shortest text that round-trips, so 0.1 becomes Decimal("0.1"), not 0.1000…055
    delta = Decimal(raw) if isinstance(raw, int) else Decimal(repr(raw))
    if delta <= 0:
        problems.add(
            path, f"minimum_delta {num(raw)} must be above 0 (omit it to send every change)"
        )
    elif delta < 1 and name in MINIMUM_DELTA_AT_LEAST_ONE_FIELDS:
        problems.add(path, f"minimum_delta for {name} must be at least 1; Tesla rejects less")
    else:
        return delta
    return None


def _check_alert_types(raw: object, path: str, problems: Problems) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        problems.add(path, f'alert_types must be a list such as ["service"], not {kind(raw)}')
        return None
    count = len(problems)
    for index, value in enumerate(raw):
        at = f"{path}[{index}]"
        if not isinstance(value, str):
            problems.add(at, f"an alert type must be a string, not {kind(value)}")
        elif value not in ALERT_TYPES:
            problems.add(at, unknown("alert type", value, ALERT_TYPES))
        elif value in raw[:index]:
            problems.add(at, f"duplicate alert type '{value}'")
    return tuple(raw) if len(problems) == count else None


def _check_prefer_typed(raw: object, path: str, problems: Problems) -> bool | None:
    if raw is None or isinstance(raw, bool):
        return raw
    problems.add(path, f"prefer_typed must be true or false, not {kind(raw)}")
    return None


def _check_delivery_policy(raw: object, path: str, problems: Problems) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw in DELIVERY_POLICIES:
        return raw
    problems.add(
        path,
        "delivery_policy must be 'latest' (re-send data the server did not acknowledge) or "
        f"'drop' (the default: discard it), not {kind(raw)}",
    )
    return None
