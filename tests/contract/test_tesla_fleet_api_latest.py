"""The newest tesla-fleet-api (>= 1.18, Python 3.13 only) against a live demo, in a subprocess.

1.18 verifies the session-info HMAC tag of every handshake, which 1.5.0 ignores, so signed
commands here prove the tag is right. The subprocess prints one JSON summary (see the script).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.contract.support import (
    IDLE_VIN_INDEX,
    ensure_online,
    new_private_key,
    pair_key,
    public_point,
    write_private_pem,
)
from tests.live import LiveDemo

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv313" / "bin" / "python"
SCRIPT = Path(__file__).parent / "scripts" / "fleet_api_latest.py"


def _require_venv() -> None:
    if PYTHON.exists():
        return
    message = f"{PYTHON} is missing: run `scripts/dev test` (needs pyenv's Python 3.13)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def summary(live: LiveDemo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _require_venv()
    vin = ensure_online(live, live.vins[IDLE_VIN_INDEX])
    key = new_private_key()
    pair_key(live, vin, public_point(key))
    key_path = write_private_pem(key, tmp_path_factory.mktemp("latest") / "private_key.pem")
    done = subprocess.run(
        [str(PYTHON), str(SCRIPT), live.base_url, live.token, vin, str(key_path)],
        capture_output=True,
        text=True,
        timeout=100,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"script failed:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    result["vin"] = vin
    return result


def ok(summary: dict[str, Any], step: str) -> Any:
    entry = summary[step]
    assert entry["ok"], f"{step}: {entry['error']}"
    return entry["value"]


def test_it_is_really_the_newest_line(summary: dict[str, Any]) -> None:
    major, minor = (int(p) for p in summary["version"].split(".")[:2])
    assert (major, minor) >= (1, 18)


def test_products_and_vehicle_data(summary: dict[str, Any], live: LiveDemo) -> None:
    assert set(live.vins) <= set(ok(summary, "products"))
    data = ok(summary, "vehicle_data")
    assert data["sections"] == ["charge_state", "drive_state"]
    assert isinstance(data["latitude"], float)
    assert isinstance(data["charge_limit_soc"], int)


def test_rest_command_changes_state(summary: dict[str, Any]) -> None:
    assert ok(summary, "rest_set_charge_limit") == {"response": {"result": True, "reason": ""}}
    assert ok(summary, "charge_limit_after_rest") == summary["rest_target"]


def test_signed_infotainment_commands(summary: dict[str, Any]) -> None:
    assert ok(summary, "signed_honk_horn")["response"]["result"] is True
    assert ok(summary, "signed_set_charge_limit")["response"]["result"] is True
    assert ok(summary, "charge_limit_after_signed") == summary["signed_target"]
    assert ok(summary, "signed_flash_lights")["response"]["result"] is True


def test_signed_vcsec_commands(summary: dict[str, Any]) -> None:
    assert ok(summary, "signed_door_unlock")["response"]["result"] is True
    assert ok(summary, "locked_after_unlock") is False
    assert ok(summary, "signed_door_lock")["response"]["result"] is True
    assert ok(summary, "locked_after_lock") is True


def test_unpaired_key_is_refused(summary: dict[str, Any]) -> None:
    entry = summary["unpaired_honk_horn"]
    assert not entry["ok"]
    assert entry["error"].startswith("NotOnWhitelistFault")
