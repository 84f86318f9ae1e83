"""A demo whose own dispatcher is stopped, on SQLite and on PostgreSQL: delivery tests run their
own dispatchers (each one a process, as far as leases go) against its database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.live import LiveDemo, start_live_demo
from tests.postgres import create_database, drop_database
from tests.telemetry.test_ingest_support import StreamingCar, device_link, frame_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveDemo]:
    url = asyncio.run(create_database()) if request.param == "postgresql" else None
    options = {"db": {"url": url}} if url else {}
    try:
        demo = start_live_demo(tmp_path_factory.mktemp("dispatch"), vehicles=1, **options)
        try:
            streams = demo.handle.runtime.streams
            assert streams is not None
            demo.call(streams.dispatcher.stop())
            yield demo
        finally:
            demo.stop()
    finally:
        if url:
            asyncio.run(drop_database(url))


def stream(live: LiveDemo, car: StreamingCar, seqs: range) -> None:
    """The car streams records `seqs` (txid = seq) and waits until ingest acknowledged them."""

    async def run() -> None:
        async with device_link(live, car) as client:
            for seq in seqs:
                await client.ws.send(frame_for(car, seq, signals=2))
            await client.acks(len(seqs))

    asyncio.run(run())
