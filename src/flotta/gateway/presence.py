"""Durable presence history, written in batches off the device link's hot path."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.devices.models import PresenceEvent, Vehicle
from flotta.devices.repository import PresenceRepository

log = structlog.get_logger(__name__)

KINDS = ("connected", "disconnected", "asleep", "online")


class PresenceRecorder:
    """Queues presence events and writes them in one transaction per batch."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_batch: int = 500) -> None:
        self._sessions = sessions
        self._queue: asyncio.Queue[PresenceEvent] = asyncio.Queue()
        self._max_batch = max_batch
        self._task: asyncio.Task[None] | None = None

    def record(self, vehicle_id: int, kind: str, at: datetime, detail: str = "") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown presence kind {kind!r}")
        self._queue.put_nowait(
            PresenceEvent(vehicle_id=vehicle_id, kind=kind, at=at, detail=detail[:200])
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="presence-recorder")

    async def stop(self) -> None:
        """Flush what is queued, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush(self._drain())

    def _drain(self) -> list[PresenceEvent]:
        batch: list[PresenceEvent] = []
        while not self._queue.empty() and len(batch) < self._max_batch:
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._flush([first, *self._drain()])

    async def _flush(self, batch: list[PresenceEvent]) -> None:
        if not batch:
            return
        try:
            await self._write(batch)
        except IntegrityError:
            # A vehicle deleted while its car was connected: its events have nothing left to
            # describe. Keep the other cars' events.
            try:
                kept = await self._of_existing_vehicles(batch)
                await self._write(kept)
                log.info("presence of deleted vehicles dropped", events=len(batch) - len(kept))
            except SQLAlchemyError:
                log.exception("presence batch lost", events=len(batch))
        except SQLAlchemyError:
            # Presence history is advisory; a failed batch must not take the gateway down.
            log.exception("presence batch lost", events=len(batch))

    async def _write(self, batch: list[PresenceEvent]) -> None:
        if not batch:
            return
        async with self._sessions() as session, session.begin():
            # Fresh rows each attempt: a failed flush leaves its objects tied to that session.
            PresenceRepository(session).add_many([_copy(event) for event in batch])
            last_seen: dict[int, datetime] = {}
            for event in batch:
                last_seen[event.vehicle_id] = event.at
            for vehicle_id, at in last_seen.items():
                await session.execute(
                    update(Vehicle).where(Vehicle.id == vehicle_id).values(last_seen_at=at)
                )

    async def _of_existing_vehicles(self, batch: list[PresenceEvent]) -> list[PresenceEvent]:
        ids = {event.vehicle_id for event in batch}
        async with self._sessions() as session:
            found = set(await session.scalars(select(Vehicle.id).where(Vehicle.id.in_(ids))))
        return [event for event in batch if event.vehicle_id in found]


def _copy(event: PresenceEvent) -> PresenceEvent:
    return PresenceEvent(
        vehicle_id=event.vehicle_id, kind=event.kind, at=event.at, detail=event.detail
    )
