"""Redis Streams sink: XADD to one stream per app, `<prefix>:<client_id>`, capped `MAXLEN ~`.

Each entry has the fields vin, topic, txid, cursor, created_at, format and data (the record's
JSON object, or its protobuf payload). A batch goes in one pipelined round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.typing import EncodableT, FieldT

from flotta.ports.sinks import SinkError, reason_of
from flotta.telemetry import formats
from flotta.telemetry.formats import SinkFormat
from flotta.telemetry.records import StreamRecord


def stream_key(prefix: str, client_id: str) -> str:
    """The stream an app's records go to."""
    return f"{prefix}:{client_id}"


def entry_fields(record: StreamRecord, fmt: SinkFormat) -> dict[FieldT, EncodableT]:
    """The XADD field map of a record."""
    return {
        "vin": record.vin,
        "topic": record.topic,
        "txid": record.txid,
        "cursor": str(record.cursor),
        "created_at": formats.iso_time(record),
        "format": fmt,
        "data": formats.record_bytes(record, fmt),
    }


class RedisSink:
    """Appends each batch to the app's stream; a batch is delivered once the pipeline returns."""

    def __init__(
        self, url: str, prefix: str, maxlen: int, fmt: SinkFormat, *, timeout_s: float = 5.0
    ) -> None:
        self._prefix, self._maxlen, self._fmt = prefix, maxlen, fmt
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        parts = urlsplit(url)
        # Errors name the server without the password a URL may carry.
        self._where = f"{parts.hostname}:{parts.port or 6379}"

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        """XADD every record of the batch, in order, in one round trip."""
        if not batch:
            return
        pipe = self._redis.pipeline(transaction=False)
        for record in batch:
            pipe.xadd(
                stream_key(self._prefix, record.client_id),
                entry_fields(record, self._fmt),
                maxlen=self._maxlen,
                approximate=True,
            )
        try:
            results = await pipe.execute(raise_on_error=False)
        except (OSError, redis.exceptions.RedisError) as exc:
            raise SinkError(f"Redis at {self._where}: {reason_of(exc)}") from exc
        failures = [result for result in results if isinstance(result, Exception)]
        if failures:
            raise SinkError(f"Redis at {self._where} refused XADD: {failures[0]}")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
