"""The moving window, against a model: over any timing, a budget admits exactly `limit`
requests in any window, and Retry-After is the wait until the next one is admitted."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from flotta.ratelimit.limiter import RateLimiter
from flotta.settings import RateLimitSettings

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMIT, WINDOW_S = 3, 60

# Gaps between requests in milliseconds: bursts, window-edge cases and long pauses.
gaps = st.lists(
    st.one_of(
        st.integers(0, 2_000), st.sampled_from([59_999, 60_000, 60_001]), st.integers(0, 90_000)
    ),
    min_size=1,
    max_size=40,
)


def admitted_by_model(accepted: list[float], now: float) -> bool:
    """A request is admitted when fewer than LIMIT admitted ones are younger than the window."""
    return sum(1 for t in accepted if t >= now - WINDOW_S) < LIMIT


async def replay(gaps_ms: list[int], traveller: time_machine.Coordinates) -> None:
    limiter = await RateLimiter.open(RateLimitSettings(data=f"{LIMIT}/minute"), "", "")
    accepted: list[float] = []
    now = START.timestamp()
    for gap in gaps_ms:
        traveller.shift(gap / 1000)
        now += gap / 1000
        refusal = await limiter.hit("data", "app", "vehicle:VIN")
        expected = admitted_by_model(accepted, now)
        assert (refusal is None) == expected
        if refusal is None:
            accepted.append(now)
            continue
        oldest_in_window = sorted(t for t in accepted if t >= now - WINDOW_S)[-LIMIT]
        assert refusal.limit == LIMIT and refusal.remaining == 0
        assert refusal.reset_s == max(1, math.ceil(oldest_in_window + WINDOW_S - now))
        # Waiting Retry-After (and a hair) is always enough.
        assert admitted_by_model(accepted, now + refusal.reset_s + 0.001)
    await limiter.close()


@settings(max_examples=150, deadline=None)
@given(gaps)
def test_moving_window_matches_the_model(gaps_ms: list[int]) -> None:
    with time_machine.travel(START, tick=False) as traveller:
        asyncio.run(replay(gaps_ms, traveller))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["vehicle:A", "vehicle:B", "site:1:7"]), min_size=1, max_size=30))
def test_devices_never_share_a_budget(devices: list[str]) -> None:
    async def run() -> None:
        limiter = await RateLimiter.open(RateLimitSettings(commands=f"{LIMIT}/minute"), "", "")
        for index, device in enumerate(devices):
            refusal = await limiter.hit("commands", "app", device)
            assert (refusal is None) == (devices[: index + 1].count(device) <= LIMIT)
        await limiter.close()

    with time_machine.travel(START, tick=False):
        asyncio.run(run())
