"""Gateway ingest of streamed records: decode, entitle, store, meter, acknowledge, fan out.

STREAM frames arrive on the device link's read loop (`Hub.stream_listeners`, synchronous), are
decoded there and handed to a bounded queue; one writer task takes whatever has queued up,
commits it to the record log in one transaction, meters it, acknowledges each record to its
car and only then fans it out. A full queue drops the frame unacknowledged: the car keeps it
and sends it again (back-pressure by withholding acks, never by growing without bound).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.billing.categories import Category
from flotta.billing.events import UsageEvent
from flotta.billing.meter import Meter
from flotta.clock import Clock
from flotta.devices.directory import AppRecord, Directory, VehicleRecord
from flotta.gateway import protocol
from flotta.gateway.hub import Hub
from flotta.gateway.protocol import Frame, FrameType
from flotta.telemetry import wire
from flotta.telemetry.envelope import WireError
from flotta.telemetry.models import TelemetryConfigRow
from flotta.telemetry.recordlog import NewRecord, RecordLog
from flotta.telemetry.records import StreamRecord

log = structlog.get_logger(__name__)

QUEUE_SIZE = 20_000
MAX_BATCH = 2_000
# Txids remembered per process, so a resend already stored is acknowledged, not stored again.
RECENT_TXIDS = 200_000
# A car streaming for a config that is gone is told at most this often per config.
REMOVED_NOTICE_S = 5.0

Publish = Callable[[Sequence[StreamRecord]], None]


ENTITLEMENT_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class ConfigRef:
    """A telemetry config as ingest and delivery need it: whose, which car, its receiver."""

    id: int
    client_id: str
    vin: str
    hostname: str
    port: int
    ca: str | None
    # fleet-telemetry acknowledges records only for `delivery_policy: latest` configs (the car
    # re-sends what was not acked); other receivers, tescmd's among them, never ack.
    awaits_acks: bool = False


class Entitlements:
    """Which config streams for which app and car, and whether the app still has the owner's
    consent: cached for `ttl_s`, so the hot path rarely asks the database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: Directory,
        clock: Clock,
        ttl_s: float = ENTITLEMENT_TTL_S,
    ) -> None:
        self._sessions = sessions
        self._directory = directory
        self._clock = clock
        self._ttl = ttl_s
        self._by_id: dict[int, tuple[float, ConfigRef | None]] = {}
        self._by_car: dict[tuple[str, str], tuple[float, ConfigRef | None]] = {}

    async def config(self, config_id: int) -> ConfigRef | None:
        """The config with this id (the STREAM frame's correlation id), if it still exists."""
        hit = self._by_id.get(config_id)
        if hit is not None and self._clock.monotonic() - hit[0] < self._ttl:
            return hit[1]
        ref = await self._load(TelemetryConfigRow.id == config_id)
        self._by_id[config_id] = (self._clock.monotonic(), ref)
        return ref

    async def config_for(self, client_id: str, vin: str) -> ConfigRef | None:
        """The app's config on this car, if any."""
        hit = self._by_car.get((client_id, vin))
        if hit is not None and self._clock.monotonic() - hit[0] < self._ttl:
            return hit[1]
        ref = await self._load(
            (TelemetryConfigRow.client_id == client_id) & (TelemetryConfigRow.vin == vin)
        )
        self._by_car[(client_id, vin)] = (self._clock.monotonic(), ref)
        return ref

    async def consented(self, client_id: str, vin: str) -> AppRecord | None:
        """The app, if it is approved and the car's owner consents to it reaching the car."""
        app = await self._directory.app(client_id)
        if app is None or not app.approved:
            return None
        if app.first_party:
            return app
        vehicle = await self._directory.vehicle(vin)
        if vehicle is None:
            return None
        grant = await self._directory.grant(vehicle.owner_id, app.pk)
        return app if grant is not None and vehicle.id in grant.vehicle_ids else None

    async def streaming(self, client_id: str, vin: str) -> bool:
        """Whether the app's records from this car may leave: a config and consent."""
        if await self.config_for(client_id, vin) is None:
            return False
        return await self.consented(client_id, vin) is not None

    def forget(self) -> None:
        """Drop cached configs (after a config changes or consent is revoked in this process)."""
        self._by_id.clear()
        self._by_car.clear()

    async def _load(self, where: Any) -> ConfigRef | None:
        async with self._sessions() as db:
            row = (await db.execute(select(TelemetryConfigRow).where(where))).scalars().first()
        if row is None:
            return None
        config = row.config or {}
        ca = config.get("ca")
        return ConfigRef(
            id=row.id,
            client_id=row.client_id,
            vin=row.vin,
            hostname=str(config.get("hostname", "")),
            port=int(config.get("port", 0) or 0),
            ca=str(ca) if ca else None,
            awaits_acks=config.get("delivery_policy") == "latest",
        )


@dataclass(frozen=True, slots=True)
class Arrival:
    """A decoded STREAM frame waiting for the writer."""

    vin: str
    config_id: int
    record: wire.DecodedRecord
    frame: bytes
    received_at: datetime

    @property
    def txid(self) -> str:
        return self.record.txid.decode(errors="replace")

    @property
    def is_resend(self) -> bool:
        return bool(getattr(self.record.message, "is_resend", False))


@dataclass(frozen=True, slots=True)
class Accepted:
    """An arrival entitled to be stored: its config, and the account billed (None: not)."""

    arrival: Arrival
    ref: ConfigRef
    account_id: int | None


@dataclass
class IngestCounters:
    """What ingest did since start; `signals_by_app` counts stored signals exactly per app."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unentitled: int = 0
    malformed: int = 0
    backpressure: int = 0
    signals_by_app: dict[str, int] = field(default_factory=dict)


class Ingest:
    """The STREAM frame listener and the group-committing writer behind it."""

    def __init__(
        self,
        hub: Hub,
        records: RecordLog,
        entitlements: Entitlements,
        clock: Clock,
        *,
        meter: Meter | None,
        publish: Publish,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self._hub = hub
        self._records = records
        self._entitlements = entitlements
        self._clock = clock
        self._meter = meter
        self._publish = publish
        self._queue: asyncio.Queue[Arrival | None] = asyncio.Queue(queue_size)
        self._recent: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._notified: dict[int, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer: asyncio.Task[None] | None = None
        self.counters = IngestCounters()

    def start(self) -> None:
        """Listen to the gateway and start the writer."""
        self._hub.stream_listeners.append(self.on_frame)
        self._writer = asyncio.get_running_loop().create_task(self._run(), name="telemetry-ingest")

    async def stop(self) -> None:
        """Stop listening, commit what is queued, then stop the writer."""
        with contextlib.suppress(ValueError):
            self._hub.stream_listeners.remove(self.on_frame)
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task

    async def drained(self) -> None:
        """Wait until every frame queued so far is committed and acknowledged (tests, bench)."""
        await self._queue.join()

    def on_frame(self, device: VehicleRecord, frame: Frame) -> None:
        """A device frame from the gateway's read loop: never blocks it."""
        if frame.type != FrameType.STREAM:
            return
        self.counters.received += 1
        try:
            arrival = self._decode(device.vin, frame)
        except WireError as exc:
            self.counters.malformed += 1
            error = protocol.error_frame("bad_stream_record", str(exc), frame.correlation_id)
            self._spawn(self._hub.send_to(device.vin, error))
            return
        try:
            self._queue.put_nowait(arrival)
        except asyncio.QueueFull:
            # No ack: the car keeps the record and resends it once we have caught up.
            self.counters.backpressure += 1

    def _decode(self, vin: str, frame: Frame) -> Arrival:
        if frame.correlation_id == 0:
            raise WireError("a STREAM frame's correlation id must be its telemetry config's id")
        record = wire.decode_record(frame.body)
        if record.envelope.is_ack or record.message is None:
            topic = record.envelope.topic
            raise WireError(f"a STREAM frame must carry a record, not {topic!r} (or an ack)")
        if not record.txid:
            raise WireError("the record has no txid to acknowledge it by")
        return Arrival(vin, frame.correlation_id, record, frame.body, self._clock.now())

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            arrivals = [a for a in batch if a is not None]
            try:
                if arrivals:
                    await self._ingest(arrivals)
            except Exception:
                # Not acknowledged, so the cars resend them: nothing is lost, only delayed.
                log.exception("telemetry ingest batch failed", records=len(arrivals))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(arrivals) < len(batch):
                return

    async def _ingest(self, arrivals: list[Arrival]) -> None:
        """Store, meter, acknowledge and fan out one group of arrivals."""
        fresh: list[Accepted] = []
        repeats: list[Arrival] = []
        recovered: list[Accepted] = []
        taken: set[tuple[int, str]] = set()
        to_ack: list[Arrival] = []  # in arrival order, as the car sent them
        for arrival in arrivals:
            accepted = await self._entitled(arrival)
            if accepted is None:
                continue
            to_ack.append(arrival)
            ref = accepted.ref
            key = (ref.id, arrival.txid)
            if key in taken or key in self._recent:
                repeats.append(arrival)
            elif arrival.is_resend and await self._records.exists(
                ref.client_id, ref.vin, arrival.txid
            ):
                # Stored before a restart: meter again (idempotent key) in case that was lost.
                recovered.append(accepted)
            else:
                taken.add(key)
                fresh.append(accepted)
        stored = await self._records.append([_new_record(a) for a in fresh])
        self._remember(taken)
        self._meter_all(fresh + recovered)
        self._count(fresh, len(repeats) + len(recovered))
        for arrival in to_ack:
            ack = protocol.encode(FrameType.STREAM_ACK, arrival.record.txid, arrival.config_id)
            await self._hub.send_to(arrival.vin, ack)
        if stored:
            self._publish(stored)

    async def _entitled(self, arrival: Arrival) -> Accepted | None:
        """The config this record streams for, if it is the car's and the app has consent."""
        ref = await self._entitlements.config(arrival.config_id)
        if ref is not None and ref.vin == arrival.vin:
            app = await self._entitlements.consented(ref.client_id, ref.vin)
            if app is not None:
                return Accepted(arrival, ref, app.owner_id)
        self.counters.unentitled += 1
        now = self._clock.monotonic()
        if now - self._notified.get(arrival.config_id, -REMOVED_NOTICE_S) >= REMOVED_NOTICE_S:
            self._notified[arrival.config_id] = now
            removed = protocol.encode(FrameType.TELEMETRY_CONFIG_REMOVED, b"", arrival.config_id)
            await self._hub.send_to(arrival.vin, removed)
        return None

    def _remember(self, keys: set[tuple[int, str]]) -> None:
        for key in keys:
            self._recent[key] = None
        while len(self._recent) > RECENT_TXIDS:
            self._recent.popitem(last=False)

    def _meter_all(self, entries: list[Accepted]) -> None:
        """Bill each record's signals to the app's owner (durable on return: the journal)."""
        if self._meter is None:
            return
        for entry in entries:
            signals = wire.signal_count(entry.arrival.record)
            if signals == 0 or entry.account_id is None:
                continue  # nothing billable, or a first-party app
            self._meter.record(
                UsageEvent(
                    key=f"signals:{entry.ref.id}:{entry.arrival.txid}",
                    account_id=entry.account_id,
                    client_id=entry.ref.client_id,
                    device=f"vehicle:{entry.ref.vin}",
                    category=Category.STREAMING,
                    quantity=signals,
                    occurred_at=entry.arrival.received_at,
                )
            )

    def _count(self, fresh: list[Accepted], duplicates: int) -> None:
        counters = self.counters
        counters.stored += len(fresh)
        counters.duplicates += duplicates
        by_app = counters.signals_by_app
        for entry in fresh:
            client_id = entry.ref.client_id
            by_app[client_id] = by_app.get(client_id, 0) + wire.signal_count(entry.arrival.record)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _new_record(accepted: Accepted) -> NewRecord:
    """The row to store: the VIN is the link's, the payload as the reference server rewrites it."""
    arrival, ref = accepted.arrival, accepted.ref
    record = arrival.record
    payload = (
        record.message.SerializeToString()
        if record.topic == wire.TOPIC_DATA
        else record.envelope.payload
    )
    return NewRecord(
        client_id=ref.client_id,
        vin=arrival.vin,
        topic=record.topic,
        txid=arrival.txid,
        signals=wire.signal_count(record),
        created_at=arrival.received_at,
        payload=payload,
        envelope=arrival.frame,
    )
