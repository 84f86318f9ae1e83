"""One config's receiver (one car): its records in order over one connection, retried until
the receiver takes them or refuses them `max_attempts` times (`receivers.py` has the group that
feeds the lanes and stores their positions)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from flotta.adapters.sink_receiver import RecordRefused
from flotta.ports.sinks import Sink
from flotta.telemetry.delivery import error_text
from flotta.telemetry.delivery_models import TelemetryReceiverDeliveryRow
from flotta.telemetry.entitlements import ConfigRef
from flotta.telemetry.receiver_positions import start_position
from flotta.telemetry.records import StreamRecord
from flotta.telemetry.repository import TelemetryRepository

if TYPE_CHECKING:
    from flotta.telemetry.receivers import ReceiverGroup

log = structlog.get_logger(__name__)


def has_receiver(ref: ConfigRef | None) -> bool:
    """Whether a config names a receiver (hostname and port) to stream to."""
    return ref is not None and bool(ref.hostname) and bool(ref.port)


class ReceiverLane:
    """One config's receiver: its car's records in order, retried until taken or refused."""

    def __init__(self, group: ReceiverGroup, ref: ConfigRef) -> None:
        self.group = group
        self.ref = ref
        self.position: int | None = group.positions.get(ref.id)
        self._buffer: deque[StreamRecord] = deque()
        self._lagged = True  # read the log first: the buffer holds only what comes next
        self._wake = asyncio.Event()
        self._sink: Sink | None = None
        self._stopping = False
        self.task: asyncio.Task[None] | None = None

    def offer(self, record: StreamRecord) -> None:
        """Buffer a record; past `lane_buffer` the lane reads the log instead."""
        if self.position is not None and record.cursor <= self.position:
            return
        if len(self._buffer) >= self.group.deps.policy.lane_buffer:
            self._lagged = True
            self._buffer.clear()
        else:
            self._buffer.append(record)
        self._wake.set()

    async def stop(self) -> None:
        """Stop now, even mid-backoff: an unfinished batch stays pending in the log."""
        self._stopping = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def run(self) -> None:
        deps = self.group.deps
        try:
            if self.position is None:
                self.position = await start_position(deps.sessions, self.ref, deps.clock)
                self.group.positions[self.ref.id] = self.position
            while not self.stopping and await self._resilient_step():
                pass
        except _Stopped:
            pass  # the batch stays pending: whoever holds the lease next delivers it
        except _ConfigGone:
            self.group.positions.pop(self.ref.id, None)
            self.group.dirty.discard(self.ref.id)
        finally:
            self.group.ended(self)
            await self._close_sink()

    async def _resilient_step(self) -> bool:
        """`_step`, waiting a moment after a failure that is not the receiver's (the database
        went away): the records stay pending in the log."""
        try:
            return await self._step()
        except (_ConfigGone, _Stopped, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("receiver lane failed; retrying", config=self.ref.id)
            await self.group.deps.clock.sleep(self.group.deps.policy.poll_s)
            self._lagged = True  # read from the stored position again
            return True

    async def _step(self) -> bool:
        """Deliver the next batch, or wait for one; False once idle for `idle_s`."""
        deps = self.group.deps
        assert self.position is not None
        if self._lagged:
            self._lagged = False
            self._buffer.clear()  # what the group hands on from now is after this read
            size = deps.policy.batch_size
            batch = await deps.records.car_records(
                self.ref.client_id, self.ref.vin, self.position, size
            )
            # An overflow while reading (`offer` sets it) must survive: the buffer was dropped.
            self._lagged = self._lagged or len(batch) == size
        else:
            batch = self._take()
        if batch:
            await self._deliver(batch)
            return True
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), deps.policy.idle_s)
        except TimeoutError:
            return bool(self._buffer) or self._lagged
        return True

    def _take(self) -> list[StreamRecord]:
        assert self.position is not None
        batch: list[StreamRecord] = []
        while self._buffer and len(batch) < self.group.deps.policy.batch_size:
            record = self._buffer.popleft()
            if record.cursor > self.position and (not batch or record.cursor > batch[-1].cursor):
                batch.append(record)
        return batch

    async def _deliver(self, batch: list[StreamRecord]) -> None:
        """One batch through its attempts; the position moves past it once it is settled."""
        deps = self.group.deps
        pairs = await deps.entitlements.streaming_pairs({(self.ref.client_id, self.ref.vin)})
        if pairs:
            await _Attempts(self, batch).run()
        self.position = batch[-1].cursor
        self.group.advance(self.ref.id, self.position)

    async def current(self) -> ConfigRef:
        """The config as it is now: a changed receiver is reconnected; a removed one ends."""
        ref = await self.group.deps.entitlements.config_for(self.ref.client_id, self.ref.vin)
        if ref is None or ref.id != self.ref.id or not has_receiver(ref):
            raise _ConfigGone
        if ref != self.ref:
            await self._close_sink()
            self.ref = ref
        return ref

    async def send(self, records: list[StreamRecord]) -> None:
        ref = await self.current()
        if self._sink is None:
            opener = self.group.deps.receivers
            assert opener is not None  # groups exist only when receivers are delivered
            self._sink = opener(ref)
        await self._sink.deliver(records)

    async def failed(self) -> None:
        await self._close_sink()

    @property
    def stopping(self) -> bool:
        return self._stopping or not self.group.deps.leases.holds(self.group.lease)

    async def _close_sink(self) -> None:
        if self._sink is not None:
            with contextlib.suppress(Exception):
                await self._sink.close()
            self._sink = None


class _ConfigGone(Exception):
    """The config was deleted, replaced or no longer names a receiver."""


class _Attempts:
    """The attempt series of one batch to a lane's receiver, logged once it first fails."""

    def __init__(self, lane: ReceiverLane, batch: list[StreamRecord], refused: int = 0) -> None:
        self.lane = lane
        self.batch = batch
        # A record refused within a larger batch carries that refusal into its own series.
        self.attempts = self.refusals = refused
        self.row_id: int | None = None

    async def run(self) -> None:
        lane, deps = self.lane, self.lane.group.deps
        while True:
            self.attempts += 1
            try:
                await lane.send(self.batch)
                if self.row_id is not None:
                    await self._log("delivered", None)
                return
            except (_ConfigGone, asyncio.CancelledError):
                raise
            except RecordRefused as exc:
                refused = [r for r in self.batch if r.txid in exc.txids] or self.batch
                if len(refused) < len(self.batch):
                    # The receiver took the others: this batch is delivered, and each refused
                    # record is tried again on its own, to its own dead letter. A batch refused
                    # whole stays one series: split, it would cost a backoff per record.
                    if self.row_id is not None:
                        await self._log("delivered", f"{len(refused)} refused, retried alone")
                    for record in refused:
                        await _Attempts(lane, [record], self.refusals + 1).run()
                    return
                self.refusals += 1
                if self.refusals >= deps.policy.max_attempts:
                    await self._log("dead", error_text(exc))
                    return
                await self._log("retrying", error_text(exc))
            except Exception as exc:  # unreachable, TLS, timeout: the records wait, as in a car
                await lane.failed()
                await self._log("retrying", error_text(exc))
            await deps.clock.sleep(deps.policy.backoff(self.attempts))
            if lane.stopping:
                raise _Stopped

    async def _log(self, status: str, error: str | None) -> None:
        try:
            await self._write_log(status, error)
        except (IntegrityError, StaleDataError):
            # The config was removed since this attempt began, and its log rows with it: a new
            # row breaks its foreign key, or the row read a moment ago is gone by the update.
            # The lane ends here, as it would have on its next attempt.
            if not await self._config_exists():
                raise _ConfigGone from None
            raise

    async def _config_exists(self) -> bool:
        async with self.lane.group.deps.sessions() as db:
            return await TelemetryRepository(db).by_id(self.lane.ref.id) is not None

    async def _write_log(self, status: str, error: str | None) -> None:
        deps, ref = self.lane.group.deps, self.lane.ref
        now = deps.clock.now()
        async with deps.sessions() as db, db.begin():
            row = await db.get(TelemetryReceiverDeliveryRow, self.row_id) if self.row_id else None
            if row is None:
                row = TelemetryReceiverDeliveryRow(
                    config_id=ref.id,
                    client_id=ref.client_id,
                    vin=ref.vin,
                    first_record_id=self.batch[0].cursor,
                    last_record_id=self.batch[-1].cursor,
                    records=len(self.batch),
                    created_at=now,
                )
                db.add(row)
            row.status, row.attempts, row.last_error, row.updated_at = (
                status,
                self.attempts,
                error,
                now,
            )
            await db.flush()
            self.row_id = row.id


class _Stopped(Exception):
    """The lane stops (shutdown, lease lost) with the batch still pending."""
