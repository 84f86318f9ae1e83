"""Helpers for energy tests: the demo's two homes, a fake site link and bounded polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from flotta.gateway import protocol
from flotta.gateway.protocol import FrameType
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


class Link:
    """Both ends of a fake WebSocket: what the site sends and what the gateway sent back."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self.sent: list[protocol.Frame] = []
        self.closed: tuple[int, str] | None = None
        self.got = asyncio.Event()

    async def receive(self) -> bytes | str | None:
        return await self.inbox.get()

    async def send(self, data: bytes) -> None:
        self.sent.append(protocol.decode(data, 1_000_000))
        self.got.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def push(self, kind: FrameType, body: dict[str, Any], correlation_id: int = 0) -> None:
        self.inbox.put_nowait(protocol.encode_json(kind, body, correlation_id))

    async def next_sent(self, kind: FrameType) -> protocol.Frame:
        async with asyncio.timeout(5):
            while True:
                for frame in self.sent:
                    if frame.type == kind:
                        self.sent.remove(frame)
                        return frame
                self.got.clear()
                await self.got.wait()
