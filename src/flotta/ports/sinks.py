"""The sink port: somewhere an app's streamed records are delivered (reference §9.7's
dispatchers). One adapter per kind in `flotta.adapters.sink_*`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flotta.telemetry.records import StreamRecord


class SinkError(Exception):
    """A batch the sink did not take (a nack): the message says why; delivery is retried."""


def reason_of(exc: BaseException) -> str:
    """Why a client library failed, for a nack's message: its text, or its type when it has
    none (a TLS handshake cut short raises some without text), and the cause it wraps."""
    reason = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and (str(cause) or type(cause).__name__) not in reason:
        reason += f" ({str(cause) or type(cause).__name__})"
    return reason


class Sink(Protocol):
    """Delivers batches in order; returning means every record was accepted (an ack)."""

    async def deliver(self, batch: Sequence[StreamRecord]) -> None: ...

    async def close(self) -> None: ...
