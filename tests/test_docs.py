"""Generated documents stay true: the compatibility table and the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

from flotta import compat
from flotta.openapi import openapi_document

ROOT = Path(__file__).resolve().parent.parent


def _routes() -> set[tuple[str, str]]:
    """Every HTTP operation the app serves, as its OpenAPI document lists them."""
    return {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
    }


def test_compatibility_document_is_current() -> None:
    assert (ROOT / "docs" / "compatibility.md").read_text() == compat.render(), (
        "run: python -m flotta.compat > docs/compatibility.md"
    )


def test_every_endpoint_marked_done_is_a_real_route() -> None:
    routes = _routes()
    missing = [
        f"{e.method} {e.path}"
        for e in compat.ENDPOINTS
        if e.status == compat.DONE and (e.method, e.path) not in routes
    ]
    assert missing == []


def test_every_api_route_is_in_the_compatibility_table() -> None:
    listed = {(e.method, e.path) for e in compat.ENDPOINTS}
    unlisted = sorted(
        f"{m} {p}"
        for m, p in _routes()
        if p.startswith("/api/") and m != "HEAD" and (m, p) not in listed
    )
    assert unlisted == []


def test_openapi_document_is_current() -> None:
    current = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert current == openapi_document(), "run: python -m flotta.openapi > docs/openapi.json"


def test_every_operation_documents_the_error_envelope() -> None:
    for path, item in openapi_document()["paths"].items():
        # /status is public; the browser-facing authorize page sends the signed-out to sign in;
        # the spend estimate reads no account data.
        if path in ("/status", "/oauth2/v3/authorize", "/flotta/v1/billing/estimate"):
            continue
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert "401" in codes, f"{method.upper()} {path} does not declare 401"


def test_validation_failures_are_documented_as_they_are_answered() -> None:
    """A request that fails validation is answered 400 in Tesla's envelope (errors.py), never
    FastAPI's 422 body: the document must not promise that body anywhere."""
    document = openapi_document()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for code in ("400", "422"):
                schema = responses.get(code, {}).get("content", {}).get("application/json", {})
                assert "HTTPValidationError" not in json.dumps(schema), f"{method} {path} {code}"
            if operation.get("parameters") or operation.get("requestBody"):
                assert "400" in responses, f"{method.upper()} {path} does not declare 400"
