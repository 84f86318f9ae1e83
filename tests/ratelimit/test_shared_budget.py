"""Two `flotta serve` processes on one Redis share each budget: alternating cannot double it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flotta.auth.scopes import OWNER_SCOPES
from flotta.clock import SystemClock
from flotta.runtime import build_token_service
from tests.gateway.test_two_processes import provision
from tests.scaled import Server, scaled_pair

pytestmark = pytest.mark.services


def test_two_processes_share_one_budget(tmp_path: Path) -> None:
    with scaled_pair(tmp_path, {"FLOTTA_RATELIMIT__DATA": "3/minute"}) as pair:
        pair.b.wait_ready()
        subject, identities = pair.loop.call(provision(pair.settings))
        token = build_token_service(pair.settings, SystemClock()).mint(subject, OWNER_SCOPES)
        _alternate([pair.a, pair.b], token, identities[0].vin, identities[1].vin)


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
