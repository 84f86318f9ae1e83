"""One contract for every kv adapter: the in-process one, and Redis when it is reachable."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from flotta.adapters.kv_memory import MemoryKV
from flotta.clock import ManualClock
from flotta.ports.kv import KV
from tests.conftest import service_reachable

REDIS_HOST = os.environ.get("FLOTTA_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("FLOTTA_TEST_REDIS_PORT", "6379"))
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
# Real TTLs are short; expiry is then awaited for at most this long.
EXPIRY_WAIT_S = 3.0


@dataclass
class Store:
    """An adapter under test and a way to let time pass: a manual clock, or real sleep."""

    kv: KV
    pass_time: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        clock = ManualClock()

        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        kv = MemoryKV(clock)
        yield Store(kv, advance)
        await kv.close()
        return
    service_reachable(REDIS_HOST, REDIS_PORT, "Redis")
    from flotta.adapters.kv_redis import RedisKV

    namespace = f"t{secrets.token_hex(4)}"  # parallel runs on one server never meet
    redis_kv = await RedisKV.connect(REDIS_URL, namespace)
    try:
        yield Store(redis_kv, asyncio.sleep)
    finally:
        await _drop_namespace(namespace)
        await redis_kv.close()


async def _drop_namespace(namespace: str) -> None:
    """Leave the shared server as we found it, even for keys without a TTL."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def wait_gone(store: Store, key: str) -> None:
    """Bounded wait for expiry (Redis expires on access, but be tolerant of clock skew)."""
    async with asyncio.timeout(EXPIRY_WAIT_S):
        while await store.kv.get(key) is not None:
            await store.pass_time(0.05)


async def test_set_get_overwrite_delete(store: Store) -> None:
    kv = store.kv
    assert await kv.get("missing") is None
    await kv.set("car", b"\x00binary\xff")
    assert await kv.get("car") == b"\x00binary\xff"
    await kv.set("car", b"replaced")
    assert await kv.get("car") == b"replaced"
    await kv.delete("car")
    assert await kv.get("car") is None
    await kv.delete("car")  # deleting what is absent is not an error


async def test_get_many_keeps_order_and_reports_absent_keys(store: Store) -> None:
    kv = store.kv
    await kv.set("a", b"1")
    await kv.set("c", b"3")
    assert await kv.get_many(["c", "b", "a"]) == [b"3", None, b"1"]
    assert await kv.get_many([]) == []


async def test_values_expire_after_their_ttl(store: Store) -> None:
    kv = store.kv
    await kv.set("brief", b"x", ttl_s=0.3)
    await kv.set("lasting", b"y", ttl_s=60)
    assert await kv.get("brief") == b"x"
    await store.pass_time(0.35)
    await wait_gone(store, "brief")
    assert await kv.get("lasting") == b"y"


async def test_setting_again_without_ttl_makes_a_value_permanent(store: Store) -> None:
    kv = store.kv
    await kv.set("key", b"temporary", ttl_s=0.3)
    await kv.set("key", b"kept")
    await store.pass_time(0.5)
    assert await kv.get("key") == b"kept"


async def test_setting_again_with_ttl_restarts_the_expiry(store: Store) -> None:
    kv = store.kv
    await kv.set("presence", b"1", ttl_s=0.6)
    await store.pass_time(0.4)
    await kv.set("presence", b"2", ttl_s=0.6)  # a heartbeat
    await store.pass_time(0.4)
    assert await kv.get("presence") == b"2"
    await store.pass_time(0.3)
    await wait_gone(store, "presence")


async def test_incr_counts_from_zero_and_reads_back_as_bytes(store: Store) -> None:
    kv = store.kv
    assert await kv.incr("hits") == 1
    assert await kv.incr("hits", by=5) == 6
    assert await kv.incr("hits", by=-2) == 4
    assert await kv.get("hits") == b"4"


async def test_incr_ttl_is_a_fixed_window_from_the_first_increment(store: Store) -> None:
    kv = store.kv
    assert await kv.incr("window", ttl_s=0.6) == 1
    await store.pass_time(0.4)
    # A later increment does not push the window's end back.
    assert await kv.incr("window", ttl_s=0.6) == 2
    await store.pass_time(0.3)
    await wait_gone(store, "window")
    assert await kv.incr("window", ttl_s=0.6) == 1


async def test_incr_refuses_a_value_that_is_not_a_counter(store: Store) -> None:
    await store.kv.set("name", b"flotta")
    with pytest.raises(ValueError):
        await store.kv.incr("name")
    assert await store.kv.get("name") == b"flotta"


@pytest.mark.parametrize("ttl_s", [0, -1.0])
async def test_non_positive_ttls_are_refused(store: Store, ttl_s: float) -> None:
    with pytest.raises(ValueError):
        await store.kv.set("k", b"v", ttl_s=ttl_s)
    with pytest.raises(ValueError):
        await store.kv.incr("k", ttl_s=ttl_s)
    assert await store.kv.get("k") is None


async def test_concurrent_increments_are_never_lost(store: Store) -> None:
    results = await asyncio.gather(*(store.kv.incr("race", ttl_s=60) for _ in range(100)))
    assert sorted(results) == list(range(1, 101))  # every caller saw a distinct value
    assert await store.kv.get("race") == b"100"


async def test_redis_namespaces_keep_deployments_apart() -> None:
    """Only server-backed stores are shared; the in-process one is private by construction."""
    service_reachable(REDIS_HOST, REDIS_PORT, "Redis")
    from flotta.adapters.kv_redis import RedisKV

    run = secrets.token_hex(4)
    blue = await RedisKV.connect(REDIS_URL, f"blue{run}")
    green = await RedisKV.connect(REDIS_URL, f"green{run}")
    try:
        await blue.set("shared-name", b"blue")
        assert await green.get("shared-name") is None
        await green.set("shared-name", b"green")
        assert await blue.get("shared-name") == b"blue"
        assert await green.incr("counter") == 1 and await blue.incr("counter") == 1
    finally:
        await _drop_namespace(f"blue{run}")
        await _drop_namespace(f"green{run}")
        await blue.close()
        await green.close()


async def test_an_unreachable_redis_fails_start_up_with_the_reason() -> None:
    from flotta.adapters.kv_redis import RedisKV

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(ConnectionError, match="cannot connect to Redis"):
            await RedisKV.connect(f"redis://127.0.0.1:{closed_port}/0")
