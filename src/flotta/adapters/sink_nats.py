"""NATS JetStream sink: each record published with an ack to `<prefix>.<vin>.<topic>`.

The stream (name from the sink's settings, subjects `<prefix>.>`) is created if missing.
Metadata travels in `Flotta-*` headers; `Nats-Msg-Id` = `<client_id>:<cursor>` lets JetStream
drop the duplicates a retried batch would otherwise add (within the stream's duplicate window).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from urllib.parse import urlsplit

import nats.errors
import nats.js.errors
from nats.aio.client import Client

from flotta.ports.sinks import SinkError, reason_of
from flotta.telemetry import formats
from flotta.telemetry.formats import SinkFormat
from flotta.telemetry.records import StreamRecord


def subject_for(prefix: str, record: StreamRecord) -> str:
    """The subject a record is published on."""
    return f"{prefix}.{record.vin}.{record.topic}"


def headers_for(record: StreamRecord, fmt: SinkFormat) -> dict[str, str]:
    """The JetStream message headers of a record."""
    headers = {
        f"Flotta-{name.replace('_', '-').title()}": value
        for name, value in formats.metadata(record).items()
    }
    headers["Nats-Msg-Id"] = f"{record.client_id}:{record.cursor}"
    headers["Content-Type"] = formats.content_type(fmt)
    return headers


class NatsSink:
    """Publishes to the app's JetStream; a record counts as delivered once JetStream acks it."""

    def __init__(
        self, url: str, stream: str, prefix: str, fmt: SinkFormat, *, timeout_s: float = 5.0
    ) -> None:
        self._url, self._stream, self._prefix, self._fmt = url, stream, prefix, fmt
        self._timeout_s = timeout_s
        self._nc: Client | None = None
        parts = urlsplit(url)
        # Errors name the server without the credentials a URL may carry.
        self._where = f"{parts.hostname}:{parts.port or 4222}"

    async def _connect(self) -> Client:
        """The live connection, connecting (and ensuring the stream) when there is none."""
        if self._nc is not None and self._nc.is_connected:
            return self._nc
        await self._drop()
        nc = Client()
        try:
            await asyncio.wait_for(
                nc.connect(
                    self._url,
                    name="flotta-sink",
                    connect_timeout=max(1, round(self._timeout_s)),
                    allow_reconnect=False,  # the dispatcher retries; a dead link is a nack
                    max_reconnect_attempts=0,
                ),
                self._timeout_s * 2,
            )
            await self._ensure_stream(nc)
        except BaseException:
            await _close_quietly(nc)
            raise
        self._nc = nc
        return nc

    async def _ensure_stream(self, nc: Client) -> None:
        """Create the stream when it does not exist yet."""
        js = nc.jetstream(timeout=self._timeout_s)
        try:
            await js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=self._stream, subjects=[f"{self._prefix}.>"])

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        """Publish every record in order, each acknowledged by JetStream."""
        if not batch:
            return
        try:
            nc = await self._connect()
            js = nc.jetstream(timeout=self._timeout_s)
            for record in batch:
                await js.publish(
                    subject_for(self._prefix, record),
                    formats.record_bytes(record, self._fmt),
                    stream=self._stream,
                    headers=headers_for(record, self._fmt),
                )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            await self._drop()
            reason = reason_of(exc)
            raise SinkError(f"NATS JetStream at {self._where}: {reason}") from exc

    async def _drop(self) -> None:
        """Forget the connection so the next delivery reconnects."""
        nc, self._nc = self._nc, None
        if nc is not None:
            await _close_quietly(nc)

    async def close(self) -> None:
        """Close the connection."""
        await self._drop()


async def _close_quietly(nc: Client) -> None:
    """Close a connection that may be half-open; failures here change nothing."""
    with contextlib.suppress(OSError, TimeoutError, nats.errors.Error):
        await asyncio.wait_for(nc.close(), 2.0)
