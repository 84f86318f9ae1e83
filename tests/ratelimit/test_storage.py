"""The limiter's stores: Redis keys under the namespace, and an unreachable store fails open."""

from __future__ import annotations

import asyncio
import secrets

import limits
import pytest
import redis.asyncio as redis
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from flotta.caching import ExpiringCache
from flotta.ratelimit.limiter import PrunedMemoryStorage, RateLimiter
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


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_the_limiter_counts_in_the_window_limits_itself_reads(store: str) -> None:
    """The limiter builds each window's key once and hits the storage directly: the window it
    fills must be the one `limits`' own strategy reads (its stats give Retry-After), in memory
    and under Redis' namespaced keys alike."""
    url, namespace = "", ""
    if store == "redis":
        service_reachable("127.0.0.1", 6379, "Redis")
        url, namespace = REDIS_URL, f"t{secrets.token_hex(4)}"
    limiter = await RateLimiter.open(RateLimitSettings(wakes="3/minute"), url, namespace)
    try:
        for _ in range(2):
            assert await limiter.hit("wakes", "app", "vehicle:VIN") is None
        item = limits.parse("3/minute")
        stats = await MovingWindowRateLimiter(limiter._storage).get_window_stats(
            item, "wakes", "app", "vehicle:VIN"
        )
        assert stats.remaining == 1
        assert await limiter.hit("wakes", "app", "vehicle:VIN") is None
        assert await limiter.hit("wakes", "app", "vehicle:VIN") is not None
        assert await limiter.hit("wakes", "app", "vehicle:OTHER") is None  # its own window
    finally:
        await limiter.close()
        if namespace:
            client = redis.Redis.from_url(REDIS_URL)
            async for key in client.scan_iter(match=f"{namespace}:*"):
                await client.delete(key)
            await client.aclose()


def test_an_expiring_cache_answers_fresh_entries_only() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(ttl_s=1.0)

    async def load(_: str) -> int:
        return 7

    assert cache.fresh("a", 0.0) is None
    assert asyncio.run(cache.get("a", 0.0, load)) == 7
    assert cache.fresh("a", 0.5) == (1.0, 7)
    assert cache.fresh("a", 1.0) is None  # expired at now + ttl


def test_the_synchronous_window_decides_as_upstream_and_forgets_idle_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`PrunedMemoryStorage.take` against `limits`' own memory storage, on one clock: the same
    admissions for bursts and pauses across the window's edge, the same windows and window
    stats (Retry-After comes from them), and a key no longer hit is forgotten once its window
    is over."""
    import random

    import limits.aio.storage.memory as memory

    now = [1_000.0]
    monkeypatch.setattr(memory.time, "time", lambda: now[0])
    ours, upstream = PrunedMemoryStorage(), MemoryStorage()
    item = limits.parse("5/10 seconds")
    rng = random.Random(7)

    async def run() -> None:
        admitted = 0
        for _ in range(400):
            now[0] += rng.choice((0.0, 0.0, 0.1, 0.5, 1.0, 3.0, 9.9, 10.0))
            name = rng.choice(("a", "b"))
            key = item.key_for(name)
            mine = ours.take(key, 5, 10)
            theirs = await upstream.acquire_entry(key, 5, 10)
            assert mine == theirs, (now[0], name)
            admitted += mine
            assert await ours.get_moving_window(key, 5, 10) == await upstream.get_moving_window(
                key, 5, 10
            )
            if not mine:
                stats = [
                    await MovingWindowRateLimiter(store).get_window_stats(item, name)
                    for store in (ours, upstream)
                ]
                assert stats[0] == stats[1]
        assert admitted >= 100 and 400 - admitted >= 20  # both answers were compared
        now[0] += 10.001
        ours._next_prune = 0.0  # as if PRUNE_INTERVAL_S had passed
        assert ours.take("c", 5, 10)
        assert set(ours.events) == {"c"}
        assert ours.take("c", 0, 10) is False

    asyncio.run(run())
