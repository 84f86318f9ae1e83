"""Leases: which process delivers a sink's records, or an app's records to its config receivers.

Every process may run a dispatcher against the same database; a lease row (`telemetry_leases`)
makes exactly one of them deliver each sink (`sink:<id>`) and each app's receivers
(`receivers:<client_id>`). A lease is taken with one compare-and-set upsert (free, expired, or
already ours), renewed for all of a process's leases in one UPDATE every third of its term,
and checked again, in the same transaction, whenever a delivered position is written (the
fence): a process that lost its lease, say after a long pause, stops before it moves a
position. A dead owner's lease expires after `ttl_s` and another process takes it over.
Expiry compares the processes' clocks: run them on synchronised (NTP) system clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.clock import Clock
from flotta.db.chunks import chunked
from flotta.db.engine import dialect_insert
from flotta.telemetry.delivery_models import TelemetryLeaseRow

_TABLE = cast(Table, TelemetryLeaseRow.__table__)
# Expired "now" for a released lease, far enough back for any clock skew between processes.
_RELEASED = datetime(2000, 1, 1, tzinfo=UTC)


class LeaseLost(Exception):
    """Another process holds the lease now: stop delivering without moving the position."""


def process_owner() -> str:
    """This process's owner name: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    """The leases one process holds, in memory and in `telemetry_leases`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        ttl_s: float,
        owner: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.ttl_s = ttl_s
        self.owner = owner or process_owner()
        self._held: set[str] = set()

    def holds(self, name: str) -> bool:
        """Whether this process held `name` at the last acquire, renewal or fence."""
        return name in self._held

    def _until(self) -> datetime:
        return self._clock.now() + timedelta(seconds=self.ttl_s)

    async def acquire(self, name: str) -> bool:
        """Take `name` if it is free, expired or ours already (one atomic upsert)."""
        now, until = self._clock.now(), self._until()
        async with self._sessions() as db, db.begin():
            upsert: Any = dialect_insert(db)(_TABLE)
            statement = (
                upsert.values(name=name, owner=self.owner, expires_at=until)
                .on_conflict_do_update(
                    index_elements=[_TABLE.c.name],
                    set_={"owner": self.owner, "expires_at": until},
                    where=(_TABLE.c.owner == self.owner) | (_TABLE.c.expires_at < now),
                )
                .returning(_TABLE.c.name)
            )
            got = (await db.execute(statement)).first() is not None
        if got:
            self._held.add(name)
        else:
            self._held.discard(name)
        return got

    async def fence(self, db: AsyncSession, name: str) -> None:
        """In the caller's transaction: renew `name`, or raise LeaseLost if it is not ours."""
        statement = (
            update(_TABLE)
            .where(_TABLE.c.name == name, _TABLE.c.owner == self.owner)
            .values(expires_at=self._until())
        )
        result: Any = await db.execute(statement)
        if result.rowcount != 1:
            self._held.discard(name)
            raise LeaseLost(name)

    async def renew(self) -> set[str]:
        """Extend every lease held; return (and forget) those another process took."""
        held = sorted(self._held)
        if not held:
            return set()
        kept: set[str] = set()
        async with self._sessions() as db, db.begin():
            for chunk in chunked(held):
                statement = (
                    update(_TABLE)
                    .where(_TABLE.c.owner == self.owner, _TABLE.c.name.in_(chunk))
                    .values(expires_at=self._until())
                    .returning(_TABLE.c.name)
                )
                kept.update((await db.execute(statement)).scalars().all())
        lost = set(held) - kept
        self._held -= lost
        return lost

    async def release(self, names: Iterable[str], *, forget: bool = False) -> None:
        """Give leases up at once: expired (another process may take them over now), or
        with `forget` deleted (the sink is gone)."""
        chosen = sorted(set(names))
        self._held.difference_update(chosen)
        if not chosen:
            return
        async with self._sessions() as db, db.begin():
            for chunk in chunked(chosen):
                where = (_TABLE.c.owner == self.owner) & _TABLE.c.name.in_(chunk)
                if forget:
                    await db.execute(delete(_TABLE).where(where))
                else:
                    await db.execute(update(_TABLE).where(where).values(expires_at=_RELEASED))

    async def taken(self) -> dict[str, tuple[str, datetime]]:
        """Every lease row: name -> (owner, expires_at)."""
        async with self._sessions() as db:
            rows = await db.execute(select(_TABLE.c.name, _TABLE.c.owner, _TABLE.c.expires_at))
            return {str(n): (str(o), _aware(e)) for n, o, e in rows.all()}


async def forget_lease(db: AsyncSession, name: str) -> None:
    """Delete a lease whoever holds it (its sink was deleted): its holder stops at the fence."""
    await db.execute(delete(_TABLE).where(_TABLE.c.name == name))


def _aware(value: datetime) -> datetime:
    # Core selects bypass the UTCDateTime type on some paths; SQLite gives naive datetimes.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# How long stop() lets the work finish what it is doing before cancelling it.
STOP_GRACE_S = 1.0


class LeasedWork:
    """Work that one process at a time does under a lease (a sink's delivery, an app's
    receivers): woken when there is more to do, stopped with or without giving the lease up."""

    def __init__(self, lease: str, leases: Leases) -> None:
        self.lease = lease
        self._leases = leases
        self._wake = asyncio.Event()
        self._stopping = False
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, *, release: bool = True) -> None:
        """Stop; with `release`, expire the lease so another process may take over at once."""
        self._stopping = True
        self._wake.set()
        if self.task is not None:
            # A delivery in progress may wait a minute on a slow endpoint, then back off: it
            # gets a moment to finish, then is cancelled (positions move only once a batch is
            # recorded, so what it was sending is sent again later).
            await asyncio.wait({self.task}, timeout=STOP_GRACE_S)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if release and self._leases.holds(self.lease):
            with contextlib.suppress(Exception):  # the database is gone: the lease expires
                await self._leases.release([self.lease])
