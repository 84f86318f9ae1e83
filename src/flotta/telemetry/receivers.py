"""Durable delivery to each config's own fleet-telemetry receiver (its hostname:port), as the
car would stream there.

One `ReceiverGroup` per app runs in the process that holds the app's lease
(`receivers:<client_id>`): it reads the app's new records from the record log (one query per
wake-up) and hands each to its car's `ReceiverLane`. A lane (one config, so one car) delivers
its records in order over one connection and keeps its position, the last record delivered,
in `telemetry_receivers`: a restart or another process resumes from there. A receiver that
cannot be reached is retried with backoff for as long as it takes, as a car keeps its
unacknowledged records; a record the receiver refuses (an error reply) `max_attempts` times is
a dead letter in the receivers' delivery log, and the lane moves on. Positions are written
at most every `flush_s`, fenced by the lease: after a crash a receiver may get the last
second's records again (fleet-telemetry servers see the same txid), never fewer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import structlog
from sqlalchemy import Table, bindparam, update

from flotta.adapters.sink_receiver import ClientCertificates, ReceiverSink, ReceiverTarget
from flotta.adapters.sinks import GuardedSink
from flotta.outbound import Outbound
from flotta.ports.sinks import Sink
from flotta.telemetry.delivery_models import TelemetryReceiverRow
from flotta.telemetry.entitlements import ConfigRef
from flotta.telemetry.leases import LeasedWork, LeaseLost
from flotta.telemetry.receiver_lane import ReceiverLane, has_receiver
from flotta.telemetry.receiver_positions import receiver_configs, recover

if TYPE_CHECKING:
    from flotta.telemetry.dispatch import Dispatcher

__all__ = ["ReceiverGroup", "ReceiverOpener", "open_receiver"]

log = structlog.get_logger(__name__)

ReceiverOpener = Callable[[ConfigRef], Sink]


def group_lease(client_id: str) -> str:
    return f"receivers:{client_id}"


class ReceiverGroup(LeasedWork):
    """Delivers one app's records to its configs' receivers while this process holds the lease."""

    def __init__(self, client_id: str, deps: Dispatcher) -> None:
        super().__init__(group_lease(client_id), deps.leases)
        self.client_id = client_id
        self.deps = deps
        # config id -> last record delivered; authoritative while the lease is held
        self.positions: dict[int, int] = {}
        self.dirty: set[int] = set()
        self.lanes: dict[str, ReceiverLane] = {}
        # The newest record of the app read so far; None while the app names no receiver.
        self._mark: int | None = None

    async def run(self) -> None:
        """Take the lease, resume every car that has records left, then follow the log."""
        try:
            if not await self.deps.leases.acquire(self.lease):
                return
        except Exception:  # the database went away: the next look for work starts again
            log.exception("could not take the receiver lease", app=self.client_id)
            return
        try:
            await self._follow()
        except LeaseLost:
            log.warning("receiver lease taken over by another process", app=self.client_id)
        finally:
            for lane in list(self.lanes.values()):
                await lane.stop()
            with contextlib.suppress(LeaseLost, Exception):
                await self.flush()

    async def _follow(self) -> None:
        deps, policy = self.deps, self.deps.policy
        clock = deps.clock
        next_flush = next_refresh = clock.monotonic()
        while not self._stopping and deps.leases.holds(self.lease):
            try:
                if clock.monotonic() >= next_refresh:
                    next_refresh = clock.monotonic() + policy.lease_s
                    await self._refresh()
                await self._read_tail()
                if clock.monotonic() >= next_flush:
                    next_flush = clock.monotonic() + policy.flush_s
                    await self.flush()
            except LeaseLost:
                raise
            except Exception:  # the database went away: try again at the next round
                log.exception("receiver routing failed", app=self.client_id)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(policy.poll_s, policy.flush_s))

    async def _refresh(self) -> None:
        """Find the app's receivers (a config may have gained one) and the cars whose
        receiver has records left: at the start (a restart, a takeover), then now and then."""
        deps = self.deps
        configs = await receiver_configs(deps.sessions, self.client_id)
        if not configs:
            self._mark = None  # no receivers: no need to read the app's records at all
            return
        mark = await deps.records.last_cursor()  # before looking: nothing falls in between
        found = await recover(deps.sessions, self.client_id, configs, deps.clock)
        for config_id, through in found.positions.items():
            self.positions.setdefault(config_id, through)  # ours may be newer, not yet flushed
        if self._mark is None:
            self._mark = mark
        for vin in found.pending:  # cars with records their receiver has not had yet
            ref = await deps.entitlements.config_for(self.client_id, vin)
            if has_receiver(ref) and vin not in self.lanes:
                assert ref is not None
                self._lane(ref)

    async def _read_tail(self) -> None:
        """Hand the app's records after the mark to their cars' lanes."""
        deps = self.deps
        while self._mark is not None:
            page = await deps.records.after(self.client_id, self._mark, deps.policy.batch_size)
            for record in page:
                lane = self.lanes.get(record.vin)
                if lane is None:
                    ref = await deps.entitlements.config_for(self.client_id, record.vin)
                    if not has_receiver(ref):
                        continue
                    assert ref is not None
                    lane = self._lane(ref)
                lane.offer(record)
            if page:
                self._mark = page[-1].cursor
            if len(page) < deps.policy.batch_size:
                return

    def _lane(self, ref: ConfigRef) -> ReceiverLane:
        lane = self.lanes.get(ref.vin)
        if lane is None:
            lane = self.lanes[ref.vin] = ReceiverLane(self, ref)
            lane.task = asyncio.get_running_loop().create_task(
                lane.run(), name=f"telemetry-receiver-{ref.id}"
            )
        return lane

    def ended(self, lane: ReceiverLane) -> None:
        if self.lanes.get(lane.ref.vin) is lane:
            del self.lanes[lane.ref.vin]

    def advance(self, config_id: int, cursor: int) -> None:
        self.positions[config_id] = cursor
        self.dirty.add(config_id)

    async def flush(self) -> None:
        """Write the moved positions in one transaction, fenced by the lease."""
        if not self.dirty:
            return
        moved = {config_id: self.positions[config_id] for config_id in self.dirty}
        table = cast(Table, TelemetryReceiverRow.__table__)
        statement = (
            update(table)
            .where(table.c.config_id == bindparam("b_config"))
            .values(delivered_through=bindparam("b_through"), updated_at=self.deps.clock.now())
        )
        params = [{"b_config": c, "b_through": through} for c, through in moved.items()]
        async with self.deps.sessions() as db, db.begin():
            await self.deps.leases.fence(db, self.lease)
            await db.execute(statement, params)
        for config_id, through in moved.items():
            if self.positions.get(config_id) == through:
                self.dirty.discard(config_id)


def open_receiver(
    client_certs: ClientCertificates | None = None, outbound: Outbound | None = None
) -> ReceiverOpener:
    """Receiver sinks that trust only the config's CA and present each car's own certificate;
    with `outbound`, the config's hostname is checked before each delivery."""

    def opener(ref: ConfigRef) -> Sink:
        target = ReceiverTarget(
            hostname=ref.hostname,
            port=ref.port,
            ca=ref.ca or "",
            wait_for_ack=ref.awaits_acks,
            client_certs=client_certs,
        )
        if outbound is None:
            return ReceiverSink(target)
        return GuardedSink(ReceiverSink(target, outbound), [(ref.hostname, ref.port)], outbound)

    return opener
