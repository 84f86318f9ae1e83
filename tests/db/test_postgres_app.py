"""The whole API and gateway on PostgreSQL, the database operators run in production."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx

from tests.live import start_live_demo
from tests.portal.test_app_edit import stale_decisions_are_refused
from tests.postgres import create_database, drop_database


def test_demo_runs_on_postgres(tmp_path: Path) -> None:
    url = asyncio.run(create_database())
    try:
        demo = start_live_demo(tmp_path, vehicles=3, db={"url": url})
        try:
            headers = {"Authorization": f"Bearer {demo.token}"}
            with httpx.Client(base_url=demo.base_url, headers=headers, timeout=10) as client:
                listed = client.get("/api/1/vehicles").json()
                assert listed["count"] == 3
                vin = demo.vins[2]
                assert client.post(
                    f"/api/1/vehicles/{vin}/command/set_charge_limit", json={"percent": 66}
                ).json()["response"]["result"]
                charge = client.get(
                    f"/api/1/vehicles/{vin}/vehicle_data", params={"endpoints": "charge_state"}
                ).json()
                assert charge["response"]["charge_state"]["charge_limit_soc"] == 66
                invite = client.post(f"/api/1/vehicles/{vin}/invitations")
                assert invite.status_code == 200
            stale_decisions_are_refused(demo)  # an operator's review locks the app's row
        finally:
            demo.stop()

        async def rows() -> tuple[int, int]:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                vehicles = await conn.fetchval("SELECT count(*) FROM vehicles")
                connects = await conn.fetchval(
                    "SELECT count(*) FROM presence_events WHERE kind = 'connected'"
                )
                return int(vehicles), int(connects)
            finally:
                await conn.close()

        vehicles, connects = asyncio.run(rows())
        assert vehicles == 3
        assert connects >= 3  # every car's connect was recorded durably
    finally:
        asyncio.run(drop_database(url))
