"""Shorthand constructors used by the catalogue modules to declare command specs."""

from __future__ import annotations

from flotta.commands.encode_infotainment import empty
from flotta.commands.params import Param
from flotta.commands.spec import CMDS, CommandSpec, Encoder, Origin


def info(
    name: str,
    summary: str,
    field: str,
    encode: Encoder | None = None,
    *params: Param,
    scopes: frozenset[str] = CMDS,
    origin: Origin = "docs",
    alias_of: str | None = None,
) -> CommandSpec:
    """Declare an Infotainment command carried in ``VehicleAction.<field>``."""
    return CommandSpec(
        name=name,
        summary=summary,
        domain="infotainment",
        scopes=scopes,
        params=params,
        field=field,
        encode=encode or empty(field),
        alias_of=alias_of,
        origin=origin,
    )


def vcsec(
    name: str,
    summary: str,
    field: str,
    encode: Encoder,
    *params: Param,
    scopes: frozenset[str] = CMDS,
    origin: Origin = "docs",
) -> CommandSpec:
    """Declare a VCSEC command carried in ``UnsignedMessage.<field>``."""
    return CommandSpec(
        name=name,
        summary=summary,
        domain="vcsec",
        scopes=scopes,
        params=params,
        field=field,
        encode=encode,
        origin=origin,
    )


def rest(
    name: str,
    summary: str,
    *params: Param,
    scopes: frozenset[str] = CMDS,
    origin: Origin = "docs",
    alias_of: str | None = None,
) -> CommandSpec:
    """Declare a command that the protocol cannot carry (forwarded to REST by the proxy)."""
    return CommandSpec(
        name=name,
        summary=summary,
        domain="rest_only",
        scopes=scopes,
        params=params,
        alias_of=alias_of,
        origin=origin,
    )
