"""The spend estimator page (`/portal/billing/estimate`): open to everyone, no sign-in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from flotta.billing.estimator import estimate, to_result
from flotta.billing.prices import PriceBook
from flotta.billing.schemas import EstimateRequest
from flotta.portal.web import PORTAL, read_form, render, runtime_of, signed_in
from flotta.validation import validation_message

router = APIRouter(include_in_schema=False)

PAGE = f"{PORTAL}/billing/estimate"
NUMBERS = ("vehicles", "commands_per_day", "data_per_day", "wakes_per_day", "days")
# The seed's example: two cars driving an hour a day with a 15-signals-a-minute config.
EXAMPLE = {
    "vehicles": "2",
    "fields": "Location 10 1/24\nVehicleSpeed 10 1/24\nSoc 60 1/24\nOdometer 60 1/24\nGear 60 1/24",
    "commands_per_day": "100",
    "data_per_day": "0",
    "wakes_per_day": "2",
    "days": "",
    "month": "",
}


def _fields_from_text(text: str) -> tuple[list[dict[str, str]], list[int], list[str]]:
    """One field per line, `Name interval share` (share defaults to 1): the fields, the line
    each came from, and the lines that could not be read."""
    fields: list[dict[str, str]] = []
    lines: list[int] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.replace(":", " ").split()
        if not parts:
            continue
        if len(parts) not in (2, 3):
            problems.append(f"line {number}: write `Name interval share`, e.g. Location 60 0.1")
            continue
        share = parts[2] if len(parts) == 3 else "1"
        fields.append({"name": parts[0], "interval_seconds": parts[1], "active_share": share})
        lines.append(number)
    return fields, lines, problems


def _payload(form: dict[str, str]) -> tuple[dict[str, Any], list[int], list[str]]:
    fields, lines, problems = _fields_from_text(form["fields"])
    payload: dict[str, Any] = {"fields": fields}
    for name in NUMBERS:
        if form[name].strip():
            payload[name] = form[name].strip()
    if form["month"].strip():
        payload["month"] = form["month"].strip()
    return payload, lines, problems


def _errors_of(invalid: ValidationError, lines: list[int]) -> dict[str, list[str]]:
    """Each problem under the form field it belongs to, in words."""
    errors: dict[str, list[str]] = {}
    for problem in invalid.errors():
        loc = problem["loc"]
        where = str(loc[0]) if loc else "vehicles"
        message = validation_message(problem)
        if where == "fields" and len(loc) > 2 and isinstance(loc[1], int):
            message = f"line {lines[loc[1]]}, {str(loc[2]).replace('_', ' ')}: {message}"
        errors.setdefault(where, []).append(message)
    return errors


def _form_of(data: FormData) -> dict[str, str]:
    def text(name: str) -> str:
        value = data.get(name)
        return value if isinstance(value, str) else ""

    return {name: text(name) for name in EXAMPLE}


@router.get(PAGE)
async def estimate_page(request: Request) -> Response:
    """The form, filled in with the seed's example."""
    async with runtime_of(request).sessions() as db, db.begin():
        await signed_in(request, db)  # only for the navigation bar and the CSRF key
    return render(request, "estimate.html", {"form": EXAMPLE, "errors": {}, "result": None})


@router.post(PAGE)
async def estimate_submit(request: Request) -> Response:
    """The estimate for the posted usage, or the form again with each problem by its field."""
    runtime = runtime_of(request)
    async with runtime.sessions() as db, db.begin():
        await signed_in(request, db)
    form = _form_of(await read_form(request))
    payload, lines, unreadable = _payload(form)
    errors: dict[str, list[str]] = {"fields": unreadable} if unreadable else {}
    try:
        body = EstimateRequest.model_validate(payload)
    except ValidationError as invalid:
        for where, messages in _errors_of(invalid, lines).items():
            errors.setdefault(where, []).extend(messages)
    if errors:
        shown = {where: "; ".join(messages) for where, messages in errors.items()}
        context = {"form": form, "errors": shown, "result": None}
        return render(request, "estimate.html", context, status=400)
    book = PriceBook.from_settings(runtime.settings.billing)
    result = to_result(estimate(book, body))
    return render(request, "estimate.html", {"form": form, "errors": {}, "result": result})
