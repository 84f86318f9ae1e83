"""A car streaming when its app changes the config keeps delivering: nothing taken for a resend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flotta.telemetry.records import StreamRecord
from tests.live import LiveDemo
from tests.telemetry.streaming_support import (
    api,
    ca_pem,
    config,
    loopback_listener,
    pair_keys,
    wait_for,
)

CREATE = "/api/1/vehicles/fleet_telemetry_config"
# Every field goes out every second of car time, changed or not: a steady stream to count.
EVERY_SECOND = {"interval_seconds": 1, "resend_interval_seconds": 1}
SPEED = 2.0  # car seconds per wall second: two records a second


def test_records_after_a_config_change_reach_the_app_with_none_dropped(
    demo_factory: Callable[..., LiveDemo],
) -> None:
    live = demo_factory(vehicles=1, speed=SPEED)  # its own: ingest's counters are this car's
    vin = live.vins[0]
    pair_keys(live, [vin])
    streams = live.handle.runtime.streams
    assert streams is not None
    client_id = str(live.info["client_id"])

    def stored_after(cursor: int) -> list[StreamRecord]:
        return live.call(streams.records.car_records(client_id, vin, cursor, 1000))

    def configure(fields: dict[str, Any], version: int) -> None:
        body = {"vins": [vin], "config": config(port, ca, fields=fields)}
        with api(live) as client:
            assert client.post(CREATE, json=body).status_code == 200
            shown = f"/api/1/vehicles/{vin}/fleet_telemetry_config"
            wait_for(
                lambda: (
                    client.get(shown).json()["response"].items()
                    >= {"synced": True, "version": version}.items()
                ),
                what=f"version {version} synced",
            )

    with loopback_listener() as port:
        ca = ca_pem()
        configure({"Odometer": EVERY_SECOND}, version=1)
        # 12 records (6 s): had the new version's txids repeated these, the app would hear
        # nothing for as long again, well past the 5 s allowed below.
        before = wait_for(
            lambda: len(found := stored_after(0)) >= 12 and found, what="records of version 1"
        )
        # One more field, as the auditor's app did: the car starts version 2's collector.
        configure({"Odometer": EVERY_SECOND, "BatteryLevel": EVERY_SECOND}, version=2)
        after = wait_for(
            lambda: (
                len(found := [r for r in stored_after(before[-1].cursor) if r.signals == 2]) >= 4
                and found
            ),
            timeout_s=5,
            what="four records of version 2 (2 s of streaming)",
        )
    assert streams.ingest.counters.duplicates == 0  # none acknowledged and dropped
    assert not {r.txid for r in after} & {r.txid for r in before}
