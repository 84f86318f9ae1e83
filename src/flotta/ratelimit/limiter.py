"""Moving-window rate limits on the `limits` library: in memory, or shared through Redis."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import limits
import structlog
from limits.aio.storage import MemoryStorage, MovingWindowSupport, RedisStorage, Storage
from limits.aio.storage.memory import Entry
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from flotta.settings import RateLimitSettings

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

# The bucket of the token endpoint, next to the pricing categories of reference §8.
TOKEN = "token"
# The portal's account forms (sign-in, second factor, reset, sign-up), per client address.
SIGN_IN = "sign_in"


log = structlog.get_logger(__name__)

# Window keys remembered at most (each is a short string; rebuilt after a clear).
MAX_KEYS = 65_536
# How often the windows of keys no longer hit are forgotten (the windows stay exact regardless).
PRUNE_INTERVAL_S = 5.0


class PrunedMemoryStorage(MemoryStorage):
    """`limits`' memory storage with a synchronous moving-window hit and its own pruning.

    Upstream's hit takes a per-key asyncio lock and passes through three layers of error
    wrapping; on the event loop nothing can run between the check and the insert, so `take`
    needs neither, and it cost P5 more than the rest of the rate limit. The lock guarded
    against upstream's expiry task, which sliced each key's list after a hop to a worker thread
    (and, restarted after every hit, never paused under load): pruning here is synchronous, so
    that task never starts.
    """

    def __init__(self) -> None:
        super().__init__()
        self._next_prune = 0.0

    def take(self, key: str, limit: int, expiry: int) -> bool:
        """Upstream's `acquire_entry` for one request (same entries, same decision), then drop
        the entries it will never read again.

        Entries are kept newest first, as upstream reads them, but in a deque: inserting at the
        front of upstream's list moved every entry (about 1 µs per hit with a window of a few
        thousand). Only the newest `limit` entries, and only those inside the window, can ever
        decide a later hit or its Retry-After (upstream's window stats skip older ones): each
        hit drops the oldest entry if it is neither.
        """
        if limit < 1:
            return False  # as upstream: a request never fits in an empty budget
        entry = Entry(expiry)
        # Scheduled on the monotonic clock: a step back of the wall clock cannot stop it.
        if (now := time.monotonic()) >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL_S
            self._prune(entry.atime)
        cutoff = entry.atime - expiry
        events = cast("deque[Entry] | None", self.events.get(key))
        if events is None:
            self.events[key] = cast(list[Entry], deque((entry,)))
            return True
        if len(events) >= limit and events[limit - 1].atime >= cutoff:
            return False
        events.appendleft(entry)
        # One in, at most one out: entries are dropped as fast as they come, and the periodic
        # prune forgets the key once its newest entry has aged out.
        if len(events) > limit or events[-1].atime < cutoff:
            events.pop()
        return True

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """The async API (`limits`' strategies call it) on the same path as `take`."""
        if amount != 1:
            raise ValueError("flotta counts one request per hit")
        return self.take(key, limit, expiry)

    def _prune(self, now: float) -> None:
        """Forget keys whose newest entry left its window at `now` (wall clock, as entries)."""
        for key in [k for k, events in self.events.items() if not events or events[0].expiry < now]:
            del self.events[key]
            self.locks.pop(key, None)

    async def _MemoryStorage__schedule_expiry(self) -> None:
        # Upstream's expiry task (see the class docstring): pruning happens in `take`.
        return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: the limit, what is left, and when a slot frees (seconds)."""

    bucket: str
    limit: int
    window: str
    remaining: int
    reset_s: int


class RateLimiter:
    """Budgets per bucket (a category or the token endpoint) and identifiers (app, device).

    The moving window counts exactly the requests of the last window: no double burst at a
    fixed window's edge, and Retry-After is the moment the oldest counted request ages out.
    """

    def __init__(
        self,
        settings: RateLimitSettings,
        storage: Storage,
        *,
        pool: ConnectionPool | None = None,
    ) -> None:
        self._items = {
            bucket: limits.parse(getattr(settings, bucket))
            for bucket in ("data", "commands", "wakes", TOKEN, SIGN_IN)
        }
        self._expiry = {bucket: item.get_expiry() for bucket, item in self._items.items()}
        self._storage = storage
        # In memory the hit is synchronous (see PrunedMemoryStorage).
        self._take = storage.take if isinstance(storage, PrunedMemoryStorage) else None
        self._strategy = MovingWindowRateLimiter(storage)
        self._window = cast(MovingWindowSupport, storage)
        self._keys: dict[tuple[str, tuple[str, ...]], str] = {}
        self._pool = pool
        self._quiet_until = 0.0

    @classmethod
    async def open(cls, settings: RateLimitSettings, kv_url: str, namespace: str) -> RateLimiter:
        """Memory storage in the embedded profile; Redis (shared by every process) with a kv URL."""
        if not kv_url:
            return cls(settings, PrunedMemoryStorage())
        import redis.asyncio as redis

        pool = redis.ConnectionPool.from_url(kv_url)
        prefix = f"{namespace}:ratelimit" if namespace else "ratelimit"
        # Our own pool, so close() can disconnect it; `limits` hands it to redis.asyncio.Redis.
        storage = RedisStorage(
            storage_uri(kv_url),
            implementation="redispy",
            key_prefix=prefix,
            wrap_exceptions=True,
            connection_pool=pool,  # type: ignore[arg-type]
        )
        return cls(settings, storage, pool=pool)

    def admits(self, bucket: str, identifiers: tuple[str, ...]) -> bool:
        """Count one request in memory, without a coroutine: True when it fits (or the bucket
        is not limited). False says to ask `hit`: the budget lives in a shared store, or is
        spent (a refused request is not counted, so `hit` refuses it again, with the reason).
        """
        item = self._items.get(bucket)
        if item is None:
            return True
        if self._take is None:
            return False
        return self._take(self._key(bucket, item, identifiers), item.amount, self._expiry[bucket])

    def _key(self, bucket: str, item: limits.RateLimitItem, identifiers: tuple[str, ...]) -> str:
        """The storage key of a budget, built once: the strategy's hit is a storage call with
        `item.key_for(...)`."""
        key = self._keys.get((bucket, identifiers))
        if key is None:
            if len(self._keys) >= MAX_KEYS:
                self._keys.clear()  # budgets are per app and device: stay bounded
            key = self._keys[(bucket, identifiers)] = item.key_for(bucket, *identifiers)
        return key

    async def hit(self, bucket: str, *identifiers: str) -> Refusal | None:
        """Count one request; a Refusal when the budget of the last window is spent."""
        item = self._items.get(bucket)
        if item is None:
            return None
        key = self._key(bucket, item, identifiers)
        expiry = self._expiry[bucket]
        if self._take is not None and self._take(key, item.amount, expiry):
            return None
        try:
            if self._take is None and await self._window.acquire_entry(key, item.amount, expiry):
                return None
            stats = await self._strategy.get_window_stats(item, bucket, *identifiers)
        except StorageError as exc:
            # Fail open: an outage of the shared store must not turn every Fleet API request
            # into an error; the limits return with the store.
            self._warn(exc)
            return None
        # `limits` measures windows in wall-clock seconds, so the wait must be measured so too.
        wait = math.ceil(stats.reset_time - time.time())
        if stats.remaining > 0:
            # The window's exact edge: the hit counted the oldest request (a closed interval),
            # the stats no longer do (an open one), so it frees this instant.
            wait = 1
        window = f"{item.amount} per {expiry} s"
        # Refused means nothing remains now, whatever the stats' edge case says.
        return Refusal(bucket, item.amount, window, 0, min(max(1, wait), expiry))

    def _warn(self, exc: StorageError) -> None:
        # Once a minute at most: during an outage every request would log otherwise.
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + 60
            log.warning("rate-limit store unreachable; requests pass unlimited", error=str(exc))

    async def clear(self) -> None:
        """Forget every budget (tests)."""
        await self._storage.reset()

    async def close(self) -> None:
        if isinstance(self._storage, MemoryStorage) and self._storage.timer is not None:
            self._storage.timer.cancel()
        if self._pool is not None:
            await self._pool.disconnect()


def storage_uri(kv_url: str) -> str:
    """`limits`' async scheme for the kv URL (redis://, rediss:// or unix://)."""
    if kv_url.startswith("unix://"):
        return "async+redis+unix://" + kv_url.removeprefix("unix://")
    return "async+" + kv_url
