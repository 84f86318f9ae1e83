"""Real clients refresh their tokens at Flotta's `/oauth2/v3/token`, then use the API.

teslajsonpy (its own client_id), TeslaPy (`client_id=ownerapi`, the demo's public client),
tesla-fleet-api 1.18 (`TOKEN_URLS` override, refresh without a secret, partner login) and
tescmd (a 401 triggers its refresh).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import teslapy  # type: ignore[import-untyped]
from teslajsonpy import Controller  # type: ignore[import-untyped]

from tests.conftest import REQUIRE_SERVICES
from tests.contract.support import tescmd_env
from tests.live import LiveDemo
from tests.oauth.support import claims, issue_family, issue_ownerapi_family

pytestmark = [
    pytest.mark.contract,
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
PYTHON313 = ROOT / ".venv313" / "bin" / "python"
SCRIPT = Path(__file__).parent / "scripts" / "fleet_api_oauth.py"
TESCMD = Path(sys.executable).with_name("tescmd")
EMAIL = "owner@flotta.demo"


async def test_teslajsonpy_refreshes_then_reads_vehicles(live: LiveDemo) -> None:
    token = issue_family(live)
    websession = httpx.AsyncClient(timeout=15)
    controller = Controller(
        websession=websession,
        refresh_token=token,
        expiration=0,
        auth_domain=live.base_url,
        api_proxy_url=live.base_url,
        client_id=str(live.info["client_id"]),
    )
    try:
        tokens = await controller.connect()
        assert tokens["refresh_token"].startswith("NA_") and tokens["refresh_token"] != token
        assert claims(tokens["access_token"])["azp"] == live.info["client_id"]
        cars = await controller.generate_car_objects()
        assert set(live.vins) <= set(cars)
    finally:
        await controller.disconnect()
        await websession.aclose()


def test_teslapy_refreshes_an_expired_token_as_ownerapi(
    live: LiveDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = live.base_url + "/"
    monkeypatch.setattr(teslapy, "BASE_URL", base)
    refresh_token = issue_ownerapi_family(live)
    expired = {
        "access_token": "expired-and-unused",
        "token_type": "Bearer",
        "refresh_token": refresh_token,
        "expires_in": 3600,
        "expires_at": time.time() - 60,
    }
    cache: dict[str, Any] = {EMAIL: {"url": base, "sso": expired}}
    with teslapy.Tesla(
        EMAIL,
        sso_base_url=base,
        cache_loader=lambda: cache,
        cache_dumper=lambda c: None,
        timeout=15,
    ) as tesla:
        vins = {v["vin"] for v in tesla.vehicle_list()}
        assert set(live.vins) <= vins
        assert tesla.token["refresh_token"] != refresh_token
        assert tesla.token["access_token"] != "expired-and-unused"
        assert claims(tesla.token["access_token"])["azp"] == "ownerapi"


def _require(path: Path, what: str) -> None:
    if path.exists():
        return
    message = f"{path} is missing: {what}"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def test_tesla_fleet_api_latest_refreshes_without_a_secret(live: LiveDemo) -> None:
    _require(PYTHON313, "run `scripts/dev test` (needs pyenv's Python 3.13)")
    token = issue_family(live)
    done = subprocess.run(
        [
            str(PYTHON313),
            str(SCRIPT),
            live.base_url,
            str(live.info["client_id"]),
            str(live.info["client_secret"]),
            token,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert tuple(int(p) for p in summary["version"].split(".")[:2]) >= (1, 18)
    assert set(live.vins) <= set(summary["vins"])
    assert summary["refresh_token"] != token
    assert summary["second_refresh_token"] not in (token, summary["refresh_token"])
    assert summary["partner_token_keys"] == ["access_token", "expires_in", "token_type"]
    assert claims(summary["partner_access_token"])["token_type"] == "partner"


def test_tescmd_refreshes_on_401(live: LiveDemo, tmp_path: Path) -> None:
    _require(TESCMD, "tescmd is a dev dependency (`scripts/dev test`)")
    token = issue_family(live)
    env = tescmd_env(live, tmp_path, live.vins[2], TESLA_CLIENT_ID=str(live.info["client_id"]))
    expired = live.mint(["vehicle_device_data"], ttl_s=1)
    time.sleep(1.1)
    stored = {
        "access_token": expired,
        "refresh_token": token,
        "metadata": {"expires_at": 0, "scopes": [], "region": "na"},
    }

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TESCMD), "--format", "json", *args],
            env=env,
            cwd=tmp_path / "work",
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    imported = run("auth", "import", stdin=json.dumps(stored))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    listed = run("vehicle", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert set(live.vins) <= {v["vin"] for v in json.loads(listed.stdout)["data"]}
    saved = json.loads((tmp_path / "cfg" / "tokens.json").read_text())
    # The rotated refresh token (and a fresh access token) replaced the imported ones.
    assert token not in json.dumps(saved) and expired not in json.dumps(saved)
    assert "NA_" in json.dumps(saved)
