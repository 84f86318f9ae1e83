"""Hypothesis: no sequence of ticks, wakes and activity breaks the sleep/wake machine."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from flotta.sim.power import PROFILES, PowerManager, PowerState

T0 = datetime(2026, 7, 1, tzinfo=UTC)

steps = st.lists(
    st.tuples(
        st.sampled_from(["tick", "busy_tick", "wake", "touch"]),
        st.floats(min_value=0.0, max_value=3600.0, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    ops=steps,
    profile=st.sampled_from(sorted(PROFILES)),
    idle_s=st.floats(min_value=1.0, max_value=3600.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_sequences_keep_the_machine_valid(
    ops: list[tuple[str, float]], profile: str, idle_s: float, seed: int
) -> None:
    wake = PROFILES[profile]
    pm = PowerManager(wake, rng=random.Random(seed), now=T0, idle_timeout_s=idle_s)
    now = T0
    for op, gap in ops:
        now += timedelta(seconds=gap)
        if op == "wake":
            was_online = pm.state is PowerState.ONLINE
            was_waking_until = pm.wake_at if pm.state is PowerState.WAKING else None
            online_at = pm.request_wake(now)
            latency = (online_at - now).total_seconds()
            if was_online:
                assert online_at == now
            elif was_waking_until is not None:
                assert online_at == was_waking_until
            else:
                assert wake.min_s <= latency <= wake.max_s
        elif op == "touch":
            pm.touch(now)
        else:
            busy = op == "busy_tick"
            entered = pm.tick(now, busy=busy)
            assert all(isinstance(s, PowerState) for s in entered)
            if busy:
                assert pm.state is not PowerState.ASLEEP
        assert pm.state in set(PowerState)
        assert pm.accepts_commands == (pm.state is PowerState.ONLINE)
        assert (pm.wake_at is not None) == (pm.state is PowerState.WAKING)
        if pm.state is PowerState.ASLEEP:
            assert not pm.accepts_commands
