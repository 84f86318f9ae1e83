"""In-process bus: the embedded default and the unit-test double of NATS."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from flotta.ports.bus import BusError, BusMessage, BusTimeout, Handler, NoResponders
from flotta.ports.bus import subject_matches as matches

log = structlog.get_logger(__name__)


class MemorySubscription:
    def __init__(self, bus: MemoryBus, subject: str, handler: Handler) -> None:
        self.subject = subject
        self.handler = handler
        self._bus = bus
        self.wildcard = "*" in subject.split(".") or ">" in subject.split(".")

    async def unsubscribe(self) -> None:
        self._bus._remove(self)


class MemoryBus:
    """Delivers within one event loop; messages are passed by reference, never copied."""

    def __init__(self) -> None:
        # Exact subjects are a dict lookup, so thousands of per-vehicle subjects stay cheap.
        self._exact: dict[str, list[MemorySubscription]] = {}
        self._wildcards: list[MemorySubscription] = []
        self._tasks: set[asyncio.Task[bytes | None]] = set()
        self._closed = False

    def _matching(self, subject: str) -> list[MemorySubscription]:
        found = list(self._exact.get(subject, ()))
        found.extend(s for s in self._wildcards if matches(s.subject, subject))
        return found

    def _remove(self, sub: MemorySubscription) -> None:
        if sub.wildcard:
            with contextlib.suppress(ValueError):
                self._wildcards.remove(sub)
            return
        subs = self._exact.get(sub.subject, [])
        with contextlib.suppress(ValueError):
            subs.remove(sub)
        if not subs:
            self._exact.pop(sub.subject, None)

    def _deliver(self, sub: MemorySubscription, msg: BusMessage) -> asyncio.Task[bytes | None]:
        task = asyncio.create_task(_run(sub.handler, msg), name=f"bus:{msg.subject}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("the bus is closed")

    async def publish(self, subject: str, data: bytes) -> None:
        self._check_open()
        msg = BusMessage(subject, data)
        for sub in self._matching(subject):
            self._deliver(sub, msg)

    async def subscribe(self, subject: str, handler: Handler) -> MemorySubscription:
        self._check_open()
        sub = MemorySubscription(self, subject, handler)
        if sub.wildcard:
            self._wildcards.append(sub)
        else:
            self._exact.setdefault(subject, []).append(sub)
        return sub

    async def request(self, subject: str, data: bytes, timeout_s: float) -> bytes:
        self._check_open()
        subs = self._matching(subject)
        if not subs:
            raise NoResponders(subject)
        msg = BusMessage(subject, data)
        pending = {self._deliver(sub, msg) for sub in subs}
        deadline = asyncio.get_running_loop().time() + timeout_s
        while pending:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            done, pending = await asyncio.wait(
                pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                reply = None if task.cancelled() else task.result()
                if reply is not None:
                    return reply
        if not pending:
            # Every responder declined to answer; NATS callers cannot tell, so wait it out too.
            await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
        raise BusTimeout(f"no reply on {subject} within {timeout_s:g} s")

    async def close(self) -> None:
        self._closed = True
        self._exact.clear()
        self._wildcards.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _run(handler: Handler, msg: BusMessage) -> bytes | None:
    """Run a handler; an exception is logged and means no reply, as on NATS."""
    try:
        return await handler(msg)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("bus handler failed", subject=msg.subject)
        return None
