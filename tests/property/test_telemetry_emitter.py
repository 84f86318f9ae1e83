"""Hypothesis: whatever a signal does, emissions respect the interval and the minimum_delta."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from flotta.telemetry.emitter import (
    COLLECT_PERIOD_S,
    FieldRule,
    TelemetryEmitter,
    TelemetryValue,
    changed_enough,
)

T0 = 1_767_268_800.0
FIELD = "Soc"

rules = st.builds(
    FieldRule,
    interval_seconds=st.sampled_from([0.5, 1.0, 2.5, 10.0, 30.0]),
    minimum_delta=st.none() | st.sampled_from([Decimal("0"), Decimal("0.5"), Decimal("3")]),
    resend_interval_seconds=st.none() | st.sampled_from([5.0, 60.0]),
)
# Steps in tenths of a second (so simulated time stays exact), each with an optional new value.
steps = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=40),
        st.none() | st.integers(min_value=0, max_value=100).map(lambda tenths: tenths / 10),
    ),
    max_size=120,
)


def _distance(a: TelemetryValue, b: TelemetryValue) -> Decimal:
    assert isinstance(a, float) and isinstance(b, float)
    return abs(Decimal(repr(a)) - Decimal(repr(b)))


@settings(max_examples=300, deadline=None)
@given(rule=rules, ops=steps, first=st.integers(0, 100), ack_every=st.integers(0, 7))
def test_emissions_respect_interval_and_end_within_minimum_delta(
    rule: FieldRule, ops: list[tuple[int, float | None]], first: int, ack_every: int
) -> None:
    emitter = TelemetryEmitter({FIELD: rule}, start_s=T0, delivery_policy="latest")
    latest: TelemetryValue = first / 1.0
    emitter.observe(T0, {FIELD: latest})
    sent: list[tuple[float, TelemetryValue]] = []
    tenths = 0

    def flush(now: float) -> None:
        record = emitter.collect(now)
        if record is not None:
            assert not record.is_resend
            assert record.data[FIELD] == latest  # always the newest value, never a stale one
            sent.append((now, record.data[FIELD]))
            if ack_every and record.seq % ack_every == 0:
                assert emitter.ack(record.seq)

    for gap, value in ops:
        tenths += gap
        now = T0 + tenths / 10
        if value is not None:
            latest = value
            emitter.observe(now, {FIELD: value})
        flush(now)
        if gap % 7 == 0:  # now and then the link reconnects and asks for unacked records
            assert all(r.is_resend for r in emitter.unacked())

    # With no new change for longer than the interval, the last emission is within the delta.
    now = T0 + tenths / 10
    settle_until = now + rule.interval_seconds + 2 * COLLECT_PERIOD_S
    while now < settle_until:
        now += COLLECT_PERIOD_S
        flush(now)
    assert sent, "the first flush after start always sends the field"
    times = [t for t, _ in sent]
    assert all(b - a >= rule.interval_seconds - 1e-6 for a, b in itertools.pairwise(times))
    last = sent[-1][1]
    if rule.minimum_delta is None:
        assert last == latest
    else:
        assert not changed_enough(last, latest, rule.minimum_delta)
        assert _distance(last, latest) < max(rule.minimum_delta, Decimal("1e-9"))
