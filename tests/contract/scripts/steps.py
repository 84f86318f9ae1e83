"""Shared by the scripts run under Python 3.13: record each client call's outcome as JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Step = Callable[[], Awaitable[Any]]


async def record(summary: dict[str, Any], name: str, step: Step) -> Any:
    """Run one step; its value or its error goes into `summary[name]` (the test reads it)."""
    try:
        value = await step()
    except BaseException as exc:  # TeslaFleetError derives from BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        summary[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc!r}"[:500]}
        return None
    summary[name] = {"ok": True, "value": value}
    return value
