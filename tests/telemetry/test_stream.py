"""The Fleet API telemetry stream as a developer's backend reads it: SSE and WebSocket with the
app's partner token, resuming from a cursor without gaps or duplicates, and records another
process ingested arriving without a reconnect."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
import websockets

from flotta.telemetry import stream as stream_module
from flotta.telemetry.dispatch import Dispatcher
from flotta.telemetry.envelope import decode_envelope
from tests.adapters.sample import data_record
from tests.live import LiveDemo
from tests.telemetry.test_ingest_support import (
    LoggedRecord,
    StreamingCar,
    append_records,
    device_link,
    frame_for,
    partner_token,
    streaming_car,
)

SSE = "/flotta/v1/telemetry/stream"


async def send(live: LiveDemo, car: StreamingCar, seqs: range) -> None:
    async with device_link(live, car) as client:
        for seq in seqs:
            await client.ws.send(frame_for(car, seq, signals=1))
        await client.acks(len(seqs))


async def read_sse(
    live: LiveDemo,
    token: str,
    count: int,
    headers: dict[str, str] | None = None,
    into: list[tuple[int, str]] | None = None,
    **params: str,
) -> list[tuple[int, str]]:
    """The first `count` events as (id, txid), bounded in time (collected `into` as they come)."""
    events: list[tuple[int, str]] = [] if into is None else into
    auth = {"Authorization": f"Bearer {token}", **(headers or {})}
    async with (
        httpx.AsyncClient(base_url=live.base_url, timeout=10) as client,
        client.stream("GET", SSE, headers=auth, params=params) as response,
        asyncio.timeout(10),
    ):
        assert response.status_code == 200
        event_id = 0
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])  # a record, or why the server ended the stream
                events.append((event_id, data.get("txid") or f"closed: {data.get('reason')}"))
                if len(events) == count:
                    break
    return events


def test_sse_replays_the_log_goes_live_and_resumes_from_last_event_id(live: LiveDemo) -> None:
    car = streaming_car(live)
    token = partner_token(live, car.client_id)

    async def scenario() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        await send(live, car, range(1, 4))
        reader = asyncio.create_task(read_sse(live, token, 5))
        await asyncio.sleep(0.5)  # the stream is past the log and live by now
        await send(live, car, range(4, 6))
        first = await reader
        resumed = await read_sse(live, token, 3, {"Last-Event-ID": str(first[1][0])})
        return first, resumed

    first, resumed = asyncio.run(scenario())
    assert [txid for _, txid in first] == ["1", "2", "3", "4", "5"]
    cursors = [cursor for cursor, _ in first]
    assert cursors == sorted(cursors) and len(set(cursors)) == 5
    assert resumed == first[2:]


def test_websocket_carries_envelopes_whose_message_id_is_the_cursor(live: LiveDemo) -> None:
    car = streaming_car(live)
    token = partner_token(live, car.client_id)

    async def scenario() -> list[tuple[int, bytes, str]]:
        await send(live, car, range(1, 4))
        url = live.base_url.replace("http", "ws", 1) + "/flotta/v1/telemetry/ws"
        got = []
        headers = {"Authorization": f"Bearer {token}"}
        async with websockets.connect(f"{url}?format=protobuf", additional_headers=headers) as ws:
            for _ in range(3):
                envelope = decode_envelope(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[arg-type]
                got.append((int(envelope.message_id), envelope.txid, envelope.device_id))
        return got

    got = asyncio.run(scenario())
    assert [txid for _, txid, _ in got] == [b"1", b"2", b"3"]
    assert all(vin == car.vin for _, _, vin in got)
    cursors = [cursor for cursor, _, _ in got]
    assert cursors == sorted(cursors)


def test_only_the_apps_partner_token_may_read_its_stream(live: LiveDemo) -> None:
    with httpx.Client(base_url=live.base_url, timeout=10) as client:
        anonymous = client.get(SSE)
        user = client.get(SSE, headers={"Authorization": f"Bearer {live.token}"})
    assert anonymous.status_code == 401
    assert anonymous.json()["response"] is None
    assert user.status_code == 403
    assert "partner token" in user.json()["error_description"]


def elsewhere(live: LiveDemo, *, announce: bool) -> Dispatcher:
    """Another process's dispatcher on the same database: it ingests, it does not deliver.
    Without `announce` its word on the bus is lost, as on a NATS outage."""
    runtime = live.handle.runtime
    streams = runtime.streams
    assert streams is not None
    bus = runtime.bus if announce else None
    return Dispatcher(
        runtime.sessions, streams.records, streams.entitlements, runtime.clock, bus=bus
    )


async def ingest_through(
    live: LiveDemo, dispatcher: Dispatcher, car: StreamingCar, *seqs: int
) -> None:
    """Commit records for the car in one batch as an ingest does, and hand them on at once
    through `dispatcher` (this process's, or another process's from `elsewhere`)."""
    streams = live.handle.runtime.streams
    assert streams is not None
    samples = [data_record(seq, vin=car.vin, client_id=car.client_id) for seq in seqs]

    async def commit() -> None:
        now = live.handle.runtime.clock.now()
        records = [
            LoggedRecord(s.client_id, s.vin, s.topic, s.txid, s.signals, now, s.payload)
            for s in samples
        ]
        dispatcher.publish(await append_records(streams.records, records))

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(commit(), live.loop))


def test_a_stream_gets_records_another_process_ingested_in_cursor_order(
    live: LiveDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No idle polling here: only the bus and this process's own cursors can tell the stream.
    monkeypatch.setattr(stream_module, "IDLE_POLL_S", 60.0)
    car = streaming_car(live)
    token = partner_token(live, car.client_id)
    announcing, silent = elsewhere(live, announce=True), elsewhere(live, announce=False)

    async def scenario() -> list[tuple[int, str]]:
        await send(live, car, range(1, 3))
        events: list[tuple[int, str]] = []
        reader = asyncio.create_task(read_sse(live, token, 5, into=events))
        await asyncio.sleep(0.5)  # live by now
        await ingest_through(live, announcing, car, 3)  # announced on the bus
        for _ in range(100):  # up to 2 s, by the announcement alone
            if len(events) >= 3:
                break
            await asyncio.sleep(0.02)
        assert [txid for _, txid in events] == ["1", "2", "3"]
        await ingest_through(live, silent, car, 4)  # nobody hears of it, but the cursor of
        await send(live, car, range(5, 6))  # this process's next record jumps past it
        return await reader

    events = asyncio.run(scenario())
    assert [txid for _, txid in events] == ["1", "2", "3", "4", "5"]
    cursors = [cursor for cursor, _ in events]
    assert cursors == sorted(cursors) and len(set(cursors)) == 5


def test_a_live_stream_overrun_by_a_burst_reads_the_rest_from_the_log_and_stays_open(
    live: LiveDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch larger than a live stream's buffer: what did not fit comes from the log, in
    order, once each, on the same connection (a slow consumer falls behind; it is not cut
    off)."""
    monkeypatch.setattr(stream_module, "BUFFER", 4)
    car = streaming_car(live)
    token = partner_token(live, car.client_id)
    streams = live.handle.runtime.streams
    assert streams is not None

    async def scenario() -> list[tuple[int, str]]:
        reader = asyncio.create_task(read_sse(live, token, 30))
        await asyncio.sleep(0.5)  # live by now
        await ingest_through(live, streams.dispatcher, car, *range(1, 21))  # 5 buffers' worth
        await ingest_through(live, streams.dispatcher, car, *range(21, 31))
        return await reader

    events = asyncio.run(scenario())
    assert [txid for _, txid in events] == [str(seq) for seq in range(1, 31)]
    cursors = [cursor for cursor, _ in events]
    assert cursors == sorted(cursors) and len(set(cursors)) == 30


def test_an_idle_stream_finds_records_whose_announcement_was_lost(live: LiveDemo) -> None:
    car = streaming_car(live)
    token = partner_token(live, car.client_id)
    silent = elsewhere(live, announce=False)

    async def scenario() -> tuple[list[tuple[int, str]], float]:
        await send(live, car, range(1, 2))
        reader = asyncio.create_task(read_sse(live, token, 2))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await ingest_through(live, silent, car, 2)
        events = await reader
        return events, time.monotonic() - started

    events, took = asyncio.run(scenario())
    assert [txid for _, txid in events] == ["1", "2"]
    assert took <= stream_module.IDLE_POLL_S + 1.0


def _subscriptions(live: LiveDemo) -> int:
    streams = live.handle.runtime.streams
    assert streams is not None
    return sum(len(subs) for subs in streams.dispatcher._subscribers.values())


def test_cursors_and_ids_that_cannot_be_ones_get_400_and_leave_nothing_behind(
    live: LiveDemo,
) -> None:
    car = streaming_car(live)
    auth = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    before = _subscriptions(live)
    too_big = str(2**63)
    with httpx.Client(base_url=live.base_url, timeout=10, headers=auth) as client:
        answers = [
            client.get(SSE, headers={"Last-Event-ID": b"\xb2"}),  # "²": a digit to str.isdigit()
            client.get(SSE, headers={"Last-Event-ID": too_big}),
            client.get(SSE, params={"cursor": too_big}),
            client.get(f"/flotta/v1/telemetry/sinks/{too_big}/deliveries"),
            client.delete(f"/flotta/v1/telemetry/sinks/{too_big}"),
            client.patch(f"/flotta/v1/telemetry/sinks/{too_big}", json={"enabled": False}),
        ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["response"] is None and answer.json()["error"]
    assert "Last-Event-ID must be a cursor" in answers[0].json()["error_description"]
    assert _subscriptions(live) == before

    async def websocket_refusal() -> int:
        url = live.base_url.replace("http", "ws", 1) + f"/flotta/v1/telemetry/ws?cursor={too_big}"
        async with websockets.connect(url, additional_headers=auth) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code is not None
            return ws.close_code

    try:
        code = asyncio.run(websocket_refusal())
    except websockets.InvalidStatus as refused:  # refused before the upgrade
        code = refused.response.status_code
    assert code == 400, code  # the envelope as the handshake answer, not a 1011 close


def test_a_websocket_format_it_cannot_send_is_refused_as_the_sse_stream_refuses_it(
    live: LiveDemo,
) -> None:
    car = streaming_car(live)
    auth = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    before = _subscriptions(live)
    with httpx.Client(base_url=live.base_url, timeout=10, headers=auth) as client:
        sse = client.get(SSE, params={"format": "xml"})

    async def handshake() -> websockets.InvalidStatus:
        url = live.base_url.replace("http", "ws", 1) + "/flotta/v1/telemetry/ws?format=xml"
        with pytest.raises(websockets.InvalidStatus) as refused:  # not JSON sent instead
            async with websockets.connect(url, additional_headers=auth):
                pass
        return refused.value

    refused = asyncio.run(handshake())
    body = orjson.loads(refused.response.body or b"{}")
    assert refused.response.status_code == sse.status_code == 400
    assert body["response"] is None and body["error"] == "invalid_request"
    assert body["error_description"] == sse.json()["error_description"]
    assert "'json' or 'protobuf'" in body["error_description"]
    assert _subscriptions(live) == before
