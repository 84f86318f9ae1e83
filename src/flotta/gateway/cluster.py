"""Cluster links: which process holds a device's link, and requests to it over the bus.

One implementation for every kind of device (vehicles in `routing.py`, energy sites in
`energy/routing.py`). The owning process keeps `<presence prefix><key>` = `{owner, state}` in
kv, with a TTL its heartbeat refreshes, and answers requests on `<subject prefix><key>.rpc`.
A request is one kind byte and a body; a reply is one status byte and a body. Errors travel as
JSON naming their FlottaError class, so the calling process raises what it would have raised
with the link in hand. See docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import orjson
import structlog

from flotta.clock import Clock
from flotta.errors import DeviceTimeout, FlottaError, SiteUnavailable, VehicleUnavailable
from flotta.ports.bus import Bus, BusError, BusMessage, BusTimeout, NoResponders, Subscription
from flotta.ports.kv import KV

log = structlog.get_logger(__name__)

TAKEOVER = b"T"  # published, never answered: JSON {owner, at_ms} of a newer link
# Reply status (first byte of a reply).
OK = b"\x00"
FAILED = b"\x01"

# The owner's own timeouts fire first, so its typed error reaches the caller, not ours.
RPC_MARGIN_S = 2.0

# Errors a caller re-raises as their own class; any other arrives as a plain FlottaError.
_ERRORS: dict[str, type[FlottaError]] = {
    cls.__name__: cls for cls in (VehicleUnavailable, DeviceTimeout, SiteUnavailable)
}


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class LinkKind:
    """How one kind of device is named in kv and on the bus, and what its absence raises."""

    noun: str
    presence_prefix: str
    subject_prefix: str
    unavailable: type[FlottaError]
    timed_out: type[FlottaError]

    def presence_key(self, key: str) -> str:
        return f"{self.presence_prefix}{key}"

    def rpc_subject(self, key: str) -> str:
        return f"{self.subject_prefix}{key}.rpc"


class LinkHolder(Protocol):
    """What the cluster needs of a hub: the state of a link it holds, and yielding one."""

    def state_of(self, key: str) -> str: ...

    async def hand_over(self, key: str, newer_link_ms: int) -> None: ...


def encode_error(exc: FlottaError) -> bytes:
    body = {
        "type": type(exc).__name__,
        "status": exc.status,
        "key": exc.key,
        "description": exc.description,
    }
    return FAILED + orjson.dumps(body)


def decode_error(body: bytes) -> FlottaError:
    data = orjson.loads(body)
    cls = _ERRORS.get(str(data.get("type")), FlottaError)
    return cls(str(data.get("description", "")), status=int(data["status"]), key=str(data["key"]))


H = TypeVar("H", bound=LinkHolder)


class ClusterLinks(Generic[H]):
    """Announces the links this process holds and calls the processes holding the others.

    Subclasses name their request kinds and answer them in `_run`.
    """

    def __init__(
        self, kind: LinkKind, bus: Bus, kv: KV, local: H, presence_ttl_s: float, clock: Clock
    ) -> None:
        self.kind = kind
        self.bus = bus
        self.kv = kv
        self.local = local
        self.presence_ttl_s = presence_ttl_s
        self.clock = clock
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # Keys whose link this process holds; None while (or if) the subscription failed.
        self._owned: dict[str, Subscription | None] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    async def _run(self, key: str, kind: bytes, body: bytes) -> bytes:
        """Answer one request for a link held here."""
        raise FlottaError(
            f"unknown {self.kind.noun} RPC kind {kind!r}", status=500, key="internal_error"
        )

    # --- the owning side -------------------------------------------------------------------

    def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._beat(), name=f"{self.kind.noun}-heartbeat")

    async def stop(self) -> None:
        """Stop the heartbeat and withdraw every link this process announced."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        for key in list(self._owned):
            await self.release(key)

    async def claim(self, key: str, connected_at: datetime) -> None:
        """A link opened here: answer its RPC, announce it, evict older links elsewhere."""
        if self._owned.get(key) is None:
            # Marked before the first await, so a concurrent release sees the new claim.
            self._owned[key] = None
            await self._subscribe(key)
        await self.announce(key)
        takeover = orjson.dumps({"owner": self.process_id, "at_ms": epoch_ms(connected_at)})
        subject = self.kind.rpc_subject(key)
        await self._quietly(self.bus.publish(subject, TAKEOVER + takeover), "takeover", key)

    async def announce(self, key: str) -> None:
        """Record the link's current state as held by this process."""
        state = self.local.state_of(key)
        if state == "offline":
            return
        value = orjson.dumps({"owner": self.process_id, "state": state})
        presence = self.kind.presence_key(key)
        await self._quietly(self.kv.set(presence, value, self.presence_ttl_s), "presence", key)

    async def release(self, key: str) -> None:
        """The link closed: stop answering for it; drop its presence if still ours."""
        sub = self._owned.pop(key, None)
        if sub is not None:
            await self._quietly(sub.unsubscribe(), "unsubscribe", key)
        await self._quietly(self._drop_presence(key), "presence", key)

    async def _drop_presence(self, key: str) -> None:
        raw = await self.kv.get(self.kind.presence_key(key))
        # Another process may hold the newer link, or this one may have re-claimed it meanwhile.
        if raw is not None and _owner(raw) == self.process_id and key not in self._owned:
            await self.kv.delete(self.kind.presence_key(key))

    async def _subscribe(self, key: str) -> None:
        async def handle(msg: BusMessage) -> bytes | None:
            return await self._serve(key, msg.data)

        try:
            sub = await self.bus.subscribe(self.kind.rpc_subject(key), handle)
        except BusError as exc:
            log.warning("cannot answer for device; heartbeat retries", key=key, error=str(exc))
            return
        if key in self._owned:
            self._owned[key] = sub
        else:
            await self._quietly(sub.unsubscribe(), "unsubscribe", key)  # released meanwhile

    async def _beat(self) -> None:
        """Refresh presence well inside its TTL, and retry subscriptions that failed."""
        while True:
            await self.clock.sleep(self.presence_ttl_s / 3)
            for key in list(self._owned):
                await self._quietly(self._refresh(key), "heartbeat", key)

    async def _refresh(self, key: str) -> None:
        if key in self._owned and self._owned[key] is None:
            await self._subscribe(key)
        await self.announce(key)
        if key not in self._owned:
            # The link closed while we wrote: do not leave it looking online.
            await self._drop_presence(key)

    async def _serve(self, key: str, data: bytes) -> bytes | None:
        kind, body = data[:1], data[1:]
        if kind == TAKEOVER:
            await self._yield_to(key, body)
            return None
        try:
            return OK + await self._run(key, kind, body)
        except FlottaError as exc:
            return encode_error(exc)
        except Exception:
            log.exception("device RPC failed", device=self.kind.noun, key=key, kind=kind)
            return encode_error(FlottaError("internal error", status=500, key="internal_error"))

    async def _yield_to(self, key: str, body: bytes) -> None:
        newer = orjson.loads(body)
        if newer.get("owner") != self.process_id:
            await self.local.hand_over(key, int(newer["at_ms"]))

    async def _quietly(self, step: Awaitable[None], what: str, key: str) -> None:
        """Run a cluster bookkeeping step; its failure must never take a device link down."""
        try:
            await step
        except Exception as exc:
            log.warning(
                "cluster bookkeeping failed",
                step=what,
                device=self.kind.noun,
                key=key,
                error=str(exc),
            )

    # --- the calling side ------------------------------------------------------------------

    async def states(self, keys: Sequence[str]) -> list[str]:
        """The state of links held elsewhere, from their presence records."""
        try:
            raws = await self.kv.get_many([self.kind.presence_key(k) for k in keys])
        except Exception as exc:
            # Without presence nobody can vouch for the devices; offline is the honest answer.
            log.warning("presence unavailable", error=str(exc))
            return ["offline"] * len(keys)
        return [self._state_from(raw) for raw in raws]

    def _state_from(self, raw: bytes | None) -> str:
        if raw is None:
            return "offline"
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return "offline"
        if data.get("owner") == self.process_id:
            return "offline"  # ours, yet the hub has no link: it is closing
        state = data.get("state")
        return state if state in ("online", "asleep") else "offline"

    async def call(self, key: str, request: bytes, timeout_s: float) -> bytes | None:
        """The owner's answer, its error raised here, or None when no process holds the link."""
        try:
            reply = await self.bus.request(self.kind.rpc_subject(key), request, timeout_s)
        except NoResponders:
            return None
        except BusTimeout:
            raise self.kind.timed_out(f"no reply from {key} within {timeout_s:g} s") from None
        except BusError as exc:
            log.warning("bus unavailable", device=self.kind.noun, key=key, error=str(exc))
            raise self.kind.unavailable(
                f"the gateway holding the {self.kind.noun} is unreachable"
            ) from None
        if reply[:1] == OK:
            return reply[1:]
        raise decode_error(reply[1:])


def _owner(raw: bytes) -> str | None:
    try:
        owner = orjson.loads(raw).get("owner")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None
