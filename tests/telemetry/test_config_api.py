"""fleet_telemetry_config over HTTP: each rule family answers with the message it promises."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flotta.adapters.sink_receiver import CLIENT_VERSION
from flotta.devices.service import ensure_owner, provision_vehicle
from flotta.sim.vehicle_models import make_vin
from flotta.telemetry import service
from flotta.telemetry.config import ConfigLimits, validate_config
from flotta.telemetry.models import TelemetryConfigRow
from flotta.telemetry.service import Target, firmware_at_least
from tests.live import LiveDemo, start_live_demo
from tests.telemetry.streaming_support import (
    api,
    ca_pem,
    closed_port,
    config,
    loopback_listener,
    pair_keys,
    problems,
    wait_for,
)

CREATE = "/api/1/vehicles/fleet_telemetry_config"
UNKNOWN_VIN = "5YJ3E1EA7KF999999"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    """A private demo: these tests pair keys and store configs the shared one must not see."""
    live = start_live_demo(
        Path(tmp_path_factory.mktemp("telemetry-api")),
        vehicles=2,
        telemetry={"reachable_timeout_s": 2.0},
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def ca() -> str:
    return ca_pem()


@pytest.fixture
def port() -> Iterator[int]:
    with loopback_listener() as listening:
        yield listening


def test_an_unknown_field_is_named_with_a_suggestion(demo: LiveDemo, ca: str, port: int) -> None:
    fields = {"VehicleSpeeed": {"interval_seconds": 10}}
    with api(demo) as client:
        answer = client.post(
            CREATE, json={"vins": demo.vins[:1], "config": config(port, ca, fields=fields)}
        )
    messages = problems(answer)
    assert messages["config.fields.VehicleSpeeed"] == [
        "unknown field 'VehicleSpeeed'; did you mean 'VehicleSpeed'?"
    ]
    assert "VehicleSpeeed" in answer.json()["error_description"]


def test_an_interval_out_of_range_says_the_range(demo: LiveDemo, ca: str, port: int) -> None:
    fields = {"Soc": {"interval_seconds": 0}}
    with api(demo) as client:
        answer = client.post(
            CREATE, json={"vins": demo.vins[:1], "config": config(port, ca, fields=fields)}
        )
    assert problems(answer)["config.fields.Soc.interval_seconds"] == [
        "interval_seconds 0 is out of range: use 1-86400"
    ]


def test_bad_delta_resend_and_alert_types_are_all_reported_at_once(
    demo: LiveDemo, ca: str, port: int
) -> None:
    fields = {
        "Odometer": {"interval_seconds": 30, "minimum_delta": -1},
        "Soc": {"interval_seconds": 60, "resend_interval_seconds": 10},
    }
    body = config(port, ca, fields=fields, alert_types=["servce"])
    with api(demo) as client:
        answer = client.post(CREATE, json={"vins": demo.vins[:1], "config": body})
    messages = problems(answer)
    assert "must be above 0" in messages["config.fields.Odometer.minimum_delta"][0]
    assert (
        "shorter than interval_seconds 60"
        in (messages["config.fields.Soc.resend_interval_seconds"][0])
    )
    assert "did you mean 'service'" in messages["config.alert_types[0]"][0]
    assert "and 2 more problems" in answer.json()["error_description"]


def test_an_unparsable_ca_is_refused(demo: LiveDemo, port: int) -> None:
    with api(demo) as client:
        answer = client.post(
            CREATE, json={"vins": demo.vins[:1], "config": config(port, "not a certificate")}
        )
    assert problems(answer)["config.ca"] == ["ca holds no '-----BEGIN CERTIFICATE-----' block"]


def test_an_unreachable_receiver_is_refused_before_any_car_is_touched(
    demo: LiveDemo, ca: str
) -> None:
    dead = closed_port()
    with api(demo) as client:
        answer = client.post(CREATE, json={"vins": demo.vins[:1], "config": config(dead, ca)})
        after = client.get(f"/api/1/vehicles/{demo.vins[0]}/fleet_telemetry_config")
    message = problems(answer)["config.hostname"][0]
    assert f"127.0.0.1:{dead} refused the connection" in message
    assert after.json()["response"]["config"] is None


def test_the_reachability_check_can_be_switched_off(
    demo_factory: Callable[..., LiveDemo],
) -> None:
    live = demo_factory(vehicles=1, telemetry={"check_reachable": False})
    pair_keys(live, live.vins)
    with api(live) as client:
        answer = client.post(
            CREATE, json={"vins": live.vins, "config": config(closed_port(), ca_pem())}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["response"]["updated_vehicles"] == 1


def test_an_unpaired_key_skips_the_vehicle(demo: LiveDemo, ca: str, port: int) -> None:
    vin = demo.vins[1]
    pair_keys(demo, [vin], paired=False)
    with api(demo) as client:
        answer = client.post(CREATE, json={"vins": [vin], "config": config(port, ca)})
        shown = client.get(f"/api/1/vehicles/{vin}/fleet_telemetry_config").json()["response"]
    assert answer.status_code == 200, answer.text
    response = answer.json()["response"]
    assert response["updated_vehicles"] == 0
    assert response["skipped_vehicles"]["missing_key"] == [vin]
    assert shown["key_paired"] is False and shown["config"] is None


def test_vins_the_token_cannot_reach_are_not_updated_and_named(
    demo: LiveDemo, ca: str, port: int
) -> None:
    pair_keys(demo, demo.vins[:1])
    with api(demo) as client:
        answer = client.post(
            CREATE, json={"vins": [demo.vins[0], UNKNOWN_VIN], "config": config(port, ca)}
        )
    response = answer.json()["response"]
    assert response["updated_vehicles"] == 1
    assert response["skipped_vehicles"]["not_found"] == [UNKNOWN_VIN]
    assert response["skipped_vehicles"]["max_configs"] == []


def test_a_car_streaming_to_five_other_apps_is_skipped(demo: LiveDemo, ca: str, port: int) -> None:
    vin = demo.vins[1]
    pair_keys(demo, [vin])
    runtime = demo.handle.runtime

    async def five_other_apps() -> None:
        now = datetime.now(UTC)
        async with runtime.sessions() as session, session.begin():
            for index in range(5):
                session.add(
                    TelemetryConfigRow(
                        client_id=f"other-app-{index}",
                        vin=vin,
                        config={"hostname": "x.example.com"},
                        created_at=now,
                        updated_at=now,
                    )
                )

    demo.call(five_other_apps())
    with api(demo) as client:
        answer = client.post(CREATE, json={"vins": [vin], "config": config(port, ca)})
        shown = client.get(f"/api/1/vehicles/{vin}/fleet_telemetry_config").json()["response"]
    assert answer.json()["response"]["skipped_vehicles"]["max_configs"] == [vin]
    assert shown["limit_reached"] is True and shown["config"] is None


def test_location_fields_need_the_vehicle_location_scope(
    demo: LiveDemo, ca: str, port: int
) -> None:
    token = demo.mint(["openid", "vehicle_device_data"], client_id=str(demo.info["client_id"]))
    fields = {"Location": {"interval_seconds": 10}, "Soc": {"interval_seconds": 60}}
    with api(demo, token) as client:
        answer = client.post(
            CREATE, json={"vins": demo.vins[:1], "config": config(port, ca, fields=fields)}
        )
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "Unauthorized missing scopes"
    assert "Location" in answer.json()["error_description"]
    assert "vehicle_location" in answer.json()["error_description"]


def test_a_partner_token_cannot_configure_vehicles(demo: LiveDemo, ca: str, port: int) -> None:
    client_id = str(demo.info["client_id"])
    token = demo.handle.runtime.tokens.mint(
        client_id, ["vehicle_device_data"], client_id=client_id, partner=True
    )
    with api(demo, token) as client:
        answer = client.post(CREATE, json={"vins": demo.vins[:1], "config": config(port, ca)})
    assert answer.status_code == 403


def test_parallel_config_calls_of_one_app_get_429(demo: LiveDemo, ca: str, port: int) -> None:
    sync = demo.handle.runtime.telemetry
    assert sync is not None
    client_id = str(demo.info["client_id"])
    demo.call(sync.acquire(client_id))  # a call of this app still in flight
    try:
        with api(demo) as client:
            busy = client.post(CREATE, json={"vins": demo.vins[:1], "config": config(port, ca)})
    finally:
        demo.call(sync.release(client_id))
    assert busy.status_code == 429
    assert "one at a time" in busy.json()["error_description"]
    with api(demo) as client:
        after = client.post(CREATE, json={"vins": demo.vins[:1], "config": config(port, ca)})
    assert after.status_code == 200


def test_replacing_a_config_bumps_its_version_and_an_identical_one_does_not(
    demo: LiveDemo, ca: str, port: int
) -> None:
    vin = demo.vins[0]
    pair_keys(demo, [vin])
    url = f"/api/1/vehicles/{vin}/fleet_telemetry_config"
    with api(demo) as client:
        client.post(CREATE, json={"vins": [vin], "config": config(port, ca)})
        synced = wait_for(
            lambda: (shown := client.get(url).json()["response"])["synced"] and shown,
            what="the car's ack",
        )
        first = synced["version"]
        client.post(CREATE, json={"vins": [vin], "config": config(port, ca)})
        demo.call(asyncio.sleep(0.5))  # time for the car to ack anything it was sent again
        again = client.get(url).json()["response"]
        same = again["version"]
        # Sending the same config again changes nothing, not even when it was synced.
        assert (again["synced_at"], again["status"]) == (synced["synced_at"], "synced")
        changed_fields = {"Soc": {"interval_seconds": 30}}
        client.post(CREATE, json={"vins": [vin], "config": config(port, ca, fields=changed_fields)})
        changed = client.get(url).json()["response"]
    assert same == first
    assert changed["version"] == first + 1
    assert changed["config"]["fields"] == {"Soc": {"interval_seconds": 30}}


def test_deleting_without_a_config_updates_nothing(demo: LiveDemo) -> None:
    with api(demo) as client:
        client.delete(f"/api/1/vehicles/{demo.vins[1]}/fleet_telemetry_config")
        again = client.delete(f"/api/1/vehicles/{demo.vins[1]}/fleet_telemetry_config")
    assert again.status_code == 200
    assert again.json() == {"response": {"updated_vehicles": 0}}


def test_every_telemetry_route_declares_its_errors(demo: LiveDemo) -> None:
    with api(demo) as client:
        spec = client.get("/openapi.json").json()
    create = spec["paths"][CREATE]["post"]["responses"]
    assert {"400", "401", "403", "412", "429"} <= set(create)
    jws = spec["paths"][CREATE + "_jws"]["post"]["responses"]
    assert "signature" in jws["400"]["description"]
    assert "signature" not in jws["401"]["description"]  # a 401 is about the access token


def test_firmware_below_tesla_minimums_is_unsupported() -> None:
    assert firmware_at_least("2024.26.1 abc", (2024, 26))
    assert firmware_at_least("2025.2.6", (2024, 26))
    assert not firmware_at_least("2024.20.9", (2024, 26))
    assert not firmware_at_least("", (2023, 20))


# --- hardware and firmware (reference §9.1) ---------------------------------------------------


def _provision(demo: LiveDemo, models: list[str], *, paired: bool = True) -> tuple[str, list[str]]:
    """A fresh owner with one car per model key; its subject and the VINs."""
    runtime = demo.handle.runtime

    async def make() -> tuple[str, list[str]]:
        async with runtime.sessions() as session, session.begin():
            email = f"old-cars-{uuid.uuid4().hex[:8]}@example.com"
            owner = await ensure_owner(session, email, "Old Cars", runtime.clock)
            vins = []
            for model in models:
                vin = make_vin(model, secrets.randbelow(800_000) + 100_000)
                await provision_vehicle(
                    session, owner=owner, vin=vin, model=model, display_name=model,
                    option_codes="", config={"key_paired": paired},
                    secret_key=runtime.settings.secret_key, clock=runtime.clock,
                )  # fmt: skip
                vins.append(vin)
            return owner.uuid, vins

    return demo.call(make())


def test_pre_2021_model_s_x_are_skipped_as_unsupported_hardware(
    demo: LiveDemo, ca: str, port: int
) -> None:
    subject, (old_s, atom_x) = _provision(demo, ["models_90d_2017", "modelx_lr_2019"])
    token = demo.handle.runtime.tokens.mint(subject, ["vehicle_device_data"])
    with api(demo, token) as client:
        answer = client.post(CREATE, json={"vins": [old_s, atom_x], "config": config(port, ca)})
        one = client.post("/api/1/vehicles/fleet_status", json={"vins": [old_s]}).json()
        other = client.post("/api/1/vehicles/fleet_status", json={"vins": [atom_x]}).json()
    response = answer.json()["response"]
    # The Atom X runs its catalogue firmware (2026.38), past the 2025.20 it needs.
    assert response["updated_vehicles"] == 1
    assert response["skipped_vehicles"]["unsupported_hardware"] == [old_s]
    old_info = one["response"]["vehicle_info"][old_s]
    assert old_info["discounted_device_data"] is True
    assert other["response"]["vehicle_info"][atom_x]["discounted_device_data"] is False
    # The version a car's telemetry client reports is the one its connections announce.
    assert old_info["fleet_telemetry_version"] == CLIENT_VERSION


def test_skip_reasons_follow_teslas_firmware_and_hardware_thresholds(demo: LiveDemo) -> None:
    cars = [
        ("model3_lr", "2023.19.1 abc"),  # below both minimums
        ("model3_lr", "2023.20.6 abc"),  # direct calls only (legacy apps)
        ("model3_lr", "2024.26.1 abc"),  # both
        ("models_90d_2017", "2026.38.4 abc"),  # MCU1: never
        ("modelx_lr_2019", "2025.14.3 abc"),  # Intel Atom before 2025.20
        ("modelx_lr_2019", "2025.20.1 abc"),  # Intel Atom from 2025.20
    ]
    _, vins = _provision(demo, [model for model, _ in cars])
    _, (unpaired,) = _provision(demo, ["models_90d_2017"], paired=False)
    pairs = zip(vins, cars, strict=True)
    targets = [Target(vin, firmware, True, model) for vin, (model, firmware) in pairs]
    targets.append(Target(unpaired, "2026.38.4", False, "models_90d_2017"))
    runtime = demo.handle.runtime
    now = runtime.clock.now()
    fields = {"Soc": {"interval_seconds": 60}}
    body = {"vins": vins, "config": {"hostname": "t.example.com", "ca": ca_pem(), "fields": fields}}
    parsed = validate_config(body, limits=ConfigLimits(), now=now)

    async def apply(signed: bool) -> dict[str, Any]:
        async with runtime.sessions() as session, session.begin() as transaction:
            result = await service.apply_config(
                session, client_id="thresholds", config=parsed, targets=targets,
                not_found=[], signed=signed, now=now,
            )  # fmt: skip
            await transaction.rollback()  # nothing stays: only the skip reasons matter
        return {"updated": [s.vin for s in result.applied], **result.skipped}

    direct, signed = demo.call(apply(False)), demo.call(apply(True))
    assert direct["updated"] == [vins[1], vins[2], vins[5]]
    assert direct["unsupported_firmware"] == [vins[0]]
    assert direct["unsupported_hardware"] == [vins[3], vins[4]]
    assert direct["missing_key"] == [unpaired]
    assert signed["updated"] == [vins[2], vins[5]]
    assert signed["unsupported_firmware"] == [vins[0], vins[1]]
    assert signed["unsupported_hardware"] == [vins[3], vins[4]]


def test_a_huge_minimum_delta_is_kept_shown_and_reaches_the_car(
    demo: LiveDemo, ca: str, port: int
) -> None:
    """Numbers past 64 bits once failed after the config was stored: a 500, then every GET."""
    vin = demo.vins[0]
    pair_keys(demo, [vin])
    fields = {
        "VehicleSpeed": {"interval_seconds": 5, "minimum_delta": 1e20},
        "Odometer": {"interval_seconds": 10, "minimum_delta": 1e308},
    }
    url = f"/api/1/vehicles/{vin}/fleet_telemetry_config"
    with api(demo) as client:
        stored = client.post(
            CREATE, json={"vins": [vin], "config": config(port, ca, fields=fields)}
        )
        assert stored.status_code == 200, stored.text
        assert stored.json()["response"]["updated_vehicles"] == 1
        shown = wait_for(
            lambda: (answer := client.get(url).json()["response"])["synced"] and answer,
            what="the car's ack of the config",
        )
        assert shown["config"]["fields"] == fields
        assert client.delete(url).status_code == 200
