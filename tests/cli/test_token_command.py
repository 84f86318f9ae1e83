"""`flotta token` mints tokens the running server accepts, with exactly the chosen scopes."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.live import LiveDemo


def _token(live: LiveDemo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flotta.cli", "token", "--data-dir", str(live.data_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_minted_token_carries_only_the_chosen_scopes(live: LiveDemo) -> None:
    result = _token(live, "--scopes", "vehicle_device_data")
    assert result.returncode == 0, result.stdout + result.stderr
    headers = {"Authorization": f"Bearer {result.stdout.strip()}"}
    listed = httpx.get(f"{live.base_url}/api/1/vehicles", headers=headers, timeout=10)
    assert listed.status_code == 200
    assert set(live.vins) <= {v["vin"] for v in listed.json()["response"]}
    honk = httpx.post(
        f"{live.base_url}/api/1/vehicles/{live.vins[0]}/command/honk_horn",
        headers=headers,
        timeout=10,
    )
    assert honk.status_code == 403


def test_unknown_account_and_unknown_scope_are_errors(live: LiveDemo) -> None:
    nobody = _token(live, "--email", "nobody@example.com")
    assert nobody.returncode == 1 and "no account" in nobody.stdout
    bad = _token(live, "--scopes", "vehicle_device_data teleport")
    assert bad.returncode == 2 and "teleport" in bad.stdout
