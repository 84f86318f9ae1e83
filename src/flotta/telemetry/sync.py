"""Keep cars' streaming configs in step with the database, over their device links.

On each link the car is sent every config for its VIN, then the list of config ids it may keep
(so a config deleted while it was offline stops too). A create, replace or delete in any process
reaches the process holding the link: directly through the hub, else over the bus subject every
process subscribes to. The car's TELEMETRY_CONFIG_ACK marks a config synced or in error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.clock import Clock
from flotta.devices.directory import VehicleRecord
from flotta.gateway import protocol
from flotta.gateway.hub import Hub
from flotta.gateway.protocol import Frame, FrameType
from flotta.ports.bus import Bus, BusError, BusMessage, Subscription
from flotta.ports.kv import KV
from flotta.telemetry import service
from flotta.telemetry.repository import TelemetryRepository
from flotta.telemetry.service import ConfigState

log = structlog.get_logger(__name__)

SUBJECT_PREFIX = "telemetry.config."
"""`telemetry.config.<VIN>`: a frame for that car, for whichever process holds its link."""
RECONCILE_ID = 0
"""TELEMETRY_CONFIG_REMOVED with this correlation id carries `{"keep": [config ids]}`."""
BUSY_TTL_S = 60.0
"""A crashed request frees its app's config slot after this long."""


class ConfigBusy(Exception):
    """Another fleet_telemetry_config call of the same app is still running."""


def config_frame(state: ConfigState) -> bytes:
    """TELEMETRY_CONFIG for one stored config (correlation id = config id)."""
    body = {"client_id": state.client_id, "version": state.version, "config": state.config}
    return protocol.encode_json(FrameType.TELEMETRY_CONFIG, body, state.id)


def removed_frame(config_id: int) -> bytes:
    """TELEMETRY_CONFIG_REMOVED: the car stops streaming for that config."""
    return protocol.encode(FrameType.TELEMETRY_CONFIG_REMOVED, b"", config_id)


def reconcile_frame(keep: Iterable[int]) -> bytes:
    """TELEMETRY_CONFIG_REMOVED (id 0): drop every config not listed."""
    body = orjson.dumps({"keep": sorted(keep)})
    return protocol.encode(FrameType.TELEMETRY_CONFIG_REMOVED, body, RECONCILE_ID)


class TelemetrySync:
    """Sends configs to cars and records their acks; one per process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        hub: Hub,
        bus: Bus,
        kv: KV,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.hub = hub
        self.bus = bus
        self.kv = kv
        self.clock = clock
        self._subscription: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Called after configs are removed, e.g. so ingest stops trusting its cached configs.
        self.removal_listeners: list[Callable[[], None]] = []

    async def start(self) -> None:
        """Listen to links, acks and other processes' pushes."""
        self.hub.link_listeners.append(self.on_link)
        self.hub.frame_listeners[FrameType.TELEMETRY_CONFIG_ACK].append(self.on_frame)
        self._subscription = await self.bus.subscribe(SUBJECT_PREFIX + "*", self._on_bus)

    async def stop(self) -> None:
        """Stop listening and let pending ack writes finish (bounded)."""
        with contextlib.suppress(ValueError):
            self.hub.link_listeners.remove(self.on_link)
        with contextlib.suppress(ValueError):
            self.hub.frame_listeners[FrameType.TELEMETRY_CONFIG_ACK].remove(self.on_frame)
        if self._subscription is not None:
            with contextlib.suppress(BusError):
                await self._subscription.unsubscribe()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)

    # --- towards cars ------------------------------------------------------------------------

    async def push(self, vin: str, frame: bytes) -> None:
        """Deliver a frame to the car wherever its link is; an offline car syncs on connect."""
        if await self.hub.send_to(vin, frame):
            return
        try:
            await self.bus.publish(SUBJECT_PREFIX + vin, frame)
        except BusError as exc:
            log.warning(
                "telemetry config not forwarded; the car syncs on connect", vin=vin, error=str(exc)
            )

    async def push_configs(self, states: Iterable[ConfigState]) -> None:
        for state in states:
            await self.push(state.vin, config_frame(state))

    async def push_removed(self, states: Iterable[ConfigState]) -> None:
        """Tell the cars, and this process's ingest, that these configs are gone."""
        for state in states:
            await self.push(state.vin, removed_frame(state.id))
        for listener in self.removal_listeners:
            listener()

    async def _on_bus(self, message: BusMessage) -> bytes | None:
        vin = message.subject.rsplit(".", 1)[-1]
        await self.hub.send_to(vin, message.data)  # False: the link is in another process
        return None

    async def on_link(self, record: VehicleRecord) -> None:
        """A car connected here: send its configs, then which ones it may keep."""
        async with self.sessions() as session:
            rows = await TelemetryRepository(session).configs_on(record.vin)
            states = [ConfigState.of(row) for row in rows]
        for state in states:
            await self.hub.send_to(record.vin, config_frame(state))
        await self.hub.send_to(record.vin, reconcile_frame(state.id for state in states))

    # --- from cars -----------------------------------------------------------------------------

    def on_frame(self, record: VehicleRecord, frame: Frame) -> None:
        """Hub listener of config acks (sync): a task writes each, so the link never waits."""
        task = asyncio.create_task(self._record_ack(record.vin, frame), name="telemetry-ack")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_ack(self, vin: str, frame: Frame) -> None:
        try:
            body = protocol.decode_json(frame)
        except protocol.FrameError as exc:
            log.warning("unreadable telemetry config ack", vin=vin, error=str(exc))
            return
        version, ok = body.get("version"), body.get("ok")
        if not isinstance(version, int) or not isinstance(ok, bool):
            log.warning("telemetry config ack without version/ok", vin=vin)
            return
        error = None if ok else str(body.get("error") or "the car refused the config")[:2000]
        async with self.sessions() as session, session.begin():
            await service.record_ack(
                session,
                config_id=frame.correlation_id,
                vin=vin,
                version=version,
                error=error,
                now=self.clock.now(),
            )

    # --- one config call per app at a time (reference §7) ---------------------------------------

    async def acquire(self, client_id: str) -> None:
        """Claim the app's config slot cluster-wide; ConfigBusy when another call holds it."""
        # Only the first caller sees 1; refused callers leave the count up until the holder
        # deletes the key (a crash: the TTL), so no decrement can race a release.
        if await self.kv.incr(_busy_key(client_id), 1, ttl_s=BUSY_TTL_S) > 1:
            raise ConfigBusy(client_id)

    async def release(self, client_id: str) -> None:
        """Free the slot `acquire` claimed."""
        await self.kv.delete(_busy_key(client_id))


def _busy_key(client_id: str) -> str:
    return f"telemetry:config-busy:{client_id}"
