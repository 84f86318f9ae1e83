"""Which budget a token request draws on (a Fleet API request's: fleet/callers.py)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Scope


def token_client(body: bytes, scope: Scope) -> tuple[str, str]:
    """Who a token request counts against: the form's client_id, else the client's address."""
    try:
        for name, value in parse_qsl(body.decode(), keep_blank_values=True):
            if name == "client_id" and value:
                return "client", value[:128]
    except (UnicodeDecodeError, ValueError):
        pass
    client = scope.get("client")
    return "ip", str(client[0]) if client else "unknown"
