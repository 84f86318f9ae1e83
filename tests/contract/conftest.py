"""Fixtures of the contract tests: a sleeping car and an idle online car, both restored after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
