"""Helpers for energy tests: the demo's two homes, their simulators and bounded polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from flotta.sim.energy_device import SimSite
from tests.live import LiveDemo

T = TypeVar("T")


def battery_site(live: LiveDemo) -> int:
    """Casa Bologna: battery and solar."""
    return int(live.info["energy_sites"][0])


def solar_site(live: LiveDemo) -> int:
    """Fremont Solar Garage: solar only, with the Wall Connector the first car charges from."""
    return int(live.info["energy_sites"][1])


def simulator(live: LiveDemo, site_id: int) -> SimSite:
    sites = live.handle.sites
    assert sites is not None
    return sites.site(site_id)


def on_site(live: LiveDemo, site_id: int, action: Callable[[SimSite], None]) -> None:
    """Do something to the simulated home on the demo's event loop (a storm, an outage)."""
    site = simulator(live, site_id)

    async def run() -> None:
        action(site)

    live.call(run())


def client(live: LiveDemo, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {token or live.token}"},
        timeout=15.0,
    )


def until(probe: Callable[[], T | None], timeout_s: float = 10.0, what: str = "") -> T:
    """Poll `probe` every 0.1 s until it returns a value; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or probe}")


def response(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()["response"]
