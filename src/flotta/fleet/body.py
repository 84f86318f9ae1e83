"""Reading JSON request bodies with errors a developer can act on."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.requests import ClientDisconnect

from flotta.errors import FlottaError, InvalidRequest

MAX_BODY_BYTES = 1_000_000


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is `{}` (clients send no-argument commands so)."""
    try:
        raw = await request.body()
    except ClientDisconnect as exc:
        # Nobody will read the answer; end the request without logging a server error.
        raise FlottaError("client closed request", status=499, key="client_closed") from exc
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest(f"request body exceeds {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body
