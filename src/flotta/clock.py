"""Injected time: every component asks a Clock, so tests and the simulator can move it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol


class Clock(Protocol):
    """Source of aware UTC time and of (possibly accelerated) sleeping."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float:
        """Seconds of clock time since an arbitrary origin; never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of clock time (wall time divided by the clock's speed)."""
        ...


class SystemClock:
    """Real time.

    `now` and `monotonic` are the C functions themselves, not methods calling them: the request
    path asks the clock several times per request, and each Python frame cost more than the
    call it wrapped. (So patching `time.monotonic` does not reach it: patch the attribute.)
    """

    speed = 1.0
    now: Callable[[], datetime] = staticmethod(partial(datetime.now, UTC))
    monotonic: Callable[[], float] = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Time that runs `speed` times faster than the wall, from a chosen start.

    The simulator uses it for demos (a 30 s wake takes 3 s at speed 10) and tests use it
    instead of sleeping for real.
    """

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self._wall0 = time.monotonic()
        self._start = start or datetime.now(UTC)

    def monotonic(self) -> float:
        return (time.monotonic() - self._wall0) * self.speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """Time that moves only when a test says so; `sleep` returns once time has been advanced."""

    speed = 1.0

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._elapsed = 0.0
        self._changed = asyncio.Event() if _has_loop() else None

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._elapsed += seconds
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        deadline = self._elapsed + max(0.0, seconds)
        while self._elapsed < deadline:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
