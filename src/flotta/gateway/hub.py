"""The device gateway: live links by VIN, their state mirrors, command routing and wakes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
import structlog
from google.protobuf.message import DecodeError
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.adapters.bus_memory import MemoryBus
from flotta.adapters.kv_memory import MemoryKV
from flotta.clock import Clock
from flotta.devices.directory import VehicleRecord
from flotta.errors import VehicleUnavailable
from flotta.gateway import protocol
from flotta.gateway.cluster import epoch_ms
from flotta.gateway.link_io import LinkClosed
from flotta.gateway.presence import PresenceRecorder
from flotta.gateway.protocol import Frame, FrameError, FrameType, PowerState
from flotta.gateway.routing import DeviceView, Router
from flotta.gateway.session import Closer, DeviceSession, Sender
from flotta.ports.bus import Bus
from flotta.ports.kv import KV
from flotta.settings import GatewaySettings
from flotta.vehicles.alerts import RECENT_ALERTS_KEPT, AlertDecodeError, decode_alerts
from flotta.vehicles.signals import dict_from_payload

log = structlog.get_logger(__name__)

Receive = Callable[[], Awaitable[bytes | str | None]]
FrameListener = Callable[[VehicleRecord, Frame], None]
LinkListener = Callable[[VehicleRecord], Awaitable[None]]
# Frames a device sends that the gateway hands to listeners (telemetry, streaming, configs).
STREAMED = frozenset(
    {
        FrameType.TELEMETRY,
        FrameType.ALERTS,
        FrameType.ERRORS,
        FrameType.STREAM,
        FrameType.TELEMETRY_CONFIG_ACK,
    }
)

_ALERTS = FrameType.ALERTS
HELLO_TIMEOUT_S = 10.0


class Hub:
    """Holds the live device sessions of this process; reaches the others' through a Router.

    A vehicle whose link is here is served from memory, with no serialisation; any other
    vehicle goes through kv (presence) and the bus (RPC to the owning process).
    """

    def __init__(
        self,
        settings: GatewaySettings,
        clock: Clock,
        presence: PresenceRecorder,
        *,
        bus: Bus | None = None,
        kv: KV | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.presence = presence
        self.sessions: dict[str, DeviceSession] = {}
        # Streamed frames (telemetry, alerts, records, config acks) go to the listeners of their
        # type, e.g. telemetry ingest; they run on the link's read loop, so they must be quick.
        self.frame_listeners: dict[FrameType, list[FrameListener]] = {kind: [] for kind in STREAMED}
        # Called once a device's link is up (after WELCOME), e.g. to send its telemetry configs.
        self.link_listeners: list[LinkListener] = []
        # Cars of one model send identical static configs: keep one copy (P4: memory per car).
        self._configs: dict[bytes, dict[str, Any]] = {}
        self.router = Router(bus or MemoryBus(), kv or MemoryKV(clock), self, settings, clock)

    def start(self) -> None:
        self.router.start()

    async def stop(self) -> None:
        await self.router.stop()

    # --- any vehicle, wherever its link is ---------------------------------------------------

    async def state(self, vin: str) -> str:
        """Tesla's vehicle `state` (online, asleep or offline), cluster-wide."""
        return (await self.states([vin]))[0]

    async def states(self, vins: Sequence[str]) -> list[str]:
        """States of many vehicles with one presence lookup for those held elsewhere."""
        remote = [v for v in vins if v not in self.sessions]
        found = dict(zip(remote, await self.router.states(remote), strict=True)) if remote else {}
        # A link may open or close here while we wait; this process's own view then wins.
        return [self.state_of(v) if v in self.sessions else found.get(v, "offline") for v in vins]

    async def command(self, vin: str, routable_message: bytes) -> bytes:
        """Route a RoutableMessage to the vehicle and return its reply's bytes."""
        if vin in self.sessions:
            return await self.local_command(vin, routable_message)
        return await self.router.command(vin, routable_message)

    async def wake(self, vin: str, grace_s: float) -> str:
        """Wake the vehicle if asleep; its state after up to `grace_s` seconds."""
        if vin in self.sessions:
            return await self.local_wake(vin, grace_s)
        return await self.router.wake(vin, grace_s)

    async def view(self, vin: str, *, require_online: bool = True) -> DeviceView:
        """The connected vehicle's state mirror and config; 408 when offline (or asleep)."""
        if vin in self.sessions:
            return self.local_view(vin, require_online)
        return await self.router.view(vin, require_online)

    async def mirror_of(self, vin: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """An online vehicle's live state mirror and static config, or Tesla's 408."""
        view = await self.view(vin)
        return view.mirror, view.config

    # --- vehicles linked to this process -------------------------------------------------------

    def state_of(self, vin: str) -> str:
        """This process's view: online or asleep if the link is here, else offline."""
        session = self.sessions.get(vin)
        if session is None:
            return "offline"
        return "online" if session.power == PowerState.ONLINE else "asleep"

    def online_session(self, vin: str) -> DeviceSession:
        """The local session of an online vehicle, or Tesla's 408."""
        session = self.sessions.get(vin)
        if session is None or session.power != PowerState.ONLINE:
            raise VehicleUnavailable()
        return session

    def local_view(self, vin: str, require_online: bool) -> DeviceView:
        session = self.online_session(vin) if require_online else self.sessions.get(vin)
        if session is None:
            raise VehicleUnavailable()
        # The live dicts themselves: rendering only reads them, so copying would be waste.
        return DeviceView(
            self.state_of(vin),
            session.mirror,
            session.config,
            session.firmware,
            session.mirror_version,
        )

    async def local_command(self, vin: str, routable_message: bytes) -> bytes:
        session = self.online_session(vin)
        reply = await session.request(
            FrameType.COMMAND, routable_message, self.settings.command_timeout_s
        )
        return reply.body

    async def local_wake(self, vin: str, grace_s: float) -> str:
        session = self.sessions.get(vin)
        if session is None:
            return "offline"
        await session.wake(grace_s)
        return self.state_of(vin)

    async def hand_over(self, vin: str, newer_link_ms: int) -> None:
        """Another process accepted a newer link for `vin`: drop ours, as a local one would."""
        session = self.sessions.get(vin)
        if session is None or epoch_ms(session.connected_at) > newer_link_ms:
            return
        session.close()
        with contextlib.suppress(Exception):
            await session.close_link(4409, "replaced by a newer connection")

    async def serve(
        self, record: VehicleRecord, receive: Receive, send: Sender, close: Closer, peer: str
    ) -> None:
        """Run one device link from its HELLO to its end, which a peer gone mid-send is too
        (the send raised LinkClosed, or the session's VehicleUnavailable made of it)."""
        with contextlib.suppress(LinkClosed, VehicleUnavailable):
            await self._serve(record, receive, send, close, peer)

    async def _serve(
        self, record: VehicleRecord, receive: Receive, send: Sender, close: Closer, peer: str
    ) -> None:
        session = DeviceSession(record, send, close, self.clock.now())
        try:
            hello = await asyncio.wait_for(receive(), HELLO_TIMEOUT_S)
            self._accept_hello(session, hello)
        except (TimeoutError, FrameError) as exc:
            await send(protocol.error_frame("hello_required", str(exc) or "no HELLO in time"))
            await close(1008, "expected a HELLO frame")
            return
        previous = self.sessions.get(record.vin)
        if previous is not None:
            # One link per VIN: the newer connection wins, the older one is told why.
            previous.close()
            with contextlib.suppress(Exception):
                await previous.close_link(4409, "replaced by a newer connection")
        self.sessions[record.vin] = session
        self.presence.record(record.id, "connected", self.clock.now(), peer)
        try:
            # Announced before WELCOME, so once the device sees it every process can reach it.
            await self.router.claim(record.vin, session.connected_at)
            await send(protocol.encode_json(FrameType.WELCOME, self._welcome()))
            for listener in self.link_listeners:
                await listener(record)
            await self._receive_loop(session, receive)
        finally:
            session.close()
            if self.sessions.get(record.vin) is session:
                del self.sessions[record.vin]
                self.presence.record(record.id, "disconnected", self.clock.now(), peer)
                await self.router.release(record.vin)

    def _welcome(self) -> dict[str, Any]:
        return {
            "server_time": self.clock.now().isoformat(),
            "max_frame_bytes": self.settings.max_frame_bytes,
            "command_timeout_s": self.settings.command_timeout_s,
        }

    def _accept_hello(self, session: DeviceSession, data: bytes | str | None) -> None:
        if not isinstance(data, bytes):
            raise FrameError("the first frame must be a binary HELLO")
        frame = protocol.decode(data, self.settings.max_frame_bytes)
        if frame.type != FrameType.HELLO:
            raise FrameError(f"the first frame must be HELLO, not {frame.type.name}")
        hello = protocol.decode_json(frame)
        power = hello.get("power", "online")
        if power not in ("online", "asleep"):
            raise FrameError("HELLO power must be 'online' or 'asleep'")
        config = hello.get("config", {})
        if not isinstance(config, dict):
            raise FrameError("HELLO config must be a JSON object")
        session.firmware = str(hello.get("firmware", ""))[:64]
        session.batched_acks = hello.get("stream_acks") == "batched"
        key = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
        session.config = self._configs.setdefault(key, config)
        session.power = PowerState.ONLINE if power == "online" else PowerState.ASLEEP
        session.set_power(session.power)

    async def _receive_loop(self, session: DeviceSession, receive: Receive) -> None:
        while True:
            data = await receive()
            if data is None:
                return
            if isinstance(data, str):
                await session.send(protocol.error_frame("binary_only", "frames must be binary"))
                continue
            power = session.power
            try:
                frame = protocol.decode(data, self.settings.max_frame_bytes)
                self._dispatch(session, frame)
            except FrameError as exc:
                await session.send(protocol.error_frame("bad_frame", str(exc)))
            if session.power != power:
                await self.router.announce(session.vin)

    def _dispatch(self, session: DeviceSession, frame: Frame) -> None:
        kind = frame.type
        # Streamed frames first, by one dict lookup: most frames are records, and each
        # `FrameType.X` read costs about as much as the lookup on Python 3.11.
        listeners = self.frame_listeners.get(kind)
        if listeners is not None:
            if kind is _ALERTS:
                self._remember_alerts(session, frame)
            for listener in listeners:
                listener(session.record, frame)
        elif kind == FrameType.STATE:
            self._merge_state(session, frame)
        elif kind == FrameType.REPLY:
            if not session.resolve(frame):
                log.debug("late reply dropped", vin=session.vin, id=frame.correlation_id)
        elif kind == FrameType.PRESENCE:
            self._presence(session, frame)
        elif kind == FrameType.ERROR:
            log.warning("device reported an error", vin=session.vin, body=frame.body[:200])
        else:
            raise FrameError(f"a device may not send {kind.name} frames")

    async def send_to(self, vin: str, data: bytes) -> bool:
        """Send a frame to a device linked to this process; False when its link is elsewhere
        or gone (the caller reaches other processes through the bus)."""
        session = self.sessions.get(vin)
        if session is None or session.closed:
            return False
        try:
            await session.send(data)
        except VehicleUnavailable:  # the link closed under us: as if it were never here
            return False
        return True

    def _merge_state(self, session: DeviceSession, frame: Frame) -> None:
        payload = vehicle_data_pb2.Payload()
        try:
            payload.ParseFromString(frame.body)
        except DecodeError as exc:
            raise FrameError(f"STATE body is not a telemetry Payload: {exc}") from exc
        session.mirror.update(dict_from_payload(payload))
        session.mirror_version += 1
        session.mirror_updated_ms = int(self.clock.now().timestamp() * 1000)

    def _remember_alerts(self, session: DeviceSession, frame: Frame) -> None:
        """Newest first, bounded; kept with the mirror so any process can answer recent_alerts."""
        try:
            fresh = decode_alerts(frame.body)
        except AlertDecodeError as exc:
            raise FrameError(str(exc)) from exc
        kept = session.mirror.get("Alerts")
        history = kept if isinstance(kept, list) else []
        session.mirror["Alerts"] = (list(reversed(fresh)) + history)[:RECENT_ALERTS_KEPT]
        session.mirror_version += 1

    def _presence(self, session: DeviceSession, frame: Frame) -> None:
        if len(frame.body) != 1 or frame.body[0] not in (p.value for p in PowerState):
            raise FrameError("PRESENCE body must be one byte: 1 online or 2 asleep")
        power = PowerState(frame.body[0])
        if session.set_power(power):
            kind = "online" if power == PowerState.ONLINE else "asleep"
            self.presence.record(session.record.id, kind, self.clock.now())
