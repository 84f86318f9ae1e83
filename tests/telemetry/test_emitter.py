"""The car-side emission rules: intervals, minimum_delta, resends, initial send, delivery_policy."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest

from flotta.telemetry.emitter import (
    COLLECT_PERIOD_S,
    FieldRule,
    TelemetryEmitter,
    TelemetryRecord,
    TelemetryValue,
    haversine_m,
)

T0 = 1_767_268_800.0  # 2026-01-01T12:00:00Z, epoch seconds as the simulator passes them


def run(
    emitter: TelemetryEmitter, steps: Sequence[tuple[float, Mapping[str, TelemetryValue]]]
) -> list[TelemetryRecord]:
    """Observe each step's values at its time, run the collector, and keep what it sends."""
    sent = []
    for now, values in steps:
        emitter.observe(now, values)
        record = emitter.collect(now)
        if record is not None:
            sent.append(record)
    return sent


def emissions(records: list[TelemetryRecord], name: str) -> list[tuple[float, TelemetryValue]]:
    """(time, value) of every emission of one field."""
    return [(r.created_at_s, r.data[name]) for r in records if name in r.data]


def test_fast_signal_with_a_10s_interval_emits_at_most_once_per_10s() -> None:
    emitter = TelemetryEmitter({"VehicleSpeed": FieldRule(interval_seconds=10)}, start_s=T0)
    # The speed changes every 100 ms for two minutes of simulated time.
    steps = [(T0 + i / 10, {"VehicleSpeed": 30.0 + i / 10}) for i in range(1200)]
    sent = emissions(run(emitter, steps), "VehicleSpeed")

    times = [t - T0 for t, _ in sent]
    assert times == [0.5 + 10 * k for k in range(12)]
    assert all(later - earlier >= 10 for earlier, later in itertools.pairwise(times))
    # Intermediate values are dropped: each emission carries the value current at that flush.
    assert [v for _, v in sent] == [30.0 + round(t * 10) / 10 for t in times]


def test_all_configured_fields_go_out_at_the_first_flush_after_start() -> None:
    rules = {
        "Soc": FieldRule(interval_seconds=60),
        "Gear": FieldRule(interval_seconds=1),
        "BmsFullchargecomplete": FieldRule(interval_seconds=1800),
    }
    emitter = TelemetryEmitter(rules, start_s=T0)
    emitter.observe(T0, {"Soc": 81.0, "Gear": "ShiftStateP", "BmsFullchargecomplete": False})

    assert emitter.collect(T0) is None  # the collector first runs 500 ms after start
    first = emitter.collect(T0 + COLLECT_PERIOD_S)
    assert first is not None
    assert dict(first.data) == {"Soc": 81.0, "Gear": "ShiftStateP", "BmsFullchargecomplete": False}
    # Nothing changed, so later flushes send nothing.
    assert all(emitter.collect(T0 + 0.5 * k) is None for k in range(2, 400))


def test_a_field_first_seen_late_is_sent_at_the_next_flush_and_others_are_ignored() -> None:
    emitter = TelemetryEmitter({"Odometer": FieldRule(interval_seconds=3600)}, start_s=T0)
    assert emitter.collect(T0 + 0.5) is None
    emitter.observe(T0 + 7.2, {"Odometer": 1234.5, "VehicleName": "not configured"})
    record = emitter.collect(T0 + 7.5)
    assert record is not None and dict(record.data) == {"Odometer": 1234.5}


def test_minimum_delta_suppresses_small_moves_and_lets_a_big_one_through() -> None:
    emitter = TelemetryEmitter(
        {"Soc": FieldRule(interval_seconds=1, minimum_delta=Decimal("1"))}, start_s=T0
    )
    steps = [
        (T0 + 0.5, {"Soc": 80.1}),  # initial send
        (T0 + 5.0, {"Soc": 80.6}),  # +0.5: suppressed
        (T0 + 10.0, {"Soc": 81.0}),  # +0.9 from the last *emitted* value: suppressed
        (T0 + 15.0, {"Soc": 81.1}),  # +1.0 exactly (0.99999... in float arithmetic): sent
        (T0 + 20.0, {"Soc": 80.2}),  # -0.9: suppressed
        (T0 + 25.0, {"Soc": 75.0}),  # big drop: sent
    ]
    assert emissions(run(emitter, steps), "Soc") == [
        (T0 + 0.5, 80.1),
        (T0 + 15.0, 81.1),
        (T0 + 25.0, 75.0),
    ]


def test_location_minimum_delta_is_metres_from_the_last_emitted_position() -> None:
    emitter = TelemetryEmitter(
        {"Location": FieldRule(interval_seconds=1, minimum_delta=Decimal("50"))}, start_s=T0
    )
    start = (52.5200, 13.4050)
    step = 0.0002  # degrees of latitude, about 22 m
    positions = [(start[0] + k * step, start[1]) for k in range(4)]
    assert 20 < haversine_m(positions[0], positions[1]) < 25
    steps = [(T0 + 0.5 + 5 * k, {"Location": p}) for k, p in enumerate(positions)]
    steps.append((T0 + 30.0, {"Location": (52.53, 13.405)}))  # about 1.1 km further north

    sent = [value for _, value in emissions(run(emitter, steps), "Location")]
    # 22 m and 44 m away stay silent; 67 m from the last emitted fix goes out; then the big jump.
    assert sent == [positions[0], positions[3], (52.53, 13.405)]


def test_resend_interval_repeats_an_unchanged_value() -> None:
    rule = FieldRule(interval_seconds=10, resend_interval_seconds=60)
    emitter = TelemetryEmitter({"BmsFullchargecomplete": rule}, start_s=T0)
    steps = [(T0 + k * 0.5, {"BmsFullchargecomplete": False}) for k in range(1, 300)]
    sent = emissions(run(emitter, steps), "BmsFullchargecomplete")
    assert [t - T0 for t, _ in sent] == [0.5, 60.5, 120.5]
    assert {v for _, v in sent} == {False}


def test_without_resend_interval_an_unchanged_value_is_sent_once() -> None:
    emitter = TelemetryEmitter({"Locked": FieldRule(interval_seconds=10)}, start_s=T0)
    steps = [(T0 + k * 0.5, {"Locked": True}) for k in range(1, 300)]
    assert len(emissions(run(emitter, steps), "Locked")) == 1


def test_latest_policy_resends_unacked_records_until_acked() -> None:
    emitter = TelemetryEmitter(
        {"VehicleSpeed": FieldRule(interval_seconds=1)}, start_s=T0, delivery_policy="latest"
    )
    steps = [(T0 + k, {"VehicleSpeed": float(k)}) for k in range(1, 5)]
    sent = run(emitter, steps)
    assert [r.seq for r in sent] == [1, 2, 3, 4]
    assert not any(r.is_resend for r in sent)

    assert emitter.ack(2) and emitter.ack(4)
    resent = emitter.unacked()
    assert [(r.seq, r.data["VehicleSpeed"], r.is_resend) for r in resent] == [
        (1, 1.0, True),
        (3, 3.0, True),
    ]
    assert emitter.unacked_count == 2  # handing them back does not forget them
    assert emitter.ack(1) and emitter.ack(3)
    assert emitter.unacked() == []
    assert not emitter.ack(3)  # a duplicate ack is harmless


def test_without_latest_policy_nothing_is_kept_for_resending() -> None:
    emitter = TelemetryEmitter({"VehicleSpeed": FieldRule(interval_seconds=1)}, start_s=T0)
    run(emitter, [(T0 + k, {"VehicleSpeed": float(k)}) for k in range(1, 5)])
    assert emitter.unacked() == [] and emitter.unacked_count == 0


def test_unacked_records_are_bounded_at_5000_oldest_dropped_and_counted() -> None:
    emitter = TelemetryEmitter(
        {"VehicleSpeed": FieldRule(interval_seconds=0.5)}, start_s=T0, delivery_policy="latest"
    )
    steps = [(T0 + k * 0.5, {"VehicleSpeed": float(k)}) for k in range(1, 5004)]
    sent = run(emitter, steps)
    assert len(sent) == 5003
    assert emitter.unacked_count == 5000
    assert emitter.dropped_unacked == 3
    pending = emitter.unacked()
    assert pending[0].seq == 4 and pending[-1].seq == 5003
    assert not emitter.ack(1)  # dropped, so no longer pending


def test_observations_cannot_go_back_in_time_and_rules_are_checked() -> None:
    emitter = TelemetryEmitter({"Soc": FieldRule(interval_seconds=1)}, start_s=T0)
    emitter.observe(T0 + 5, {"Soc": 1.0})
    with pytest.raises(ValueError, match="back in time"):
        emitter.observe(T0 + 4, {"Soc": 2.0})
    with pytest.raises(ValueError, match="interval_seconds"):
        FieldRule(interval_seconds=0)
    with pytest.raises(ValueError, match="minimum_delta"):
        FieldRule(interval_seconds=1, minimum_delta=Decimal("-1"))
    with pytest.raises(ValueError, match="resend_interval_seconds"):
        FieldRule(interval_seconds=1, resend_interval_seconds=0)


def test_a_switch_to_invalid_or_a_new_type_counts_as_a_change_despite_minimum_delta() -> None:
    emitter = TelemetryEmitter(
        {"ChargeAmps": FieldRule(interval_seconds=1, minimum_delta=Decimal("5"))}, start_s=T0
    )
    steps: list[tuple[float, dict[str, TelemetryValue]]] = [
        (T0 + 1, {"ChargeAmps": 16}),
        (T0 + 3, {"ChargeAmps": None}),
        (T0 + 5, {"ChargeAmps": 16}),
        (T0 + 7, {"ChargeAmps": 16.0}),
    ]
    assert [v for _, v in emissions(run(emitter, steps), "ChargeAmps")] == [16, None, 16]
