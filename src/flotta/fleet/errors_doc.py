"""OpenAPI declarations of the Tesla error envelope, so every endpoint documents its errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class ErrorEnvelope(BaseModel):
    response: None = None
    error: str
    error_description: str = ""
    txid: str = ""
    messages: dict[str, list[str]] | None = None


DESCRIPTIONS = {
    400: "Bad request: unknown command, invalid parameter or malformed body",
    401: "Missing, malformed or expired access token",
    403: "Unauthorized missing scopes, or a partner token on a user or vehicle endpoint",
    404: "No such vehicle on this account (or not one the owner selected for this app)",
    408: "Vehicle unavailable: asleep, offline or not answering",
    412: "The app has not registered in this region: call POST /api/1/partner_accounts",
    422: "Invalid resource",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the envelope model.

    Every authenticated route (one declaring 401) can also answer 403 to a partner token and
    412 to an app that has not called partner_accounts.
    """
    declared = set(statuses) | ({403, 412} if 401 in statuses else set())
    return {s: {"model": ErrorEnvelope, "description": DESCRIPTIONS[s]} for s in sorted(declared)}


VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def declare_validation_errors(app: FastAPI) -> None:
    """Document what a request that fails validation really gets: FastAPI declares its own 422
    body, but every such request is answered 400 in Tesla's envelope (`errors.py`), with
    `messages` naming each problem."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                declared = responses.get("422", {})
                body = declared.get("content", {}).get("application/json", {}).get("schema", {})
                if not str(body.get("$ref", "")).endswith("/HTTPValidationError"):
                    continue
                del responses["422"]
                responses.setdefault(
                    "400",
                    {
                        "description": DESCRIPTIONS[400],
                        "content": {"application/json": {"schema": envelope}},
                    },
                )
        components = schema.get("components", {}).get("schemas", {})
        for name in VALIDATION_SCHEMAS:
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
