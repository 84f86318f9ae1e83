"""A simulated vehicle as a real gateway client: it connects, reports state and obeys commands."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
import websockets
from google.protobuf.message import DecodeError
from tesla_protocol.command import (
    car_server_pb2,
    keys_pb2,
    universal_message_pb2,
    vcsec_pb2,
)
from websockets.asyncio.client import ClientConnection

from flotta.clock import Clock
from flotta.gateway import protocol
from flotta.gateway.protocol import Frame, FrameType, PowerState
from flotta.sim.power import PowerManager
from flotta.sim.reconnect import stay_linked
from flotta.sim.telemetry_stream import HELLO_STREAM_ACKS, TelemetryStreams
from flotta.sim.vcp import ImmediateReply, KeyWhitelist, VehicleVerifier
from flotta.sim.vehicle_state import SimVehicle
from flotta.vehicles.alerts import encode_alerts
from flotta.vehicles.signals import payload_from_dict

log = structlog.get_logger(__name__)

INFOTAINMENT = universal_message_pb2.DOMAIN_INFOTAINMENT
VCSEC = universal_message_pb2.DOMAIN_VEHICLE_SECURITY


@dataclass
class DeviceOptions:
    url: str
    tick_s: float = 1.0  # wall seconds between physics/state ticks
    max_frame_bytes: int = 1_000_000
    reconnect_max_s: float = 30.0  # fleet-telemetry's cap on reconnect back-off


@dataclass
class SimDevice:
    """One vehicle: its physics, its power state, its keys and its link to the gateway."""

    credential: str
    vehicle: SimVehicle
    power: PowerManager
    verifiers: dict[int, VehicleVerifier]
    whitelist: KeyWhitelist
    clock: Clock
    options: DeviceOptions
    rng: random.Random = field(default_factory=random.Random)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _ws: ClientConnection | None = None
    _wake_task: asyncio.Task[None] | None = None
    on_frame: Callable[[Frame], None] | None = None
    telemetry: TelemetryStreams = field(init=False)

    def __post_init__(self) -> None:
        # Streams read the same signal map STATE frames come from, so both views agree.
        self.telemetry = TelemetryStreams(
            self.vin,
            self.clock,
            self._send,
            lambda: self.vehicle.sig,
            lambda: self.power.accepts_commands,
        )

    @property
    def vin(self) -> str:
        return self.vehicle.vin

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting with capped exponential back-off."""
        await stay_linked(
            self._session,
            self._dropped,
            rng=self.rng,
            max_delay_s=self.options.reconnect_max_s,
            vin=self.vin,
        )

    def _dropped(self) -> None:
        self.connected.clear()
        self._ws = None

    async def _session(self) -> None:
        headers = {"Authorization": f"Bearer {self.credential}"}
        async with websockets.connect(
            self.options.url,
            additional_headers=headers,
            max_size=self.options.max_frame_bytes,
            compression=None,
        ) as ws:
            self._ws = ws
            await ws.send(protocol.encode_json(FrameType.HELLO, self._hello()))
            await self._send_state(full=True)
            self.connected.set()
            ticker = asyncio.create_task(self._tick_loop(), name=f"tick-{self.vin}")
            await self.telemetry.linked()
            try:
                async for data in ws:
                    if isinstance(data, bytes):
                        await self._on_frame(protocol.decode(data, self.options.max_frame_bytes))
            finally:
                self.telemetry.unlinked()
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    def _hello(self) -> dict[str, Any]:
        return {
            "firmware": self.vehicle.model.firmware,
            "power": "online" if self.power.accepts_commands else "asleep",
            "config": self.vehicle.config(),
            "client": "flotta-sim/0.1",
            **HELLO_STREAM_ACKS,  # it reads batched acks: fewer frames for a streaming car
        }

    async def _send(self, data: bytes) -> None:
        if self._ws is not None:
            await self._ws.send(data)

    async def _send_state(self, *, full: bool = False) -> None:
        values = self.vehicle.snapshot() if full else self.vehicle.changes()
        if full:
            self.vehicle.changes()  # the snapshot covers everything pending
        if values:
            payload = payload_from_dict(self.vin, self.clock.now(), values)
            await self._send(protocol.encode(FrameType.STATE, payload.SerializeToString()))

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.tick_s)
            await self.tick()

    async def tick(self) -> None:
        """Advance physics and the sleep timer; report changes and power transitions."""
        now = self.clock.now()
        if self.power.accepts_commands:
            self.vehicle.advance(now)
            # Activity inside the step (a charge that just finished) postpones sleep, and
            # what happened is reported before the car may doze off.
            self.power.touch(self.vehicle.last_activity)
            await self._send_state()
            await self._send_alerts()
        for transition in self.power.tick(now, busy=self.vehicle.busy):
            await self._report_power(transition)

    async def _send_alerts(self) -> None:
        alerts, self.vehicle.pending_alerts = self.vehicle.pending_alerts, []
        if alerts:
            await self._send(protocol.encode(FrameType.ALERTS, encode_alerts(self.vin, alerts)))

    async def _report_power(self, state: str) -> None:
        if state == "asleep":
            await self._send(protocol.encode(FrameType.PRESENCE, bytes([PowerState.ASLEEP])))
        elif state == "online":
            self.vehicle.advance(self.clock.now())
            await self._send_state(full=True)
            await self._send(protocol.encode(FrameType.PRESENCE, bytes([PowerState.ONLINE])))

    async def _on_frame(self, frame: Frame) -> None:
        if self.on_frame is not None:
            self.on_frame(frame)
        if await self.telemetry.handle(frame):
            return
        if frame.type == FrameType.WAKE:
            self._start_wake()
        elif frame.type == FrameType.COMMAND:
            if not self.power.accepts_commands:
                return  # an asleep car answers nothing but a wake
            reply = self.handle_command(frame.body)
            await self._send_state()
            await self._send(protocol.encode(FrameType.REPLY, reply, frame.correlation_id))
        elif frame.type == FrameType.ERROR:
            log.warning("gateway reported an error", vin=self.vin, body=frame.body[:200])

    def _start_wake(self) -> None:
        if self.power.accepts_commands or (self._wake_task and not self._wake_task.done()):
            return
        online_at = self.power.request_wake(self.clock.now())
        delay = max(0.0, (online_at - self.clock.now()).total_seconds())
        self._wake_task = asyncio.create_task(self._finish_wake(delay), name=f"wake-{self.vin}")

    async def _finish_wake(self, delay_s: float) -> None:
        await self.clock.sleep(delay_s)
        for transition in self.power.tick(self.clock.now(), busy=self.vehicle.busy):
            await self._report_power(transition)

    def handle_command(self, data: bytes) -> bytes:
        """Execute one RoutableMessage and return the reply's bytes."""
        request = universal_message_pb2.RoutableMessage()
        try:
            request.ParseFromString(data)
        except DecodeError:
            return _fault_reply(request, universal_message_pb2.MESSAGEFAULT_ERROR_DECODING)
        domain = request.to_destination.domain
        self.power.touch(self.clock.now())
        if domain not in (INFOTAINMENT, VCSEC):
            return _fault_reply(request, universal_message_pb2.MESSAGEFAULT_ERROR_INVALID_DOMAINS)
        if not request.HasField("signature_data") and request.WhichOneof("payload") == (
            "protobuf_message_as_bytes"
        ):
            # Unsigned messages arrive only over the authenticated gateway link (REST path).
            payload = self._execute(domain, request.protobuf_message_as_bytes)
            return _plain_reply(request, domain, payload)
        return self._signed(domain, request)

    async def sleep_now(self) -> None:
        """Put the car to sleep now (scenarios and tests); it still answers a wake."""
        for transition in self.power.sleep_now(self.clock.now()):
            await self._report_power(transition)

    def pair_key(self, public_key: bytes, role: int = keys_pb2.ROLE_OWNER) -> None:
        """Enrol a client key on this car, as an owner does with the phone app (pairing)."""
        self.whitelist.enroll(public_key, role)

    def _signed(self, domain: int, request: universal_message_pb2.RoutableMessage) -> bytes:
        verifier = self.verifiers[domain]
        outcome = verifier.handle(request)
        if isinstance(outcome, ImmediateReply):
            return bytes(outcome.message.SerializeToString())
        payload = self._execute(domain, outcome.payload)
        return bytes(verifier.build_reply(request, payload).SerializeToString())

    def _execute(self, domain: int, payload: bytes) -> bytes:
        try:
            if domain == VCSEC:
                message = vcsec_pb2.UnsignedMessage()
                message.ParseFromString(payload)
                return bytes(self.vehicle.execute_vcsec(message).SerializeToString())
            action = car_server_pb2.Action()
            action.ParseFromString(payload)
            return bytes(self.vehicle.execute(action).SerializeToString())
        except DecodeError:
            response = car_server_pb2.Response()
            response.actionStatus.result = car_server_pb2.OPERATIONSTATUS_ERROR
            response.actionStatus.result_reason.plain_text = "decoding"
            return bytes(response.SerializeToString())


def _swap(
    request: universal_message_pb2.RoutableMessage, domain: int
) -> universal_message_pb2.RoutableMessage:
    reply = universal_message_pb2.RoutableMessage()
    reply.to_destination.CopyFrom(request.from_destination)
    reply.from_destination.domain = domain  # type: ignore[assignment]
    reply.request_uuid = request.uuid
    return reply


def _plain_reply(
    request: universal_message_pb2.RoutableMessage, domain: int, payload: bytes
) -> bytes:
    reply = _swap(request, domain)
    reply.protobuf_message_as_bytes = payload
    return bytes(reply.SerializeToString())


def _fault_reply(request: universal_message_pb2.RoutableMessage, fault: int) -> bytes:
    reply = _swap(request, request.to_destination.domain)
    reply.signedMessageStatus.operation_status = universal_message_pb2.OPERATIONSTATUS_ERROR
    reply.signedMessageStatus.signed_message_fault = fault  # type: ignore[assignment]
    return bytes(reply.SerializeToString())
