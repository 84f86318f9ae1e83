"""Scope rules: what a refresh or code exchange grants (RFC 6749 §3.3, §6), and plain words."""

from __future__ import annotations

from dataclasses import dataclass

from flotta.auth.scopes import KNOWN_SCOPES
from flotta.oauth.errors import InvalidScope

# Identity scopes say what the id_token and refresh token carry; they never narrow API access.
IDENTITY_SCOPES = frozenset({"openid", "offline_access", "email", "profile"})
OIDC_EXTRAS = frozenset({"email", "profile"})
# Explained on the consent page but not optional: they say how the app signs the user in.
MANDATORY_SCOPES = frozenset({"openid", "offline_access"})


@dataclass(frozen=True, slots=True)
class ScopeWords:
    """A scope as the consent page and the owner console explain it."""

    name: str
    title: str
    description: str


# Reference §2.5, in words a vehicle owner understands.
_WORDS = {
    "openid": ("Sign you in", "Confirms who you are to the app (Sign in with Flotta)."),
    "offline_access": (
        "Stay connected",
        "Keeps the app connected when you are not using it, until you revoke its access.",
    ),
    "email": ("Your e-mail address", "Shares the e-mail address of your account."),
    "profile": ("Your name", "Shares the name on your account."),
    "user_data": (
        "Your profile",
        "Your name, e-mail address, region and orders.",
    ),
    "vehicle_device_data": (
        "Vehicle information",
        "Live data of the vehicles you choose: charge, climate, doors, software, service.",
    ),
    "vehicle_location": (
        "Vehicle location",
        "Where the vehicles you choose are, and where they are heading.",
    ),
    "vehicle_cmds": (
        "Vehicle commands",
        "Lock and unlock, climate, trunks, horn and lights, wake up, add or remove drivers.",
    ),
    "vehicle_charging_cmds": (
        "Charging",
        "Start and stop charging, charge limits and schedules, charging history.",
    ),
    "energy_device_data": (
        "Energy product information",
        "Live status, history and settings of your energy products.",
    ),
    "energy_cmds": (
        "Energy product settings",
        "Change backup reserve, operation mode, storm mode and other energy settings.",
    ),
}


def scope_words(scope: str) -> ScopeWords:
    """Plain words for one scope (its own name when it has none)."""
    title, description = _WORDS.get(scope, (scope, ""))
    return ScopeWords(scope, title, description)


def requestable_scopes(client: list[str]) -> frozenset[str]:
    """What an app may ask a user for: its allowed scopes, plus the OIDC extras with openid."""
    allowed = frozenset(client) & KNOWN_SCOPES
    return allowed | OIDC_EXTRAS if "openid" in allowed else allowed


def parse_scope(value: str | None) -> list[str] | None:
    """A space-delimited `scope` parameter, or None when absent or blank."""
    if value is None or not value.strip():
        return None
    return list(dict.fromkeys(value.split()))


def refresh_scopes(
    family: list[str], requested: list[str] | None, *, held_by: str = "this refresh token"
) -> list[str]:
    """The access token's scopes: the family's (or code's), or the requested subset of them.

    A request naming only identity scopes (TeslaPy and teslajsonpy always send
    `openid email offline_access`) keeps every API scope of the family, as Tesla's server does.
    `email`/`profile` may be asked for whenever the family has `openid`.
    """
    if requested is None:
        return list(family)
    allowed = set(family) | (OIDC_EXTRAS if "openid" in family else set())
    extra = sorted(set(requested) - allowed)
    if extra:
        raise InvalidScope(f"scopes not granted to {held_by}: {' '.join(extra)}")
    if set(requested) <= IDENTITY_SCOPES:
        api = [s for s in family if s not in IDENTITY_SCOPES]
        return list(dict.fromkeys([*requested, *api]))
    return list(requested)


def partner_scopes(client: list[str], requested: list[str] | None) -> list[str]:
    """A partner token's scopes: the app's allowed API scopes, or the requested subset."""
    api = [s for s in client if s not in IDENTITY_SCOPES]
    if requested is None:
        return api
    wanted = [s for s in requested if s not in IDENTITY_SCOPES]
    extra = sorted(set(wanted) - set(api))
    if extra:
        raise InvalidScope(f"scopes this app may not request: {' '.join(extra)}")
    return wanted
