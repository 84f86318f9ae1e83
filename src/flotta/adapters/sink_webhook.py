"""Webhook sink: a batch POSTed with httpx, signed per Standard Webhooks (standardwebhooks.com).

Body: a JSON array of records, or (protobuf) the payloads length-delimited with per-record
metadata in `flotta-*` headers. Headers `webhook-id` (stable for a record range, so a retried
batch can be deduplicated), `webhook-timestamp` (epoch seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the secret after `whsec_`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import httpx

from flotta.clock import Clock
from flotta.outbound import Outbound, pinned_transport
from flotta.ports.sinks import SinkError
from flotta.telemetry import formats
from flotta.telemetry.formats import SinkFormat
from flotta.telemetry.records import StreamRecord

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
TOLERANCE_S = 300
"""How far a `webhook-timestamp` may be from now before `verify` refuses it (replays)."""
USER_AGENT = "Flotta-Webhooks/1"
_ERROR_BODY_CHARS = 200


class WebhookVerificationError(ValueError):
    """A webhook whose headers or signature do not check out."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError if it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes of key material")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for this message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: datetime | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Check a received webhook's signature and freshness; raise WebhookVerificationError.

    For consumers (and our tests): `now` defaults to the consumer's wall clock.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise WebhookVerificationError(f"missing or malformed webhook header: {exc}") from exc
    current = (now or datetime.now(UTC)).timestamp()
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance window")
    expected = sign(secret, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise WebhookVerificationError("no webhook-signature matches")


def message_id(batch: Sequence[StreamRecord]) -> str:
    """A batch's `webhook-id`: the same for the same record range, so retries dedupe."""
    return f"msg_{batch[0].client_id}_{batch[0].cursor}_{batch[-1].cursor}"


class WebhookSink:
    """POSTs each batch to the app's URL; any non-2xx answer or transport failure is a nack."""

    def __init__(
        self,
        url: str,
        secret: str,
        fmt: SinkFormat,
        *,
        clock: Clock,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        """With `outbound` (and no `transport`), each connection goes to an address it checked
        for the URL's host (flotta.outbound)."""
        secret_key(secret)  # refuse a malformed secret now, not at the first delivery
        self._url, self._secret, self._fmt, self._clock = url, secret, fmt, clock
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,  # a redirect is the receiver's misconfiguration: nack it
            transport=transport or (None if outbound is None else pinned_transport(outbound)),
            headers={"user-agent": USER_AGENT},
        )

    def _body(self, batch: Sequence[StreamRecord]) -> tuple[bytes, dict[str, str]]:
        """The request body and its content headers for this format."""
        if self._fmt == "json":
            return formats.batch_json_bytes(batch), {"content-type": formats.JSON_CONTENT_TYPE}
        headers = formats.batch_headers(batch)
        headers["content-type"] = formats.DELIMITED_CONTENT_TYPE
        return formats.delimited([record.payload for record in batch]), headers

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        """POST the batch; raise SinkError with the reason unless the answer is 2xx."""
        if not batch:
            return
        body, headers = self._body(batch)
        msg_id = message_id(batch)
        timestamp = int(self._clock.now().timestamp())
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign(self._secret, msg_id, timestamp, body)
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise SinkError(f"webhook timed out after {self._timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise SinkError(f"webhook request failed: {exc!s} ({type(exc).__name__})") from exc
        if not response.is_success:
            excerpt = response.text[:_ERROR_BODY_CHARS].strip()
            detail = f": {excerpt}" if excerpt else ""
            raise SinkError(f"webhook answered HTTP {response.status_code}{detail}")

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()
