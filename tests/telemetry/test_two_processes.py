"""Streaming telemetry with two real `flotta serve` processes sharing PostgreSQL and NATS.

The car streams into process B; the app's Fleet API stream is open on process A and its
webhook sink was added through A. Both processes run dispatchers: the stream on A gets B's
records without reconnecting, and the webhook gets each record exactly once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
import websockets

from flotta.clock import SystemClock
from flotta.db.engine import make_engine, make_sessionmaker
from flotta.gateway import protocol
from flotta.gateway.protocol import FrameType
from flotta.runtime import build_token_service
from flotta.settings import Settings
from tests.scaled import clear_flotta_env, scaled_pair
from tests.telemetry.test_ingest_support import (
    DeviceClient,
    StreamingCar,
    add_streaming_car,
    frame_for,
)

RECORDS = 6


async def provision(settings: Settings) -> StreamingCar:
    """A car, a third-party app its owner consented to, and a config, straight in the DB."""
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            runtime: Any = SimpleNamespace(settings=settings, clock=SystemClock())
            return await add_streaming_car(s, runtime)
    finally:
        await engine.dispose()


@contextmanager
def webhook_endpoint() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP endpoint that takes webhook batches; yields its URL and the txids."""
    txids: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            txids.extend(str(record["txid"]) for record in json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", txids
    finally:
        server.shutdown()
        server.server_close()


async def stream_from_car(gateway: str, car: StreamingCar) -> None:
    url = gateway.replace("http", "ws", 1) + "/gateway/v1/connect"
    headers = {"Authorization": f"Bearer {car.credential}"}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(protocol.encode_json(FrameType.HELLO, {"power": "online", "config": {}}))
        client = DeviceClient(ws)
        assert (await client.next_frame()).type == FrameType.WELCOME
        for seq in range(1, RECORDS + 1):
            await ws.send(frame_for(car, seq, signals=1))
        await client.acks(RECORDS)


async def read_stream(base_url: str, token: str, into: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
        client.stream("GET", "/flotta/v1/telemetry/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                into.append(str(orjson.loads(line[6:])["txid"]))
                if len(into) == RECORDS:
                    return


async def scenario(a: str, b: str, car: StreamingCar, token: str, hooked: list[str]) -> list[str]:
    streamed: list[str] = []
    reader = asyncio.create_task(read_stream(a, token, streamed))
    await asyncio.sleep(1.0)  # the stream on A is live
    await stream_from_car(b, car)
    await asyncio.wait_for(reader, 20)
    for _ in range(200):  # up to 20 s
        if len(hooked) >= RECORDS:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(3.0)  # B's dispatcher scans too: time for a duplicate, if any
    return streamed


def test_a_stream_and_a_sink_on_one_process_get_records_ingested_by_another(
    tmp_path: Path,
) -> None:
    with scaled_pair(tmp_path) as pair, webhook_endpoint() as (hook_url, hooked):
        car = pair.loop.call(provision(pair.settings))
        pair.b.wait_ready()
        token = build_token_service(pair.settings, SystemClock()).mint(
            car.client_id, [], client_id=car.client_id, partner=True
        )
        headers = {"Authorization": f"Bearer {token}"}
        made = httpx.post(
            f"{pair.a.url}/flotta/v1/telemetry/sinks",
            json={"kind": "webhook", "settings": {"url": hook_url}},
            headers=headers,
            timeout=10,
        )
        assert made.status_code == 201, made.text
        streamed = pair.loop.call(scenario(pair.a.url, pair.b.url, car, token, hooked), 60)
        sinks = httpx.get(f"{pair.b.url}/flotta/v1/telemetry/sinks", headers=headers, timeout=10)
    expected = [str(seq) for seq in range(1, RECORDS + 1)]
    assert streamed == expected
    assert Counter(hooked) == Counter(expected)
    assert sinks.json()["response"][0]["delivered_through"] > 0  # B sees A's position


@pytest.fixture(autouse=True)
def _no_stray_flotta_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_flotta_env(monkeypatch)
