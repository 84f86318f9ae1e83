"""A simulated car's Fleet Telemetry client: configs from the gateway, STREAM frames back.

Values come from the same signal map the car's STATE frames (and so `vehicle_data`) are built
from. Every 500 ms of simulated time one `TelemetryEmitter` per config decides what goes out
(fleet-api.md §9.2); with `delivery_policy: latest` unacknowledged records are re-sent when the
link comes back. A record's txid is its emitter's random prefix and the record's number, so no
txid repeats across config versions, reconnects or simulator restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import structlog

from flotta.clock import Clock
from flotta.gateway import protocol
from flotta.gateway.protocol import Frame, FrameError, FrameType
from flotta.telemetry import wire
from flotta.telemetry.emitter import (
    COLLECT_PERIOD_S,
    DeliveryPolicy,
    FieldRule,
    TelemetryEmitter,
    TelemetryRecord,
    TelemetryValue,
)

log = structlog.get_logger(__name__)

Send = Callable[[bytes], Awaitable[None]]
HANDLED = frozenset(
    {
        FrameType.TELEMETRY_CONFIG,
        FrameType.TELEMETRY_CONFIG_REMOVED,
        FrameType.STREAM_ACK,
        FrameType.STREAM_ACKS,
    }
)
HELLO_STREAM_ACKS = {"stream_acks": "batched"}
"""What a car that reads STREAM_ACKS frames (as this one does) may add to its HELLO."""
RECONCILE_ID = 0  # TELEMETRY_CONFIG_REMOVED id 0 lists the configs the car may keep


class UnstreamableConfig(ValueError):
    """A config the car cannot run; the message is the ack's error."""


def new_txid_prefix() -> bytes:
    """16 random hex digits that start the txids of one emitter (one config version's run)."""
    # Ingest drops a record whose (config, txid) it already stored, so txids must never repeat
    # (a real car's are UUIDs): numbers from 1 alone repeated after each config change or
    # restart. Not the fleet's seeded rng (a restart replays it) nor the clock (it can go back).
    return secrets.token_hex(8).encode()


@dataclass
class _Stream:
    """One app's config as the car runs it."""

    config_id: int
    client_id: str
    version: int
    prefer_typed: bool
    emitter: TelemetryEmitter
    txid_prefix: bytes = field(default_factory=new_txid_prefix)

    def txid(self, seq: int) -> bytes:
        """The txid record `seq` of this emitter travels under."""
        return b"%s-%d" % (self.txid_prefix, seq)

    def seq(self, txid: bytes) -> int | None:
        """The record number an ack names; None for a txid this emitter did not send."""
        prefix, _, number = txid.rpartition(b"-")
        if prefix != self.txid_prefix or not number.isdigit():
            return None
        return int(number)


def telemetry_value(value: Any) -> TelemetryValue:
    """A simulator signal as an emitter value; TypeError for shapes a stream cannot carry."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict) and {"latitude", "longitude"} <= value.keys():
        return (float(value["latitude"]), float(value["longitude"]))
    raise TypeError(f"a {type(value).__name__} signal has no fleet-telemetry value")


def field_rules(config: Mapping[str, Any]) -> dict[str, FieldRule]:
    """The emitter's rules from a config as the gateway sends it (Tesla's GET shape)."""
    rules: dict[str, FieldRule] = {}
    for name, raw in config.get("fields", {}).items():
        delta = raw.get("minimum_delta")
        rules[name] = FieldRule(
            interval_seconds=float(raw["interval_seconds"]),
            minimum_delta=Decimal(repr(delta)) if delta is not None else None,
            resend_interval_seconds=raw.get("resend_interval_seconds"),
        )
    return rules


class TelemetryStreams:
    """The car's configs by id, their emitters, and the 500 ms collector loop."""

    def __init__(
        self,
        vin: str,
        clock: Clock,
        send: Send,
        signals: Callable[[], Mapping[str, Any]],
        awake: Callable[[], bool],
    ) -> None:
        self.vin = vin
        self.clock = clock
        self.send = send
        self.signals = signals
        self.awake = awake
        self.streams: dict[int, _Stream] = {}
        self._linked = False
        self._loop: asyncio.Task[None] | None = None

    # --- frames from the gateway ---------------------------------------------------------------

    async def handle(self, frame: Frame) -> bool:
        """Act on a streaming frame; False for frames that are not about streaming."""
        if frame.type == FrameType.TELEMETRY_CONFIG:
            await self._configure(frame)
        elif frame.type == FrameType.TELEMETRY_CONFIG_REMOVED:
            self._remove(frame)
        elif frame.type == FrameType.STREAM_ACK:
            self._acked(frame.correlation_id, [frame.body])
        elif frame.type == FrameType.STREAM_ACKS:
            try:
                self._acked(frame.correlation_id, protocol.decode_txids(frame.body))
            except FrameError as exc:
                log.warning("malformed STREAM_ACKS frame", error=str(exc))
        else:
            return False
        return True

    def _acked(self, config_id: int, txids: list[bytes]) -> None:
        stream = self.streams.get(config_id)
        if stream is None:
            return
        for txid in txids:
            seq = stream.seq(txid)
            if seq is not None:  # else an earlier version's record, or not ours
                stream.emitter.ack(seq)

    async def _configure(self, frame: Frame) -> None:
        body = protocol.decode_json(frame)
        version = body.get("version")
        try:
            stream = self._stream_for(frame.correlation_id, body)
        except UnstreamableConfig as exc:
            self.streams.pop(frame.correlation_id, None)
            await self._ack(frame.correlation_id, version, str(exc))
            return
        self.streams[frame.correlation_id] = stream
        await self._ack(frame.correlation_id, version, None)
        self._ensure_loop()

    def _stream_for(self, config_id: int, body: Mapping[str, Any]) -> _Stream:
        """The running stream when the version is unchanged (its unacked data stays), else new."""
        version, config = body.get("version"), body.get("config")
        running = self.streams.get(config_id)
        if running is not None and running.version == version:
            return running
        if not isinstance(version, int) or not isinstance(config, dict):
            raise UnstreamableConfig("TELEMETRY_CONFIG needs an integer version and a config")
        rules = field_rules(config)
        self._check_streamable(rules)
        policy: DeliveryPolicy = "latest" if config.get("delivery_policy") == "latest" else None
        prefer_typed = config.get("prefer_typed") is True
        emitter = TelemetryEmitter(
            rules,
            start_s=self._now_s(),
            prefer_typed=prefer_typed,
            delivery_policy=policy,
        )
        return _Stream(config_id, str(body.get("client_id", "")), version, prefer_typed, emitter)

    def _check_streamable(self, rules: Mapping[str, FieldRule]) -> None:
        signals = self.signals()
        missing = sorted(name for name in rules if not _streamable(signals, name))
        if missing:
            raise UnstreamableConfig(
                f"this car cannot stream {', '.join(missing)}: it has no such signal "
                "(remove the field, or send the config to a vehicle that has it)"
            )

    def _remove(self, frame: Frame) -> None:
        if frame.correlation_id != RECONCILE_ID:
            self.streams.pop(frame.correlation_id, None)
        else:
            for config_id in set(self.streams) - _kept(frame.body):
                del self.streams[config_id]
        if not self.streams:
            self._stop_loop()

    async def _ack(self, config_id: int, version: object, error: str | None) -> None:
        body = {"version": version, "ok": error is None, "error": error}
        await self.send(protocol.encode_json(FrameType.TELEMETRY_CONFIG_ACK, body, config_id))

    # --- the link ------------------------------------------------------------------------------

    async def linked(self) -> None:
        """The link is up: re-send what `latest` configs did not get acknowledged, then stream."""
        self._linked = True
        for stream in list(self.streams.values()):
            for record in stream.emitter.unacked():
                await self._send_record(stream, record)
        self._ensure_loop()

    def unlinked(self) -> None:
        self._linked = False
        self._stop_loop()

    async def stop(self) -> None:
        """Stop the collector loop and wait for it."""
        task, self._loop = self._loop, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _ensure_loop(self) -> None:
        if self._linked and self.streams and (self._loop is None or self._loop.done()):
            self._loop = asyncio.create_task(self._run(), name=f"telemetry-{self.vin}")

    def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            self._loop = None

    async def _run(self) -> None:
        while self.streams:
            await self.clock.sleep(COLLECT_PERIOD_S)
            await self.flush()

    # --- collecting ----------------------------------------------------------------------------

    async def flush(self) -> int:
        """Observe the car's current values and send what each config's collector queues."""
        if not self.awake():
            return 0  # an asleep car streams nothing; values resume when it wakes
        now_s = self._now_s()
        signals = self.signals()
        sent = 0
        for stream in list(self.streams.values()):
            values = {
                name: telemetry_value(signals[name])
                for name in stream.emitter.fields
                if _streamable(signals, name)
            }
            stream.emitter.observe(now_s, values)
            record = stream.emitter.collect(now_s)
            if record is not None:
                await self._send_record(stream, record)
                sent += 1
        return sent

    async def _send_record(self, stream: _Stream, record: TelemetryRecord) -> None:
        envelope = wire.encode_data(
            record, vin=self.vin, prefer_typed=stream.prefer_typed, txid=stream.txid(record.seq)
        )
        await self.send(protocol.encode(FrameType.STREAM, envelope, stream.config_id))

    def _now_s(self) -> float:
        return self.clock.now().timestamp()


def _streamable(signals: Mapping[str, Any], name: str) -> bool:
    if name not in signals:
        return False
    try:
        telemetry_value(signals[name])
    except TypeError:
        return False
    return True


def _kept(body: bytes) -> set[int]:
    """The config ids a reconcile frame lists; a malformed one keeps nothing."""
    try:
        keep = orjson.loads(body or b"{}").get("keep", [])
        return {int(k) for k in keep}
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        log.warning("malformed telemetry reconcile frame")
        return set()
