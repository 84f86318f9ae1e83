"""OAuth rules over generated inputs: exact redirect_uri matching, S256 PKCE verification."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qsl, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from flotta.oauth.authorize_request import redirect_registered, with_params
from flotta.oauth.pkce import VERIFIER, s256_challenge, verifier_matches

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)
segments = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


@st.composite
def uris(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https", "http", "com.example.app"]))
    host = ".".join(draw(st.lists(segments, min_size=1, max_size=3)))
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    path = "/".join(draw(st.lists(segments, max_size=3)))
    query = draw(st.one_of(st.just(""), segments.map(lambda q: f"?{q}=1")))
    return f"{scheme}://{host}{port}/{path}{query}"


def mutations(uri: str) -> list[str]:
    """What a loose matcher would accept: prefixes, suffixes, other ports, case, slashes."""
    return [
        uri[:-1],
        uri + "/",
        uri + "x",
        uri + "/extra",
        uri + "?next=https://evil.test",
        uri + "#frag",
        uri.upper(),
        uri.replace("://", "://evil.test@", 1),
        uri.replace("://", "://www.", 1),
        uri.replace("/", ":8443/", 3) if uri.count("/") >= 3 else uri + ":1",
        " " + uri,
    ]


@given(st.lists(uris(), min_size=1, max_size=4), uris())
def test_only_exact_registered_strings_are_accepted(registered: list[str], candidate: str) -> None:
    assert redirect_registered(registered, candidate) == (candidate in registered)
    for uri in registered:
        assert redirect_registered(registered, uri)
        for near in mutations(uri):
            assert redirect_registered(registered, near) == (near in registered)


@given(uris(), st.dictionaries(segments, st.text(max_size=20), max_size=3))
def test_redirect_parameters_keep_the_registered_uri(uri: str, params: dict[str, str]) -> None:
    """The app's own query survives and every parameter added is readable back."""
    built = with_params(uri, dict(params))
    original, added = urlsplit(uri), urlsplit(built)
    assert (added.scheme, added.netloc, added.path) == (
        original.scheme,
        original.netloc,
        original.path,
    )
    pairs = parse_qsl(added.query, keep_blank_values=True)
    assert pairs[: len(parse_qsl(original.query, keep_blank_values=True))] == parse_qsl(
        original.query, keep_blank_values=True
    )
    assert dict(pairs[len(pairs) - len(params) :]) == params


@given(verifiers)
def test_s256_accepts_the_verifier_that_made_the_challenge(verifier: str) -> None:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert s256_challenge(verifier) == expected and len(expected) == 43
    assert verifier_matches(verifier, expected)
    assert not verifier_matches(expected, verifier)  # plain comparison is never enough


@given(verifiers, verifiers)
def test_s256_refuses_any_other_verifier(verifier: str, other: str) -> None:
    challenge = s256_challenge(verifier)
    assert verifier_matches(other, challenge) == (other == verifier)


@given(st.text(max_size=200).filter(lambda t: not VERIFIER.fullmatch(t)))
def test_malformed_verifiers_never_match(text: str) -> None:
    """RFC 7636 §4.1: too short, too long or outside the unreserved set is refused outright."""
    digest = hashlib.sha256(text.encode()).digest()
    assert not verifier_matches(text, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
