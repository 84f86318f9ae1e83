"""The device gateway: live links by VIN, their state mirrors, command routing and wakes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from google.protobuf.message import DecodeError
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.clock import Clock
from flotta.devices.directory import VehicleRecord
from flotta.errors import VehicleUnavailable
from flotta.gateway import protocol
from flotta.gateway.presence import PresenceRecorder
from flotta.gateway.protocol import Frame, FrameError, FrameType, PowerState
from flotta.gateway.session import Closer, DeviceSession, Sender
from flotta.settings import GatewaySettings
from flotta.vehicles.signals import dict_from_payload

log = structlog.get_logger(__name__)

Receive = Callable[[], Awaitable[bytes | str | None]]
FrameListener = Callable[[VehicleRecord, Frame], None]

HELLO_TIMEOUT_S = 10.0


class Hub:
    """Holds every live device session of this process."""

    def __init__(self, settings: GatewaySettings, clock: Clock, presence: PresenceRecorder) -> None:
        self.settings = settings
        self.clock = clock
        self.presence = presence
        self.sessions: dict[str, DeviceSession] = {}
        # Streaming frames (telemetry, alerts, errors) go to these, e.g. the telemetry service.
        self.stream_listeners: list[FrameListener] = []

    def state_of(self, vin: str) -> str:
        """Tesla's vehicle `state`: online, asleep or offline."""
        session = self.sessions.get(vin)
        if session is None:
            return "offline"
        return "online" if session.power == PowerState.ONLINE else "asleep"

    def online_session(self, vin: str) -> DeviceSession:
        """The session of an online vehicle, or Tesla's 408."""
        session = self.sessions.get(vin)
        if session is None or session.power != PowerState.ONLINE:
            raise VehicleUnavailable()
        return session

    async def command(self, vin: str, routable_message: bytes) -> bytes:
        """Route a RoutableMessage to the vehicle and return its reply's bytes."""
        session = self.online_session(vin)
        reply = await session.request(
            FrameType.COMMAND, routable_message, self.settings.command_timeout_s
        )
        return reply.body

    async def wake(self, vin: str, grace_s: float) -> str:
        session = self.sessions.get(vin)
        if session is None:
            return "offline"
        await session.wake(grace_s)
        return self.state_of(vin)

    async def serve(
        self, record: VehicleRecord, receive: Receive, send: Sender, close: Closer, peer: str
    ) -> None:
        """Run one device link from its HELLO to its end."""
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
        await send(protocol.encode_json(FrameType.WELCOME, self._welcome()))
        try:
            await self._receive_loop(session, receive)
        finally:
            session.close()
            if self.sessions.get(record.vin) is session:
                del self.sessions[record.vin]
                self.presence.record(record.id, "disconnected", self.clock.now(), peer)

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
        session.config = config
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
            try:
                frame = protocol.decode(data, self.settings.max_frame_bytes)
                self._dispatch(session, frame)
            except FrameError as exc:
                await session.send(protocol.error_frame("bad_frame", str(exc)))

    def _dispatch(self, session: DeviceSession, frame: Frame) -> None:
        kind = frame.type
        if kind == FrameType.STATE:
            self._merge_state(session, frame)
        elif kind == FrameType.REPLY:
            if not session.resolve(frame):
                log.debug("late reply dropped", vin=session.vin, id=frame.correlation_id)
        elif kind == FrameType.PRESENCE:
            self._presence(session, frame)
        elif kind in (FrameType.TELEMETRY, FrameType.ALERTS, FrameType.ERRORS):
            for listener in self.stream_listeners:
                listener(session.record, frame)
        elif kind == FrameType.ERROR:
            log.warning("device reported an error", vin=session.vin, body=frame.body[:200])
        else:
            raise FrameError(f"a device may not send {kind.name} frames")

    def _merge_state(self, session: DeviceSession, frame: Frame) -> None:
        payload = vehicle_data_pb2.Payload()
        try:
            payload.ParseFromString(frame.body)
        except DecodeError as exc:
            raise FrameError(f"STATE body is not a telemetry Payload: {exc}") from exc
        session.mirror.update(dict_from_payload(payload))
        session.mirror_updated_ms = int(self.clock.now().timestamp() * 1000)

    def _presence(self, session: DeviceSession, frame: Frame) -> None:
        if len(frame.body) != 1 or frame.body[0] not in (p.value for p in PowerState):
            raise FrameError("PRESENCE body must be one byte: 1 online or 2 asleep")
        power = PowerState(frame.body[0])
        if session.set_power(power):
            kind = "online" if power == PowerState.ONLINE else "asleep"
            self.presence.record(session.record.id, kind, self.clock.now())
