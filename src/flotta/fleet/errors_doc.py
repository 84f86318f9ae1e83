"""OpenAPI declarations of the Tesla error envelope, so every endpoint documents its errors."""

from __future__ import annotations

from typing import Any

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
