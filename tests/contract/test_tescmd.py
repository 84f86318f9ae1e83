"""tescmd 0.6.1 (CLI) against a live demo, run as a subprocess with the non-interactive recipe.

Pointed at Flotta by `TESLA_API_BASE_URL`, authenticated by `TESLA_ACCESS_TOKEN`. Each run
gets a fresh HOME, config dir and working directory (tescmd reads `.env` from its cwd), stdin
is /dev/null and `--format json` makes it print one JSON document.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.contract.support import (
    charge_limit,
    listed_state,
    other_limit,
    pair_pem_file,
    tescmd_env,
    vehicle_data,
)
from tests.live import LiveDemo

pytestmark = pytest.mark.contract

TESCMD = Path(sys.executable).with_name("tescmd")
RUN_TIMEOUT_S = 60


@dataclass
class Result:
    code: int
    document: dict[str, Any]
    stderr: str

    @property
    def data(self) -> Any:
        assert self.document.get("ok") is True, f"tescmd failed: {self.document}"
        return self.document["data"]


@dataclass
class Tescmd:
    """One isolated tescmd installation: its own HOME, config dir, keys and working dir."""

    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, **extra_env: str) -> Result:
        done = subprocess.run(
            [str(TESCMD), "--format", "json", *args],
            env={**self.env, **extra_env},
            cwd=self.home / "work",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        # Success goes to stdout, errors to stderr; both as one JSON document.
        text = done.stdout.strip() or done.stderr.strip()
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            pytest.fail(
                f"tescmd {' '.join(args)} printed no JSON (exit {done.returncode}):\n"
                f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
            )
        return Result(done.returncode, document, done.stderr)

    @property
    def public_key(self) -> Path:
        return self.home / "cfg" / "keys" / "public_key.pem"


@pytest.fixture
def tescmd(live: LiveDemo, tmp_path: Path, vin: str) -> Tescmd:
    if not TESCMD.exists():
        pytest.fail(f"{TESCMD} is missing: tescmd is a dev dependency (`scripts/dev test`)")
    env = tescmd_env(live, tmp_path, vin, TESLA_ACCESS_TOKEN=live.token)
    return Tescmd(tmp_path, env)


def test_vehicle_list(tescmd: Tescmd, live: LiveDemo) -> None:
    vehicles = tescmd("vehicle", "list").data
    # Other suites may add cars to the shared demo account; ours must all be there.
    assert set(live.vins) <= {v["vin"] for v in vehicles}
    assert all(v["state"] in {"online", "asleep", "offline"} for v in vehicles)
    assert all(isinstance(v["vehicle_id"], int) for v in vehicles)


def test_vehicle_data(tescmd: Tescmd, vin: str) -> None:
    data = tescmd("vehicle", "data").data
    assert data["vin"] == vin
    assert isinstance(data["charge_state"]["battery_level"], int)
    assert isinstance(data["charge_state"]["charge_limit_soc"], int)
    assert isinstance(data["vehicle_state"]["locked"], bool)


def test_vehicle_wake_of_a_sleeping_car(tescmd: Tescmd, live: LiveDemo, sleeping_vin: str) -> None:
    woken = tescmd("vehicle", "wake", TESLA_VIN=sleeping_vin)
    assert woken.code == 0
    assert woken.data["vin"] == sleeping_vin
    assert woken.data["state"] == "online"
    assert listed_state(live, sleeping_vin) == "online"


def test_rest_commands_change_vehicle_data(tescmd: Tescmd, live: LiveDemo, vin: str) -> None:
    # Without a key tescmd refuses VCSEC commands unless told to use REST explicitly.
    unlocked = tescmd("security", "unlock", TESLA_COMMAND_PROTOCOL="unsigned")
    assert unlocked.data["response"]["result"] is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is False
    locked = tescmd("security", "lock", TESLA_COMMAND_PROTOCOL="unsigned")
    assert locked.data["response"]["result"] is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is True

    target = other_limit(charge_limit(live, vin), 75, 65)
    answer = tescmd("charge", "limit", vin, str(target))
    assert answer.code == 0
    assert answer.data["response"]["result"] is True
    seen = tescmd("vehicle", "data").data
    assert seen["charge_state"]["charge_limit_soc"] == target


def test_rest_honk(tescmd: Tescmd) -> None:
    assert tescmd("security", "honk").data["response"] == {"result": True, "reason": ""}


def test_signed_commands_with_a_generated_and_paired_key(
    tescmd: Tescmd, live: LiveDemo, vin: str
) -> None:
    generated = tescmd("key", "generate").data
    assert Path(generated["public_key"]) == tescmd.public_key
    pair_pem_file(live, vin, tescmd.public_key)
    # `signed` makes tescmd refuse to fall back to REST, so success proves signed_command.
    signed = {"TESLA_SETUP_TIER": "full", "TESLA_COMMAND_PROTOCOL": "signed"}

    assert tescmd("security", "honk", **signed).data["response"]["result"] is True

    target = other_limit(charge_limit(live, vin), 85, 60)
    assert tescmd("charge", "limit", vin, str(target), **signed).data["response"]["result"]
    assert charge_limit(live, vin) == target

    assert tescmd("security", "unlock", **signed).data["response"]["result"] is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is False
    assert tescmd("security", "lock", **signed).data["response"]["result"] is True
    assert vehicle_data(live, vin, "vehicle_state")["vehicle_state"]["locked"] is True


def test_signed_command_with_an_unpaired_key_fails(tescmd: Tescmd) -> None:
    assert tescmd("key", "generate").code == 0  # generated, never paired on the car
    refused = tescmd("security", "honk", TESLA_SETUP_TIER="full", TESLA_COMMAND_PROTOCOL="signed")
    assert refused.code != 0
    assert refused.document["ok"] is False
    assert refused.document["error"]["code"] == "key_not_enrolled", refused.document


def test_sleeping_car_without_wake_fails_as_asleep(
    tescmd: Tescmd, live: LiveDemo, sleeping_vin: str
) -> None:
    failed = tescmd("security", "honk", TESLA_VIN=sleeping_vin)
    assert failed.code != 0
    assert failed.document["ok"] is False
    assert failed.document["error"]["code"] == "vehicle_asleep"
    assert listed_state(live, sleeping_vin) == "asleep"

    data = tescmd("vehicle", "data", TESLA_VIN=sleeping_vin)
    assert data.code != 0
    assert data.document["error"]["code"] == "vehicle_asleep"


def test_sleeping_car_with_wake_flag_is_woken_and_obeys(
    tescmd: Tescmd, live: LiveDemo, sleeping_vin: str
) -> None:
    honked = tescmd("--wake", "security", "honk", TESLA_VIN=sleeping_vin)
    assert honked.code == 0
    assert honked.data["response"]["result"] is True
    assert listed_state(live, sleeping_vin) == "online"
