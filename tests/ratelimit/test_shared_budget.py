"""Two `flotta serve` processes on one Redis share each budget: alternating cannot double it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from flotta.clock import SystemClock
from flotta.runtime import build_token_service
from flotta.settings import Settings
from tests.conftest import service_reachable
from tests.gateway.test_two_processes import provision
from tests.scaled import NATS_URL, REDIS_URL, LoopThread, Server, scaled_env, shared_database

pytestmark = pytest.mark.services


def test_two_processes_share_one_budget(tmp_path: Path) -> None:
    service_reachable("127.0.0.1", 6379, "Redis")
    service_reachable("127.0.0.1", 4222, "NATS")
    loop = LoopThread()
    servers: list[Server] = []
    try:
        with shared_database(loop) as db_url:
            env = {**scaled_env(db_url, tmp_path), "FLOTTA_RATELIMIT__DATA": "3/minute"}
            servers.append(Server("a", env, tmp_path))
            servers[0].wait_ready()
            servers.append(Server("b", env, tmp_path))
            servers[1].wait_ready()
            settings = Settings(
                profile="scaled",
                data_dir=tmp_path,
                secret_key=env["FLOTTA_SECRET_KEY"],
                db={"url": db_url},
                bus={"url": NATS_URL},
                kv={"url": REDIS_URL},
            )
            subject, identities = loop.call(provision(settings))
            token = build_token_service(settings, SystemClock()).mint(subject, OWNER_SCOPES)
            _alternate(servers, token, identities[0].vin, identities[1].vin)
    finally:
        for server in servers:
            server.stop()
        loop.stop()


def _alternate(servers: list[Server], token: str, vin: str, other_vin: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/1/vehicles/{vin}/vehicle_data"
    with httpx.Client(headers=headers, timeout=15) as client:
        # No car is connected: each read is a 408, and each still counts (as at Tesla).
        codes = [client.get(servers[i % 2].url + path).status_code for i in range(3)]
        assert 429 not in codes, codes
        for server in servers:
            refused = client.get(server.url + path)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
        other = client.get(f"{servers[1].url}/api/1/vehicles/{other_vin}/vehicle_data")
        assert other.status_code != 429
