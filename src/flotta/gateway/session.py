"""One connected device: its power state, live state mirror and in-flight requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from flotta.devices.directory import VehicleRecord
from flotta.errors import DeviceTimeout, VehicleUnavailable
from flotta.gateway.link_io import LinkClosed
from flotta.gateway.protocol import MAX_CORRELATION_ID, Frame, FrameType, PowerState, encode

Sender = Callable[[bytes], Awaitable[None]]
Closer = Callable[[int, str], Awaitable[None]]


class DeviceSession:
    """The gateway's view of one live link; requests are matched to replies by correlation id."""

    # One of these per connected car: slots keep it small (P4 counts bytes per vehicle).
    __slots__ = (
        "_next_id",
        "_online",
        "_pending",
        "_send",
        "_wake_sent",
        "batched_acks",
        "close_link",
        "closed",
        "config",
        "connected_at",
        "firmware",
        "mirror",
        "mirror_updated_ms",
        "mirror_version",
        "power",
        "record",
    )

    def __init__(
        self, record: VehicleRecord, send: Sender, close_link: Closer, connected_at: datetime
    ) -> None:
        self.record = record
        self._send = send
        self.close_link = close_link
        self.connected_at = connected_at
        self.power = PowerState.ONLINE
        self.mirror: dict[str, Any] = {}
        self.config: dict[str, Any] = {}
        self.firmware = ""
        self.mirror_updated_ms = 0
        self.mirror_version = 0
        self.closed = False
        self._online = asyncio.Event()
        self._online.set()
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._next_id = 0
        self._wake_sent = False
        # HELLO said "stream_acks": "batched": STREAM records are acked with STREAM_ACKS frames.
        self.batched_acks = False

    @property
    def vin(self) -> str:
        return self.record.vin

    def set_power(self, power: PowerState) -> bool:
        """Record a power change reported by the device; True when it changed."""
        if power == self.power:
            return False
        self.power = power
        if power == PowerState.ONLINE:
            self._wake_sent = False
            self._online.set()
        else:
            self._online.clear()
        return True

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise VehicleUnavailable()
        try:
            await self._send(data)
        except LinkClosed:
            raise VehicleUnavailable("the vehicle disconnected") from None

    def _allocate_id(self) -> int:
        self._next_id = self._next_id % MAX_CORRELATION_ID + 1
        return self._next_id

    async def request(self, frame_type: FrameType, body: bytes, timeout_s: float) -> Frame:
        """Send a frame and wait for the device's reply with the same correlation id."""
        if self.power != PowerState.ONLINE:
            raise VehicleUnavailable()
        correlation_id = self._allocate_id()
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            await self.send(encode(frame_type, body, correlation_id))
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise DeviceTimeout(f"no reply from {self.vin} within {timeout_s:g} s") from None
        finally:
            self._pending.pop(correlation_id, None)

    def resolve(self, frame: Frame) -> bool:
        """Hand a reply to its waiting request; False if nobody waits (late or unknown id)."""
        future = self._pending.get(frame.correlation_id)
        if future is None or future.done():
            return False
        future.set_result(frame)
        return True

    async def wake(self, grace_s: float) -> PowerState:
        """Ask a sleeping device to wake (once) and wait up to `grace_s` for it."""
        if self.power == PowerState.ASLEEP and not self._wake_sent:
            self._wake_sent = True
            await self.send(encode(FrameType.WAKE))
        if grace_s > 0 and self.power != PowerState.ONLINE:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._online.wait(), grace_s)
        return self.power

    def close(self) -> None:
        """Fail every waiting request: the link is gone."""
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(VehicleUnavailable("the vehicle disconnected"))
        self._pending.clear()
