"""The key-value port: bytes with optional expiry, and counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class KV(Protocol):
    """A shared key-value store; every TTL is in seconds and must be positive."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values in the order of `keys`, None where absent (one round trip)."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        """Add `by` atomically; `ttl_s` applies only when the counter has no expiry yet."""
        ...

    async def close(self) -> None: ...


def check_ttl(ttl_s: float | None) -> None:
    """Refuse zero or negative TTLs the same way in every adapter."""
    if ttl_s is not None and ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, not {ttl_s!r}")
