"""Fleet telemetry config validation: every mistake named at its JSON path (fleet-api.md §9.1)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from flotta.errors import InvalidRequest
from flotta.telemetry.config import (
    ConfigLimits,
    FieldRule,
    TelemetryConfig,
    TelemetryConfigError,
    validate_config,
    validate_config_claims,
)
from flotta.telemetry.fields import (
    FIELD_NAMES,
    FIELD_NUMBERS,
    LOCATION_FIELDS,
    MINIMUM_DELTA_AT_LEAST_ONE_FIELDS,
    TYPED_ONLY_FIELDS,
    VEHICLE_LOCATION_SCOPE_FIELDS,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LIMITS = ConfigLimits()
VIN_A = "5YJ3E1EA7KF000001"
VIN_B = "7SAYGDEE5PA000002"


def issue_certificate(
    common_name: str,
    *,
    ca: bool,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    not_before: datetime = NOW - timedelta(days=30),
    not_after: datetime = NOW + timedelta(days=365),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A P-256 certificate, self-signed unless `issuer` is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )
    return certificate, key


def pem(*certificates: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


@pytest.fixture(scope="module")
def root() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return issue_certificate("Flotta Test Root CA", ca=True)


@pytest.fixture(scope="module")
def ca_pem(root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> str:
    return pem(root[0])


@pytest.fixture
def body(ca_pem: str) -> dict[str, Any]:
    """The §9.1 example request, valid at NOW."""
    return {
        "vins": [VIN_A, VIN_B],
        "config": {
            "hostname": "telemetry.example.com",
            "port": 443,
            "ca": ca_pem,
            "exp": int((NOW + timedelta(days=30)).timestamp()),
            "prefer_typed": True,
            "delivery_policy": "latest",
            "alert_types": ["service"],
            "fields": {
                "VehicleSpeed": {"interval_seconds": 10},
                "Location": {"interval_seconds": 10, "minimum_delta": 50},
                "BmsFullchargecomplete": {
                    "interval_seconds": 1800,
                    "resend_interval_seconds": 3600,
                },
            },
        },
    }


def problems_of(raw: object, limits: ConfigLimits = LIMITS) -> dict[str, list[str]]:
    with pytest.raises(TelemetryConfigError) as caught:
        validate_config(raw, limits=limits, now=NOW)
    return caught.value.messages or {}


def test_the_documented_example_is_accepted_and_normalised(body: dict[str, Any]) -> None:
    config = validate_config(body, limits=LIMITS, now=NOW)
    assert config.vins == (VIN_A, VIN_B)
    assert config.hostname == "telemetry.example.com"
    assert config.fields["Location"] == FieldRule(10, Decimal(50), None)
    assert config.fields["BmsFullchargecomplete"] == FieldRule(1800, None, 3600)
    assert config.to_json() == body["config"]


def test_defaults_fill_in_and_nulls_mean_absent(ca_pem: str) -> None:
    raw = {
        "vins": [VIN_A],
        "config": {
            "hostname": "10.0.0.7",
            "ca": ca_pem,
            "port": None,
            "exp": None,
            "alert_types": None,
            "fields": {"Soc": {"interval_seconds": 60, "minimum_delta": None}},
        },
    }
    config = validate_config(raw, limits=LIMITS, now=NOW)
    assert config.to_json() == {
        "hostname": "10.0.0.7",
        "port": 443,
        "ca": ca_pem,
        "fields": {"Soc": {"interval_seconds": 60}},
    }


def test_fractional_delta_is_exact_and_round_trips(body: dict[str, Any]) -> None:
    body["config"]["fields"]["VehicleSpeed"]["minimum_delta"] = 0.1
    config = validate_config(body, limits=LIMITS, now=NOW)
    assert config.fields["VehicleSpeed"].minimum_delta == Decimal("0.1")
    assert config.to_json()["fields"]["VehicleSpeed"]["minimum_delta"] == 0.1
    again = validate_config(
        {"vins": list(config.vins), "config": config.to_json()}, limits=LIMITS, now=NOW
    )
    assert again == config


def test_every_mistake_is_named_in_one_error(body: dict[str, Any]) -> None:
    config = body["config"]
    config["port"] = 0
    config["fields"]["VehicleSpeeed"] = config["fields"].pop("VehicleSpeed")
    config["fields"]["Location"]["interval_seconds"] = 0
    config["alert_types"] = ["service", "services"]
    with pytest.raises(TelemetryConfigError) as caught:
        validate_config(body, limits=LIMITS, now=NOW)
    error = caught.value
    assert [p.path for p in error.problems] == [
        "config.port",
        "config.fields.Location.interval_seconds",
        "config.fields.VehicleSpeeed",  # moved last by the pop above
        "config.alert_types[1]",
    ]
    assert (
        error.problems[2].message == "unknown field 'VehicleSpeeed'; did you mean 'VehicleSpeed'?"
    )
    assert isinstance(error, InvalidRequest) and error.status == 400
    assert error.description.startswith("invalid fleet telemetry config: config.port: port 0 ")
    assert error.description.endswith("(and 3 more problems, see messages)")


def _set(body: dict[str, Any], path: str, value: object) -> None:
    """Set (or, with `...`, delete) a dotted path such as `config.fields.Soc`."""
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value


FUTURE = int((NOW + timedelta(days=1)).timestamp())
PAST = int((NOW - timedelta(seconds=1)).timestamp())

CASES: list[tuple[str, object, str, str]] = [
    # (path to set, value, path reported, message fragment)
    ("vins", ..., "vins", "vins is required"),
    ("vins", VIN_A, "vins", "vins must be a list of VINs, not string"),
    ("vins", [], "vins", "at least one vehicle"),
    ("vins", [VIN_A, VIN_A], "vins[1]", "duplicate VIN '5YJ3E1EA7KF000001' (already at vins[0])"),
    ("vins", [VIN_A.lower()], "vins[0]", "VINs are upper case: write '5YJ3E1EA7KF000001'"),
    ("vins", ["5YJ3E1EA7KF00001"], "vins[0]", "it has 16 characters, a VIN has 17"),
    ("vins", ["5YJ3E1EA7KF00000O"], "vins[0]", "except I, O and Q"),
    ("vins", [17], "vins[0]", "a VIN must be a string, not number 17"),
    ("token", "a.b.c", "token", "fleet_telemetry_config_jws"),
    ("extra", 1, "extra", "unknown request body key 'extra'; allowed: config, vins"),
    ("config", ..., "config", "config is required"),
    ("config", [], "config", "config must be an object, not an array"),
    ("config.hostname", ..., "config.hostname", "hostname is required"),
    ("config.hostname", 7, "config.hostname", "hostname must be a string, not number 7"),
    ("config.hostname", "https://t.example.com", "config.hostname", "use 't.example.com'"),
    ("config.hostname", "t.example.com/ws", "config.hostname", "must not include a path"),
    ("config.hostname", "t.example.com:8443", "config.hostname", "port to 8443"),
    ("config.hostname", "[::1]", "config.hostname", "without brackets"),
    ("config.hostname", "bad_host.example.com", "config.hostname", "not a valid host name"),
    ("config.hostname", "256.1.1.1", "config.hostname", "not a valid IPv4 address"),
    ("config.hostname", "telemetry", "config.hostname", "not a fully qualified domain name"),
    ("config.hostname", "télé.example.com", "config.hostname", "IDNA ('xn--') form"),
    ("config.port", 65536, "config.port", "port 65536 is out of range: use 1-65535"),
    ("config.port", True, "config.port", "port must be an integer, not boolean true"),
    ("config.port", "443", "config.port", "port must be an integer, not string '443'"),
    ("config.ca", ..., "config.ca", "ca is required"),
    ("config.ca", ["pem"], "config.ca", "ca must be a PEM string, not an array"),
    ("config.exp", PAST, "config.exp", "is not in the future"),
    ("config.exp", FUTURE * 1000, "config.exp", "looks like milliseconds"),
    ("config.exp", float(FUTURE), "config.exp", "exp must be an integer Unix time"),
    ("config.exp", True, "config.exp", "not boolean true"),
    ("config.include_fields", [], "config.include_fields", "unknown config key 'include_fields'"),
    ("config.hostnmae", "x", "config.hostnmae", "did you mean 'hostname'?"),
    ("config.fields", ..., "config.fields", "fields is required"),
    ("config.fields", {}, "config.fields", "at least one field"),
    ("config.fields", ["Soc"], "config.fields", "fields must be an object"),
    ("config.fields.Unknown", {"interval_seconds": 1}, "config.fields.Unknown", "zero value"),
    (
        "config.fields.vehiclespeed",
        {"interval_seconds": 1},
        "config.fields.vehiclespeed",
        "did you mean 'VehicleSpeed'?",
    ),
    ("config.fields.Soc", 10, "config.fields.Soc", "a field rule must be an object"),
    ("config.fields.Soc", {}, "config.fields.Soc.interval_seconds", "interval_seconds is required"),
    (
        "config.fields.Soc",
        {"interval_seconds": 86401},
        "config.fields.Soc.interval_seconds",
        "interval_seconds 86401 is out of range: use 1-86400",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": True},
        "config.fields.Soc.interval_seconds",
        "not boolean true",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": 1.5},
        "config.fields.Soc.interval_seconds",
        "whole number of seconds, not number 1.5",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": 1, "interval": 5},
        "config.fields.Soc.interval",
        "unknown field rule key 'interval'; did you mean 'interval_seconds'?",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": 1, "minimum_delta": 0},
        "config.fields.Soc.minimum_delta",
        "must be above 0",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": 1, "minimum_delta": "1"},
        "config.fields.Soc.minimum_delta",
        "minimum_delta must be a number, not string '1'",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": 1, "minimum_delta": float("inf")},
        "config.fields.Soc.minimum_delta",
        "finite",
    ),
    (
        "config.fields.MilesSinceReset",
        {"interval_seconds": 30, "minimum_delta": 0.5},
        "config.fields.MilesSinceReset.minimum_delta",
        "must be at least 1",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": 60, "resend_interval_seconds": 30},
        "config.fields.Soc.resend_interval_seconds",
        "resend_interval_seconds 30 is shorter than interval_seconds 60: use 60-86400",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": 60, "resend_interval_seconds": 90000},
        "config.fields.Soc.resend_interval_seconds",
        "out of range: use 1-86400",
    ),
    (
        "config.fields.Soc",
        {"interval_seconds": 60, "resend_interval_seconds": "1h"},
        "config.fields.Soc.resend_interval_seconds",
        "whole number of seconds",
    ),
    ("config.alert_types", "service", "config.alert_types", "must be a list"),
    ("config.alert_types", ["Service"], "config.alert_types[0]", "did you mean 'service'?"),
    (
        "config.alert_types",
        ["owner"],
        "config.alert_types[0]",
        "unknown alert type 'owner'; allowed: customer, service, service_fix",
    ),
    ("config.alert_types", ["service", "service"], "config.alert_types[1]", "duplicate"),
    ("config.alert_types", [1], "config.alert_types[0]", "must be a string, not number 1"),
    ("config.prefer_typed", "true", "config.prefer_typed", "true or false, not string 'true'"),
    ("config.prefer_typed", 1, "config.prefer_typed", "true or false, not number 1"),
    ("config.delivery_policy", "resend", "config.delivery_policy", "must be 'latest'"),
]


@pytest.mark.parametrize(("where", "value", "path", "fragment"), CASES)
def test_each_rule_names_the_mistake(
    body: dict[str, Any], where: str, value: object, path: str, fragment: str
) -> None:
    _set(body, where, value)
    messages = problems_of(body)
    assert path in messages, messages
    assert any(fragment in message for message in messages[path]), messages[path]


def test_odd_keys_get_an_unambiguous_path(body: dict[str, Any]) -> None:
    body["config"]["fields"]["Vehicle.Speed"] = {"interval_seconds": 1}
    body[""] = 1
    assert set(problems_of(body)) == {'[""]', 'config.fields["Vehicle.Speed"]'}


def test_a_body_that_is_not_an_object_is_named() -> None:
    assert problems_of([1, 2]) == {
        "body": ["the body must be an object with vins and config, not an array"]
    }


def test_limits_are_configurable(body: dict[str, Any]) -> None:
    limits = ConfigLimits(max_vins=1, max_fields=2, max_interval_s=600, max_exp_ahead_s=86_400)
    body["config"]["exp"] = int((NOW + timedelta(days=2)).timestamp())
    messages = problems_of(body, limits)
    assert messages["vins"] == ["vins lists 2 vehicles; send at most 1"]
    assert messages["config.fields"] == ["3 fields configured; at most 2"]
    assert "use 1-600" in messages["config.fields.BmsFullchargecomplete.interval_seconds"][0]
    assert "too far ahead: at most" in messages["config.exp"][0]


def test_every_catalogued_field_fits_the_default_limit(body: dict[str, Any]) -> None:
    body["config"]["fields"] = {name: {"interval_seconds": 60} for name in FIELD_NAMES}
    for name in MINIMUM_DELTA_AT_LEAST_ONE_FIELDS:
        body["config"]["fields"][name]["minimum_delta"] = 1
    config = validate_config(body, limits=LIMITS, now=NOW)
    assert len(config.fields) == len(FIELD_NAMES) == LIMITS.max_fields


def test_a_chain_of_cas_is_accepted(
    body: dict[str, Any], root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    intermediate, _ = issue_certificate("Flotta Test Issuing CA", ca=True, issuer=root)
    body["config"]["ca"] = pem(intermediate, root[0])
    assert validate_config(body, limits=LIMITS, now=NOW).ca == body["config"]["ca"]


def test_a_server_certificate_with_its_chain_is_accepted_but_alone_is_named(
    body: dict[str, Any], root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    leaf, _ = issue_certificate("telemetry.example.com", ca=False, issuer=root)
    body["config"]["ca"] = pem(leaf, root[0])  # what `tailscale cert` writes, as tescmd sends it
    assert validate_config(body, limits=LIMITS, now=NOW).ca == body["config"]["ca"]
    body["config"]["ca"] = pem(leaf)
    messages = problems_of(body)
    assert list(messages) == ["config.ca"]
    assert messages["config.ca"][0].startswith("ca holds no CA certificate")


def test_expired_and_future_cas_are_named(body: dict[str, Any], ca_pem: str) -> None:
    expired, _ = issue_certificate(
        "Old CA", ca=True, not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1)
    )
    early, _ = issue_certificate("Early CA", ca=True, not_before=NOW + timedelta(days=1))
    body["config"]["ca"] = ca_pem + pem(expired, early)
    messages = problems_of(body)
    assert messages == {
        "config.ca[1]": ["certificate (CN=Old CA) expired at 2025-05-31T12:00:00Z"],
        "config.ca[2]": ["certificate (CN=Early CA) is not valid until 2025-06-02T12:00:00Z"],
    }


@pytest.mark.parametrize(
    ("ca", "fragment"),
    [
        ("not a certificate", "holds no '-----BEGIN CERTIFICATE-----' block"),
        (
            "-----BEGIN CERTIFICATE-----\nTUlJQm9n\n-----END CERTIFICATE-----\n",
            "not a valid X.509 certificate",
        ),
        ("-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----\n", "private key"),
        ("-----BEGIN CERTIFICATE-----\n\u00e9\n-----END CERTIFICATE-----\n", "ASCII"),
        ("x" * 70_000, "at most 65536"),
    ],
)
def test_an_unusable_ca_is_named(body: dict[str, Any], ca: str, fragment: str) -> None:
    body["config"]["ca"] = ca
    messages = problems_of(body)
    assert list(messages) == ["config.ca"]
    assert fragment in messages["config.ca"][0]


def test_jws_claims_carry_the_same_config(body: dict[str, Any]) -> None:
    claims = copy.deepcopy(body["config"])
    claims.update(iss="BASE64KEY", aud="com.tesla.fleet.TelemetryClient")
    config = validate_config_claims(body["vins"], claims, limits=LIMITS, now=NOW)
    assert config == validate_config(body, limits=LIMITS, now=NOW)
    assert "iss" not in config.to_json()


def test_jws_claim_problems_are_under_token(body: dict[str, Any]) -> None:
    claims = copy.deepcopy(body["config"])
    claims["fields"]["Soc"] = {"interval_seconds": 0}
    claims["nbf"] = 1
    with pytest.raises(TelemetryConfigError) as caught:
        validate_config_claims(["bad"], claims, limits=LIMITS, now=NOW)
    assert [p.path for p in caught.value.problems] == [
        "vins[0]",
        "token.nbf",
        "token.fields.Soc.interval_seconds",
    ]


def test_now_must_be_aware(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="aware"):
        validate_config(body, limits=LIMITS, now=NOW.replace(tzinfo=None))


def test_the_catalogue_follows_the_field_enum() -> None:
    assert "Unknown" not in FIELD_NAMES
    assert FIELD_NUMBERS["VehicleSpeed"] == 4 and FIELD_NUMBERS["MilesSinceReset"] == 258
    assert {"Location", "OriginLocation", "DestinationLocation"} == LOCATION_FIELDS
    assert LOCATION_FIELDS | {"GpsHeading", "RouteLine"} <= VEHICLE_LOCATION_SCOPE_FIELDS
    assert "DetailedChargeState" in TYPED_ONLY_FIELDS and "VehicleSpeed" not in TYPED_ONLY_FIELDS
    assert {"MilesSinceReset", "SelfDrivingMilesSinceReset"} == MINIMUM_DELTA_AT_LEAST_ONE_FIELDS


def test_config_is_immutable(body: dict[str, Any]) -> None:
    config: TelemetryConfig = validate_config(body, limits=LIMITS, now=NOW)
    with pytest.raises(TypeError):
        config.fields["Soc"] = FieldRule(1)  # type: ignore[index]
