"""Token-endpoint errors: RFC 6749 §5.2 bodies carrying Tesla's keys (reference §2.7)."""

from __future__ import annotations

from flotta.errors import FlottaError

UNKNOWN_CLIENT = "We don't recognize this client_id and client_secret combination"


class OAuthError(FlottaError):
    """Rendered as `{"error", "error_description"}`, not in the Fleet API envelope."""


class InvalidRequest(OAuthError):
    status = 400
    key = "invalid_request"


class UnsupportedGrantType(OAuthError):
    status = 400
    key = "unsupported_grant_type"


class UnauthorizedClient(OAuthError):
    status = 400
    key = "unauthorized_client"


class InvalidScope(OAuthError):
    status = 403
    key = "invalid_scope"


class LoginRequired(OAuthError):
    status = 401
    key = "login_required"


class UnsupportedTokenType(OAuthError):
    status = 400
    key = "unsupported_token_type"


class InvalidAuthCode(OAuthError):
    """RFC 6749 §5.2 invalid_grant under Tesla's key: unknown, expired, used or unverified."""

    status = 400
    key = "invalid_auth_code"


class InvalidRedirectUrl(OAuthError):
    status = 400
    key = "invalid_redirect_url"
