"""Delivery policy, and live delivery to each config's own fleet-telemetry receiver."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from flotta.adapters.sink_receiver import ReceiverSink, ReceiverTarget
from flotta.clock import Clock
from flotta.ports.sinks import Sink
from flotta.telemetry.ingest import ConfigRef
from flotta.telemetry.records import StreamRecord

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How sinks batch and retry; tests shrink the delays."""

    batch_size: int = 500
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    poll_s: float = 2.0

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt: doubling, capped."""
        return float(min(self.backoff_max_s, self.backoff_base_s * 2 ** (failures - 1)))


ReceiverOpener = Callable[[ConfigRef], Sink]
LANE_CAPACITY = 5_000


class ReceiverLane:
    """Live delivery to one config's own fleet-telemetry receiver (hostname:port), as a car
    would stream it: bounded, retried with backoff, dropped (and counted) past `max_attempts`.
    Not durable: the receiver is the car's real-time path; sinks are the durable one."""

    def __init__(
        self, ref: ConfigRef, opener: ReceiverOpener, policy: DeliveryPolicy, clock: Clock
    ) -> None:
        self.ref = ref
        self._opener = opener
        self._policy = policy
        self._clock = clock
        self._queue: asyncio.Queue[StreamRecord] = asyncio.Queue(LANE_CAPACITY)
        self._sink: Sink | None = None
        self.delivered = 0
        self.dropped = 0
        self.task = asyncio.get_running_loop().create_task(self._run(), name="telemetry-receiver")

    def offer(self, record: StreamRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if self._sink is not None:
            with contextlib.suppress(Exception):
                await self._sink.close()

    async def _run(self) -> None:
        policy = self._policy
        while True:
            batch = [await self._queue.get()]
            while len(batch) < policy.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for attempt in range(1, policy.max_attempts + 1):
                try:
                    self._sink = self._sink or self._opener(self.ref)
                    await self._sink.deliver(batch)
                    self.delivered += len(batch)
                    break
                except Exception as exc:
                    log.warning("receiver delivery failed", config=self.ref.id, error=str(exc))
                    if self._sink is not None:
                        with contextlib.suppress(Exception):
                            await self._sink.close()
                    self._sink = None
                    if attempt == policy.max_attempts:
                        self.dropped += len(batch)
                    else:
                        await self._clock.sleep(policy.backoff(attempt))


def open_receiver(clock: Clock) -> ReceiverOpener:
    """Receiver sinks that trust only the config's CA (`flotta.adapters.sink_receiver`)."""

    def opener(ref: ConfigRef) -> Sink:
        target = ReceiverTarget(
            hostname=ref.hostname, port=ref.port, ca=ref.ca or "", wait_for_ack=ref.awaits_acks
        )
        return ReceiverSink(target, clock=clock)

    return opener
