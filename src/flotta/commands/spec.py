"""Data types shared by the command catalogue: specs, scopes, domains and parse results."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from tesla_protocol.command import car_server_pb2, vcsec_pb2

from flotta.commands.params import Param

Domain = Literal["vcsec", "infotainment", "rest_only"]
# Where the command name comes from: current docs, 2023 docs, SDK/proxy, tescmd, or
# third-party clients only (unconfirmed by Tesla).
Origin = Literal["docs", "docs-2023", "sdk", "tescmd", "unconfirmed"]
ProtoMessage: TypeAlias = car_server_pb2.Action | vcsec_pb2.UnsignedMessage
Encoder: TypeAlias = Callable[[Mapping[str, Any]], ProtoMessage]

CMDS: frozenset[str] = frozenset({"vehicle_cmds"})
CMDS_OR_CHARGING: frozenset[str] = frozenset({"vehicle_cmds", "vehicle_charging_cmds"})


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """Declarative description of one REST command and how it maps onto the protocol."""

    name: str
    summary: str
    domain: Domain
    scopes: frozenset[str] = CMDS
    params: tuple[Param, ...] = ()
    field: str | None = None
    encode: Encoder | None = None
    alias_of: str | None = None
    origin: Origin = "docs"

    @property
    def canonical(self) -> str:
        """Return the name ``describe_message`` reports for this command's message."""
        return self.alias_of or self.name

    def allows(self, granted: Iterable[str]) -> bool:
        """Return whether a token holding ``granted`` scopes may send this command."""
        return not self.scopes.isdisjoint(granted)


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A validated command: normalised parameters plus the protobuf message to send."""

    name: str
    domain: Domain
    scopes: frozenset[str]
    params: dict[str, Any]
    message: ProtoMessage | None
