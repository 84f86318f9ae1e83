"""A small expiring cache for the hot path's lookups (a request's caller, directory records):
each value is forgotten `ttl_s` after it was loaded, and the whole cache starts over when it
holds `max_entries`, since its keys (paths, credentials) are open-ended."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """Values by key, each valid for `ttl_s` of the caller's monotonic clock."""

    def __init__(self, ttl_s: float, max_entries: int = 65_536) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def fresh(self, key: K, now: float) -> tuple[float, V] | None:
        """(expiry, value) while the entry is valid, without a coroutine: hot paths check this
        first and `get` only on a miss."""
        hit = self._entries.get(key)
        return hit if hit is not None and hit[0] > now else None

    async def get(self, key: K, now: float, load: Callable[[K], Awaitable[V]]) -> V:
        """The cached value, or `load(key)` remembered until `now + ttl_s`."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load(key)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (now + self._ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
