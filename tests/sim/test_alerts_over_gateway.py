"""Alerts a simulated car raises reach `recent_alerts`, newest first, in Tesla's shape."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from tests.live import LiveDemo


@pytest.fixture
def fast(demo_factory: Callable[..., LiveDemo]) -> LiveDemo:
    return demo_factory(speed=1000.0)


def wait_for_alert(client: httpx.Client, vin: str, name: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 20
    while True:
        alerts = client.get(f"/api/1/vehicles/{vin}/recent_alerts").json()["response"]
        found = alerts["recent_alerts"]
        if any(a["name"] == name for a in found):
            return list(found)
        assert time.monotonic() < deadline, f"no {name} alert on {vin}: {found}"
        time.sleep(0.1)


def test_charge_completion_and_sentry_events_are_reported(fast: LiveDemo) -> None:
    headers = {"Authorization": f"Bearer {fast.token}"}
    with httpx.Client(base_url=fast.base_url, headers=headers, timeout=10) as client:
        charging, parked = fast.vins[0], fast.vins[2]
        assert client.get(f"/api/1/vehicles/{parked}/recent_alerts").json() == {
            "response": {"recent_alerts": []}
        }
        # The home charger starts at 30 %: a 50 % limit completes in simulated hours.
        client.post(f"/api/1/vehicles/{charging}/command/set_charge_limit", json={"percent": 50})
        done = wait_for_alert(client, charging, "ChargingComplete")[0]
        assert done["user_text"] == "Charging complete"
        assert done["audience"] == ["customer"]
        assert str(done["time"]).endswith("Z")
        # At this speed the idle car has dozed off: wake it (instant profile), then arm Sentry.
        assert client.post(f"/api/1/vehicles/{parked}/wake_up").json()["response"]["state"] == (
            "online"
        )
        armed = client.post(f"/api/1/vehicles/{parked}/command/set_sentry_mode", json={"on": True})
        assert armed.json()["response"]["result"] is True
        events = wait_for_alert(client, parked, "SentryModeEvent")
        assert all(e["name"] == "SentryModeEvent" for e in events)
        assert len(events) <= 20
