"""The full command catalogue and the entry point that validates and encodes a command."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from flotta.commands import (
    catalogue_charging,
    catalogue_climate,
    catalogue_security,
    catalogue_vehicle,
)
from flotta.commands.errors import CommandError
from flotta.commands.params import parse_params
from flotta.commands.spec import CommandSpec, ParsedCommand


def _index(*groups: tuple[CommandSpec, ...]) -> Mapping[str, CommandSpec]:
    """Index every spec by name, refusing duplicates."""
    table: dict[str, CommandSpec] = {}
    for group in groups:
        for spec in group:
            if spec.name in table:
                raise RuntimeError(f"duplicate command {spec.name!r} in catalogue")
            table[spec.name] = spec
    return MappingProxyType(dict(sorted(table.items())))


CATALOGUE: Mapping[str, CommandSpec] = _index(
    catalogue_charging.SPECS,
    catalogue_climate.SPECS,
    catalogue_security.SPECS,
    catalogue_vehicle.SPECS,
)
COMMAND_NAMES: tuple[str, ...] = tuple(CATALOGUE)


def command_spec(name: str) -> CommandSpec:
    """Return the spec for ``name`` or raise ``CommandError`` (400 ``invalid_command``)."""
    spec = CATALOGUE.get(name)
    if spec is None:
        raise CommandError.unknown_command(name)
    return spec


def parse_command(name: str, body: Mapping[str, Any] | None) -> ParsedCommand:
    """Validate a REST command body and build the protobuf message the vehicle expects."""
    spec = command_spec(name)
    if body is None:
        body = {}
    elif not isinstance(body, Mapping):
        raise CommandError.bad_body()
    params = parse_params(spec.params, body)
    message = spec.encode(params) if spec.encode is not None else None
    return ParsedCommand(
        name=spec.name,
        domain=spec.domain,
        scopes=spec.scopes,
        params=params,
        message=message,
    )
