"""Fan-out of committed records to each app's live streams, sinks and config receivers, in one
process or in several sharing the database.

Live Fleet API streams get this process's records from memory through bounded buffers; they
read the record log instead whenever records were committed elsewhere: another process
announces "app X has records up to cursor N" on the bus, an idle stream polls, and a jump in
this process's own cursors shows that someone else committed in between (cursors commit in
order: the record log writes under its write lock, on PostgreSQL an advisory lock). Sinks and
config receivers read the durable log from stored positions, each under a lease (`leases.py`)
so that exactly one process delivers them; a dead process's leases expire and the others take
its work over (`scan`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.adapters.sink_receiver import ClientCertificates
from flotta.adapters.sinks import open_sink
from flotta.billing.meter import Meter
from flotta.clock import Clock
from flotta.devices.directory import Directory
from flotta.gateway.hub import Hub
from flotta.outbound import Outbound
from flotta.ports.bus import Bus, BusError, BusMessage
from flotta.ports.bus import Subscription as BusSubscription
from flotta.ports.sinks import Sink
from flotta.telemetry.delivery import DeliveryPolicy
from flotta.telemetry.entitlements import Entitlements
from flotta.telemetry.ingest import Ingest
from flotta.telemetry.leases import Leases
from flotta.telemetry.models import TelemetryConfigRow, TelemetrySinkRow
from flotta.telemetry.receivers import ReceiverGroup, ReceiverOpener, group_lease, open_receiver
from flotta.telemetry.recordlog import RecordLog
from flotta.telemetry.records import StreamRecord
from flotta.telemetry.sink_worker import SinkWorker, lease_name
from flotta.telemetry.vehicle_ca import VehicleCA

log = structlog.get_logger(__name__)

RECORDS_SUBJECT = "flotta.telemetry.records"
REPLAY_SUBJECT = "flotta.telemetry.replay"
# How long a replay request waits for the delivering process to say it queued it.
REPLAY_REPLY_S = 2.0
# Why a live stream ended when the server stops (SSE `event: closed`, WebSocket close 1001).
SERVER_STOPPING = "the server is stopping: reconnect later, with the last cursor, to resume"

SinkOpener = Callable[[TelemetrySinkRow], Sink]


class Subscription:
    """One live stream client's bounded buffer. What does not fit is dropped and the reader
    told to read the log instead (`lagged`), so a consumer that falls behind catches up at its
    own pace, on the same connection, with nothing lost."""

    def __init__(self, client_id: str, capacity: int) -> None:
        self.client_id = client_id
        # A deque, not an asyncio.Queue: only `changed` wakes the one reader, and a Queue's put
        # and get cost about a microsecond a record at hundreds of thousands of records a second.
        self.buffer: deque[StreamRecord] = deque()
        self.capacity = capacity
        self.lagged = False
        self.closed_reason: str | None = None
        self.changed = asyncio.Event()
        # The log was read completely up to this record id (of any app).
        self.covered = 0
        # The newest record of the app another process announced.
        self.announced = 0

    def offer(self, record: StreamRecord) -> None:
        """Buffer a record without ever blocking ingest."""
        if self.closed_reason is not None:
            return
        if len(self.buffer) < self.capacity:
            self.buffer.append(record)
        else:  # the log has it: the reader goes back there before it takes from the buffer
            self.lagged = True
        self.changed.set()

    def take(self, limit: int) -> list[StreamRecord]:
        """Up to `limit` buffered records, oldest first."""
        buffer = self.buffer
        if len(buffer) <= limit:
            taken = list(buffer)
            buffer.clear()
            return taken
        return [buffer.popleft() for _ in range(limit)]

    def announce(self, cursor: int) -> None:
        """Another process committed records of the app up to `cursor`."""
        if cursor > self.announced:
            self.announced = cursor
            self.changed.set()

    def behind(self, cursor: int, gap_at: int) -> bool:
        """Whether the log holds records the buffer will never get: announced by another
        process, or committed elsewhere between two of this process's own."""
        return self.announced > cursor or gap_at > self.covered + 1

    def end(self, reason: str) -> None:
        """End the stream (client gone, server stopping); the reader returns at once."""
        self.closed_reason = self.closed_reason or reason
        self.changed.set()

    def catch_up_again(self) -> None:
        """Forget the buffer: the caller re-reads the log from its cursor instead."""
        self.lagged = False
        self.buffer.clear()


class Dispatcher:
    """Routes committed records to live subscribers, sink workers and receiver groups."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        records: RecordLog,
        entitlements: Entitlements,
        clock: Clock,
        *,
        opener: SinkOpener | None = None,
        receivers: ReceiverOpener | None = None,
        policy: DeliveryPolicy | None = None,
        bus: Bus | None = None,
        owner: str | None = None,
        client_certs: ClientCertificates | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        self.sessions = sessions
        self.records = records
        self.entitlements = entitlements
        self.clock = clock
        self.policy = policy or DeliveryPolicy()
        self.opener: SinkOpener = opener or (
            lambda row: open_sink(
                row.kind,
                row.settings,
                row.format,
                row.secret,
                clock=clock,
                client_certs=client_certs,
                outbound=outbound,
            )
        )
        self.receivers = receivers
        self.leases = Leases(sessions, clock, self.policy.lease_s, owner)
        self.bus = bus
        # The newest cursor this process published, and where its own cursors last jumped.
        self.published_through: int | None = None
        self.gap_at = 0
        self._subscribers: dict[str, set[Subscription]] = {}
        self._workers: dict[int, SinkWorker] = {}
        self._groups: dict[str, ReceiverGroup] = {}
        self._elsewhere: dict[str, float] = {}  # app -> when to try its receiver lease again
        self._bus_subs: list[BusSubscription] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._running = False
        self._stopped = False
        # Set once the server stops: a stream that starts after that ends at once.
        self._ending: str | None = None
        self._no_streams = asyncio.Event()
        self._no_streams.set()

    @property
    def owner(self) -> str:
        return self.leases.owner

    async def start(self) -> None:
        """Listen to other processes, take over free work, and keep leases renewed."""
        self._running, self._stopped, self._ending = True, False, None
        if self.bus is not None:
            self._bus_subs = [
                await self.bus.subscribe(RECORDS_SUBJECT, self._on_records),
                await self.bus.subscribe(REPLAY_SUBJECT, self._on_replay),
            ]
        await self.scan()
        self._spawn(self._every(self.policy.lease_s / 2, self.scan, "scan"))
        self._spawn(self._every(self.policy.lease_s / 3, self._renew, "renew"))

    async def stop(self, *, release: bool = True) -> None:
        """Stop delivering; `release=False` leaves the leases to expire, as a crash would."""
        self._running, self._stopped = False, True
        for listening in self._bus_subs:
            with contextlib.suppress(Exception):
                await listening.unsubscribe()
        self._bus_subs = []
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for worker in list(self._workers.values()):
            await worker.stop(release=release)
        self._workers.clear()
        for group in list(self._groups.values()):
            await group.stop(release=release)
        self._groups.clear()
        self._end_streams()

    async def end_streams(self, within_s: float) -> None:
        """End every live stream, and any that starts from now on, because the server stops;
        wait up to `within_s` for their readers to tell their clients and let go."""
        self._end_streams()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_streams.wait(), within_s)

    def _end_streams(self) -> None:
        self._ending = SERVER_STOPPING
        for subs in self._subscribers.values():
            for sub in subs:
                sub.end(SERVER_STOPPING)

    def publish(self, records: Sequence[StreamRecord]) -> None:
        """Hand committed records on: never blocks (buffers are bounded, delivery reads the log)."""
        if not records:
            return
        newest: dict[str, int] = {}  # ingest hands records on in cursor order
        subscribers = self._subscribers
        for record in records:
            for sub in subscribers.get(record.client_id, ()):
                sub.offer(record)
            newest[record.client_id] = record.cursor
        first, last = records[0].cursor, records[-1].cursor
        if self.published_through is None or first != self.published_through + 1:
            self.gap_at = max(self.gap_at, first)  # someone else committed in between
        self.published_through = max(self.published_through or 0, last)
        if self._stopped:
            return
        for client_id in newest:
            self._wake(client_id, start_group=self._running)
        if self.bus is not None:
            body = orjson.dumps({"origin": self.owner, "apps": newest})
            self._spawn(self._announce(body))

    async def _announce(self, body: bytes) -> None:
        assert self.bus is not None
        try:
            await self.bus.publish(RECORDS_SUBJECT, body)
        except Exception:  # other processes fall back to polling the log
            log.warning("could not announce telemetry records on the bus", exc_info=True)

    async def _on_records(self, message: BusMessage) -> None:
        """Another process committed records: wake what reads them here."""
        data = orjson.loads(message.data)
        if data.get("origin") == self.owner:
            return
        for client_id, cursor in dict(data.get("apps", {})).items():
            for sub in self._subscribers.get(client_id, ()):
                sub.announce(int(cursor))
            self._wake(str(client_id), start_group=False)
        return None

    def _wake(self, client_id: str, *, start_group: bool) -> None:
        for worker in self._workers.values():
            if worker.client_id == client_id:
                worker.wake()
        group = self._groups.get(client_id)
        if group is not None:
            group.wake()
        elif (
            start_group
            and self.receivers is not None
            and self._elsewhere.get(client_id, 0.0) <= self.clock.monotonic()
        ):
            self._start_group(client_id)

    def _start_group(self, client_id: str) -> None:
        group = ReceiverGroup(client_id, self)
        self._groups[client_id] = group
        # Held by another process: ask again after half a lease (the scan takes over sooner).
        self._elsewhere[client_id] = self.clock.monotonic() + self.policy.lease_s / 2
        group.task = asyncio.get_running_loop().create_task(
            group.run(), name=f"telemetry-receivers-{client_id}"
        )
        group.task.add_done_callback(lambda _: self._ended(self._groups, client_id, group))

    @staticmethod
    def _ended(table: dict[Any, Any], key: Any, value: Any) -> None:
        if table.get(key) is value:
            del table[key]

    async def scan(self) -> None:
        """Start delivering every sink and app whose lease is free or expired."""
        try:
            await self._scan()
        except Exception:  # the database went away: the next round tries again
            log.exception("telemetry delivery scan failed")

    async def _scan(self) -> None:
        taken = await self.leases.taken()
        now = self.clock.now()

        def free(name: str) -> bool:
            lease = taken.get(name)
            return lease is None or lease[0] == self.owner or lease[1] < now

        async with self.sessions() as db:
            enabled_sinks = select(TelemetrySinkRow).where(TelemetrySinkRow.enabled)
            sinks = (await db.scalars(enabled_sinks)).all()
            apps = (await db.scalars(select(TelemetryConfigRow.client_id).distinct())).all()
        current = {row.id: row for row in sinks}
        for sink_id, worker in list(self._workers.items()):
            row = current.get(sink_id)
            if row is None or worker.settings_differ(row):  # deleted, paused or edited elsewhere
                await self.remove_sink(sink_id)
        for row in sinks:
            if row.id not in self._workers and free(lease_name(row.id)):
                self.add_sink(row)
        if self.receivers is not None:
            for client_id in apps:
                if client_id not in self._groups and free(group_lease(client_id)):
                    self._start_group(client_id)

    async def _renew(self) -> None:
        lost = await self.leases.renew()
        for name in lost:
            log.warning("telemetry lease lost to another process", lease=name)

    async def _every(self, interval_s: float, job: Any, what: str) -> None:
        while True:
            await self.clock.sleep(interval_s)
            try:
                await job()
            except Exception:
                log.exception("telemetry delivery background job failed", job=what)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def subscribe(self, client_id: str, capacity: int) -> Subscription:
        sub = Subscription(client_id, capacity)
        self._subscribers.setdefault(client_id, set()).add(sub)
        self._no_streams.clear()
        if self._ending is not None:  # a request that got past the listener as it closed
            sub.end(self._ending)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.client_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.client_id]
        if not self._subscribers:
            self._no_streams.set()

    def add_sink(self, row: TelemetrySinkRow) -> None:
        """Deliver a (new) sink from this process, if its lease is free."""
        if row.id in self._workers or not row.enabled or not self._running:
            return
        worker = SinkWorker(row, self)
        self._workers[row.id] = worker
        worker.task = asyncio.get_running_loop().create_task(
            worker.run(), name=f"telemetry-sink-{row.id}"
        )
        worker.task.add_done_callback(lambda _: self._ended(self._workers, row.id, worker))

    async def remove_sink(self, sink_id: int) -> None:
        worker = self._workers.pop(sink_id, None)
        if worker is not None:
            await worker.stop()

    def replay(self, sink_id: int, start: datetime, end: datetime) -> bool:
        """Queue a re-send of the records created in [start, end] here; False if this
        process does not deliver the sink."""
        worker = self._workers.get(sink_id)
        # A worker still trying for the lease (or about to end without it) would never send it.
        if worker is None or not self.leases.holds(worker.lease):
            return False
        worker.replay(start, end)
        return True

    async def request_replay(self, sink_id: int, start: datetime, end: datetime) -> bool:
        """Queue a replay in whichever process delivers the sink; False when none does now
        (its lease is between holders) or the bus failed: the caller says try again."""
        if self.replay(sink_id, start, end):
            return True
        if self.bus is None:
            return False
        body = {"sink_id": sink_id, "from": start.isoformat(), "to": end.isoformat()}
        try:
            # Only the process delivering the sink answers, once it has queued the replay.
            await self.bus.request(REPLAY_SUBJECT, orjson.dumps(body), REPLAY_REPLY_S)
        except BusError:
            log.warning("no process took the replay", sink=sink_id)
            return False
        return True

    async def _on_replay(self, message: BusMessage) -> bytes | None:
        data = orjson.loads(message.data)
        start, end = datetime.fromisoformat(data["from"]), datetime.fromisoformat(data["to"])
        return b"queued" if self.replay(int(data["sink_id"]), start, end) else None

    def position(self, sink_id: int) -> int | None:
        """The last record this process delivered (or dead-lettered) to the sink."""
        worker = self._workers.get(sink_id)
        return worker.through if worker is not None else None

    def delivering(self) -> tuple[set[int], set[str]]:
        """The sinks and apps (receivers) this process delivers now."""
        sinks = {s for s, w in self._workers.items() if self.leases.holds(w.lease)}
        apps = {a for a, g in self._groups.items() if self.leases.holds(g.lease)}
        return sinks, apps


class TelemetryStreams:
    """Ingest, the record log and the dispatcher, started and stopped together (Runtime)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: Directory,
        hub: Hub,
        clock: Clock,
        *,
        meter: Meter | None,
        opener: SinkOpener | None = None,
        receivers: ReceiverOpener | None = None,
        policy: DeliveryPolicy | None = None,
        bus: Bus | None = None,
        vehicle_ca: VehicleCA | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        self.records = RecordLog(sessions)
        self.entitlements = Entitlements(sessions, directory, clock)
        self.vehicle_ca = vehicle_ca
        certs = vehicle_ca.leaf if vehicle_ca is not None else None
        self.dispatcher = Dispatcher(
            sessions,
            self.records,
            self.entitlements,
            clock,
            opener=opener,
            receivers=receivers if receivers is not None else open_receiver(certs, outbound),
            policy=policy,
            bus=bus,
            client_certs=certs,
            outbound=outbound,
        )
        self.ingest = Ingest(
            hub,
            self.records,
            self.entitlements,
            clock,
            meter=meter,
            publish=self.dispatcher.publish,
        )

    async def start(self) -> None:
        await self.dispatcher.start()
        self.entitlements.start()
        self.ingest.start()

    async def stop(self) -> None:
        await self.ingest.stop()
        await self.dispatcher.stop()
        await self.entitlements.stop()
        self.records.close()
