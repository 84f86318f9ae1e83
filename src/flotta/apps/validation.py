"""Checks on an application's fields: URLs, origins, domains and the root-domain rule."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flotta.apps.schemas import ApplicationInput, ValidApplication
from flotta.auth.scopes import OWNER_SCOPES

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
CLIENT_TYPES = ("confidential", "public")
MAX_URIS = 10
MAX_URI_LENGTH = 2000
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_HOST_CHARS = re.compile(r"^[a-z0-9.-]+$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
# Schemes a browser would run or read locally instead of handing to an app.
_UNSAFE_SCHEMES = frozenset(
    {"javascript", "data", "file", "vbscript", "blob", "about", "ws", "wss"}
)
# Public suffixes of two labels that people commonly register under. Without the full Public
# Suffix List, `root_domain` treats these as one suffix so `app.example.co.uk` has root
# `example.co.uk`, not `co.uk`.
_TWO_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk",
        "com.au", "net.au", "org.au", "co.nz", "org.nz", "co.jp", "ne.jp", "or.jp",
        "com.br", "com.cn", "com.mx", "co.za", "co.in", "co.kr", "com.tr", "com.tw",
        "com.sg", "com.hk", "co.il", "com.ar",
    }
)  # fmt: skip
_LIMITS = {"name": 100, "description": 1000, "intended_use": 2000, "website": 500}


def domain_problem(domain: str) -> str | None:
    """Why `domain` is not a lower-case DNS host name, or None when it is one."""
    if not domain:
        return "enter the host name your app lives on, e.g. app.example.com"
    if "://" in domain or "/" in domain:
        return "enter only the host name, without https:// or a path (e.g. app.example.com)"
    if domain != domain.lower():
        return "the domain must be lower case"
    if len(domain) > 253:
        return "a domain name has at most 253 characters"
    if not _HOST_CHARS.match(domain):
        return "use only letters, digits, hyphens and dots"
    labels = domain.split(".")
    if len(labels) < 2:
        return "use a full domain name such as example.com"
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return "use letters, digits and hyphens between dots (an IP address is not a domain)"
    return None


def root_domain(host: str) -> str:
    """The registrable domain: `www.abc.com` and `123.abc.com` both have root `abc.com`."""
    labels = host.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def is_loopback(host: str | None) -> bool:
    return (host or "").lower() in LOOPBACK_HOSTS


def origin_host(origin: str) -> str:
    return (urlsplit(origin).hostname or "").lower()


def domain_matches(domain: str, own_domain: str, origins: list[str]) -> bool:
    """Reference §3.2: the app's domain, or the root domain of one of its allowed origins."""
    if own_domain and domain == own_domain:
        return True
    roots = {root_domain(origin_host(o)) for o in origins if origin_host(o)}
    return root_domain(domain) in roots


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be a redirect URI (RFC 6749 §3.1.2, RFC 8252 §7), or None."""
    if len(uri) > MAX_URI_LENGTH:
        return f"is longer than {MAX_URI_LENGTH} characters"
    if any(c.isspace() or ord(c) < 32 for c in uri):
        return "must not contain spaces"
    if "#" in uri:
        return "must not contain a fragment (#…)"
    try:
        parts = urlsplit(uri)
        _ = parts.port
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.match(scheme):
        return "must be an absolute URL such as https://app.example.com/callback"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if scheme in ("http", "https"):
        if not parts.hostname:
            return "needs a host name"
        if scheme == "http" and not is_loopback(parts.hostname):
            return "http is allowed only for localhost, 127.0.0.1 or [::1]; use https"
        return None
    if is_loopback(scheme) or parts.path[:1].isdigit():
        # `localhost:3000/callback` parses as scheme "localhost": the http:// is missing.
        return "must be an absolute URL such as http://localhost:3000/callback"
    if scheme in _UNSAFE_SCHEMES:
        return f"the {scheme}: scheme is not allowed"
    if not (parts.netloc or parts.path.strip("/")):
        return "a custom scheme needs a path, e.g. myapp://auth/callback"
    return None


def normalise_origin(origin: str) -> tuple[str | None, str | None]:
    """`scheme://host[:port]` in lower case, or the reason the line is not an origin."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None, "is not a valid origin"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None, "must look like https://app.example.com (scheme and host)"
    if parts.username is not None or parts.password is not None:
        return None, "must not contain a user name or password"
    if parts.path == "/" and not (parts.query or parts.fragment):
        return None, "must not end with / (an origin is scheme://host[:port] only)"
    if parts.path or parts.query or parts.fragment or origin.endswith(("?", "#")):
        return None, "must be scheme://host[:port] only, without a path, query or fragment"
    if scheme == "http" and not is_loopback(parts.hostname):
        return None, "http is allowed only for localhost, 127.0.0.1 or [::1]; use https"
    host = parts.hostname.lower()
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port is not None else ""), None


def website_problem(url: str) -> str | None:
    if not url:
        return "enter your app's web site, e.g. https://app.example.com"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() != "https" or not parts.hostname:
        return "must be an https:// URL"
    if parts.username is not None or any(c.isspace() for c in url):
        return "must be a plain https:// URL"
    return None


def _lines(text: str) -> list[str]:
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def _redirects(text: str, errors: dict[str, str]) -> list[str]:
    uris = _lines(text)
    if not uris:
        errors["redirect_uris"] = "add at least one redirect URI, one per line"
    elif len(uris) > MAX_URIS:
        errors["redirect_uris"] = f"at most {MAX_URIS} redirect URIs"
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            errors["redirect_uris"] = f"{uri[:100]} {problem}"
            break
    return uris


def _origins(text: str, errors: dict[str, str]) -> list[str]:
    lines = _lines(text)
    if not lines:
        errors["allowed_origins"] = "add at least one allowed origin, e.g. https://app.example.com"
    elif len(lines) > MAX_URIS:
        errors["allowed_origins"] = f"at most {MAX_URIS} allowed origins"
    origins: list[str] = []
    for line in lines:
        origin, problem = normalise_origin(line)
        if problem or origin is None:
            errors["allowed_origins"] = f"{line[:100]} {problem}"
            break
        origins.append(origin)
    return list(dict.fromkeys(origins))


def _scopes(chosen: tuple[str, ...], errors: dict[str, str]) -> list[str]:
    unknown = sorted(set(chosen) - set(OWNER_SCOPES))
    if unknown:
        errors["scopes"] = f"unknown scopes: {', '.join(unknown)}"
    elif not chosen:
        errors["scopes"] = "choose at least one scope"
    return [s for s in OWNER_SCOPES if s in chosen]


def _texts(data: ApplicationInput, errors: dict[str, str]) -> None:
    required = {
        "name": "give your app a name",
        "description": "describe your app in a sentence or two",
        "intended_use": "tell the reviewers how your app will use the Fleet API",
    }
    for name, limit in _LIMITS.items():
        value = str(getattr(data, name)).strip()
        if name in required and not value:
            errors[name] = required[name]
        elif len(value) > limit:
            errors[name] = f"at most {limit} characters (you entered {len(value)})"
        elif any(ord(c) < 32 and c not in "\r\n\t" for c in value):
            errors[name] = "contains control characters"


def validate_application(data: ApplicationInput) -> tuple[ValidApplication | None, dict[str, str]]:
    """The normalised application, or every field's problem keyed by field name."""
    errors: dict[str, str] = {}
    _texts(data, errors)
    website = data.website.strip()
    if "website" not in errors and (problem := website_problem(website)):
        errors["website"] = problem
    domain = data.domain.strip().lower()
    if problem := domain_problem(domain):
        errors["domain"] = problem
    redirect_uris = _redirects(data.redirect_uris, errors)
    origins = _origins(data.allowed_origins, errors)
    scopes = _scopes(data.scopes, errors)
    if data.client_type not in CLIENT_TYPES:
        errors["client_type"] = "choose confidential (server) or public (PKCE only)"
    if not errors.keys() & {"domain", "allowed_origins"} and not domain_matches(
        domain, "", origins
    ):
        errors["domain"] = (
            f"the domain's root {root_domain(domain)} must match the root domain of one of "
            "the allowed origins"
        )
    if errors:
        return None, errors
    return ValidApplication(
        name=data.name.strip(),
        description=data.description.strip(),
        intended_use=data.intended_use.strip(),
        website=website,
        domain=domain,
        redirect_uris=redirect_uris,
        allowed_origins=origins,
        scopes=scopes,
        client_type=data.client_type,
    ), errors
