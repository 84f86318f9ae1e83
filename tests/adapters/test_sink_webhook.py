"""Webhook sink against a real HTTP server on loopback: Standard Webhooks signatures, formats,
and a 500 that the dispatcher's retry then gets past."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.adapters.sink_webhook import WebhookVerificationError, verify
from flotta.adapters.sinks import SinkSettingsError, new_webhook_secret, open_sink
from flotta.clock import ScaledClock
from flotta.ports.sinks import Sink, SinkError
from flotta.telemetry.formats import read_delimited
from flotta.telemetry.wire import data_values
from tests.adapters.sample import CLIENT_ID, VIN, alerts_record, data_record

# Real time: the `standardwebhooks` package checks freshness against the wall clock.
NOW = datetime.now(UTC)


@dataclass
class Receiver:
    """A loopback webhook endpoint answering with the queued statuses, then 204."""

    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.statuses.pop(0) if self.statuses else 204
        return web.Response(status=status, text="receiver is down" if status >= 500 else "")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


def _sink(receiver: Receiver, secret: str, fmt: str = "json", timeout_s: float = 5.0) -> Sink:
    return open_sink(
        "webhook",
        {"url": receiver.url, "timeout_s": timeout_s},
        fmt,
        secret,
        clock=ScaledClock(start=NOW),
    )


async def test_json_batch_is_signed_and_verifiable_by_standardwebhooks(
    receiver: Receiver,
) -> None:
    secret = new_webhook_secret()
    sink = _sink(receiver, secret)
    batch = [data_record(1), alerts_record(2)]
    try:
        await sink.deliver(batch)
    finally:
        await sink.close()

    [(headers, body)] = receiver.requests
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == f"msg_{CLIENT_ID}_1_2"
    # Our verifier and the independent `standardwebhooks` package both accept it.
    verify(headers, body, secret, now=NOW)
    Webhook(secret).verify(body, headers)
    records = orjson.loads(body)
    assert [(r["cursor"], r["topic"], r["vin"], r["txid"]) for r in records] == [
        (1, "V", VIN, "1"),
        (2, "alerts", VIN, "2"),
    ]
    speeds = [d for d in records[0]["payload"]["data"] if d["key"] == "VehicleSpeed"]
    assert speeds == [{"key": "VehicleSpeed", "value": {"doubleValue": 34.5}}]
    assert records[1]["signals"] == 2


async def test_tampered_body_wrong_secret_and_stale_timestamp_fail_verification(
    receiver: Receiver,
) -> None:
    secret = new_webhook_secret()
    sink = _sink(receiver, secret)
    await sink.deliver([data_record(1)])
    await sink.close()
    [(headers, body)] = receiver.requests

    with pytest.raises(WebhookVerificationError):
        verify(headers, body + b" ", secret, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(headers, body, new_webhook_secret(), now=NOW)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(headers, body, secret, now=NOW + timedelta(hours=1))


async def test_protobuf_batch_is_length_delimited_with_metadata_headers(
    receiver: Receiver,
) -> None:
    secret = new_webhook_secret()
    sink = _sink(receiver, secret, fmt="protobuf")
    await sink.deliver([data_record(5), data_record(6, values={"Soc": 79})])
    await sink.close()

    [(headers, body)] = receiver.requests
    # (`standardwebhooks` would JSON-parse the body after checking it, so only ours here.)
    verify(headers, body, secret, now=NOW)
    assert headers["Content-Type"].startswith("application/x-protobuf")
    assert headers["flotta-cursors"] == "5,6"
    assert headers["flotta-topics"] == "V,V"
    payloads = [vehicle_data_pb2.Payload.FromString(p) for p in read_delimited(body)]
    assert [data_values(p)["Soc"] for p in payloads] == [80, 79]


async def test_http_500_is_a_nack_with_the_reason_and_the_retry_succeeds(
    receiver: Receiver,
) -> None:
    receiver.statuses = [500]
    secret = new_webhook_secret()
    sink = _sink(receiver, secret)
    batch = [data_record(9)]
    with pytest.raises(SinkError, match="HTTP 500: receiver is down"):
        await sink.deliver(batch)
    await sink.deliver(batch)  # the dispatcher's retry
    await sink.close()

    first, retry = receiver.requests
    assert first[1] == retry[1]
    assert first[0]["webhook-id"] == retry[0]["webhook-id"]  # lets the consumer dedupe
    Webhook(secret).verify(retry[1], retry[0])


async def test_slow_receiver_times_out_as_a_nack(receiver: Receiver) -> None:
    receiver.delay_s = 2.0
    sink = _sink(receiver, new_webhook_secret(), timeout_s=0.3)
    with pytest.raises(SinkError, match="timed out"):
        await sink.deliver([data_record(1)])
    await sink.close()


def test_settings_errors_name_the_setting() -> None:
    with pytest.raises(SinkSettingsError) as caught:
        open_sink("webhook", {"url": "ftp://example.com"}, "json", new_webhook_secret())
    assert "settings.url" in (caught.value.messages or {})
    with pytest.raises(SinkSettingsError, match="secret"):
        open_sink("webhook", {"url": "https://example.com/hook"}, "json", None)
    with pytest.raises(ValueError, match="whsec_"):
        open_sink("webhook", {"url": "https://example.com/hook"}, "json", "whsec_not base64!")
