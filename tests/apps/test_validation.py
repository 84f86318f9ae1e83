"""Field rules of an application: redirect URIs, origins, domains and the root-domain rule."""

from __future__ import annotations

import pytest

from flotta.apps.schemas import ApplicationInput
from flotta.apps.validation import (
    domain_matches,
    domain_problem,
    normalise_origin,
    redirect_uri_problem,
    root_domain,
    validate_application,
)
from tests.apps.support import GOOD_FORM


def _input(**changes: object) -> ApplicationInput:
    fields = {**GOOD_FORM, **changes}
    return ApplicationInput(**{**fields, "scopes": tuple(fields["scopes"])})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/cb?x=1",
        "http://localhost:8080/callback",
        "http://127.0.0.1/cb",
        "http://[::1]:3000/cb",
        "tesla://auth/callback",
        "com.example.app:/oauth2redirect",
    ],
)
def test_redirect_uris_that_are_accepted(uri: str) -> None:
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("http://app.example.com/cb", "http is allowed only for localhost"),
        ("https://app.example.com/cb#frag", "fragment"),
        ("/callback", "absolute URL"),
        ("localhost:3000/callback", "absolute URL"),
        ("javascript:alert(1)", "not allowed"),
        ("https://user:pw@app.example.com/cb", "user name or password"),
        ("https://app.example.com/a b", "spaces"),
        ("https://[::1/cb", "not a valid URL"),
        ("myapp:", "needs a path"),
    ],
)
def test_redirect_uris_that_are_refused(uri: str, says: str) -> None:
    problem = redirect_uri_problem(uri)
    assert problem is not None and says in problem


def test_origins_are_scheme_host_port_only() -> None:
    assert normalise_origin("https://App.Example.com") == ("https://app.example.com", None)
    assert normalise_origin("http://localhost:3000") == ("http://localhost:3000", None)
    assert normalise_origin("http://[::1]:3000") == ("http://[::1]:3000", None)
    for bad, says in [
        ("https://app.example.com/", "must not end with /"),
        ("https://app.example.com/path", "without a path"),
        ("http://app.example.com", "http is allowed only"),
        ("app.example.com", "scheme and host"),
        ("https://app.example.com:99999", "not a valid origin"),
    ]:
        origin, problem = normalise_origin(bad)
        assert origin is None and problem is not None and says in problem, bad


def test_domains_are_lower_case_host_names() -> None:
    assert domain_problem("app.example.com") is None
    assert "https://" in (domain_problem("https://app.example.com") or "")
    assert "lower case" in (domain_problem("App.example.com") or "")
    assert "full domain" in (domain_problem("localhost") or "")
    assert "IP address" in (domain_problem("10.0.0.1") or "")
    assert "only letters" in (domain_problem("my app.com") or "")
    assert "letters, digits and hyphens" in (domain_problem("-bad.example.com") or "")


def test_root_domain_rule_of_reference_3_2() -> None:
    assert root_domain("123.abc.com") == root_domain("www.abc.com") == "abc.com"
    assert root_domain("app.example.co.uk") == "example.co.uk"
    origins = ["https://www.abc.com"]
    assert domain_matches("123.abc.com", "", origins)
    assert not domain_matches("abc.org", "", origins)
    assert not domain_matches("evil.co.uk", "", ["https://good.co.uk"])
    assert domain_matches("exact.example.net", "exact.example.net", origins)


def test_a_valid_application_is_normalised() -> None:
    valid, errors = validate_application(
        _input(domain=" API.Example.com ", allowed_origins="https://Planner.example.com\n\n")
    )
    assert errors == {} and valid is not None
    assert valid.domain == "api.example.com"
    assert valid.allowed_origins == ["https://planner.example.com"]
    assert valid.scopes == [
        "openid",
        "offline_access",
        "vehicle_device_data",
        "vehicle_charging_cmds",
    ]


def test_every_problem_is_reported_at_once() -> None:
    _, errors = validate_application(
        ApplicationInput(
            website="http://example.com",
            domain="https://x",
            redirect_uris="ftp-less",
            allowed_origins="https://a.example.com/path",
            scopes=("teleport",),
            client_type="both",
        )
    )
    assert set(errors) == {
        "name",
        "description",
        "intended_use",
        "website",
        "domain",
        "redirect_uris",
        "allowed_origins",
        "scopes",
        "client_type",
    }


def test_domain_must_share_the_root_of_an_allowed_origin() -> None:
    _, errors = validate_application(_input(domain="api.other.org"))
    assert set(errors) == {"domain"}
    assert "other.org" in errors["domain"] and "allowed origins" in errors["domain"]
