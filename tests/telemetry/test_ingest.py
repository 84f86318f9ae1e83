"""Gateway ingest as a car sees it: records stored, acknowledged only once durable, billed
exactly once, resends absorbed, unconsented or unknown configs refused, bad frames answered."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from flotta.billing.models import UsageEventRow
from flotta.gateway import protocol
from flotta.gateway.protocol import FrameType
from flotta.oauth.models import ConsentGrant
from flotta.telemetry.recordlog import GROUPS_PER_READ
from tests.live import LiveDemo, start_live_demo
from tests.telemetry.test_ingest_support import (
    DeviceClient,
    LoggedRecord,
    StreamingCar,
    append_records,
    device_link,
    frame_for,
    streaming_car,
)


def stored(live: LiveDemo, car: StreamingCar) -> list[tuple[str, int]]:
    """(txid, signals) of the records stored for the car's app, in cursor order."""
    streams = live.handle.runtime.streams
    assert streams is not None
    records = live.call(streams.records.after(car.client_id, 0, 100_000))
    return [(r.txid, r.signals) for r in records]


def billed(live: LiveDemo, car: StreamingCar) -> dict[str, Any]:
    """The ledger's streaming events for the app, once everything recorded is committed."""
    runtime = live.handle.runtime

    async def read() -> dict[str, Any]:
        assert runtime.meter is not None
        await runtime.meter.ledger.flushed()
        async with runtime.sessions() as s:
            rows = await s.execute(
                select(UsageEventRow.key, UsageEventRow.quantity, UsageEventRow.account_id).where(
                    UsageEventRow.client_id == car.client_id
                )
            )
            return {key: (quantity, account) for key, quantity, account in rows}

    return live.call(read())


def assert_billed_per_group(live: LiveDemo, car: StreamingCar) -> None:
    """One usage event per stored group, keyed by its VIN and cursor range, for exactly the
    signals of the records in that range, billed to the app's developer; every stored record
    in exactly one of them."""
    streams = live.handle.runtime.streams
    assert streams is not None
    records = live.call(streams.records.after(car.client_id, 0, 100_000))
    signals = {r.cursor: r.signals for r in records if r.signals}
    covered: list[int] = []
    for key, (quantity, account) in billed(live, car).items():
        prefix, vin, cursors = key.split(":")
        first, last = (int(c) for c in cursors.split("-"))
        assert (prefix, vin, account) == ("signals", car.vin, car.developer_id)
        in_range = [c for c in signals if first <= c <= last]
        assert quantity == sum(signals[c] for c in in_range) > 0
        covered += in_range
    assert sorted(covered) == sorted(signals)


async def frame_of_type(
    client: DeviceClient, kind: FrameType, correlation_id: int | None = None
) -> protocol.Frame:
    """The next frame of this kind (for this config), skipping the config sync's frames."""
    async with asyncio.timeout(10):
        while True:
            frame = await client.next_frame()
            if frame.type == kind and correlation_id in (None, frame.correlation_id):
                return frame


def test_records_are_stored_acked_after_commit_and_billed_exactly(live: LiveDemo) -> None:
    car = streaming_car(live)
    seen_at_ack: list[list[tuple[str, int]]] = []

    async def stream() -> None:
        async with device_link(live, car) as client:
            for seq in range(1, 6):
                await client.ws.send(frame_for(car, seq, signals=seq % 5 + 1))
            for _ in range(5):
                txid = (await client.acks(1))[0].decode()
                # Read as soon as the ack arrives: the record must already be committed.
                rows = await asyncio.to_thread(stored, live, car)
                seen_at_ack.append([r for r in rows if r[0] == txid])

    asyncio.run(stream())
    assert all(len(rows) == 1 for rows in seen_at_ack)
    signals = {str(seq): seq % 5 + 1 for seq in range(1, 6)}
    assert stored(live, car) == list(signals.items())
    assert_billed_per_group(live, car)
    assert sum(q for q, _ in billed(live, car).values()) == sum(signals.values())
    streams = live.handle.runtime.streams
    assert streams is not None
    assert streams.ingest.counters.signals_by_app[car.client_id] == sum(signals.values())


def test_resends_are_acknowledged_but_neither_stored_nor_billed_twice(live: LiveDemo) -> None:
    car = streaming_car(live)

    async def stream() -> list[bytes]:
        async with device_link(live, car) as client:
            await client.ws.send(frame_for(car, 7, signals=4))
            first = await client.acks(1)
            await client.ws.send(frame_for(car, 7, signals=4, is_resend=True))
            await client.ws.send(frame_for(car, 7, signals=4))
            await client.ws.send(frame_for(car, 8, signals=2))
            return first + await client.acks(3)

    assert asyncio.run(stream()) == [b"7", b"7", b"7", b"8"]
    assert stored(live, car) == [("7", 4), ("8", 2)]
    ledger = billed(live, car)
    assert sorted(q for q, _ in ledger.values()) == [2, 4]


def test_a_car_streaming_for_an_app_without_consent_is_told_and_nothing_is_kept(
    live: LiveDemo,
) -> None:
    car = streaming_car(live)
    runtime = live.handle.runtime

    async def revoke() -> None:
        async with runtime.sessions() as s, s.begin():
            await s.execute(
                update(ConsentGrant)
                .where(ConsentGrant.id == car.grant_id)
                .values(revoked_at=runtime.clock.now())
            )
        runtime.directory.forget()

    live.call(revoke())

    async def stream() -> protocol.Frame:
        async with device_link(live, car) as client:
            await client.ws.send(frame_for(car, 1, signals=3))
            return await frame_of_type(client, FrameType.TELEMETRY_CONFIG_REMOVED, car.config_id)

    removed = asyncio.run(stream())
    assert removed.correlation_id == car.config_id
    assert stored(live, car) == []
    assert billed(live, car) == {}


def test_a_config_of_another_car_is_refused(live: LiveDemo) -> None:
    car, other = streaming_car(live), streaming_car(live)

    async def stream() -> protocol.Frame:
        async with device_link(live, car) as client:
            foreign = frame_for(car, 1, signals=1)
            await client.ws.send(protocol.encode(FrameType.STREAM, foreign[5:], other.config_id))
            return await frame_of_type(client, FrameType.TELEMETRY_CONFIG_REMOVED, other.config_id)

    assert asyncio.run(stream()).correlation_id == other.config_id
    assert stored(live, car) == [] and stored(live, other) == []


def test_malformed_stream_frames_get_an_error_and_the_link_stays_up(live: LiveDemo) -> None:
    car = streaming_car(live)

    async def stream() -> tuple[bytes, bytes, list[bytes]]:
        async with device_link(live, car) as client:
            await client.ws.send(protocol.encode(FrameType.STREAM, b"\x00garbage", car.config_id))
            garbage = (await frame_of_type(client, FrameType.ERROR)).body
            good = frame_for(car, 3, signals=2)
            await client.ws.send(protocol.encode(FrameType.STREAM, good[5:], 0))
            no_config = (await frame_of_type(client, FrameType.ERROR)).body
            await client.ws.send(good)
            return garbage, no_config, await client.acks(1)

    garbage, no_config, acks = asyncio.run(stream())
    assert b"bad_stream_record" in garbage
    assert b"correlation id" in no_config
    assert acks == [b"3"]
    assert stored(live, car) == [("3", 2)]


def test_the_record_log_counts_signals_per_app(live: LiveDemo) -> None:
    car = streaming_car(live)

    async def stream() -> None:
        async with device_link(live, car) as client:
            for seq in range(1, 4):
                await client.ws.send(frame_for(car, seq, signals=5))
            await client.acks(3)

    asyncio.run(stream())
    streams = live.handle.runtime.streams
    assert streams is not None
    totals = live.call(streams.records.signal_totals())
    assert totals[car.client_id] == 15

    assert len(stored(live, car)) == 3


def test_a_large_group_gets_the_cursors_of_its_own_rows_in_order(live: LiveDemo) -> None:
    streams = live.handle.runtime.streams
    assert streams is not None
    now = live.handle.runtime.clock.now()
    client_id = "cursor-check-app"
    count = 3 * GROUPS_PER_READ + 7  # one group per record: more than one page of groups
    at = [now + timedelta(microseconds=i) for i in range(count)]  # a time each: a group each
    group = [
        LoggedRecord(client_id, "5YJ3E1EA7KF000009", "V", f"tx{i}", i % 9, at[i], b"p%d" % i)
        for i in range(count)
    ]

    async def write_and_read() -> tuple[list[Any], list[Any]]:
        first = await append_records(streams.records, group[:3])
        rest = await append_records(streams.records, group[3:])
        return first + rest, await streams.records.after(client_id, 0, count + 10)

    appended, read_back = live.call(write_and_read())
    cursors = [r.cursor for r in appended]
    assert cursors == sorted(set(cursors))
    assert [(r.cursor, r.txid, r.signals, r.payload) for r in appended] == [
        (r.cursor, r.txid, r.signals, r.payload) for r in read_back
    ]
    assert [r.txid for r in read_back] == [f"tx{i}" for i in range(count)]


def test_consent_revoked_elsewhere_is_seen_by_the_next_refresh_round(live: LiveDemo) -> None:
    car = streaming_car(live)
    runtime = live.handle.runtime
    streams = runtime.streams
    assert streams is not None
    entitlements = streams.entitlements
    pair = (car.client_id, car.vin)

    async def check() -> tuple[bool, bool]:
        before = pair in await entitlements.streaming_pairs({pair})
        await entitlements.refresh()
        # Revoked by another process: nobody here calls forget(), the directory still caches.
        async with runtime.sessions() as s, s.begin():
            await s.execute(
                update(ConsentGrant)
                .where(ConsentGrant.id == car.grant_id)
                .values(revoked_at=runtime.clock.now())
            )
        await entitlements.refresh()
        return before, pair in await entitlements.streaming_pairs({pair})

    assert live.call(check()) == (True, False)


def test_a_car_that_asks_for_batched_acks_gets_every_txid_in_stream_acks_frames(
    live: LiveDemo,
) -> None:
    car = streaming_car(live)

    async def stream() -> list[protocol.Frame]:
        async with device_link(live, car, batched_acks=True) as client:
            for seq in range(1, 41):
                await client.ws.send(frame_for(car, seq, signals=2))
            frames: list[protocol.Frame] = []
            async with asyncio.timeout(15):
                while sum(len(protocol.decode_txids(f.body)) for f in frames) < 40:
                    frame = await client.next_frame()
                    assert frame.type != FrameType.STREAM_ACK
                    if frame.type == FrameType.STREAM_ACKS:
                        frames.append(frame)
            return frames

    frames = asyncio.run(stream())
    assert all(f.correlation_id == car.config_id for f in frames)
    acked = [txid for f in frames for txid in protocol.decode_txids(f.body)]
    assert sorted(acked, key=int) == [str(seq).encode() for seq in range(1, 41)]
    assert [txid for txid, _ in stored(live, car)] == [str(seq) for seq in range(1, 41)]


def test_a_resend_after_a_restart_is_acked_but_neither_stored_nor_billed_again(
    tmp_path: Path,
) -> None:
    first = start_live_demo(tmp_path / "demo")
    try:
        car = streaming_car(first)

        async def before() -> list[bytes]:
            async with device_link(first, car) as client:
                for seq in (1, 2):
                    await client.ws.send(frame_for(car, seq, signals=3))
                return await client.acks(2)

        assert asyncio.run(before()) == [b"1", b"2"]
    finally:
        first.stop()
    again = start_live_demo(tmp_path / "demo")  # a new process' memory, the same database
    try:

        async def after() -> list[bytes]:
            async with device_link(again, car) as client:
                # The ack of 2 was lost in the restart: the car sends it again, marked.
                await client.ws.send(frame_for(car, 2, signals=3, is_resend=True))
                await client.ws.send(frame_for(car, 3, signals=1))
                return await client.acks(2)

        assert asyncio.run(after()) == [b"2", b"3"]
        assert stored(again, car) == [("1", 3), ("2", 3), ("3", 1)]
        assert_billed_per_group(again, car)
        assert sum(q for q, _ in billed(again, car).values()) == 7
    finally:
        again.stop()
