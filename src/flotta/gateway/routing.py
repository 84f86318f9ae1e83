"""Cluster routing: which process holds a vehicle's link, and calls to it over the bus.

The owning process keeps `presence:<VIN>` = `{owner, state}` in kv, with a TTL its heartbeat
refreshes, and answers requests on `flotta.device.<VIN>.rpc`. A request is one kind byte and a
body; a reply is one status byte and a body. Errors travel as JSON naming their FlottaError
class, so the calling process raises what it would have raised with the link in hand.
See docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import struct
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import structlog

from flotta.clock import Clock
from flotta.errors import DeviceTimeout, FlottaError, VehicleUnavailable
from flotta.ports.bus import Bus, BusError, BusMessage, BusTimeout, NoResponders, Subscription
from flotta.ports.kv import KV
from flotta.settings import GatewaySettings

log = structlog.get_logger(__name__)

# Request kinds (first byte of a request).
COMMAND = b"C"  # RoutableMessage bytes -> the vehicle's reply bytes
WAKE = b"W"  # grace seconds (big-endian double) -> state, UTF-8
MIRROR = b"M"  # 1 if the vehicle must be online, else 0 -> JSON DeviceView
TAKEOVER = b"T"  # published, never answered: JSON {owner, at_ms} of a newer link
# Reply status (first byte of a reply).
OK = b"\x00"
FAILED = b"\x01"

# The owner's own timeouts fire first, so its typed error reaches the caller, not ours.
RPC_MARGIN_S = 2.0
# Reading a mirror never waits on the vehicle, only on the owning process.
MIRROR_TIMEOUT_S = 2.0
MAX_WAKE_GRACE_S = 30.0

_ERRORS: dict[str, type[FlottaError]] = {
    "VehicleUnavailable": VehicleUnavailable,
    "DeviceTimeout": DeviceTimeout,
}


def presence_key(vin: str) -> str:
    return f"presence:{vin}"


def rpc_subject(vin: str) -> str:
    return f"flotta.device.{vin}.rpc"


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class DeviceView:
    """What the owning process knows of a connected vehicle, without asking the vehicle."""

    state: str
    mirror: dict[str, Any]
    config: dict[str, Any]
    firmware: str
    # Increases with every change to the mirror, so answers rendered from it can be reused.
    version: int = 0


class LocalDevices(Protocol):
    """The hub's local-only operations, which the router runs on behalf of other processes."""

    def state_of(self, vin: str) -> str: ...

    def local_view(self, vin: str, require_online: bool) -> DeviceView: ...

    async def local_command(self, vin: str, routable_message: bytes) -> bytes: ...

    async def local_wake(self, vin: str, grace_s: float) -> str: ...

    async def hand_over(self, vin: str, newer_link_ms: int) -> None: ...


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


def view_to_json(view: DeviceView) -> bytes:
    return orjson.dumps(
        {
            "state": view.state,
            "mirror": view.mirror,
            "config": view.config,
            "fw": view.firmware,
            "v": view.version,
        }
    )


def view_from_json(data: bytes) -> DeviceView:
    raw = orjson.loads(data)
    return DeviceView(
        str(raw["state"]),
        dict(raw["mirror"]),
        dict(raw["config"]),
        str(raw["fw"]),
        int(raw.get("v", 0)),
    )


class Router:
    """Publishes this process's vehicles to the cluster and reaches the others' vehicles."""

    def __init__(
        self, bus: Bus, kv: KV, local: LocalDevices, settings: GatewaySettings, clock: Clock
    ) -> None:
        self.bus = bus
        self.kv = kv
        self.local = local
        self.settings = settings
        self.clock = clock
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # VINs whose link this process holds; None while (or if) the subscription failed.
        self._owned: dict[str, Subscription | None] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    # --- the owning side -------------------------------------------------------------------

    def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._beat(), name="presence-heartbeat")

    async def stop(self) -> None:
        """Stop the heartbeat and withdraw every vehicle this process announced."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        for vin in list(self._owned):
            await self.release(vin)

    async def claim(self, vin: str, connected_at: datetime) -> None:
        """A link opened here: answer the vehicle's RPC, announce it, evict older links."""
        if self._owned.get(vin) is None:
            # Marked before the first await, so a concurrent release sees the new claim.
            self._owned[vin] = None
            await self._subscribe(vin)
        await self.announce(vin)
        takeover = orjson.dumps({"owner": self.process_id, "at_ms": epoch_ms(connected_at)})
        await _quietly(self.bus.publish(rpc_subject(vin), TAKEOVER + takeover), "takeover", vin)

    async def announce(self, vin: str) -> None:
        """Record the vehicle's current power state as held by this process."""
        state = self.local.state_of(vin)
        if state == "offline":
            return
        value = orjson.dumps({"owner": self.process_id, "state": state})
        await _quietly(
            self.kv.set(presence_key(vin), value, self.settings.presence_ttl_s), "presence", vin
        )

    async def release(self, vin: str) -> None:
        """The link closed: stop answering for the vehicle; drop its presence if still ours."""
        sub = self._owned.pop(vin, None)
        if sub is not None:
            await _quietly(sub.unsubscribe(), "unsubscribe", vin)
        await _quietly(self._drop_presence(vin), "presence", vin)

    async def _drop_presence(self, vin: str) -> None:
        raw = await self.kv.get(presence_key(vin))
        # Another process may hold the newer link, or this one may have re-claimed it meanwhile.
        if raw is not None and _owner(raw) == self.process_id and vin not in self._owned:
            await self.kv.delete(presence_key(vin))

    async def _subscribe(self, vin: str) -> None:
        async def handle(msg: BusMessage) -> bytes | None:
            return await self._serve(vin, msg.data)

        try:
            sub = await self.bus.subscribe(rpc_subject(vin), handle)
        except BusError as exc:
            log.warning("cannot answer for vehicle; heartbeat retries", vin=vin, error=str(exc))
            return
        if vin in self._owned:
            self._owned[vin] = sub
        else:
            await _quietly(sub.unsubscribe(), "unsubscribe", vin)  # released meanwhile

    async def _beat(self) -> None:
        """Refresh presence well inside its TTL, and retry subscriptions that failed."""
        while True:
            await self.clock.sleep(self.settings.presence_ttl_s / 3)
            for vin in list(self._owned):
                await _quietly(self._refresh(vin), "heartbeat", vin)

    async def _refresh(self, vin: str) -> None:
        if vin in self._owned and self._owned[vin] is None:
            await self._subscribe(vin)
        await self.announce(vin)
        if vin not in self._owned:
            # The link closed while we wrote: do not leave it looking online.
            await self._drop_presence(vin)

    async def _serve(self, vin: str, data: bytes) -> bytes | None:
        kind, body = data[:1], data[1:]
        if kind == TAKEOVER:
            await self._yield_to(vin, body)
            return None
        try:
            return OK + await self._run(vin, kind, body)
        except FlottaError as exc:
            return encode_error(exc)
        except Exception:
            log.exception("vehicle RPC failed", vin=vin, kind=kind)
            return encode_error(FlottaError("internal error", status=500, key="internal_error"))

    async def _run(self, vin: str, kind: bytes, body: bytes) -> bytes:
        if kind == COMMAND:
            return await self.local.local_command(vin, body)
        if kind == WAKE:
            (grace_s,) = struct.unpack(">d", body)
            grace_s = min(max(0.0, grace_s), MAX_WAKE_GRACE_S)
            return (await self.local.local_wake(vin, grace_s)).encode()
        if kind == MIRROR:
            return view_to_json(self.local.local_view(vin, body == b"\x01"))
        raise FlottaError(f"unknown vehicle RPC kind {kind!r}", status=500, key="internal_error")

    async def _yield_to(self, vin: str, body: bytes) -> None:
        newer = orjson.loads(body)
        if newer.get("owner") != self.process_id:
            await self.local.hand_over(vin, int(newer["at_ms"]))

    # --- the calling side ------------------------------------------------------------------

    async def states(self, vins: Sequence[str]) -> list[str]:
        """Tesla's `state` of vehicles held elsewhere, from their presence records."""
        try:
            raws = await self.kv.get_many([presence_key(v) for v in vins])
        except Exception as exc:
            # Without presence nobody can vouch for the cars; offline is the honest answer.
            log.warning("presence unavailable", error=str(exc))
            return ["offline"] * len(vins)
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

    async def command(self, vin: str, routable_message: bytes) -> bytes:
        timeout_s = self.settings.command_timeout_s + RPC_MARGIN_S
        reply = await self._call(vin, COMMAND + routable_message, timeout_s)
        if reply is None:
            raise VehicleUnavailable()
        return reply

    async def wake(self, vin: str, grace_s: float) -> str:
        reply = await self._call(vin, WAKE + struct.pack(">d", grace_s), grace_s + RPC_MARGIN_S)
        return "offline" if reply is None else reply.decode()

    async def view(self, vin: str, require_online: bool) -> DeviceView:
        flag = b"\x01" if require_online else b"\x00"
        reply = await self._call(vin, MIRROR + flag, MIRROR_TIMEOUT_S)
        if reply is None:
            raise VehicleUnavailable()
        return view_from_json(reply)

    async def _call(self, vin: str, request: bytes, timeout_s: float) -> bytes | None:
        """The owner's answer, its error raised here, or None when no process holds the link."""
        try:
            reply = await self.bus.request(rpc_subject(vin), request, timeout_s)
        except NoResponders:
            return None
        except BusTimeout:
            raise DeviceTimeout(f"no reply from {vin} within {timeout_s:g} s") from None
        except BusError as exc:
            log.warning("bus unavailable", vin=vin, error=str(exc))
            raise VehicleUnavailable("the gateway holding the vehicle is unreachable") from None
        if reply[:1] == OK:
            return reply[1:]
        raise decode_error(reply[1:])


def _owner(raw: bytes) -> str | None:
    try:
        owner = orjson.loads(raw).get("owner")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None


async def _quietly(step: Awaitable[None], what: str, vin: str) -> None:
    """Run a cluster bookkeeping step; its failure must never take a device link down."""
    try:
        await step
    except Exception as exc:
        log.warning("cluster bookkeeping failed", step=what, vin=vin, error=str(exc))
