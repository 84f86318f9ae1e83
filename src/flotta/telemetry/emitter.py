"""Vehicle-side emission rules for Fleet Telemetry fields (fleet-api.md §9.1, §9.2).

Pure and clock-free: the caller passes simulated time as float seconds. Pass epoch seconds
(`clock.now().timestamp()`) so a record's `created_at_s` is also its wire timestamp.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal, TypeAlias, TypeGuard

Location: TypeAlias = tuple[float, float]
"""(latitude, longitude) in degrees."""

TelemetryValue: TypeAlias = float | int | bool | str | Location | None
"""A plain field value; enums are their proto value names, None means invalid/unavailable."""

DeliveryPolicy: TypeAlias = Literal["latest"] | None

COLLECT_PERIOD_S = 0.5
"""The car's event collector flushes queued fields every 500 ms (§9.2)."""

UNACKED_LIMIT = 5_000
"""The car keeps at most 5,000 messages for redelivery (§9.2)."""

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), for haversine distances between Location values."""

# Simulated clocks add float steps; without slack 9.999999999998 s would miss a 10 s interval
# by a whole collector period.
_TIME_SLACK_S = 1e-6


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One field's entry in a fleet_telemetry_config `fields` map."""

    interval_seconds: float
    minimum_delta: Decimal | None = None
    resend_interval_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.interval_seconds > 0:
            raise ValueError("interval_seconds must be positive")
        if self.minimum_delta is not None and self.minimum_delta < 0:
            raise ValueError("minimum_delta must not be negative")
        if self.resend_interval_seconds is not None and not self.resend_interval_seconds > 0:
            raise ValueError("resend_interval_seconds must be positive")


@dataclass(frozen=True, slots=True)
class TelemetryRecord:
    """One `V` record: the fields queued at a collector flush, numbered for acknowledgement."""

    seq: int
    created_at_s: float
    data: Mapping[str, TelemetryValue]
    is_resend: bool = False


@dataclass(slots=True)
class _FieldState:
    """What the emitter knows about one configured field."""

    rule: FieldRule
    observed: bool = False
    latest: TelemetryValue = None
    emitted: bool = False
    last_value: TelemetryValue = None
    last_emit_s: float = -math.inf


class TelemetryEmitter:
    """Decides which configured fields a car sends at each collector flush, and keeps unacked data.

    A field goes out once at the first flush after its first observation; afterwards only when
    its value changed (by at least `minimum_delta` from the last emitted value) and
    `interval_seconds` have passed since its last emission, or unchanged once
    `resend_interval_seconds` have passed. With `delivery_policy="latest"` every record stays
    pending until `ack`, and `unacked()` hands the pending records back for redelivery.
    """

    def __init__(
        self,
        rules: Mapping[str, FieldRule],
        *,
        start_s: float,
        prefer_typed: bool = False,
        delivery_policy: DeliveryPolicy = None,
        unacked_limit: int = UNACKED_LIMIT,
    ) -> None:
        if unacked_limit < 1:
            raise ValueError("unacked_limit must be at least 1")
        self.prefer_typed = prefer_typed
        self.delivery_policy = delivery_policy
        self.unacked_limit = unacked_limit
        self._fields = {name: _FieldState(rule) for name, rule in rules.items()}
        self._next_flush_s = start_s + COLLECT_PERIOD_S
        self._last_observed_s = start_s
        self._next_seq = 1
        self._pending: OrderedDict[int, TelemetryRecord] = OrderedDict()
        self._dropped = 0

    @property
    def fields(self) -> frozenset[str]:
        """The configured field names."""
        return frozenset(self._fields)

    def observe(self, now_s: float, values: Mapping[str, TelemetryValue]) -> None:
        """Record the car's current values; names outside the config are ignored."""
        if now_s < self._last_observed_s:
            raise ValueError("observations must not go back in time")
        self._last_observed_s = now_s
        for name, value in values.items():
            state = self._fields.get(name)
            if state is not None:
                state.observed = True
                state.latest = value

    def collect(self, now_s: float) -> TelemetryRecord | None:
        """Run the collector if a 500 ms flush is due; return the record to send, if any."""
        if now_s + _TIME_SLACK_S < self._next_flush_s:
            return None
        periods = math.floor((now_s - self._next_flush_s) / COLLECT_PERIOD_S + _TIME_SLACK_S)
        self._next_flush_s += (periods + 1) * COLLECT_PERIOD_S
        data = {name: state.latest for name, state in self._fields.items() if _due(state, now_s)}
        if not data:
            return None
        for name, value in data.items():
            state = self._fields[name]
            state.emitted, state.last_value, state.last_emit_s = True, value, now_s
        record = TelemetryRecord(seq=self._next_seq, created_at_s=now_s, data=data)
        self._next_seq += 1
        if self.delivery_policy == "latest":
            self._keep(record)
        return record

    def ack(self, seq: int) -> bool:
        """Forget an acknowledged record; False when it was not pending (already acked, dropped)."""
        return self._pending.pop(seq, None) is not None

    def unacked(self) -> list[TelemetryRecord]:
        """The records still awaiting an ack, oldest first, marked `is_resend` for redelivery."""
        return [replace(record, is_resend=True) for record in self._pending.values()]

    @property
    def unacked_count(self) -> int:
        """How many records await an ack."""
        return len(self._pending)

    @property
    def dropped_unacked(self) -> int:
        """How many unacked records were discarded because the buffer was full."""
        return self._dropped

    def _keep(self, record: TelemetryRecord) -> None:
        """Hold a record until acked, dropping (and counting) the oldest beyond the limit."""
        self._pending[record.seq] = record
        while len(self._pending) > self.unacked_limit:
            self._pending.popitem(last=False)
            self._dropped += 1


def _due(state: _FieldState, now_s: float) -> bool:
    """Whether a field must go out at this flush."""
    if not state.observed:
        return False
    if not state.emitted:
        return True
    elapsed = now_s - state.last_emit_s + _TIME_SLACK_S
    if elapsed < state.rule.interval_seconds:
        return False
    if changed_enough(state.last_value, state.latest, state.rule.minimum_delta):
        return True
    resend = state.rule.resend_interval_seconds
    return resend is not None and elapsed >= resend


def changed_enough(
    previous: TelemetryValue, current: TelemetryValue, minimum_delta: Decimal | None
) -> bool:
    """Whether `current` differs from the last emitted `previous` by at least `minimum_delta`."""
    if minimum_delta is None:
        return previous != current or type(previous) is not type(current)
    if _is_number(previous) and _is_number(current):
        if not (math.isfinite(previous) and math.isfinite(current)):
            return previous != current
        difference = abs(Decimal(repr(current)) - Decimal(repr(previous)))
        return difference > 0 and difference >= minimum_delta
    if isinstance(previous, tuple) and isinstance(current, tuple):
        distance = haversine_m(previous, current)
        return distance > 0 and distance >= minimum_delta
    # A delta has no meaning for text, booleans or a switch to/from invalid: any change counts.
    return previous != current or type(previous) is not type(current)


def _is_number(value: TelemetryValue) -> TypeGuard[int | float]:
    """True for int and float values, not for booleans."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def haversine_m(a: Location, b: Location) -> float:
    """Great-circle distance in metres between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
