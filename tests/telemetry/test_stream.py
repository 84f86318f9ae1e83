"""The Fleet API telemetry stream as a developer's backend reads it: SSE and WebSocket with the
app's partner token, resuming from a cursor without gaps or duplicates."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import websockets

from flotta.telemetry.envelope import decode_envelope
from tests.live import LiveDemo
from tests.telemetry.test_ingest_support import (
    StreamingCar,
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
    live: LiveDemo, token: str, count: int, headers: dict[str, str] | None = None, **params: str
) -> list[tuple[int, str]]:
    """The first `count` events as (id, txid), bounded in time."""
    events: list[tuple[int, str]] = []
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
                events.append((event_id, orjson.loads(line[6:])["txid"]))
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
