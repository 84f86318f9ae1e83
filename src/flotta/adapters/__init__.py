"""Implementations of `flotta.ports`; server-backed ones are imported only when configured."""

from __future__ import annotations

from flotta.clock import Clock
from flotta.ports.bus import Bus
from flotta.ports.kv import KV


async def open_bus(url: str, namespace: str = "") -> Bus:
    """An empty URL means the in-process bus; `nats://` or `tls://` means NATS."""
    if not url:
        from flotta.adapters.bus_memory import MemoryBus

        return MemoryBus()
    if url.startswith(("nats://", "tls://")):
        # Imported here so the embedded install needs no nats-py.
        from flotta.adapters.bus_nats import NatsBus

        return await NatsBus.connect(url, namespace)
    raise ValueError(f"unsupported bus URL {url!r}: use nats:// or leave it empty")


async def open_kv(url: str, clock: Clock, namespace: str = "") -> KV:
    """An empty URL means the in-process store; `redis://`, `rediss://` or `unix://` Redis."""
    if not url:
        from flotta.adapters.kv_memory import MemoryKV

        return MemoryKV(clock)
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Imported here so the embedded install needs no redis client.
        from flotta.adapters.kv_redis import RedisKV

        return await RedisKV.connect(url, namespace)
    raise ValueError(f"unsupported kv URL {url!r}: use redis:// or leave it empty")
