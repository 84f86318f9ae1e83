"""The key-value store on Redis (redis.asyncio)."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis
from redis.exceptions import RedisError, ResponseError

from flotta.ports.kv import check_ttl

# INCRBY, then an expiry only if the key has none: one atomic step for fixed-window counters.
INCR_SCRIPT = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '0' and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # The client is built without decode_responses, so str never arrives; mypy cannot know.
    return value.encode() if isinstance(value, str) else value


def _ms(ttl_s: float) -> int:
    return max(1, round(ttl_s * 1000))


class RedisKV:
    """Every key is prefixed with `namespace:`, so deployments can share one server."""

    def __init__(self, client: redis.Redis, namespace: str = "") -> None:
        self._redis = client
        self._prefix = f"{namespace}:" if namespace else ""
        self._incr = client.register_script(INCR_SCRIPT)

    @classmethod
    async def connect(cls, url: str, namespace: str = "") -> RedisKV:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            await client.ping()
        except (OSError, RedisError) as exc:
            await client.aclose()
            raise ConnectionError(f"cannot connect to Redis at {url}: {exc}") from exc
        return cls(client, namespace)

    async def get(self, key: str) -> bytes | None:
        return _as_bytes(await self._redis.get(self._prefix + key))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return [_as_bytes(v) for v in await self._redis.mget([self._prefix + k for k in keys])]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        check_ttl(ttl_s)
        px = None if ttl_s is None else _ms(ttl_s)
        await self._redis.set(self._prefix + key, value, px=px)

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def incr(self, key: str, by: int = 1, ttl_s: float | None = None) -> int:
        check_ttl(ttl_s)
        ttl_ms = 0 if ttl_s is None else _ms(ttl_s)
        try:
            value = await self._incr(keys=[self._prefix + key], args=[by, ttl_ms])
        except ResponseError as exc:
            raise ValueError(f"{key!r} does not hold an integer: {exc}") from None
        return int(value)

    async def close(self) -> None:
        await self._redis.aclose()
