"""The sink port: somewhere an app's streamed records are delivered (reference §9.7's
dispatchers). One adapter per kind in `flotta.adapters.sink_*`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flotta.telemetry.records import StreamRecord


class SinkError(Exception):
    """A batch the sink did not take (a nack): the message says why; delivery is retried."""


class Sink(Protocol):
    """Delivers batches in order; returning means every record was accepted (an ack)."""

    async def deliver(self, batch: Sequence[StreamRecord]) -> None: ...

    async def close(self) -> None: ...
