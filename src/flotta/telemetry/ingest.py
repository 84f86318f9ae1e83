"""Gateway ingest of streamed records: decode, entitle, store, meter, acknowledge, fan out.

STREAM frames arrive on the device link's read loop (`Hub.frame_listeners`, synchronous). Only
what is kept is read there (`wire.decode_stream`: topic, txid, payload, signals, is_resend), as
one tuple on a bounded list. One writer task takes whatever has queued up, checks entitlement
once per config of the batch, and commits the batch to the record log in one transaction, one
group per config (`record_groups`). It hands each batch to the record log without waiting for
the ones before to commit (at most COMMITS_IN_FLIGHT), and settles each, in order, once it is
committed: hands it to the streams, meters each of its groups (one usage event), and
acknowledges its records to the cars. Acks never precede the commit.

A full queue drops the frame unacknowledged: the car keeps it and sends it again (back-pressure
by withholding acks, never by growing without bound).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
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
from flotta.telemetry.entitlements import ConfigRef, Entitlements
from flotta.telemetry.envelope import WireError
from flotta.telemetry.ingest_acks import Ack, Acknowledger, RecentTxids
from flotta.telemetry.record_groups import NewGroup, StoredGroup, stream_records
from flotta.telemetry.recordlog import RecordLog
from flotta.telemetry.records import StreamRecord
from flotta.telemetry.sync import removed_frame

log = structlog.get_logger(__name__)

QUEUE_SIZE = 20_000
# Payload bytes queued at most (frames may be up to 1 MB each).
QUEUE_BYTES = 64 * 2**20
MAX_BATCH = 4000
# Batches handed to the record log and not yet settled: under load, the next batch is ready
# when a commit ends, rather than taken only then.
COMMITS_IN_FLIGHT = 4
# Txids remembered per process in each of two generations, so a resend already stored is
# acknowledged, not stored again: at least the last RECENT_TXIDS, at most twice as many.
RECENT_TXIDS = 200_000
# A car streaming for a config that is gone is told at most this often per config.
REMOVED_NOTICE_S = 5.0
# Configs remembered as told "removed"; past it, those told longer ago are forgotten.
NOTIFIED_MAX = 10_000

Publish = Callable[[Sequence[StreamRecord]], None]
# A decoded STREAM frame: (vin, config id, topic, txid, payload, signals, is_resend).
Arrival = tuple[str, int, str, bytes, bytes, int, bool]


@dataclass(frozen=True, slots=True)
class _Grant:
    """A config whose app may receive its records, and the account billed (None: not)."""

    ref: ConfigRef
    account_id: int | None


@dataclass(slots=True)
class _Prepared:
    """A batch sorted out: its groups to store, and what else settling it takes."""

    now: datetime
    grants: dict[int, _Grant]
    groups: dict[int, NewGroup]  # by config id
    taken: dict[int, set[bytes]]  # txids stored now, by config id
    acks: list[Ack]
    # Stored before a restart, by (config id, first cursor): each group once, however many of
    # its records a car resends.
    recovered: dict[tuple[int, int], StoredGroup]


@dataclass(slots=True)
class _InFlight:
    """A batch handed to the record log (None: it failed before that)."""

    prepared: _Prepared | None
    committing: asyncio.Future[list[int]] | None
    frames: int


@dataclass(slots=True)
class _Settlement:
    """A committed batch: what to meter, what to acknowledge, how many frames it took."""

    usage: list[UsageEvent]
    acks: list[Ack]
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
    acks_dropped: int = 0
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
        self._queue_size = queue_size
        self._pending: list[Arrival] = []
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._queued = self._settled = 0  # frames queued and settled since start
        self._progress = asyncio.Event()
        self._recent = RecentTxids(RECENT_TXIDS)
        self._committing: dict[int, set[bytes]] = {}  # txids in batches not yet committed
        self._acks = Acknowledger(hub)
        self._notified: dict[int, float] = {}
        self._erroring: set[str] = set()  # cars with an ERROR frame being sent
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writer: asyncio.Task[None] | None = None
        self.counters = IngestCounters()

    def start(self) -> None:
        """Listen to the gateway and start the writer."""
        self._hub.frame_listeners[FrameType.STREAM].append(self.on_frame)
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._run(), name="telemetry-ingest")

    async def stop(self) -> None:
        """Stop listening, commit what is queued, then stop the writer."""
        with contextlib.suppress(ValueError):
            self._hub.frame_listeners[FrameType.STREAM].remove(self.on_frame)
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
            self._writer = None
        for pending in [*self._tasks, *self._acks.tasks]:
            with contextlib.suppress(Exception):
                await pending

    async def drained(self) -> None:
        """Wait until every frame queued so far is committed and acknowledged (tests, bench)."""
        target = self._queued
        while self._settled < target:
            self._progress.clear()
            await self._progress.wait()

    def on_frame(self, device: VehicleRecord, frame: Frame) -> None:
        """A STREAM frame from the gateway's read loop: never blocks it."""
        self.on_stream(device.vin, frame.correlation_id, frame.body)

    def on_stream(self, vin: str, config_id: int, body: bytes) -> None:
        """A STREAM frame's body for a config: decoded and queued, or answered with ERROR."""
        self.counters.received += 1
        try:
            if config_id == 0:
                raise WireError("a STREAM frame's correlation id must be its telemetry config's id")
            topic, txid, payload, signals, is_resend = wire.decode_stream(body)
        except WireError as exc:
            self.counters.malformed += 1
            if vin not in self._erroring:  # one ERROR on its way per car: a flood stays bounded
                self._erroring.add(vin)
                error = protocol.error_frame("bad_stream_record", str(exc), config_id)
                self._spawn(self._send_error(vin, error))
            return
        if len(self._pending) >= self._queue_size or self._pending_bytes >= QUEUE_BYTES:
            # No ack: the car keeps the record and resends it once we have caught up.
            self.counters.backpressure += 1
            return
        self._pending.append((vin, config_id, topic, txid, payload, signals, is_resend))
        self._pending_bytes += len(payload)
        self._queued += 1
        self._wake.set()

    def _take(self) -> list[Arrival]:
        """Up to MAX_BATCH queued arrivals, oldest first."""
        batch = self._pending
        if len(batch) <= MAX_BATCH:
            self._pending, self._pending_bytes = [], 0
        else:
            batch, self._pending = batch[:MAX_BATCH], batch[MAX_BATCH:]
            self._pending_bytes -= sum(len(arrival[4]) for arrival in batch)
        return batch

    async def _run(self) -> None:
        """Hand batch after batch to the record log; settle each, in order, once committed."""
        inflight: deque[_InFlight] = deque()
        while True:
            if inflight and (inflight[0].committing is None or inflight[0].committing.done()):
                await self._settle(self._committed(inflight.popleft()))
            elif self._pending and len(inflight) < COMMITS_IN_FLIGHT:
                inflight.append(await self._start(self._take()))
            elif self._closing and not inflight and not self._pending:
                return
            else:
                self._wake.clear()
                await self._wake.wait()

    async def _start(self, batch: list[Arrival]) -> _InFlight:
        """Sort a batch out and hand its groups to the record log."""
        prepared: _Prepared | None = None
        try:
            prepared = await self._prepare(batch)
            committing = self._records.commit(list(prepared.groups.values()), prepared.now)
        except Exception:
            # Not acknowledged, so the cars resend them: nothing is lost, only delayed. Their
            # txids must not stay marked as being committed, or the resends would wait forever.
            log.exception("telemetry ingest batch failed", records=len(batch))
            if prepared is not None:
                self._release(prepared)
            return _InFlight(None, None, len(batch))
        committing.add_done_callback(lambda _: self._wake.set())
        return _InFlight(prepared, committing, len(batch))

    def _committed(self, done: _InFlight) -> _Settlement:
        """A batch the record log is done with: what settling it takes."""
        prepared, committing = done.prepared, done.committing
        if prepared is None or committing is None:
            return _Settlement([], [], done.frames)
        self._release(prepared)
        try:
            firsts = committing.result()
        except Exception:
            log.exception("telemetry ingest batch failed to commit", records=done.frames)
            return _Settlement([], [], done.frames)
        try:
            return self._finish(prepared, firsts, done.frames)
        except Exception:
            # Stored but not acknowledged: the cars resend, and the resends are found stored.
            # Raised out of here, it would end the writer, and no car would be acknowledged again.
            log.exception("telemetry ingest batch failed after its commit", records=done.frames)
            return _Settlement([], [], done.frames)

    def _release(self, prepared: _Prepared) -> None:
        """The batch's txids are no longer being committed (it committed, or it failed)."""
        for config_id, txids in prepared.taken.items():
            still = self._committing.get(config_id)
            if still is not None:
                still.difference_update(txids)
                if not still:
                    del self._committing[config_id]

    async def _prepare(self, batch: list[Arrival]) -> _Prepared:
        """Sort a batch out, config by config: refused, known already, or new."""
        grants = await self._entitled(batch)
        stored_before = await self._stored_before(batch, grants)
        by_config: dict[int, list[Arrival]] = {}
        for arrival in batch:
            same = by_config.get(arrival[1])
            if same is None:
                by_config[arrival[1]] = [arrival]
            else:
                same.append(arrival)
        prepared = _Prepared(self._clock.now(), grants, {}, {}, [], {})
        refused: dict[int, str] = {}
        for config_id, arrivals in by_config.items():
            grant = grants.get(config_id)
            if grant is None:
                refused[config_id] = arrivals[0][0]
                self.counters.unentitled += len(arrivals)
            else:
                self._sort(prepared, grant, arrivals, stored_before, refused)
        for config_id, vin in refused.items():
            # In the background: a car that does not read its link must not hold up the others.
            self._tell_removed(config_id, vin)
        return prepared

    def _sort(
        self,
        prepared: _Prepared,
        grant: _Grant,
        arrivals: list[Arrival],
        stored_before: dict[tuple[int, bytes], StoredGroup],
        refused: dict[int, str],
    ) -> None:
        """One config's arrivals: each new one into the config's group, and each one
        acknowledged, unless its first copy is still being committed."""
        config_id, vin = grant.ref.id, grant.ref.vin
        newer, older = self._recent.generations(config_id)
        committing = self._committing.get(config_id, ())
        kept: set[bytes] = set()
        group = NewGroup(grant.ref.client_id, vin)
        acked: list[bytes] = []
        for sender, _, topic, txid, payload, signals, is_resend in arrivals:
            if sender != vin:  # another car's config
                refused[config_id] = sender
                self.counters.unentitled += 1
                continue
            if txid in kept or txid in newer or txid in older:
                self.counters.duplicates += 1
            elif txid in committing:
                # Its first copy is being committed: no ack yet (that commit may fail); the
                # car sends it again, and then it is known.
                self.counters.duplicates += 1
                continue
            elif is_resend and (config_id, txid) in stored_before:
                # Stored before a restart: meter again (idempotent key) in case that was lost.
                earlier = stored_before[config_id, txid]
                prepared.recovered.setdefault((config_id, earlier.first_cursor), earlier)
                self.counters.duplicates += 1
            else:
                kept.add(txid)
                group.add(txid, topic, signals, payload)
            acked.append(txid)
        if kept:
            self._committing.setdefault(config_id, set()).update(kept)
        prepared.taken[config_id] = kept
        if group.txids:
            prepared.groups[config_id] = group
        if acked:
            prepared.acks.append((vin, config_id, acked))

    def _finish(self, prepared: _Prepared, firsts: list[int], frames: int) -> _Settlement:
        """A committed batch: handed to the streams, its usage and acks listed, remembered."""
        now, grants = prepared.now, prepared.grants
        published: list[StreamRecord] = []
        usage: list[UsageEvent] = []
        for (config_id, group), first in zip(prepared.groups.items(), firsts, strict=True):
            published += stream_records(group, first, now)
            signals = sum(group.signals)
            last = first + len(group) - 1
            stored = StoredGroup(first, last, group.client_id, group.vin, signals, now)
            self._count(stored, len(group))
            usage += self._usage(grants[config_id], stored)
        for (config_id, _), stored in prepared.recovered.items():
            usage += self._usage(grants[config_id], stored)
        if published:
            try:
                self._publish(published)
            except Exception:  # stored all the same: streams and sinks also read the log
                log.exception("handing records to the streams failed", records=len(published))
        # Last: had anything above failed, the cars' resends (marked is_resend, as cars mark
        # them) would be looked up in the log, found stored, and metered under the same keys.
        for config_id, txids in prepared.taken.items():
            self._recent.remember(config_id, txids)
        return _Settlement(usage, prepared.acks, frames)

    async def _stored_before(
        self, batch: list[Arrival], grants: dict[int, _Grant]
    ) -> dict[tuple[int, bytes], StoredGroup]:
        """Where the batch's resends this process does not remember are already stored."""
        wanted: dict[int, set[bytes]] = {}
        for vin, config_id, _, txid, _, _, is_resend in batch:
            grant = grants.get(config_id)
            if (
                is_resend
                and grant is not None
                and grant.ref.vin == vin
                and not self._recent.seen(config_id, txid)
            ):
                wanted.setdefault(config_id, set()).add(txid)
        found: dict[tuple[int, bytes], StoredGroup] = {}
        for config_id, txids in wanted.items():
            ref = grants[config_id].ref
            names = {txid.decode(errors="replace"): txid for txid in txids}
            groups = await self._records.find_txids(ref.client_id, ref.vin, names)
            found.update({(config_id, names[name]): group for name, group in groups.items()})
        return found

    def _usage(self, grant: _Grant, stored: StoredGroup) -> list[UsageEvent]:
        """The group's streaming signals, billed to the app's owner (none for first-party
        apps or signal-less records); keyed by the group, so metering it again counts once."""
        if self._meter is None or grant.account_id is None or stored.signals == 0:
            return []
        return [
            UsageEvent(
                key=f"signals:{stored.vin}:{stored.first_cursor}-{stored.last_cursor}",
                account_id=grant.account_id,
                client_id=stored.client_id,
                device=f"vehicle:{stored.vin}",
                category=Category.STREAMING,
                quantity=stored.signals,
                occurred_at=stored.created_at,
            )
        ]

    async def _settle(self, done: _Settlement) -> None:
        """Meter a committed batch, then acknowledge it."""
        try:
            if self._meter is not None:
                for event in done.usage:  # durable on return: the usage journal
                    self._meter.record(event)
            await self._acks.acknowledge(done.acks)
            self.counters.acks_dropped = self._acks.dropped
        except Exception:
            # The records are stored and remembered: the cars' resends are acknowledged from
            # memory. Usage not recorded here is lost, but recording raises only on a bug (a
            # full disk keeps the event in memory, see Ledger.append).
            log.exception("telemetry ingest settlement failed", frames=done.frames)
        finally:
            self._settled += done.frames
            self._progress.set()

    async def _entitled(self, batch: list[Arrival]) -> dict[int, _Grant]:
        """The batch's configs whose app has the car owner's consent, by id; configs and
        consent are looked up once per batch, not once per record."""
        refs = await self._entitlements.configs({arrival[1] for arrival in batch})
        known = [ref for ref in refs.values() if ref is not None]
        apps = await self._entitlements.consented_all([(ref.client_id, ref.vin) for ref in known])
        return {
            ref.id: _Grant(ref, app.owner_id)
            for ref, app in zip(known, apps, strict=True)
            if app is not None
        }

    def _tell_removed(self, config_id: int, vin: str) -> None:
        """Tell a car its config is gone (or not its own), at most once per REMOVED_NOTICE_S."""
        now = self._clock.monotonic()
        if now - self._notified.get(config_id, -REMOVED_NOTICE_S) >= REMOVED_NOTICE_S:
            if len(self._notified) >= NOTIFIED_MAX:  # ids are the cars' to choose: stay bounded
                cutoff = now - REMOVED_NOTICE_S
                self._notified = {c: at for c, at in self._notified.items() if at >= cutoff}
            self._notified[config_id] = now
            self._spawn(self._hub.send_to(vin, removed_frame(config_id)))

    def _count(self, stored: StoredGroup, records: int) -> None:
        self.counters.stored += records
        by_app = self.counters.signals_by_app
        by_app[stored.client_id] = by_app.get(stored.client_id, 0) + stored.signals

    async def _send_error(self, vin: str, error: bytes) -> None:
        try:
            await self._hub.send_to(vin, error)
        finally:
            self._erroring.discard(vin)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
