"""One error family, rendered in Tesla's error envelope."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from flotta.validation import validation_message


class FlottaError(Exception):
    """An error a client can act on: HTTP status, Tesla's error key, a description."""

    status = 400
    key = "invalid_request"

    def __init__(
        self,
        description: str = "",
        *,
        status: int | None = None,
        key: str | None = None,
        messages: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description or key or self.key)
        self.status = status or self.status
        self.key = key or self.key
        self.description = description
        self.messages = messages
        self.headers = headers or {}


class InvalidRequest(FlottaError):
    status = 400
    key = "invalid_request"


class InvalidCommand(FlottaError):
    status = 400
    key = "invalid_command"


class Unauthorized(FlottaError):
    status = 401
    key = "invalid bearer token"


class MissingScopes(FlottaError):
    status = 403
    key = "Unauthorized missing scopes"


class NotFound(FlottaError):
    status = 404
    key = "not_found"


class VehicleUnavailable(FlottaError):
    """The vehicle is asleep or offline: Tesla answers 408 (clients map it to VehicleOffline)."""

    status = 408
    key = "vehicle unavailable: vehicle is offline or asleep"


class DeviceTimeout(FlottaError):
    """The vehicle was online but did not answer in time."""

    status = 408
    key = "vehicle unavailable: vehicle did not respond in time"


class SiteUnavailable(FlottaError):
    """The energy site's gateway is not connected or did not answer: Tesla's 408."""

    status = 408
    key = "device unavailable: energy site is offline or not responding"


class InvalidResource(FlottaError):
    status = 422
    key = "invalid_resource"


def _txid() -> str:
    return secrets.token_hex(16)


def error_body(error: FlottaError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "response": None,
        "error": error.key,
        "error_description": error.description if error.description != error.key else "",
        "txid": _txid(),
    }
    if error.messages:
        body["messages"] = error.messages
    return body


def error_response(error: FlottaError) -> Response:
    body = error_body(error)
    headers = {"x-txid": body["txid"], **error.headers}
    return Response(
        orjson.dumps(body), status_code=error.status, media_type="application/json", headers=headers
    )


_HTTP_KEYS = {404: "not_found", 405: "invalid_method", 406: "not_a_JSON_request"}


def install_error_handlers(app: FastAPI) -> None:
    """Render every failure, including framework ones, in Tesla's envelope."""

    async def on_flotta(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, FlottaError)
        return error_response(exc)

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        key = _HTTP_KEYS.get(exc.status_code, "invalid_request")
        detail = exc.detail if isinstance(exc.detail, str) else ""
        if exc.status_code == 404:
            detail = "no such endpoint"
        return error_response(FlottaError(detail, status=exc.status_code, key=key))

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        messages: dict[str, list[str]] = {}
        for problem in exc.errors():
            loc = problem.get("loc", ())
            where = ".".join(str(p) for p in loc if p not in ("body", "query", "path", "header"))
            if problem.get("type") == "json_invalid":
                where = "body"  # its loc names a character position, not a member
            messages.setdefault(where or "body", []).append(validation_message(problem))
        first = next(iter(messages.items()))
        description = f"invalid {first[0]} param: {first[1][0]}"
        return error_response(InvalidRequest(description, messages=messages))

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        # Last resort: still Tesla's envelope, and nothing internal leaks to the client.
        return error_response(FlottaError("internal error", status=500, key="internal_error"))

    app.add_exception_handler(FlottaError, on_flotta)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
