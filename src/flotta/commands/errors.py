"""Validation errors raised while parsing a legacy REST vehicle command.

Status and key choices (documented here because Tesla publishes no table for them):

* Unknown command name -> ``400 invalid_command``, exactly what ``tesla-http-proxy`` returns
  (``{"response":null,"error":"invalid_command","error_description":""}``).
* Body that is not a JSON object -> ``400 invalid_request``: the request itself is malformed.
* Missing required parameter -> ``400 invalid_request`` with the proxy's wording
  ``missing <x> param``: the request is incomplete rather than carrying a bad value.
* Parameter present but of the wrong JSON type, out of range or not one of the allowed
  values -> ``400 invalid_field`` with the proxy's wording ``invalid <x> param`` followed by
  the rule that was broken.  The proxy uses 400 for every bad parameter (its one explicit
  key is ``invalid_value``); ``invalid_field`` is the key Tesla's Fleet API documents for a
  bad field, and clients map it to a specific exception (tesla-fleet-api ``InvalidField``).

422 is never produced by this package: Tesla reserves it for "the vehicle does not support
this" answers, which only the vehicle (simulator) can give.  ``status`` stays an attribute
so the API layer can render any ``CommandError`` without special cases.
"""

from __future__ import annotations

from typing import Literal

ErrorKey = Literal["invalid_command", "invalid_request", "invalid_field"]


class CommandError(Exception):
    """A command request that cannot be turned into a vehicle message."""

    def __init__(self, status: int, key: ErrorKey, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.key: ErrorKey = key
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"CommandError({self.status}, {self.key!r}, {self.message!r}, field={self.field!r})"

    @classmethod
    def unknown_command(cls, name: str) -> CommandError:
        """Build the error for a command name that is not in the catalogue."""
        return cls(400, "invalid_command", f"unknown command {name!r}", None)

    @classmethod
    def bad_body(cls) -> CommandError:
        """Build the error for a body that is not a JSON object."""
        return cls(400, "invalid_request", "request body must be a JSON object", None)

    @classmethod
    def missing(cls, field: str) -> CommandError:
        """Build the proxy-style ``missing <x> param`` error."""
        return cls(400, "invalid_request", f"missing {field} param", field)

    @classmethod
    def invalid(cls, field: str, rule: str) -> CommandError:
        """Build the proxy-style ``invalid <x> param`` error with the broken rule appended."""
        return cls(400, "invalid_field", f"invalid {field} param: {rule}", field)
