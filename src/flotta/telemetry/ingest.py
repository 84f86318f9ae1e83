"""Gateway ingest of streamed records: decode, entitle, store, meter, acknowledge, fan out.

STREAM frames arrive on the device link's read loop (`Hub.stream_listeners`, synchronous), are
decoded there and handed to a bounded queue; one writer task takes whatever has queued up,
checks entitlement once per config of the group, commits it to the record log in one
transaction and fans it out. A settler task then meters each committed group and acknowledges
its records to their cars, while the writer commits the next group: acks never precede the
commit. A full queue drops the frame unacknowledged: the car keeps it and sends it again
(back-pressure by withholding acks, never by growing without bound).
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

from flotta.billing.categories import Category
from flotta.billing.events import UsageEvent
from flotta.billing.meter import Meter
from flotta.clock import Clock
from flotta.devices.directory import VehicleRecord
from flotta.gateway import protocol
from flotta.gateway.hub import Hub
from flotta.gateway.protocol import Frame, FrameType
from flotta.telemetry import wire

# Re-exported: receivers and older callers import them from here.
from flotta.telemetry.entitlements import ConfigRef as ConfigRef
from flotta.telemetry.entitlements import Entitlements as Entitlements
from flotta.telemetry.envelope import WireError
from flotta.telemetry.recordlog import NewRecord, RecordLog
from flotta.telemetry.records import StreamRecord

log = structlog.get_logger(__name__)

QUEUE_SIZE = 20_000
MAX_BATCH = 4000
# Committed batches waiting to be metered and acknowledged while the next one commits.
SETTLING_BATCHES = 2
# Txids remembered per process, so a resend already stored is acknowledged, not stored again.
RECENT_TXIDS = 200_000
# A car streaming for a config that is gone is told at most this often per config.
REMOVED_NOTICE_S = 5.0

Publish = Callable[[Sequence[StreamRecord]], None]


@dataclass(slots=True)
class Arrival:
    """A decoded STREAM frame waiting for the writer."""

    vin: str
    config_id: int
    record: wire.DecodedRecord
    frame: bytes
    received_at: datetime
    txid: str
    is_resend: bool


@dataclass(slots=True)
class Accepted:
    """An arrival entitled to be stored: its config, and the account billed (None: not)."""

    arrival: Arrival
    ref: ConfigRef
    account_id: int | None
    signals: int


@dataclass(slots=True)
class _Settlement:
    """A committed batch: what to meter, what to acknowledge, how many frames it took."""

    billed: list[Accepted]
    acks: list[Accepted]
    frames: int


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
        self._settling: asyncio.Queue[_Settlement | None] = asyncio.Queue(SETTLING_BATCHES)
        self._settler: asyncio.Task[None] | None = None
        self.counters = IngestCounters()

    def start(self) -> None:
        """Listen to the gateway and start the writer."""
        self._hub.stream_listeners.append(self.on_frame)
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._run(), name="telemetry-ingest")
        self._settler = loop.create_task(self._settle(), name="telemetry-ingest-acks")

    async def stop(self) -> None:
        """Stop listening, commit what is queued, then stop the writer."""
        with contextlib.suppress(ValueError):
            self._hub.stream_listeners.remove(self.on_frame)
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        if self._settler is not None:
            await self._settler
            self._settler = None
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
        txid = record.txid
        if not txid:
            raise WireError("the record has no txid to acknowledge it by")
        return Arrival(
            vin,
            frame.correlation_id,
            record,
            frame.body,
            self._clock.now(),
            txid.decode(errors="replace"),
            bool(getattr(record.message, "is_resend", False)),
        )

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            arrivals = [a for a in batch if a is not None]
            handed_on = False
            try:
                if arrivals:
                    await self._ingest(arrivals, len(batch))
                    handed_on = True
            except Exception:
                # Not acknowledged, so the cars resend them: nothing is lost, only delayed.
                log.exception("telemetry ingest batch failed", records=len(arrivals))
            finally:
                if not handed_on:
                    for _ in batch:
                        self._queue.task_done()
            if len(arrivals) < len(batch):
                await self._settling.put(None)
                return

    async def _ingest(self, arrivals: list[Arrival], frames: int) -> None:
        """Store and fan out one group of arrivals; metering and acks follow in the settler."""
        accepted = await self._entitled(arrivals)
        fresh: list[Accepted] = []
        recovered: list[Accepted] = []
        taken: set[tuple[int, str]] = set()
        repeats = 0
        for entry in accepted:
            key = (entry.ref.id, entry.arrival.txid)
            if key in taken or key in self._recent:
                repeats += 1
            elif entry.arrival.is_resend and await self._records.exists(
                entry.ref.client_id, entry.ref.vin, entry.arrival.txid
            ):
                # Stored before a restart: meter again (idempotent key) in case that was lost.
                recovered.append(entry)
            else:
                taken.add(key)
                fresh.append(entry)
        stored = await self._records.append([_new_record(a) for a in fresh])
        self._remember(taken)
        self._count(fresh, repeats + len(recovered))
        if stored:
            self._publish(stored)
        # Bounded: a settler that falls behind holds the writer, and so the cars' acks, back.
        await self._settling.put(_Settlement(fresh + recovered, accepted, frames))

    async def _settle(self) -> None:
        """Meter, then acknowledge, each committed batch while the writer commits the next."""
        while (done := await self._settling.get()) is not None:
            try:
                self._meter_all(done.billed)
                await self._acknowledge(done.acks)
            except Exception:
                # Not acknowledged: resent, found stored, metered again under the same key.
                log.exception("telemetry ingest settlement failed", records=len(done.acks))
            finally:
                for _ in range(done.frames):
                    self._queue.task_done()

    async def _entitled(self, arrivals: list[Arrival]) -> list[Accepted]:
        """The arrivals whose config is the sending car's and whose app has consent, in
        order; configs and consent are looked up once per batch, not once per record."""
        refs = await self._entitlements.configs({a.config_id for a in arrivals})
        known = list({ref for ref in refs.values() if ref is not None})
        apps = await self._entitlements.consented_all([(ref.client_id, ref.vin) for ref in known])
        # config id -> the account billed, for the configs whose app has consent
        owners = {ref.id: app.owner_id for ref, app in zip(known, apps, strict=True) if app}
        accepted: list[Accepted] = []
        refused: dict[int, str] = {}
        for arrival in arrivals:
            ref = refs.get(arrival.config_id)
            if ref is None or ref.vin != arrival.vin or ref.id not in owners:
                refused[arrival.config_id] = arrival.vin
                self.counters.unentitled += 1
                continue
            signals = wire.signal_count(arrival.record)
            accepted.append(Accepted(arrival, ref, owners[ref.id], signals))
        for config_id, vin in refused.items():
            await self._tell_removed(config_id, vin)
        return accepted

    async def _tell_removed(self, config_id: int, vin: str) -> None:
        """Tell a car its config is gone (or not its own), at most once per REMOVED_NOTICE_S."""
        now = self._clock.monotonic()
        if now - self._notified.get(config_id, -REMOVED_NOTICE_S) >= REMOVED_NOTICE_S:
            self._notified[config_id] = now
            removed = protocol.encode(FrameType.TELEMETRY_CONFIG_REMOVED, b"", config_id)
            await self._hub.send_to(vin, removed)

    async def _acknowledge(self, accepted: list[Accepted]) -> None:
        """Ack each committed (or already stored) record to its car, in arrival order."""
        encode, send_to = protocol.encode, self._hub.send_to
        for entry in accepted:
            arrival = entry.arrival
            await send_to(
                arrival.vin, encode(FrameType.STREAM_ACK, arrival.record.txid, arrival.config_id)
            )

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
            if entry.signals == 0 or entry.account_id is None:
                continue  # nothing billable, or a first-party app
            ref = entry.ref
            self._meter.record(
                UsageEvent(
                    key=f"signals:{ref.id}:{entry.arrival.txid}",
                    account_id=entry.account_id,
                    client_id=ref.client_id,
                    device=f"vehicle:{ref.vin}",
                    category=Category.STREAMING,
                    quantity=entry.signals,
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
            by_app[client_id] = by_app.get(client_id, 0) + entry.signals

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _new_record(accepted: Accepted) -> NewRecord:
    """The row to store: the VIN is the link's, the payload as the reference server rewrites it."""
    arrival = accepted.arrival
    record = arrival.record
    return NewRecord(
        client_id=accepted.ref.client_id,
        vin=arrival.vin,
        topic=record.topic,
        txid=arrival.txid,
        signals=accepted.signals,
        created_at=arrival.received_at,
        payload=record.payload,
        envelope=arrival.frame,
    )
