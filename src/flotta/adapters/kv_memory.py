"""In-process key-value store: the embedded default and the unit-test double of Redis."""

from __future__ import annotations

from collections.abc import Sequence

from flotta.clock import Clock
from flotta.ports.kv import check_ttl

# Expired keys are dropped when read, and in a sweep every this many writes.
SWEEP_EVERY = 1000


class MemoryKV:
    """Expiry follows the injected Clock, so tests move time instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._writes = 0

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        deadline = entry[1]
        if deadline is not None and self._clock.monotonic() >= deadline:
            del self._data[key]
            return None
        return entry

    def _deadline(self, ttl_s: float | None) -> float | None:
        check_ttl(ttl_s)
        return None if ttl_s is None else self._clock.monotonic() + ttl_s

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            now = self._clock.monotonic()
            expired = [k for k, (_, d) in self._data.items() if d is not None and now >= d]
            for key in expired:
                del self._data[key]

    async def get(self, key: str) -> bytes | None:
        entry = self._live(key)
        return None if entry is None else entry[0]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._data[key] = (bytes(value), self._deadline(ttl_s))
        self._wrote()

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        deadline = self._deadline(ttl_s)
        entry = self._live(key)
        current = 0
        if entry is not None:
            try:
                current = int(entry[0])
            except ValueError:
                raise ValueError(f"{key!r} does not hold an integer") from None
            if entry[1] is not None:
                deadline = entry[1]
        value = current + by
        self._data[key] = (str(value).encode(), deadline)
        self._wrote()
        return value

    async def close(self) -> None:
        self._data.clear()
