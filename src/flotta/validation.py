"""Pydantic's validation problems in words a developer can act on, for the API, CLI and portal
alike (kept free of the web stack: the CLI imports it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def validation_message(problem: Mapping[str, Any]) -> str:
    """One problem of `ValidationError.errors()`: our validators' own messages without
    pydantic's "Value error, " prefix, and a body that is not JSON said so."""
    context = problem.get("ctx") or {}
    if problem.get("type") == "json_invalid":
        return f"request body is not valid JSON: {context.get('error', 'cannot be parsed')}"
    return str(problem.get("msg", "invalid")).removeprefix("Value error, ")
