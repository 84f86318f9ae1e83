"""Routing for vehicles: their requests over the cluster, on `flotta.device.<VIN>.rpc`.

Presence is `presence:<VIN>`; the machinery is `cluster.py`'s, shared with energy sites.
See docs/scaling.md.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from flotta.clock import Clock
from flotta.errors import DeviceTimeout, VehicleUnavailable
from flotta.gateway.cluster import RPC_MARGIN_S, ClusterLinks, LinkHolder, LinkKind
from flotta.ports.bus import Bus
from flotta.ports.kv import KV
from flotta.settings import GatewaySettings

VEHICLES = LinkKind("vehicle", "presence:", "flotta.device.", VehicleUnavailable, DeviceTimeout)

# Request kinds (first byte of a request; `T`, takeover, is the cluster's own).
COMMAND = b"C"  # RoutableMessage bytes -> the vehicle's reply bytes
WAKE = b"W"  # grace seconds (big-endian double) -> state, UTF-8
MIRROR = b"M"  # 1 if the vehicle must be online, else 0 -> JSON DeviceView

# Reading a mirror never waits on the vehicle, only on the owning process.
MIRROR_TIMEOUT_S = 2.0
MAX_WAKE_GRACE_S = 30.0


@dataclass(frozen=True, slots=True)
class DeviceView:
    """What the owning process knows of a connected vehicle, without asking the vehicle."""

    state: str
    mirror: dict[str, Any]
    config: dict[str, Any]
    firmware: str
    # Increases with every change to the mirror, so answers rendered from it can be reused.
    version: int = 0


class LocalDevices(LinkHolder, Protocol):
    """The hub's local-only operations, which the router runs on behalf of other processes."""

    def local_view(self, vin: str, require_online: bool) -> DeviceView: ...

    async def local_command(self, vin: str, routable_message: bytes) -> bytes: ...

    async def local_wake(self, vin: str, grace_s: float) -> str: ...


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


class Router(ClusterLinks[LocalDevices]):
    """Publishes this process's vehicles to the cluster and reaches the others' vehicles."""

    def __init__(
        self, bus: Bus, kv: KV, local: LocalDevices, settings: GatewaySettings, clock: Clock
    ) -> None:
        super().__init__(VEHICLES, bus, kv, local, settings.presence_ttl_s, clock)
        self.settings = settings

    async def _run(self, key: str, kind: bytes, body: bytes) -> bytes:
        if kind == COMMAND:
            return await self.local.local_command(key, body)
        if kind == WAKE:
            (grace_s,) = struct.unpack(">d", body)
            grace_s = min(max(0.0, grace_s), MAX_WAKE_GRACE_S)
            return (await self.local.local_wake(key, grace_s)).encode()
        if kind == MIRROR:
            return view_to_json(self.local.local_view(key, body == b"\x01"))
        return await super()._run(key, kind, body)

    async def command(self, vin: str, routable_message: bytes) -> bytes:
        timeout_s = self.settings.command_timeout_s + RPC_MARGIN_S
        reply = await self.call(vin, COMMAND + routable_message, timeout_s)
        if reply is None:
            raise VehicleUnavailable()
        return reply

    async def wake(self, vin: str, grace_s: float) -> str:
        reply = await self.call(vin, WAKE + struct.pack(">d", grace_s), grace_s + RPC_MARGIN_S)
        return "offline" if reply is None else reply.decode()

    async def view(self, vin: str, require_online: bool) -> DeviceView:
        flag = b"\x01" if require_online else b"\x00"
        reply = await self.call(vin, MIRROR + flag, MIRROR_TIMEOUT_S)
        if reply is None:
            raise VehicleUnavailable()
        return view_from_json(reply)
