"""The newest tesla-fleet-api (>= 1.18, Python 3.13) energy-site calls, in a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.contract.test_tesla_fleet_api_latest import PYTHON, ROOT, _require_venv, ok
from tests.energy.support import battery_site, solar_site
from tests.live import LiveDemo

pytestmark = pytest.mark.contract

SCRIPT = Path(__file__).parent / "scripts" / "fleet_api_energy_latest.py"
UPDATED = {"response": {"code": 201, "message": "Updated"}}


def site_ids(live: LiveDemo) -> list[str]:
    return [str(battery_site(live)), str(solar_site(live))]


@pytest.fixture(scope="module")
def summary(live: LiveDemo) -> dict[str, Any]:
    _require_venv()
    done = subprocess.run(
        [str(PYTHON), str(SCRIPT), live.base_url, live.token, *site_ids(live)],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"script failed:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_it_is_really_the_newest_line(summary: dict[str, Any]) -> None:
    major, minor = (int(p) for p in summary["version"].split(".")[:2])
    assert (major, minor) >= (1, 18)


def test_reads(summary: dict[str, Any], live: LiveDemo) -> None:
    assert set(live.info["energy_sites"]) <= set(ok(summary, "products"))
    assert ok(summary, "live_status")["response"]["grid_status"] == "Active"
    walls = ok(summary, "solar_live_status")["response"]["wall_connectors"]
    assert walls[0]["vin"] == live.vins[0]
    assert len(ok(summary, "energy_history")["response"]["time_series"]) == 7
    assert ok(summary, "backup_history")["response"]["total_events"] >= 1


def test_writes_take_effect(summary: dict[str, Any]) -> None:
    for step in ("backup", "operation", "storm_mode", "grid_import_export"):
        assert ok(summary, step) == UPDATED, step
    assert ok(summary, "site_info_after") == {
        "backup_reserve_percent": 37,
        "default_real_mode": "autonomous",
        "storm_mode_enabled": True,
        "export_rule": "battery_ok",
    }


def test_bad_value_is_an_invalid_field(summary: dict[str, Any]) -> None:
    entry = summary["bad_backup"]
    assert not entry["ok"]
    assert entry["error"].startswith("InvalidField")
