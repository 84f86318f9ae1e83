"""docs/billing.md is generated from the code and lists every operation with its category."""

from __future__ import annotations

from pathlib import Path

from flotta.billing import docs
from flotta.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]


def test_billing_document_is_current() -> None:
    assert (ROOT / "docs" / "billing.md").read_text() == docs.render(), (
        "run: python -m flotta.billing.docs > docs/billing.md"
    )


def test_every_operation_is_listed_with_its_category() -> None:
    text = (ROOT / "docs" / "billing.md").read_text()
    rows = {
        (cells[1], cells[2].strip("`")): cells[3]
        for line in text.splitlines()
        if line.startswith("| ") and len(cells := [c.strip() for c in line.split("|")]) == 6
    }
    for path, item in openapi_document()["paths"].items():
        for method in item:
            assert (method.upper(), path) in rows, f"{method.upper()} {path} missing"
    vehicle = "/api/1/vehicles/{vehicle_tag}"
    assert rows[("GET", f"{vehicle}/vehicle_data")] == "data"
    assert rows[("POST", f"{vehicle}/wake_up")] == "wakes"
    assert rows[("POST", f"{vehicle}/command/{{command}}")] == "commands"
    assert rows[("POST", "/oauth2/v3/token")] == "free"


def test_the_readme_links_the_document() -> None:
    assert "`docs/billing.md`" in (ROOT / "README.md").read_text()
