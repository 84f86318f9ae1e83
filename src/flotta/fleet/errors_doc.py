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
    403: "Unauthorized missing scopes",
    404: "No such vehicle on this account",
    408: "Vehicle unavailable: asleep, offline or not answering",
    422: "Invalid resource",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the envelope model."""
    return {s: {"model": ErrorEnvelope, "description": DESCRIPTIONS[s]} for s in statuses}
