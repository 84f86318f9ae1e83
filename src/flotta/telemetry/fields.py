"""Catalogue of streamable fields, read from `tesla_protocol.telemetry.vehicle_data_pb2.Field`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from tesla_protocol.telemetry import vehicle_data_pb2


def _enum_numbers() -> dict[str, int]:
    """Every `Field` member except `Unknown`, the protobuf zero value that carries no signal."""
    members: list[tuple[str, int]] = list(vehicle_data_pb2.Field.items())
    return {name: int(number) for name, number in members if number != 0}


FIELD_NUMBERS: Mapping[str, int] = MappingProxyType(_enum_numbers())
"""Streamable field name -> wire number, in enum order."""

FIELD_NAMES: frozenset[str] = frozenset(FIELD_NUMBERS)


def _known(names: Iterable[str]) -> frozenset[str]:
    """The names present in the installed enum, so an older `tesla-protocol` cannot break import."""
    return frozenset(name for name in names if name in FIELD_NUMBERS)


LOCATION_FIELDS: frozenset[str] = _known(["Location", "OriginLocation", "DestinationLocation"])
"""Fields carried as `LocationValue`: their `minimum_delta` is a distance in metres (§9.1)."""

VEHICLE_LOCATION_SCOPE_FIELDS: frozenset[str] = LOCATION_FIELDS | _known(
    ["DestinationName", "RouteLine", "GpsState", "GpsHeading"]
)
"""Fields Tesla only streams to apps granted the `vehicle_location` scope (fleet-api.md §3)."""

FIRST_ALWAYS_TYPED_NUMBER = 179
"""From `DetailedChargeState` (179) on values are always typed; `prefer_typed` acts on 0-178."""

TYPED_ONLY_FIELDS: frozenset[str] = frozenset(
    name for name, number in FIELD_NUMBERS.items() if number >= FIRST_ALWAYS_TYPED_NUMBER
)

MINIMUM_DELTA_AT_LEAST_ONE_FIELDS: frozenset[str] = _known(
    ["MilesSinceReset", "SelfDrivingMilesSinceReset"]
)
"""Fields Tesla reportedly rejects unless `minimum_delta` >= 1 (fleet-api.md §9.1, via tescmd)."""


def field_number(name: str) -> int | None:
    """The wire number of a streamable field, or None for a name outside the catalogue."""
    return FIELD_NUMBERS.get(name)
