"""PATCH a telemetry sink: pause and resume it, point it elsewhere, change its format; bad
input is refused whole, naming every problem. Records come from a real device link through
ingest; the sinks are real webhooks delivering to HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from flotta.telemetry.models import TelemetryConfigRow
from tests.live import LiveDemo
from tests.telemetry.test_ingest_support import (
    StreamingCar,
    device_link,
    frame_for,
    partner_token,
    streaming_car,
)

SINKS = "/flotta/v1/telemetry/sinks"


@dataclass
class Hook:
    """A loopback webhook endpoint that keeps what it is sent."""

    url: str = ""
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    # Set: the endpoint takes each request and answers only once this is set (or in 60 s).
    stall: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((request.headers.get("content-type", ""), await request.read()))
        if self.stall is not None:
            await asyncio.wait_for(self.stall.wait(), 60)
        return web.Response(status=204)

    def txids(self) -> list[str]:
        """The txids of the JSON records received, in order."""
        found: list[str] = []
        for kind, body in self.posts:
            if kind.startswith("application/json"):
                found += [str(record["txid"]) for record in orjson.loads(body)]
        return found


def stream(live: LiveDemo, car: StreamingCar, seqs: range) -> None:
    """The car sends these records; returns once ingest has acknowledged (stored) them."""

    async def run() -> None:
        async with device_link(live, car) as client:
            for seq in seqs:
                await client.ws.send(frame_for(car, seq, signals=2))
            await client.acks(len(seqs))

    asyncio.run(run())


def serve(live: LiveDemo) -> Hook:
    hook = Hook()

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook.handle)
        hook.runner = web.AppRunner(app)
        await hook.runner.setup()
        site = web.TCPSite(hook.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        hook.url = f"http://127.0.0.1:{port}/hook"

    live.call(start())
    return hook


@pytest.fixture
def hooks(live: LiveDemo) -> Iterator[tuple[Hook, Hook]]:
    made = (serve(live), serve(live))
    try:
        yield made
    finally:
        for hook in made:
            if hook.runner is not None:
                live.call(hook.runner.cleanup())


def until(check: object, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_sink_pauses_resumes_with_the_backlog_and_moves(
    live: LiveDemo, hooks: tuple[Hook, Hook]
) -> None:
    first, second = hooks
    car = streaming_car(live)
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as api:
        made = api.post(SINKS, json={"kind": "webhook", "settings": {"url": first.url}})
        sink = made.json()["response"]
        edit = f"{SINKS}/{sink['id']}"
        stream(live, car, range(1, 3))
        until(lambda: first.txids() == ["1", "2"], "the first two records")
        paused = api.patch(edit, json={"enabled": False})
        stream(live, car, range(3, 5))
        live.call(asyncio.sleep(1.0))  # a running sink is woken at once by new records
        assert first.txids() == ["1", "2"]
        moved = api.patch(edit, json={"enabled": True, "settings": {"url": second.url}})
        until(lambda: second.txids() == ["3", "4"], "the backlog at the new URL")
        listed = api.get(SINKS).json()["response"]
    assert made.status_code == 201
    assert paused.status_code == 200 and paused.json()["response"]["enabled"] is False
    assert moved.status_code == 200 and moved.json()["response"]["enabled"] is True
    assert moved.json()["response"]["settings"]["url"] == second.url
    assert first.txids() == ["1", "2"]  # nothing more went to the old URL
    assert listed[0]["settings"]["url"] == second.url and listed[0]["enabled"] is True


def test_settings_merge_and_format_changes_what_is_sent(
    live: LiveDemo, hooks: tuple[Hook, Hook]
) -> None:
    hook, _ = hooks
    car = streaming_car(live)
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as api:
        sink = api.post(SINKS, json={"kind": "webhook", "settings": {"url": hook.url}})
        edit = f"{SINKS}/{sink.json()['response']['id']}"
        shorter = api.patch(edit, json={"settings": {"timeout_s": 5}}).json()["response"]
        default = api.patch(edit, json={"settings": {"timeout_s": None}}).json()["response"]
        binary = api.patch(edit, json={"format": "protobuf"}).json()["response"]
        stream(live, car, range(1, 2))
        until(lambda: len(hook.posts) == 1, "a protobuf batch")
    assert shorter["settings"] == {"url": hook.url, "timeout_s": 5.0}
    assert default["settings"] == {"url": hook.url, "timeout_s": 10.0}
    assert binary["format"] == "protobuf"
    assert hook.posts[0][0].startswith("application/x-protobuf")


def test_a_bad_edit_names_every_problem_and_changes_nothing(live: LiveDemo) -> None:
    car, other = streaming_car(live), streaming_car(live)
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    settings = {"url": "https://hooks.example.com/t"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as api:
        sink = api.post(SINKS, json={"kind": "webhook", "settings": settings}).json()["response"]
        edit = f"{SINKS}/{sink['id']}"
        bad = api.patch(
            edit,
            json={"format": "xml", "settings": {"url": "ftp://x", "timeout_s": 0, "color": 1}},
        )
        kind = api.patch(edit, json={"kind": "nats"})
        unknown_member = api.patch(edit, json={"paused": True})
        not_a_bool = api.patch(edit, json={"enabled": "no"})  # not read as true
        created_with_a_string = api.post(
            SINKS, json={"kind": "webhook", "settings": settings, "enabled": "no"}
        )
        missing = api.patch(f"{SINKS}/999999999", json={"enabled": False})
        after = api.get(SINKS).json()["response"]
    stranger = {"Authorization": f"Bearer {partner_token(live, other.client_id)}"}
    with httpx.Client(base_url=live.base_url, headers=stranger, timeout=30) as api:
        foreign = api.patch(edit, json={"enabled": False})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    assert set(bad.json()["messages"]) == {
        "format", "settings.url", "settings.timeout_s", "settings.color",
    }  # fmt: skip
    assert "kind cannot change" in kind.json()["messages"]["kind"][0]
    assert unknown_member.status_code == 400 and "paused" in unknown_member.json()["messages"]
    for answer in (not_a_bool, created_with_a_string):
        assert answer.status_code == 400 and "enabled" in answer.json()["messages"], answer.text
    assert missing.status_code == 404 and foreign.status_code == 404
    shown = {key: value for key, value in sink.items() if key != "secret"}
    assert after == [shown]  # untouched, and still enabled


def test_pausing_or_deleting_a_sink_whose_endpoint_hangs_answers_at_once(
    live: LiveDemo, hooks: tuple[Hook, Hook]
) -> None:
    hook, _ = hooks
    hook.stall = asyncio.Event()
    car = streaming_car(live)
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    settings = {"url": hook.url, "timeout_s": 60}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as api:
        made = api.post(SINKS, json={"kind": "webhook", "settings": settings})
        edit = f"{SINKS}/{made.json()['response']['id']}"
        stream(live, car, range(1, 2))
        until(lambda: hook.posts, "the delivery to start")
        started = time.monotonic()
        paused = api.patch(edit, json={"enabled": False})
        deleted = api.delete(edit)
        took = time.monotonic() - started
    live.call(_set(hook.stall))
    assert paused.status_code == 200 and deleted.status_code == 200
    assert took < 10, f"pausing and deleting took {took:.1f} s"


async def _set(event: asyncio.Event) -> None:
    event.set()


def test_secrets_are_never_shown_and_sending_them_back_as_shown_keeps_them(
    live: LiveDemo,
) -> None:
    from flotta.telemetry.models import TelemetrySinkRow

    car = streaming_car(live)
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    kafka = {"bootstrap_servers": "kafka:9092", "sasl_mechanism": "PLAIN", "username": "app",
             "password": "kafka-secret"}  # fmt: skip
    redis = {"url": "redis://:redis-secret@127.0.0.1:6379/0"}

    async def read(sink_ids: list[int]) -> list[dict[str, Any]]:
        async with live.handle.runtime.sessions() as db:
            rows = [await db.get(TelemetrySinkRow, sink_id) for sink_id in sink_ids]
            return [row.settings for row in rows if row is not None]

    with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as api:
        made = [
            api.post(SINKS, json={"kind": kind, "settings": settings, "enabled": False})
            for kind, settings in (("kafka", kafka), ("redis", redis))
        ]
        ids = [answer.json()["response"]["id"] for answer in made]
        listed = {s["id"]: s["settings"] for s in api.get(SINKS).json()["response"]}
        # Read, change one member, send everything back: the hidden values mean "unchanged".
        for sink_id in ids:
            settings = {**listed[sink_id], "timeout_s": 5}
            assert api.patch(f"{SINKS}/{sink_id}", json={"settings": settings}).status_code == 200
        kept = live.call(read(ids))
        replaced = api.patch(f"{SINKS}/{ids[0]}", json={"settings": {"password": "new-secret"}})
        (after,) = live.call(read(ids[:1]))

    assert [answer.status_code for answer in made] == [201, 201]
    assert made[0].json()["response"]["settings"]["password"] == "********"
    assert listed[ids[0]]["password"] == "********" and listed[ids[0]]["username"] == "app"
    assert listed[ids[1]]["url"] == "redis://:********@127.0.0.1:6379/0"
    assert kept[0]["password"] == "kafka-secret" and kept[0]["timeout_s"] == 5.0
    assert kept[1]["url"] == redis["url"] and kept[1]["timeout_s"] == 5.0
    assert replaced.json()["response"]["settings"]["password"] == "********"
    assert after["password"] == "new-secret"


def test_a_replay_counts_only_the_records_it_will_send(
    live: LiveDemo, hooks: tuple[Hook, Hook]
) -> None:
    hook, _ = hooks
    car = streaming_car(live)
    runtime = live.handle.runtime
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}

    async def remove_config() -> None:  # the app no longer streams from the car
        async with runtime.sessions() as s, s.begin():
            await s.delete(await s.get(TelemetryConfigRow, car.config_id))
        assert runtime.streams is not None
        runtime.streams.entitlements.forget()

    with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as api:
        sink = api.post(SINKS, json={"kind": "webhook", "settings": {"url": hook.url}})
        replay = f"{SINKS}/{sink.json()['response']['id']}/replay"
        stream(live, car, range(1, 4))
        until(lambda: hook.txids() == ["1", "2", "3"], "the three records")
        now = runtime.clock.now()
        window = {"from": (now - timedelta(minutes=5)).isoformat(), "to": now.isoformat()}
        before = api.post(replay, json=window)
        until(lambda: len(hook.txids()) == 6, "the replayed records")
        live.call(remove_config())
        after = api.post(replay, json=window)
        live.call(asyncio.sleep(0.5))
    assert before.status_code == 202 and before.json()["response"]["records"] == 3
    # Skipped by the replay, so not counted as if they would be sent.
    assert after.status_code == 202 and after.json()["response"]["records"] == 0
    assert hook.txids() == ["1", "2", "3"] * 2
