"""The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, Tesla's extras in reference §2.2).

Parsing has two failure modes (RFC 6749 §4.1.2.1): an unknown client or a redirect_uri that is
not exactly registered must never redirect (`AuthorizeRefused`: an error page); every other
problem redirects back to the app with `error`, `error_description` and `state`
(`AuthorizeError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flotta.auth.scopes import KNOWN_SCOPES
from flotta.oauth.models import OAuthClient, as_list
from flotta.oauth.pkce import S256, S256_CHALLENGE
from flotta.oauth.repository import OAuthRepository
from flotta.oauth.scopes import parse_scope, requestable_scopes

# Carried by a request that `prompt=login` turned into one needing a sign-in after that moment.
LOGIN_AFTER = "login_after"
AUTHORIZE_PATH = "/oauth2/v3/authorize"
# Carried through the consent form in hidden fields and re-validated when it is posted.
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "prompt_missing_scopes",
    "require_requested_scopes",
    "show_keypair_step",
    "locale",
    "login_hint",
)
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
MAX_STATE = 2000
MAX_NONCE = 255  # AuthorizationCode.nonce


class AuthorizeRefused(Exception):
    """The request cannot be trusted to redirect anywhere: show `description` on a page."""

    def __init__(self, key: str, description: str) -> None:
        super().__init__(description)
        self.key = key
        self.description = description


class AuthorizeError(Exception):
    """Redirect back to the app's (verified) redirect_uri with an RFC 6749 §4.1.2.1 error."""

    def __init__(self, redirect_uri: str, error: str, description: str, state: str | None) -> None:
        super().__init__(description)
        self.location = with_params(
            redirect_uri, {"error": error, "error_description": description, "state": state}
        )


def redirect_registered(registered: Iterable[str], uri: str) -> bool:
    """RFC 9700 §4.1.3: simple string comparison with a registered URI, nothing looser."""
    return any(uri == candidate for candidate in registered)


def with_params(uri: str, params: dict[str, str | None]) -> str:
    """`uri` with `params` added to its query, keeping the query it had (RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(name, value) for name, value in params.items() if value is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A validated authorization request."""

    client: OAuthClient
    redirect_uri: str
    scopes: list[str]
    state: str
    nonce: str | None
    code_challenge: str | None
    prompt: frozenset[str]
    prompt_missing_scopes: bool
    require_requested_scopes: bool
    show_keypair_step: bool
    params: dict[str, str]

    def url(self) -> str:
        """This request as a GET URL (the login page sends the browser back to it)."""
        return f"{AUTHORIZE_PATH}?{urlencode(self.params)}"

    def url_after_login(self, login_after_ms: int) -> str:
        """This request without `prompt=login`, where a sign-in newer than `login_after_ms`
        (`LOGIN_AFTER`) continues it, once."""
        params = dict(self.params)
        rest = " ".join(p for p in params.pop("prompt", "").split() if p != "login")
        if rest:
            params["prompt"] = rest
        params[LOGIN_AFTER] = str(login_after_ms)
        return f"{AUTHORIZE_PATH}?{urlencode(params)}"

    def redirect(self, **params: str | None) -> str:
        """The redirection back to the app, with `state` (RFC 6749 §4.1.2)."""
        return with_params(self.redirect_uri, {**params, "state": self.state})

    def fail(self, error: str, description: str) -> AuthorizeError:
        return AuthorizeError(self.redirect_uri, error, description, self.state)


def single_values(items: Iterable[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    """The authorize parameters once each, and the names sent more than once (§3.1)."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in items:
        if name not in AUTHORIZE_PARAMS:
            continue
        if name in values:
            repeated.add(name)
        values[name] = value
    return values, repeated


async def parse_authorize(
    items: Iterable[tuple[str, str]], repo: OAuthRepository
) -> AuthorizeRequest:
    """Validate an authorization request; raise AuthorizeRefused or AuthorizeError."""
    params, repeated = single_values(items)
    client = await _trusted_client(params, repeated, repo)
    redirect_uri = params["redirect_uri"]
    state = params.get("state") or None
    if "state" in repeated or (state is not None and len(state) > MAX_STATE):
        raise AuthorizeError(redirect_uri, "invalid_request", "invalid state param", None)
    if state is None:
        raise AuthorizeError(
            redirect_uri, "invalid_request", "missing state param (send a random value)", None
        )
    if repeated:
        raise AuthorizeError(
            redirect_uri, "invalid_request", f"repeated {sorted(repeated)[0]} param", state
        )
    _check_response_type(params, redirect_uri, state)
    return AuthorizeRequest(
        client=client,
        redirect_uri=redirect_uri,
        scopes=_scopes(params, client, redirect_uri, state),
        state=state,
        nonce=_nonce(params, redirect_uri, state),
        code_challenge=_challenge(params, client, redirect_uri, state),
        prompt=_prompt(params, redirect_uri, state),
        prompt_missing_scopes=_flag(params.get("prompt_missing_scopes")),
        require_requested_scopes=_flag(params.get("require_requested_scopes")),
        show_keypair_step=_flag(params.get("show_keypair_step")),
        params=params,
    )


async def _trusted_client(
    params: dict[str, str], repeated: set[str], repo: OAuthRepository
) -> OAuthClient:
    client_id = params.get("client_id", "").strip()
    if not client_id or "client_id" in repeated:
        raise AuthorizeRefused("invalid_request", "The link is missing a valid client_id.")
    client = await repo.client(client_id)
    if client is None or client.status != "approved":
        raise AuthorizeRefused(
            "unauthorized_client",
            "This app is unknown or not approved, so it cannot ask for access to your account.",
        )
    redirect_uri = params.get("redirect_uri", "")
    if "redirect_uri" in repeated or not redirect_registered(
        as_list(client.redirect_uris), redirect_uri
    ):
        raise AuthorizeRefused(
            "invalid_redirect_url",
            "The app sent a redirect_uri that is not exactly one of its registered redirect "
            "URIs, so Flotta will not send you back to it.",
        )
    return client


def _check_response_type(params: dict[str, str], redirect_uri: str, state: str) -> None:
    response_type = params.get("response_type", "").strip()
    if not response_type:
        raise AuthorizeError(redirect_uri, "invalid_request", "missing response_type param", state)
    if response_type != "code":
        raise AuthorizeError(
            redirect_uri, "unsupported_response_type", "response_type must be code", state
        )


def _scopes(
    params: dict[str, str], client: OAuthClient, redirect_uri: str, state: str
) -> list[str]:
    scopes = parse_scope(params.get("scope"))
    if scopes is None:
        raise AuthorizeError(redirect_uri, "invalid_request", "missing scope param", state)
    unknown = sorted(set(scopes) - KNOWN_SCOPES)
    if unknown:
        raise AuthorizeError(
            redirect_uri, "invalid_scope", f"unknown scopes: {' '.join(unknown)}", state
        )
    refused = sorted(set(scopes) - requestable_scopes(as_list(client.scopes)))
    if refused:
        raise AuthorizeError(
            redirect_uri,
            "invalid_scope",
            f"scopes this app may not request: {' '.join(refused)}",
            state,
        )
    return scopes


def _nonce(params: dict[str, str], redirect_uri: str, state: str) -> str | None:
    nonce = params.get("nonce") or None
    if nonce is not None and len(nonce) > MAX_NONCE:
        raise AuthorizeError(
            redirect_uri, "invalid_request", f"nonce is longer than {MAX_NONCE} characters", state
        )
    return nonce


def _challenge(
    params: dict[str, str], client: OAuthClient, redirect_uri: str, state: str
) -> str | None:
    """RFC 7636 §4.3 with S256 only; public apps must use it (RFC 9700 §2.1.1)."""
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None

    def refuse(description: str) -> AuthorizeError:
        return AuthorizeError(redirect_uri, "invalid_request", description, state)

    if method is not None and method != S256:
        raise refuse("code_challenge_method must be S256 (plain is not supported)")
    if challenge is None:
        if method is not None:
            raise refuse("missing code_challenge param (code_challenge_method was sent)")
        if client.client_type != "confidential":
            raise refuse("public apps must use PKCE: send code_challenge with S256")
        return None
    if method is None:
        raise refuse("send code_challenge_method=S256 with the code_challenge")
    if not S256_CHALLENGE.fullmatch(challenge):
        raise refuse("invalid code_challenge param: expected 43 base64url characters")
    return challenge


def _prompt(params: dict[str, str], redirect_uri: str, state: str) -> frozenset[str]:
    """OpenID Connect Core §3.1.2.1 `prompt`; values Flotta does not know are ignored."""
    prompt = frozenset((params.get("prompt") or "").split()) & PROMPTS
    if "none" in prompt and len(prompt) > 1:
        raise AuthorizeError(
            redirect_uri, "invalid_request", "prompt=none cannot be combined", state
        )
    return prompt
