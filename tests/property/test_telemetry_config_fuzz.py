"""Telemetry config validation over generated JSON: only TelemetryConfigError, and round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.telemetry.test_config import issue_certificate, pem

from flotta.telemetry.config import (
    ALERT_TYPES,
    CONFIG_KEYS,
    DELIVERY_POLICIES,
    RULE_KEYS,
    ConfigLimits,
    TelemetryConfig,
    TelemetryConfigError,
    validate_config,
    validate_config_claims,
)
from flotta.telemetry.fields import FIELD_NAMES, MINIMUM_DELTA_AT_LEAST_ONE_FIELDS

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LIMITS = ConfigLimits()
CA = pem(issue_certificate("Fuzz Root CA", ca=True)[0])
NAMES = sorted(FIELD_NAMES)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: Python's json module accepts them
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
vins = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=17, max_size=17)
names = st.sampled_from(NAMES) | st.text(max_size=20)


def _check(raw: object) -> None:
    """Validation either returns a config or raises TelemetryConfigError with usable problems."""
    try:
        config = validate_config(raw, limits=LIMITS, now=NOW)
    except TelemetryConfigError as error:
        assert error.problems
        assert all(p.path and p.message for p in error.problems)
        assert error.messages and error.description
    else:
        assert isinstance(config, TelemetryConfig)


@given(json_values)
def test_arbitrary_json_never_raises_anything_else(raw: Any) -> None:
    _check(raw)


@st.composite
def near_miss_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Bodies with the right skeleton and arbitrary JSON in every slot, to reach deep checks."""
    rule = st.dictionaries(st.sampled_from([*RULE_KEYS, "interval"]), json_values, max_size=4)
    fields = st.dictionaries(names, rule | json_values, max_size=4)
    slots = {key: json_values for key in CONFIG_KEYS}
    slots |= {
        "hostname": st.sampled_from(["t.example.com", "::1", "https://x/y"]) | json_values,
        "ca": st.just(CA) | json_values,
        "fields": fields,
        "alert_types": st.lists(st.sampled_from(ALERT_TYPES) | json_values, max_size=4),
    }
    config = draw(st.fixed_dictionaries({}, optional=slots))
    return {"vins": draw(st.lists(vins | json_values, max_size=3) | json_values), "config": config}


@given(near_miss_bodies())
@settings(max_examples=300)
def test_near_miss_bodies_never_raise_anything_else(raw: dict[str, Any]) -> None:
    _check(raw)


@given(st.lists(vins, max_size=2) | json_values, json_values)
def test_arbitrary_jws_claims_never_raise_anything_else(vin_list: Any, claims: Any) -> None:
    try:
        validate_config_claims(vin_list, claims, limits=LIMITS, now=NOW)
    except TelemetryConfigError as error:
        assert error.problems


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Bodies that satisfy every rule."""
    fields: dict[str, dict[str, Any]] = {}
    for name in draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True)):
        interval = draw(st.integers(1, LIMITS.max_interval_s))
        rule: dict[str, Any] = {"interval_seconds": interval}
        low = 1 if name in MINIMUM_DELTA_AT_LEAST_ONE_FIELDS else 1e-6
        rule_delta = st.integers(1, 10**6) | st.floats(low, 1e6, allow_nan=False)
        if draw(st.booleans()):
            rule["minimum_delta"] = draw(rule_delta)
        if draw(st.booleans()):
            rule["resend_interval_seconds"] = draw(
                st.integers(interval, LIMITS.max_resend_interval_s)
            )
        fields[name] = rule
    config: dict[str, Any] = {
        "hostname": draw(st.sampled_from(["telemetry.example.com", "192.0.2.7", "2001:db8::1"])),
        "port": draw(st.integers(1, 65_535)),
        "ca": CA,
        "fields": fields,
    }
    now_s = int(NOW.timestamp())
    optional = {
        "exp": st.integers(now_s + 1, now_s + LIMITS.max_exp_ahead_s),
        "alert_types": st.lists(st.sampled_from(ALERT_TYPES), unique=True),
        "prefer_typed": st.booleans(),
        "delivery_policy": st.sampled_from(DELIVERY_POLICIES),
    }
    config |= draw(st.fixed_dictionaries({}, optional=optional))
    return {"vins": draw(st.lists(vins, min_size=1, max_size=3, unique=True)), "config": config}


@given(valid_bodies())
def test_valid_configs_are_accepted_and_round_trip(raw: dict[str, Any]) -> None:
    config = validate_config(raw, limits=LIMITS, now=NOW)
    assert config.to_json() == raw["config"]
    again = validate_config(
        {"vins": list(config.vins), "config": config.to_json()}, limits=LIMITS, now=NOW
    )
    assert again == config


@given(valid_bodies())
def test_a_valid_config_expires(raw: dict[str, Any]) -> None:
    """Past its exp, the same config is refused, and only for that reason (or its CA's age)."""
    exp = raw["config"].get("exp")
    if exp is None:
        return
    later = datetime.fromtimestamp(exp, UTC) + timedelta(seconds=1)
    try:
        validate_config(raw, limits=LIMITS, now=later)
    except TelemetryConfigError as error:
        assert "config.exp" in (error.messages or {})
    else:
        raise AssertionError("an expired config was accepted")
