"""A server that is not a sandbox refuses, at config time and naming the address, every host a
developer names that is not public: a telemetry config's hostname, a sink's URL or broker, the
domain a partner key is fetched from. A demo told `outbound.allow = []` behaves as `flotta serve`
does by default; nothing here connects anywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fleet.test_partner import Partner
from tests.live import LiveDemo, start_live_demo
from tests.telemetry.streaming_support import api, ca_pem, config, pair_keys, problems
from tests.telemetry.test_config_api import CREATE
from tests.telemetry.test_ingest_support import partner_token, streaming_car
from tests.telemetry.test_sinks_edit import SINKS, serve, stream, until


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    live = start_live_demo(
        Path(tmp_path_factory.mktemp("outbound")),
        vehicles=1,
        outbound={"allow": []},
        partner={"key_url_template": "http://127.0.0.1:9/{domain}.pem"},
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def partner(strict: LiveDemo) -> Iterator[httpx.Client]:
    car = streaming_car(strict)
    headers = {"Authorization": f"Bearer {partner_token(strict, car.client_id)}"}
    with httpx.Client(base_url=strict.base_url, headers=headers, timeout=20) as client:
        yield client


def test_a_config_naming_a_loopback_receiver_is_refused(strict: LiveDemo) -> None:
    pair_keys(strict, strict.vins)
    with api(strict) as client:
        answer = client.post(
            CREATE,
            json={"vins": strict.vins, "config": config(8443, ca_pem(), hostname="localhost")},
        )
        after = client.get(f"/api/1/vehicles/{strict.vins[0]}/fleet_telemetry_config")
    (message,) = problems(answer)["config.hostname"]
    assert message.startswith("localhost (") and "is a loopback address" in message
    assert "FLOTTA_OUTBOUND__ALLOW" in message
    assert after.json()["response"]["config"] is None


@pytest.mark.parametrize(
    ("kind", "settings", "setting", "named"),
    [
        ("webhook", {"url": "http://169.254.169.254/latest/meta-data"}, "url", "169.254.169.254"),
        ("redis", {"url": "redis://localhost:6379/0"}, "url", "localhost ("),
        ("nats", {"url": "nats://10.0.0.7:4222"}, "url", "10.0.0.7"),
        ("mqtt", {"host": "127.0.0.1"}, "host", "127.0.0.1"),
        ("kafka", {"bootstrap_servers": "[::1]:9092"}, "bootstrap_servers", "::1"),
    ],
)
def test_a_sink_on_a_private_host_is_refused_and_not_stored(
    partner: httpx.Client, kind: str, settings: dict[str, Any], setting: str, named: str
) -> None:
    before = partner.get(SINKS).json()["response"]
    answer = partner.post(SINKS, json={"kind": kind, "settings": settings, "enabled": False})
    (message,) = problems(answer)[f"settings.{setting}"]
    assert message.startswith(named) and "address" in message
    assert partner.get(SINKS).json()["response"] == before


def test_an_edit_moving_a_sink_to_a_private_host_is_refused(partner: httpx.Client) -> None:
    # Paused, so nothing is ever sent to the public address it starts with.
    public = {"url": "https://8.8.8.8/hook"}
    made = partner.post(SINKS, json={"kind": "webhook", "settings": public, "enabled": False})
    assert made.status_code == 201, made.text
    edit = f"{SINKS}/{made.json()['response']['id']}"
    moved = partner.patch(edit, json={"settings": {"url": "http://192.168.1.20/hook"}})
    (message,) = problems(moved)["settings.url"]
    assert message.startswith("192.168.1.20 is a private address")
    shown = [
        s for s in partner.get(SINKS).json()["response"] if s["id"] == made.json()["response"]["id"]
    ]
    assert shown[0]["settings"]["url"] == public["url"]
    assert partner.delete(edit).status_code in (200, 204)


def test_a_partner_key_on_a_loopback_domain_is_not_fetched(strict: LiveDemo) -> None:
    # The demo's key URL template sends every fetch to 127.0.0.1: a domain resolving there.
    registering = Partner(
        strict, domain="app.gamma.example", allowed_origins="https://www.gamma.example"
    )
    with registering.http:
        answer = registering.register("fleet.gamma.example")
    assert answer.status_code >= 400, answer.text
    assert "127.0.0.1 is a loopback address" in answer.json()["error"], answer.text


@pytest.fixture
def loopback_allowed(demo_factory: Callable[..., LiveDemo]) -> LiveDemo:
    return demo_factory(vehicles=1, outbound={"allow": ["127.0.0.0/8"]})


def test_a_sink_whose_host_is_no_longer_allowed_gets_nothing_and_logs_why(
    loopback_allowed: LiveDemo,
) -> None:
    live = loopback_allowed
    hook = serve(live)
    car = streaming_car(live)
    headers = {"Authorization": f"Bearer {partner_token(live, car.client_id)}"}
    try:
        with httpx.Client(base_url=live.base_url, headers=headers, timeout=20) as client:
            made = client.post(SINKS, json={"kind": "webhook", "settings": {"url": hook.url}})
            assert made.status_code == 201, made.text
            log = f"{SINKS}/{made.json()['response']['id']}/deliveries"
            stream(live, car, range(1, 3))
            until(lambda: hook.txids() == ["1", "2"], "the records allowed through")
            # As if the name now resolved elsewhere: the policy the dispatcher was given, the
            # runtime's own, stops allowing loopback (and forgets the verdicts it remembered).
            live.handle.runtime.outbound.__init__()  # type: ignore[misc]
            stream(live, car, range(3, 5))

            def refused() -> bool:
                entries = client.get(log).json()["response"]
                return any("is a loopback address" in (e["last_error"] or "") for e in entries)

            until(refused, "a delivery refused by the outbound check")
        assert hook.txids() == ["1", "2"]
    finally:
        if hook.runner is not None:
            live.call(hook.runner.cleanup())
