"""Simulated devices keep their gateway link up as real ones do: reconnect with jittered,
capped exponential back-off."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import websockets

log = structlog.get_logger(__name__)


async def stay_linked(
    session: Callable[[], Awaitable[None]],
    on_drop: Callable[[], None],
    *,
    rng: random.Random,
    max_delay_s: float,
    **who: Any,
) -> None:
    """Run `session` until cancelled, calling `on_drop` after each link ends."""
    delay = 0.2
    while True:
        try:
            await session()
            delay = 0.2
        except (OSError, websockets.WebSocketException) as exc:
            log.debug("device link dropped", error=str(exc), **who)
        finally:
            on_drop()
        await asyncio.sleep(delay * (0.5 + rng.random()))
        delay = min(delay * 2, max_delay_s)


async def wait_linked(connected: list[asyncio.Event], timeout_s: float, what: str) -> None:
    """Wait until every device is linked; TimeoutError says how many of `what` made it."""
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), timeout_s)
    except TimeoutError:
        linked = sum(e.is_set() for e in connected)
        raise TimeoutError(
            f"{linked} of {len(connected)} {what} connected within {timeout_s:g} s"
        ) from None


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the devices' link tasks and wait until each has ended."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
