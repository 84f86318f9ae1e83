"""Sink delivery from the record log: ordered batches, retries then dead letters, the delivery
log, resume after a restart, replay of a time range, and several dispatchers (processes)
sharing one database, on SQLite and PostgreSQL. The sink is an in-memory implementation of our
own Sink port; records come from a real device link through ingest."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from flotta.adapters.bus_memory import MemoryBus
from flotta.ports.bus import Bus
from flotta.ports.sinks import SinkError
from flotta.telemetry.delivery import DeliveryPolicy
from flotta.telemetry.dispatch import Dispatcher, Subscription
from flotta.telemetry.models import TelemetryDeliveryRow, TelemetrySinkRow
from flotta.telemetry.records import StreamRecord
from flotta.telemetry.sinks_edit import SinkPatch
from flotta.telemetry.sinks_edit import _apply as apply_edit
from tests.live import LiveDemo
from tests.telemetry.dispatch_support import live as live  # a demo of its own per database
from tests.telemetry.dispatch_support import stream
from tests.telemetry.test_ingest_support import StreamingCar, streaming_car

POLICY = DeliveryPolicy(batch_size=2, max_attempts=3, backoff_base_s=0.01, poll_s=0.05, lease_s=1.0)


class MemorySink:
    """Takes batches, failing the first `fail` attempts (or every batch holding `poison`)."""

    def __init__(self, fail: int = 0, poison: str | None = None) -> None:
        self.fail = fail
        self.poison = poison
        self.batches: list[list[str]] = []
        self.attempts = 0
        self.grew = asyncio.Event()

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        self.attempts += 1
        txids = [r.txid for r in batch]
        if self.fail > 0 or self.poison in txids:
            self.fail -= 1
            raise SinkError("HTTP 500 from the developer's endpoint")
        self.batches.append(txids)
        self.grew.set()

    async def close(self) -> None:
        return None


def add_sink(live: LiveDemo, car: StreamingCar) -> int:
    runtime = live.handle.runtime

    async def make() -> int:
        async with runtime.sessions() as s, s.begin():
            row = TelemetrySinkRow(
                client_id=car.client_id, kind="webhook", format="json",
                settings={"url": "https://hooks.example.com/x"}, created_at=runtime.clock.now(),
            )  # fmt: skip
            s.add(row)
        return row.id

    return live.call(make())


def start(
    live: LiveDemo,
    sink: MemorySink,
    bus: Bus | None = None,
    opened: list[TelemetrySinkRow] | None = None,
) -> Dispatcher:
    """A dispatcher as another process would run one: its own leases' owner name. Each sink
    it opens is recorded in `opened`, with the settings it was opened with."""
    runtime = live.handle.runtime
    streams = runtime.streams
    assert streams is not None

    def opener(row: TelemetrySinkRow) -> MemorySink:
        if opened is not None:
            opened.append(row)
        return sink

    async def go() -> Dispatcher:
        dispatcher = Dispatcher(
            runtime.sessions, streams.records, streams.entitlements, runtime.clock,
            opener=opener, policy=POLICY, bus=bus,
        )  # fmt: skip
        await dispatcher.start()
        return dispatcher

    return live.call(go())


def delivered(sink: MemorySink) -> list[str]:
    return [txid for batch in sink.batches for txid in batch]


def wait_for(live: LiveDemo, sink: MemorySink, records: int) -> None:
    async def poll() -> None:
        async with asyncio.timeout(10):
            while sum(len(b) for b in sink.batches) < records:
                sink.grew.clear()
                await sink.grew.wait()

    live.call(poll())


def log_of(live: LiveDemo, sink_id: int) -> list[tuple[str, int, int, bool]]:
    async def read() -> list[tuple[str, int, int, bool]]:
        async with live.handle.runtime.sessions() as s:
            rows = await s.scalars(
                select(TelemetryDeliveryRow)
                .where(TelemetryDeliveryRow.sink_id == sink_id)
                .order_by(TelemetryDeliveryRow.id)
            )
            return [(r.status, r.attempts, r.records, r.replay) for r in rows]

    return live.call(read())


def test_batches_are_retried_then_delivered_in_order(live: LiveDemo) -> None:
    car = streaming_car(live)
    sink_id = add_sink(live, car)
    stream(live, car, range(1, 4))
    sink = MemorySink(fail=2)
    dispatcher = start(live, sink)
    try:
        wait_for(live, sink, 3)
    finally:
        live.call(dispatcher.stop())
    assert sink.batches == [["1", "2"], ["3"]]
    assert log_of(live, sink_id) == [("delivered", 3, 2, False), ("delivered", 1, 1, False)]


def test_a_failing_batch_is_dead_lettered_and_delivery_moves_on(live: LiveDemo) -> None:
    car = streaming_car(live)
    sink_id = add_sink(live, car)
    stream(live, car, range(1, 5))
    sink = MemorySink(poison="2")
    dispatcher = start(live, sink)
    try:
        wait_for(live, sink, 2)
    finally:
        live.call(dispatcher.stop())
    assert sink.batches == [["3", "4"]]
    assert log_of(live, sink_id) == [("dead", 3, 2, False), ("delivered", 1, 2, False)]


def test_a_restart_resumes_after_the_last_delivered_record(live: LiveDemo) -> None:
    car = streaming_car(live)
    add_sink(live, car)
    stream(live, car, range(1, 3))
    first = MemorySink()
    dispatcher = start(live, first)
    wait_for(live, first, 2)
    live.call(dispatcher.stop())
    stream(live, car, range(3, 6))
    second = MemorySink()
    dispatcher = start(live, second)
    try:
        wait_for(live, second, 3)
    finally:
        live.call(dispatcher.stop())
    assert first.batches == [["1", "2"]]
    assert second.batches == [["3", "4"], ["5"]]


def test_replay_resends_a_time_range_marked_replay(live: LiveDemo) -> None:
    car = streaming_car(live)
    sink_id = add_sink(live, car)
    stream(live, car, range(1, 4))
    sink = MemorySink()
    dispatcher = start(live, sink)
    try:
        wait_for(live, sink, 3)
        now = live.handle.runtime.clock.now()
        assert dispatcher.replay(sink_id, now - timedelta(minutes=5), now)
        wait_for(live, sink, 6)
    finally:
        live.call(dispatcher.stop())
    assert sink.batches == [["1", "2"], ["3"], ["1", "2"], ["3"]]
    replays = [entry for entry in log_of(live, sink_id) if entry[3]]
    assert replays == [("delivered", 1, 2, True), ("delivered", 1, 1, True)]


def test_a_replay_asked_of_any_process_is_queued_where_the_sink_is_delivered(
    live: LiveDemo,
) -> None:
    car = streaming_car(live)
    sink_id = add_sink(live, car)
    stream(live, car, range(1, 3))
    sink, bus = MemorySink(), MemoryBus()
    first, second = start(live, sink, bus), start(live, sink, bus)
    try:
        wait_for(live, sink, 2)
        [asked] = [d for d in (first, second) if sink_id not in d.delivering()[0]]
        now = live.handle.runtime.clock.now()
        window = (now - timedelta(minutes=5), now)
        assert live.call(asked.request_replay(sink_id, *window))  # the holder answered
        wait_for(live, sink, 4)
        # Nobody delivers an unknown sink: refused (the API says try again), not "queued".
        assert not live.call(asked.request_replay(sink_id + 1000, *window))
    finally:
        live.call(first.stop())
        live.call(second.stop())
    assert delivered(sink) == ["1", "2", "1", "2"]


def test_a_replay_without_a_bus_or_a_worker_here_is_refused(live: LiveDemo) -> None:
    car = streaming_car(live)
    sink_id = add_sink(live, car)
    dispatcher = start(live, MemorySink())
    try:
        now = live.handle.runtime.clock.now()
        assert not live.call(dispatcher.request_replay(sink_id + 1000, now, now))
    finally:
        live.call(dispatcher.stop())


def test_a_sink_paused_or_edited_after_a_scan_read_it_is_not_delivered_as_it_was_read(
    live: LiveDemo,
) -> None:
    """A scan reads the enabled sinks, then starts a worker for each one not running here. A
    pause or an edit in between must win over what the scan read."""
    car = streaming_car(live)
    sink_id = add_sink(live, car)
    stream(live, car, range(1, 3))
    runtime = live.handle.runtime

    async def read() -> TelemetrySinkRow:
        async with runtime.sessions() as s:
            row = await s.get(TelemetrySinkRow, sink_id)
            assert row is not None
            return row

    async def scan_goes_on_with(stale: TelemetrySinkRow) -> None:
        dispatcher.add_sink(stale)
        await asyncio.sleep(POLICY.poll_s * 6)  # time enough to deliver; less than a scan's

    stale = live.call(read())  # the scan's read
    live.call(apply_edit(runtime, sink_id, SinkPatch(enabled=False), None))
    sink, opened = MemorySink(), []
    dispatcher = start(live, sink, opened=opened)
    try:
        live.call(scan_goes_on_with(stale))
        assert sink.attempts == 0  # paused: nothing sent
        new_url = {"url": "https://hooks.example.com/new"}
        live.call(apply_edit(runtime, sink_id, SinkPatch(enabled=True, settings=new_url), new_url))
        live.call(scan_goes_on_with(stale))
        wait_for(live, sink, 2)  # by the next scan, with the new settings
    finally:
        live.call(dispatcher.stop())
    assert delivered(sink) == ["1", "2"]
    assert opened[-1].settings == new_url and all(row.settings == new_url for row in opened)


def test_two_dispatchers_deliver_each_record_once(live: LiveDemo) -> None:
    car = streaming_car(live)
    sink_id = add_sink(live, car)
    sink = MemorySink()  # both "processes" reach the same endpoint
    first, second = start(live, sink), start(live, sink)
    try:
        stream(live, car, range(1, 8))
        wait_for(live, sink, 7)
        stream(live, car, range(8, 10))
        wait_for(live, sink, 9)
        live.call(asyncio.sleep(POLICY.poll_s * 5))  # time for a second delivery, if any
        holders = [d for d in (first, second) if sink_id in d.delivering()[0]]
    finally:
        live.call(first.stop())
        live.call(second.stop())
    assert Counter(delivered(sink)) == Counter(str(seq) for seq in range(1, 10))
    assert len(holders) == 1


def test_a_dead_dispatchers_sink_is_taken_over_where_it_stopped(live: LiveDemo) -> None:
    car = streaming_car(live)
    sink_id = add_sink(live, car)
    sink = MemorySink()
    first = start(live, sink)
    stream(live, car, range(1, 4))
    wait_for(live, sink, 3)
    second = start(live, sink)  # stands by: the first holds the lease
    try:
        live.call(first.stop(release=False))  # dies without a word: its lease must expire
        stream(live, car, range(4, 7))
        wait_for(live, sink, 6)
        assert sink_id in second.delivering()[0]
    finally:
        live.call(second.stop())
    assert delivered(sink) == [str(seq) for seq in range(1, 7)]


def test_sink_api_validates_settings_and_shows_the_delivery_log(live: LiveDemo) -> None:
    import httpx

    from tests.telemetry.test_ingest_support import partner_token

    car = streaming_car(live)
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=10) as api:
        bad = api.post(
            "/flotta/v1/telemetry/sinks",
            json={"kind": "nats", "settings": {"url": "http://x", "subject_prefix": "a.*"}},
        )
        kafka = {"bootstrap_servers": "kafka:9092", "sasl_mechanism": "PLAIN", "username": "a"}
        bad_kafka = api.post(
            "/flotta/v1/telemetry/sinks", json={"kind": "kafka", "settings": kafka}
        )
        made = api.post(
            "/flotta/v1/telemetry/sinks",
            json={"kind": "webhook", "settings": {"url": "https://hooks.example.com/t"}},
        )
        sink = made.json()["response"]
        listed = api.get("/flotta/v1/telemetry/sinks").json()["response"]
        dead = api.get(f"/flotta/v1/telemetry/sinks/{sink['id']}/deliveries?status=dead")
        backwards = api.post(
            f"/flotta/v1/telemetry/sinks/{sink['id']}/replay",
            json={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        )
        gone = api.delete(f"/flotta/v1/telemetry/sinks/{sink['id']}")
        after = api.get("/flotta/v1/telemetry/sinks").json()["response"]
    assert bad.status_code == 400
    messages = bad.json()["messages"]
    assert "nats://" in messages["settings.url"][0]
    assert "dot-separated tokens" in messages["settings.subject_prefix"][0]
    assert bad_kafka.status_code == 400, bad_kafka.text
    assert bad_kafka.json()["messages"] == {"settings.password": ["PLAIN needs it"]}
    assert made.status_code == 201 and sink["secret"].startswith("whsec_")
    assert [s["id"] for s in listed] == [sink["id"]] and "secret" not in listed[0]
    assert dead.status_code == 200 and dead.json()["response"] == []
    assert backwards.status_code == 400
    assert gone.status_code == 200 and after == []


def test_a_live_streams_buffer_keeps_order_and_sends_its_reader_to_the_log_when_overrun() -> None:
    now = datetime.now(UTC)
    records = [
        StreamRecord(cursor, "app", "5YJ3E7EA1KF000001", "V", f"t{cursor}", now, 1, b"")
        for cursor in range(1, 6)
    ]
    sub = Subscription("app", capacity=3)
    for record in records:  # what does not fit is read from the log instead
        sub.offer(record)
    assert sub.lagged and sub.closed_reason is None and sub.changed.is_set()
    assert [r.cursor for r in sub.take(2)] == [1, 2]
    assert [r.cursor for r in sub.take(10)] == [3]
    sub.offer(records[3])
    sub.catch_up_again()  # the reader goes back to the log: the buffer is dropped
    assert not sub.lagged and sub.take(10) == []
    sub.end("the client disconnected")
    sub.offer(records[4])  # nobody reads an ended stream: nothing is kept for it
    assert sub.closed_reason == "the client disconnected" and sub.take(10) == []
