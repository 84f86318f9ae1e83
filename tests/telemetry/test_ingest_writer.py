"""Ingest's writer with its neighbours held still: what a car gets acknowledged, and when, if the
queue is full, a commit fails or is slow, a record comes twice, or a car does not read."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest

from flotta.clock import ManualClock, SystemClock
from flotta.devices.directory import AppRecord, Directory
from flotta.gateway import protocol
from flotta.gateway.protocol import FrameError, FrameType
from flotta.telemetry import wire
from flotta.telemetry.emitter import TelemetryRecord
from flotta.telemetry.entitlements import REFRESH_UNUSED_S, ConfigRef
from flotta.telemetry.entitlements import Entitlements as RealEntitlements
from flotta.telemetry.ingest import Ingest
from flotta.telemetry.ingest_acks import ACK_WAIT_S, ACKS_PER_FRAME
from flotta.telemetry.record_groups import NewGroup, StoredGroup
from flotta.telemetry.records import StreamRecord
from tests.billing.test_ledger import open_db

VINS = {1: "5YJ3E1EA7KF000001", 2: "5YJ3E1EA7KF000002"}  # config id -> its car


def body(config_id: int, seq: int, *, resend: bool = False) -> bytes:
    record = TelemetryRecord(seq=seq, created_at_s=1_790_000_000.0, data={"Soc": 50.0 + seq},
                             is_resend=resend)  # fmt: skip
    return wire.encode_data(record, vin=VINS[config_id], prefer_typed=True)


@dataclass
class Session:
    batched_acks: bool


@dataclass
class Hub:
    """The gateway as ingest sees it: sessions by VIN and a way to send them frames."""

    sessions: dict[str, Session]
    frame_listeners: dict[Any, list[Any]] = field(default_factory=lambda: {FrameType.STREAM: []})
    sent: list[tuple[str, protocol.Frame]] = field(default_factory=list)
    blocked: dict[str, asyncio.Event] = field(default_factory=dict)

    async def send_to(self, vin: str, data: bytes) -> bool:
        if vin in self.blocked:
            await self.blocked[vin].wait()  # a car that does not read its link
        self.sent.append((vin, protocol.decode(data, 10**7)))
        return True

    def acked(self, vin: str) -> list[bytes]:
        txids: list[bytes] = []
        for to, frame in self.sent:
            if to == vin and frame.type == FrameType.STREAM_ACK:
                txids.append(frame.body)
            elif to == vin and frame.type == FrameType.STREAM_ACKS:
                txids += protocol.decode_txids(frame.body)
        return txids


class Entitlements:
    async def configs(self, ids: set[int]) -> dict[int, ConfigRef | None]:
        return {i: ConfigRef(i, "app", VINS[i], "", 0, None) if i in VINS else None for i in ids}

    async def consented_all(self, pairs: list[tuple[str, str]]) -> list[AppRecord | None]:
        return [AppRecord(1, "app", True, False, True, True, owner_id=7) for _ in pairs]


class RecordLog:
    """Commits when the test says so (or at once), or fails."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.fail_next = False
        self.lose_firsts_next = False  # answer no cursors once: a broken record log
        self.pending: list[tuple[asyncio.Future[list[int]], list[int]]] = []
        self.stored: list[tuple[str, str]] = []  # (vin, txid) in cursor order
        self.groups: list[tuple[StoredGroup, list[str]]] = []  # with their txids
        self._cursors = itertools.count(1)

    def commit(self, groups: Sequence[NewGroup], created_at: datetime) -> asyncio.Future[list[int]]:
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        if not groups:  # as the real one: nothing to wait for
            done.set_result([])
            return done
        if self.fail_next:
            self.fail_next = False
            done.set_exception(OSError("disk full"))
            return done
        firsts = []
        for group in groups:
            firsts.append(next(self._cursors))
            for _ in group.txids[1:]:
                next(self._cursors)
        self.stored += [(g.vin, t.decode()) for g in groups for t in g.txids]
        for g, first in zip(groups, firsts, strict=True):
            stored = StoredGroup(first, first + len(g) - 1, g.client_id, g.vin, sum(g.signals),
                                 created_at)  # fmt: skip
            self.groups.append((stored, [t.decode() for t in g.txids]))
        if self.lose_firsts_next:
            self.lose_firsts_next, firsts = False, []
        if self.hold:
            self.pending.append((done, firsts))
        else:
            done.set_result(firsts)
        return done

    def release(self) -> None:
        for done, firsts in self.pending:
            done.set_result(firsts)
        self.pending.clear()

    async def find_txids(self, client_id: str, vin: str, txids: Any) -> dict[str, StoredGroup]:
        """As the real log: where this app's records of this car with these txids are stored."""
        return {
            txid: group
            for group, names in self.groups
            if group.client_id == client_id and group.vin == vin
            for txid in txids
            if txid in names
        }


@dataclass
class Meter:
    events: list[Any] = field(default_factory=list)

    def record(self, event: Any) -> None:
        self.events.append(event)


def ingest(
    hub: Hub, log: RecordLog, meter: Meter | None = None, **options: Any
) -> tuple[Ingest, list[StreamRecord]]:
    published: list[StreamRecord] = []
    made = Ingest(cast(Any, hub), cast(Any, log), cast(Any, Entitlements()), SystemClock(),
                  meter=cast(Any, meter), publish=published.extend, **options)  # fmt: skip
    return made, published


async def settled(made: Ingest) -> None:
    await asyncio.wait_for(made.drained(), 5)


def test_stream_acks_bodies_round_trip_and_a_cut_one_is_an_error() -> None:
    txids = [b"1", b"", b"x" * 255, "é".encode()]
    assert protocol.decode_txids(protocol.encode_txids(txids)) == txids
    with pytest.raises(FrameError):
        protocol.decode_txids(protocol.encode_txids([b"abc"])[:-1])


async def test_a_full_queue_acknowledges_nothing_it_dropped() -> None:
    hub = Hub({VINS[1]: Session(batched_acks=True)})
    log = RecordLog()
    made, published = ingest(hub, log, queue_size=3)
    made.start()
    for seq in range(1, 6):  # all on one loop turn: the writer has not run yet
        made.on_stream(VINS[1], 1, body(1, seq))
    await settled(made)
    assert made.counters.backpressure == 2
    assert hub.acked(VINS[1]) == [b"1", b"2", b"3"]
    made.on_stream(VINS[1], 1, body(1, 4, resend=True))  # the car sends what was not acked
    await settled(made)
    assert hub.acked(VINS[1]) == [b"1", b"2", b"3", b"4"]
    assert [r.txid for r in published] == ["1", "2", "3", "4"]
    await made.stop()


async def test_a_batch_that_fails_to_commit_is_not_acknowledged_and_the_next_one_is() -> None:
    hub = Hub({VINS[1]: Session(batched_acks=False)})
    log = RecordLog()
    made, published = ingest(hub, log)
    made.start()
    log.fail_next = True
    made.on_stream(VINS[1], 1, body(1, 1))
    await settled(made)
    assert hub.acked(VINS[1]) == [] and published == []
    made.on_stream(VINS[1], 1, body(1, 1, resend=True))
    made.on_stream(VINS[1], 1, body(1, 2))
    await settled(made)
    # Not remembered while it failed: stored (and acked) when it comes again.
    assert hub.acked(VINS[1]) == [b"1", b"2"]
    assert [f.type for _, f in hub.sent] == [FrameType.STREAM_ACK] * 2
    assert [r.txid for r in published] == ["1", "2"]
    await made.stop()


async def test_an_error_after_a_commit_does_not_stop_the_writer() -> None:
    hub = Hub({VINS[1]: Session(batched_acks=False)})
    log, meter = RecordLog(), Meter()
    made, published = ingest(hub, log, meter)
    made.start()
    log.lose_firsts_next = True  # settling the batch then fails: no cursor for its group
    made.on_stream(VINS[1], 1, body(1, 1))
    await settled(made)
    assert hub.acked(VINS[1]) == [] and published == [] and meter.events == []
    made.on_stream(VINS[1], 1, body(1, 1, resend=True))  # the car sends it again
    made.on_stream(VINS[1], 1, body(1, 2))
    await settled(made)
    assert hub.acked(VINS[1]) == [b"1", b"2"]
    # The resend was found stored: not stored again, and metered under the stored group's key.
    assert log.stored == [(VINS[1], "1"), (VINS[1], "2")]
    assert [r.txid for r in published] == ["2"]  # the streams read record 1 from the log
    assert sorted(e.key for e in meter.events) == [f"signals:{VINS[1]}:{n}-{n}" for n in (1, 2)]
    await made.stop()


async def test_a_copy_arriving_while_its_first_commits_waits_for_that_commit() -> None:
    hub = Hub({VINS[1]: Session(batched_acks=True)})
    log = RecordLog(hold=True)
    made, _ = ingest(hub, log)
    made.start()
    made.on_stream(VINS[1], 1, body(1, 1))
    await asyncio.sleep(0.05)  # the first batch is handed over and held
    made.on_stream(VINS[1], 1, body(1, 1, resend=True))
    made.on_stream(VINS[1], 1, body(1, 2))
    await asyncio.sleep(0.05)
    assert hub.acked(VINS[1]) == []  # nothing before its commit
    log.release()
    await asyncio.sleep(0.05)
    log.release()
    await settled(made)
    # The copy was neither stored again nor acked (its first copy's commit might have failed);
    # the car sends it once more, and then it is known.
    assert log.stored == [(VINS[1], "1"), (VINS[1], "2")]
    assert hub.acked(VINS[1]) == [b"1", b"2"]
    made.on_stream(VINS[1], 1, body(1, 1, resend=True))
    await settled(made)
    assert hub.acked(VINS[1]) == [b"1", b"2", b"1"] and len(log.stored) == 2
    await made.stop()


async def test_acks_are_batched_for_cars_that_asked_and_one_by_one_for_the_others() -> None:
    hub = Hub({VINS[1]: Session(batched_acks=True), VINS[2]: Session(batched_acks=False)})
    made, _ = ingest(hub, RecordLog())
    made.start()
    count = ACKS_PER_FRAME + 5
    for seq in range(count):
        made.on_stream(VINS[1], 1, body(1, seq))
    for seq in range(3):
        made.on_stream(VINS[2], 2, body(2, seq))
    await settled(made)
    to_one = [f for vin, f in hub.sent if vin == VINS[1]]
    assert [f.type for f in to_one] == [FrameType.STREAM_ACKS] * 2
    assert all(f.correlation_id == 1 for f in to_one)
    assert hub.acked(VINS[1]) == [str(seq).encode() for seq in range(count)]
    assert [f.type for vin, f in hub.sent if vin == VINS[2]] == [FrameType.STREAM_ACK] * 3
    await made.stop()


async def test_a_car_that_does_not_read_holds_up_no_other_car() -> None:
    hub = Hub({VINS[1]: Session(batched_acks=True), VINS[2]: Session(batched_acks=True)})
    hub.blocked[VINS[1]] = asyncio.Event()
    made, _ = ingest(hub, RecordLog())
    made.start()
    made.on_stream(VINS[1], 1, body(1, 1))
    made.on_stream(VINS[2], 2, body(2, 1))
    await settled(made)
    made.on_stream(VINS[2], 2, body(2, 2))
    await asyncio.wait_for(made.drained(), ACK_WAIT_S + 2)
    assert hub.acked(VINS[2]) == [b"1", b"2"] and hub.acked(VINS[1]) == []
    hub.blocked.pop(VINS[1]).set()  # it reads again: its ack was kept for it
    await asyncio.sleep(0.05)
    assert hub.acked(VINS[1]) == [b"1"]
    await made.stop()


async def test_telling_a_car_its_config_is_gone_never_holds_up_the_other_cars() -> None:
    """Config 9 does not exist; its car does not read its link, so the notice cannot be
    delivered. The other car's records in the same batch are stored and acked regardless."""
    stray = "5YJ3E1EA7KF000009"
    hub = Hub({VINS[1]: Session(batched_acks=True), stray: Session(batched_acks=True)})
    hub.blocked[stray] = asyncio.Event()
    log = RecordLog()
    made, published = ingest(hub, log)
    made.start()
    made.on_stream(stray, 9, body(1, 1))
    made.on_stream(VINS[1], 1, body(1, 2))
    await settled(made)
    assert hub.acked(VINS[1]) == [b"2"] and log.stored == [(VINS[1], "2")]
    assert [r.txid for r in published] == ["2"]
    hub.blocked[stray].set()  # the stray car reads again: it gets the notice
    await asyncio.sleep(0.05)
    assert [(to, f.type, f.correlation_id) for to, f in hub.sent if to == stray] == [
        (stray, FrameType.TELEMETRY_CONFIG_REMOVED, 9)
    ]
    await made.stop()


async def test_malformed_frames_from_a_car_that_does_not_read_queue_one_error_only() -> None:
    hub = Hub({VINS[1]: Session(batched_acks=True)})
    hub.blocked[VINS[1]] = asyncio.Event()
    made, _ = ingest(hub, RecordLog())
    made.start()
    for _ in range(1_000):
        made.on_stream(VINS[1], 1, b"not a record")
    assert made.counters.malformed == 1_000
    assert len(made._tasks) == 1  # not a thousand sends waiting on one link
    hub.blocked[VINS[1]].set()
    await asyncio.sleep(0.05)
    made.on_stream(VINS[1], 1, b"still not a record")  # answered again once the car reads
    await asyncio.sleep(0.05)
    errors = [f for to, f in hub.sent if f.type == FrameType.ERROR]
    assert len(errors) == 2 and all(b"bad_stream_record" in f.body for f in errors)
    await made.stop()


async def test_entitlements_forget_config_ids_nobody_asked_for_lately(tmp_path: Path) -> None:
    """A car can send any correlation id: the cache of unknown ones must not keep them all."""
    store = await open_db(tmp_path / "entitled.db", accounts=1)
    clock = ManualClock()
    try:
        entitled = RealEntitlements(
            store.sessions, Directory(store.sessions, clock), cast(Any, clock)
        )
        assert set((await entitled.configs(set(range(1, 501)))).values()) == {None}
        assert len(entitled._by_id) == 500
        await entitled.refresh()
        assert len(entitled._by_id) == 500  # all looked up just now: kept
        clock.advance(REFRESH_UNUSED_S + 1)
        assert await entitled.configs({7}) == {7: None}
        await entitled.refresh()
        assert set(entitled._by_id) == {7}
    finally:
        await store.engine.dispose()
