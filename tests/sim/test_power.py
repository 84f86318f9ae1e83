"""Sleep and wake as a Fleet API client sees them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from flotta.sim.power import (
    DEMO,
    INSTANT,
    PROFILES,
    REALISTIC,
    PowerManager,
    PowerState,
    WakeProfile,
)

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def manager(profile: WakeProfile = REALISTIC, idle_s: float = 900.0, seed: int = 3) -> PowerManager:
    return PowerManager(profile, rng=random.Random(seed), now=T0, idle_timeout_s=idle_s)


def test_an_idle_car_falls_asleep_after_the_timeout_and_not_before() -> None:
    pm = manager()
    assert pm.tick(T0 + timedelta(minutes=14, seconds=59)) == []
    assert pm.accepts_commands
    assert pm.tick(T0 + timedelta(minutes=15)) == [PowerState.ASLEEP]
    assert pm.state == "asleep"  # a PowerState is also its Fleet API string
    assert not pm.accepts_commands


def test_activity_postpones_sleep() -> None:
    pm = manager()
    pm.touch(T0 + timedelta(minutes=10))
    assert pm.tick(T0 + timedelta(minutes=20)) == []
    assert pm.sleep_at() == T0 + timedelta(minutes=25)


def test_a_busy_car_never_sleeps() -> None:
    pm = manager()
    for minute in range(0, 600, 7):
        pm.tick(T0 + timedelta(minutes=minute), busy=True)
        assert pm.state is PowerState.ONLINE


def test_wake_takes_a_latency_from_the_profile() -> None:
    pm = manager(REALISTIC)
    pm.tick(T0 + timedelta(hours=1))
    asked = T0 + timedelta(hours=1, seconds=5)
    online_at = pm.request_wake(asked)
    assert 10.0 <= (online_at - asked).total_seconds() <= 60.0
    assert pm.state is PowerState.WAKING and not pm.accepts_commands
    assert pm.request_wake(asked + timedelta(seconds=1)) == online_at  # no second draw
    assert pm.tick(online_at - timedelta(seconds=1)) == [PowerState.WAKING]
    assert pm.tick(online_at) == [PowerState.ONLINE]
    assert pm.accepts_commands
    # A freshly woken car gets a full idle period before sleeping again.
    assert pm.tick(online_at + timedelta(minutes=14)) == []


def test_instant_profile_wakes_at_once_and_online_wake_is_a_no_op() -> None:
    pm = manager(INSTANT)
    pm.tick(T0 + timedelta(hours=1))
    now = T0 + timedelta(hours=2)
    assert pm.request_wake(now) == now
    assert pm.accepts_commands
    assert pm.tick(now) == [PowerState.WAKING, PowerState.ONLINE]
    assert pm.request_wake(now) == now


def test_a_sleeping_car_that_starts_charging_wakes_itself() -> None:
    pm = manager()
    pm.tick(T0 + timedelta(hours=1))
    assert pm.tick(T0 + timedelta(hours=2), busy=True) == [PowerState.ONLINE]


def test_profiles_and_validation() -> None:
    assert set(PROFILES) == {"instant", "demo", "realistic"}
    assert (DEMO.min_s, DEMO.max_s) == (1.0, 3.0)
    with pytest.raises(ValueError):
        PowerManager(DEMO, rng=random.Random(), now=T0, idle_timeout_s=0)
