"""tescmd 0.6.1 `energy` commands on a live demo: list, live, status, backup, mode, storm."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.support import IDLE_VIN_INDEX, tescmd_env
from tests.contract.test_tescmd import TESCMD, Tescmd
from tests.energy.support import battery_site, simulator, solar_site
from tests.live import LiveDemo

pytestmark = pytest.mark.contract


@pytest.fixture
def tescmd(live: LiveDemo, tmp_path: Path) -> Tescmd:
    if not TESCMD.exists():
        pytest.fail(f"{TESCMD} is missing: tescmd is a dev dependency (`scripts/dev test`)")
    env = tescmd_env(live, tmp_path, live.vins[IDLE_VIN_INDEX], TESLA_ACCESS_TOKEN=live.token)
    return Tescmd(tmp_path, env)


def test_energy_list(tescmd: Tescmd, live: LiveDemo) -> None:
    listed = tescmd("energy", "list").data
    assert set(live.info["energy_sites"]) <= {p["energy_site_id"] for p in listed}
    assert all("vin" not in p for p in listed)


def test_energy_live_and_status(tescmd: Tescmd, live: LiveDemo) -> None:
    site = str(battery_site(live))
    live_status = tescmd("energy", "live", site).data
    assert live_status["grid_status"] == "Active"
    assert 0 <= live_status["percentage_charged"] <= 100
    status = tescmd("energy", "status", site).data
    assert status["site_name"] == "Casa Bologna"
    assert status["default_real_mode"] in ("self_consumption", "autonomous", "backup")
    solar = tescmd("energy", "live", str(solar_site(live))).data
    assert solar["wall_connectors"][0]["vin"] == live.vins[0]


def test_energy_backup_mode_and_storm(tescmd: Tescmd, live: LiveDemo) -> None:
    site_id = battery_site(live)
    site = str(site_id)
    sim = simulator(live, site_id)
    try:
        assert tescmd("energy", "backup", site, "45").code == 0
        assert sim.settings.backup_reserve_percent == 45
        assert tescmd("energy", "mode", site, "autonomous").code == 0
        assert sim.settings.mode == "autonomous"
        assert tescmd("energy", "storm", site, "--on").code == 0
        assert sim.settings.storm_mode_enabled is True
        status = tescmd("energy", "status", site).data
        assert status["backup_reserve_percent"] == 45
        assert status["default_real_mode"] == "autonomous"
        assert tescmd("energy", "storm", site, "--off").code == 0
        assert sim.settings.storm_mode_enabled is False
    finally:
        tescmd("energy", "backup", site, "20")
        tescmd("energy", "mode", site, "self_consumption")
        tescmd("energy", "storm", site, "--off")


def test_energy_history_lists_wall_connector_sessions(tescmd: Tescmd, live: LiveDemo) -> None:
    history = tescmd("energy", "history", str(solar_site(live))).data
    assert len(history["charge_history"]) >= 3
