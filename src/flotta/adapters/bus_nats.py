"""The bus on NATS (nats-py): core publish/subscribe and request-reply, no JetStream."""

from __future__ import annotations

import asyncio
import contextlib

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSub

from flotta.ports.bus import BusError, BusMessage, BusTimeout, Handler, NoResponders

log = structlog.get_logger(__name__)

DRAIN_TIMEOUT_S = 5.0
INITIAL_CONNECT_S = 10.0


class NatsSubscription:
    def __init__(self, sub: NatsSub) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        # The connection may already be closed or reconnecting; the interest is gone either way.
        with contextlib.suppress(nats.errors.Error):
            await self._sub.unsubscribe()


class NatsBus:
    """Every subject is prefixed with `namespace.`, so deployments can share one server."""

    def __init__(self, namespace: str = "") -> None:
        self._nc = Client()
        self._prefix = f"{namespace}." if namespace else ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._last_error = ""

    @classmethod
    async def connect(
        cls,
        url: str,
        namespace: str = "",
        name: str = "flotta",
        timeout_s: float = INITIAL_CONNECT_S,
    ) -> NatsBus:
        bus = cls(namespace)
        connecting = bus._nc.connect(
            url,
            name=name,
            error_cb=bus._on_error,
            disconnected_cb=bus._on_disconnect,
            max_reconnect_attempts=-1,  # once up, ride out any NATS restart
            connect_timeout=2,
        )
        try:
            # Unlimited reconnects would also retry the first connect forever: bound it.
            await asyncio.wait_for(connecting, timeout_s)
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            bus._closing = True
            await bus._nc.close()
            reason = bus._last_error or str(exc) or "timed out"
            raise BusError(f"cannot connect to NATS at {url}: {reason}") from exc
        return bus

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = str(exc)
        log.warning("nats error", error=str(exc))

    async def _on_disconnect(self) -> None:
        if not self._closing:
            log.warning("nats disconnected; reconnecting")

    async def publish(self, subject: str, data: bytes) -> None:
        try:
            await self._nc.publish(self._prefix + subject, data)
        except nats.errors.Error as exc:
            raise BusError(f"cannot publish on {subject}: {exc}") from exc

    async def subscribe(self, subject: str, handler: Handler) -> NatsSubscription:
        async def on_message(msg: Msg) -> None:
            # nats-py awaits callbacks one by one; a task per message keeps a slow
            # command from holding up the next request on the same subject.
            task = asyncio.create_task(self._handle(handler, msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        try:
            sub = await self._nc.subscribe(self._prefix + subject, cb=on_message)
            # A round trip, so the server knows the interest before this call returns.
            await self._nc.flush()
        except (nats.errors.Error, TimeoutError) as exc:
            raise BusError(f"cannot subscribe to {subject}: {exc}") from exc
        return NatsSubscription(sub)

    async def _handle(self, handler: Handler, msg: Msg) -> None:
        subject = msg.subject[len(self._prefix) :]
        try:
            reply = await handler(BusMessage(subject, msg.data))
            if reply is not None and msg.reply:
                await msg.respond(reply)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bus handler failed", subject=subject)

    async def request(self, subject: str, data: bytes, timeout_s: float) -> bytes:
        try:
            msg = await self._nc.request(self._prefix + subject, data, timeout=timeout_s)
        except nats.errors.NoRespondersError:
            raise NoResponders(subject) from None
        except nats.errors.TimeoutError:
            raise BusTimeout(f"no reply on {subject} within {timeout_s:g} s") from None
        except nats.errors.Error as exc:
            raise BusError(f"request on {subject} failed: {exc}") from exc
        return msg.data

    async def close(self) -> None:
        self._closing = True
        if self._nc.is_closed:
            return
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await asyncio.wait_for(self._nc.drain(), DRAIN_TIMEOUT_S)
        if not self._nc.is_closed:
            await self._nc.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
