"""An app's command key: parse its P-256 PEM, fingerprint it, fetch it from the app's domain."""

from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import urljoin, urlsplit

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from flotta.outbound import DestinationRefused, Outbound, pinned_transport, url_destination

# A P-256 public key PEM is 178 bytes; Tesla refuses larger files ("error: too large").
MAX_PEM_BYTES = 4096
MAX_REDIRECTS = 3
_CURVE_HELP = "generate one with: openssl ecparam -name prime256v1 -genkey -noout -out private.pem"


class InvalidPublicKey(ValueError):
    """The text is not a P-256 public key in PEM; the message says what to do instead."""


class KeyFetchFailed(Exception):
    """The key could not be downloaded; `reason` is short and safe to show the developer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def public_key_hex(pem: str | bytes) -> str:
    """The uncompressed point `04…` (130 hex characters) of a P-256 public key PEM."""
    data = pem.encode() if isinstance(pem, str) else pem
    if len(data) > MAX_PEM_BYTES:
        raise InvalidPublicKey(f"the file is too large for a public key ({len(data)} bytes)")
    if b"PRIVATE KEY" in data:
        raise InvalidPublicKey(
            "this is a private key: keep it secret and upload only the public key "
            "(openssl ec -in private.pem -pubout -out public-key.pem)"
        )
    try:
        key = load_pem_public_key(data.strip())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidPublicKey(
            "not a PEM public key: paste the text from -----BEGIN PUBLIC KEY----- to "
            "-----END PUBLIC KEY-----"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidPublicKey(
            f"the key must be an EC key on secp256r1 (prime256v1); {_CURVE_HELP}"
        )
    if key.curve.name != "secp256r1":
        raise InvalidPublicKey(
            f"the key is on curve {key.curve.name}; vehicles accept only secp256r1 "
            f"(prime256v1): {_CURVE_HELP}"
        )
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


def fingerprint(point_hex: str) -> str:
    """SHA-256 of the uncompressed point, in groups of four hex digits (to compare by eye)."""
    digest = hashlib.sha256(bytes.fromhex(point_hex)).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


async def fetch_public_key(url: str, *, timeout_s: float, outbound: Outbound) -> str:
    """Download and parse the PEM at `url`; redirects are followed only on the same host,
    which must be one `outbound` lets the server reach."""
    try:
        await outbound.check(*url_destination(url))
    except DestinationRefused as exc:
        raise KeyFetchFailed(str(exc)) from None
    try:
        client = httpx.AsyncClient(timeout=timeout_s, transport=pinned_transport(outbound))
        async with asyncio.timeout(timeout_s), client:
            body = await _download(client, url)
    except TimeoutError as exc:
        raise KeyFetchFailed(f"no answer within {timeout_s:g} s") from exc
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        # A refusal of the connection itself (flotta.outbound) says why in its message.
        why = f"{type(exc).__name__}: {exc}" if isinstance(exc, httpx.ConnectError) else ""
        raise KeyFetchFailed(f"cannot connect ({why or type(exc).__name__})") from exc
    try:
        return public_key_hex(body)
    except InvalidPublicKey as exc:
        raise KeyFetchFailed(str(exc)) from exc


async def _download(client: httpx.AsyncClient, url: str) -> bytes:
    start = urlsplit(url)
    for _ in range(MAX_REDIRECTS + 1):
        async with client.stream("GET", url) as response:
            if response.is_redirect:
                target = urljoin(url, response.headers.get("location", ""))
                moved = urlsplit(target)
                if moved.hostname != start.hostname:
                    raise KeyFetchFailed("redirected to another host")
                if start.scheme == "https" and moved.scheme != "https":
                    raise KeyFetchFailed("redirected from https to http")
                url = target
                continue
            if response.status_code != 200:
                raise KeyFetchFailed(f"HTTP status {response.status_code}")
            return await _read_capped(response)
    raise KeyFetchFailed("too many redirects")


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > MAX_PEM_BYTES:
            raise KeyFetchFailed("too large")
    return bytes(body)
