"""Every command in the catalogue reaches a simulated car and comes back with Tesla's answer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from flotta.commands import COMMAND_NAMES
from flotta.commands.examples import EXAMPLE_BODIES
from tests.live import LiveDemo


@pytest.fixture(scope="module")
def client(live: LiveDemo) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {live.token}"}
    with httpx.Client(base_url=live.base_url, headers=headers, timeout=15) as c:
        yield c


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_command_answers_result_and_reason(client: httpx.Client, live: LiveDemo, name: str) -> None:
    # The Cybertruck (car 4) has the most hardware: tonneau, seat coolers, no sunroof.
    vin = live.vins[3] if "tonneau" in name else live.vins[2]
    response = client.post(f"/api/1/vehicles/{vin}/command/{name}", json=EXAMPLE_BODIES[name])
    assert response.status_code == 200, response.text
    answer = response.json()["response"]
    assert isinstance(answer["result"], bool)
    assert isinstance(answer["reason"], str)
    if not answer["result"]:
        assert answer["reason"], f"{name} refused without saying why"
