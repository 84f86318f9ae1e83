"""Fixtures of the contract tests: the clients pointed at the live demo, a sleeping car and an
idle online car (both restored after)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import teslapy  # type: ignore[import-untyped]
from teslajsonpy import Controller  # type: ignore[import-untyped]

from tests.contract.support import (
    IDLE_VIN_INDEX,
    SLEEPER_INDEX,
    ensure_online,
    put_to_sleep,
    wake_for_cleanup,
)
from tests.live import LiveDemo


@pytest.fixture
def sleeping_vin(live: LiveDemo) -> Iterator[str]:
    """A car that is asleep when the test starts and online again afterwards."""
    vin = live.vins[SLEEPER_INDEX]
    put_to_sleep(live, vin)
    try:
        yield vin
    finally:
        wake_for_cleanup(live, vin)


@pytest.fixture
def vin(live: LiveDemo) -> str:
    """An idle (not charging, not driving) car that is online."""
    return ensure_online(live, live.vins[IDLE_VIN_INDEX])


EMAIL = "owner@flotta.demo"


@pytest.fixture
def tesla(live: LiveDemo, monkeypatch: pytest.MonkeyPatch) -> Iterator[teslapy.Tesla]:
    base = live.base_url + "/"
    monkeypatch.setattr(teslapy, "BASE_URL", base)
    token = {
        "access_token": live.token,
        "token_type": "Bearer",
        "refresh_token": "not-used-the-token-is-valid",
        "expires_in": 3600,
        "expires_at": time.time() + 3600,
    }
    cache: dict[str, Any] = {EMAIL: {"url": base, "sso": token}}
    client = teslapy.Tesla(
        EMAIL,
        sso_base_url=base,
        cache_loader=lambda: cache,
        cache_dumper=lambda c: None,
        timeout=15,
    )
    try:
        assert client.authorized
        yield client
    finally:
        client.close()


@pytest.fixture
async def controller(live: LiveDemo) -> AsyncIterator[Controller]:
    websession = httpx.AsyncClient(timeout=15)
    made = Controller(
        websession=websession,
        access_token=live.token,
        refresh_token="not-used-the-token-is-valid",
        expiration=int(time.time()) + 3600,
        api_proxy_url=live.base_url,
        auth_domain=live.base_url,
    )
    try:
        yield made
    finally:
        await made.disconnect()
        await websession.aclose()
