"""The limiter's stores: Redis keys under the namespace, and an unreachable store fails open."""

from __future__ import annotations

import secrets

import redis.asyncio as redis

from flotta.ratelimit.limiter import RateLimiter
from flotta.settings import RateLimitSettings
from tests.conftest import service_reachable

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_redis_budgets_live_under_the_namespace() -> None:
    service_reachable("127.0.0.1", 6379, "Redis")
    namespace = f"t{secrets.token_hex(4)}"
    settings = RateLimitSettings(wakes="2/minute")
    first = await RateLimiter.open(settings, REDIS_URL, namespace)
    second = await RateLimiter.open(settings, REDIS_URL, namespace)  # another process's view
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert await first.hit("wakes", "app", "vehicle:VIN") is None
        assert await second.hit("wakes", "app", "vehicle:VIN") is None
        refusal = await first.hit("wakes", "app", "vehicle:VIN")
        assert refusal is not None and refusal.limit == 2 and 1 <= refusal.reset_s <= 60
        keys = [k.decode() async for k in client.scan_iter(match=f"{namespace}:*")]
        assert keys and all(k.startswith(f"{namespace}:ratelimit") for k in keys)
        for key in keys:
            await client.delete(key)
    finally:
        await client.aclose()
        await first.close()
        await second.close()


async def test_an_unreachable_store_limits_nothing_and_raises_nothing() -> None:
    limiter = await RateLimiter.open(
        RateLimitSettings(data="1/minute"), "redis://127.0.0.1:1/0", ""
    )
    try:
        assert [await limiter.hit("data", "app", "vehicle:VIN") for _ in range(3)] == [None] * 3
    finally:
        await limiter.close()
