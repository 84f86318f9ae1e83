"""Which scopes a refresh grants (RFC 6749 §6) given the family's and the requested ones."""

from __future__ import annotations

from flotta.oauth.errors import InvalidScope

# Identity scopes say what the id_token and refresh token carry; they never narrow API access.
IDENTITY_SCOPES = frozenset({"openid", "offline_access", "email", "profile"})
OIDC_EXTRAS = frozenset({"email", "profile"})


def parse_scope(value: str | None) -> list[str] | None:
    """A space-delimited `scope` parameter, or None when absent or blank."""
    if value is None or not value.strip():
        return None
    return list(dict.fromkeys(value.split()))


def refresh_scopes(family: list[str], requested: list[str] | None) -> list[str]:
    """The access token's scopes: the family's, or the requested subset of them.

    A request naming only identity scopes (TeslaPy and teslajsonpy always send
    `openid email offline_access`) keeps every API scope of the family, as Tesla's server does.
    `email`/`profile` may be asked for whenever the family has `openid`.
    """
    if requested is None:
        return list(family)
    allowed = set(family) | (OIDC_EXTRAS if "openid" in family else set())
    extra = sorted(set(requested) - allowed)
    if extra:
        raise InvalidScope(f"scopes not granted to this refresh token: {' '.join(extra)}")
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
