"""A real `flotta demo` on loopback, in a background thread, for tests and real clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from flotta.demo import DemoHandle, serve_demo
from flotta.settings import Settings

T = TypeVar("T")


@dataclass
class LiveDemo:
    """Handle on a running demo: its URLs, token, VINs and a way into its event loop."""

    data_dir: Path
    handle: DemoHandle
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    _stop: asyncio.Event = field(repr=False)

    @property
    def info(self) -> dict[str, Any]:
        return self.handle.info

    @property
    def base_url(self) -> str:
        return str(self.info["base_url"])

    @property
    def token(self) -> str:
        return str(self.info["access_token"])

    @property
    def vins(self) -> list[str]:
        return list(self.info["vehicles"])

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the demo's event loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def put_to_sleep(self, vin: str) -> None:
        """Switch off what keeps a car awake (climate, Sentry), then let it fall asleep.

        Tests share one demo, and a car another test left conditioning wakes itself at once.
        """
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=15) as client:
            for name, body in (
                ("set_climate_keeper_mode", {"climate_keeper_mode": 0}),
                ("auto_conditioning_stop", {}),
                ("set_sentry_mode", {"on": False}),
            ):
                client.post(f"/api/1/vehicles/{vin}/command/{name}", json=body)
        self.call(self.device(vin).sleep_now())

    def device(self, vin: str) -> Any:
        return self.handle.fleet.device(vin)

    def mint(self, scopes: list[str], **kwargs: Any) -> str:
        subject = self._owner_subject()
        return self.handle.runtime.tokens.mint(subject, scopes, **kwargs)

    def _owner_subject(self) -> str:
        claims_token = self.token.split(".")[1]
        import base64
        import json

        padded = claims_token + "=" * (-len(claims_token) % 4)
        return str(json.loads(base64.urlsafe_b64decode(padded))["sub"])

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=20)


def start_live_demo(
    data_dir: Path,
    *,
    vehicles: int = 4,
    wake_profile: str = "instant",
    speed: float = 1.0,
    **overrides: Any,
) -> LiveDemo:
    """Start the demo on port 0 and wait until it is ready (bounded by 30 s).

    Rate limits are off unless `ratelimit=` asks for them: the shared demo serves hundreds of
    tests that send far more than 30 commands a minute to the same cars.
    """
    overrides.setdefault("ratelimit", {"enabled": False})
    settings = Settings(
        demo=True,
        data_dir=data_dir,
        port=0,
        sim={"vehicles": vehicles, "wake_profile": wake_profile},
        **overrides,
    )
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        box["loop"] = loop

        async def main() -> None:
            stop = asyncio.Event()
            box["stop"] = stop
            handles: list[DemoHandle] = []
            started = asyncio.Event()
            task = asyncio.create_task(
                serve_demo(settings, speed=speed, ready=started, handle_out=handles)
            )
            waiter = asyncio.create_task(started.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                box["error"] = task.exception()
                ready.set()
                return
            box["handle"] = handles[0]
            ready.set()
            await stop.wait()
            handles[0].request_stop()
            await asyncio.wait_for(task, 20)

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="flotta-live-demo", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("flotta demo did not become ready within 30 s")
    if "error" in box:
        raise RuntimeError(f"flotta demo failed to start: {box['error']!r}")
    return LiveDemo(data_dir, box["handle"], box["loop"], thread, box["stop"])
