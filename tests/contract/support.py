"""Helpers shared by the contract tests: power states, client keys and bounded waits.

Everything here talks to the live demo the same way a user could (HTTP), except the two
things only an owner standing next to the car can do: put it to sleep now and pair a key.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.live import LiveDemo

# The demo's first car is charging and its second is driving: busy cars wake themselves up,
# so only the last two are used for sleep tests. `IDLE_VIN_INDEX` is for everything else.
SLEEPER_INDEX = 3
IDLE_VIN_INDEX = 2
STATE_WAIT_S = 10.0
POLL_S = 0.1


def http(live: LiveDemo) -> httpx.Client:
    """A plain HTTP client for setup and checks (never the client under test)."""
    return httpx.Client(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {live.token}"},
        timeout=10.0,
    )


def listed_state(live: LiveDemo, vin: str) -> str:
    """The car's `state` as the vehicle list shows it."""
    with http(live) as client:
        response = client.get("/api/1/vehicles")
        response.raise_for_status()
        for item in response.json()["response"]:
            if item["vin"] == vin:
                return str(item["state"])
    raise AssertionError(f"{vin} is not in the vehicle list")


def wait_for_state(live: LiveDemo, vin: str, state: str, timeout_s: float = STATE_WAIT_S) -> None:
    """Poll the vehicle list until it says `state`; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        seen = listed_state(live, vin)
        if seen == state:
            return
        time.sleep(POLL_S)
    raise AssertionError(f"{vin} stayed {seen!r}, not {state!r}, for {timeout_s} s")


def put_to_sleep(live: LiveDemo, vin: str) -> None:
    """Sleep the car now and wait until the API reports it asleep."""
    live.put_to_sleep(vin)
    wait_for_state(live, vin, "asleep")


def wake_for_cleanup(live: LiveDemo, vin: str) -> None:
    """Bring a car back online so later tests start from a known state."""
    deadline = time.monotonic() + STATE_WAIT_S
    with http(live) as client:
        while time.monotonic() < deadline:
            client.post(f"/api/1/vehicles/{vin}/wake_up")
            if listed_state(live, vin) == "online":
                return
            time.sleep(0.2)
    raise AssertionError(f"{vin} did not come back online for cleanup")


def ensure_online(live: LiveDemo, vin: str) -> str:
    if listed_state(live, vin) != "online":
        wake_for_cleanup(live, vin)
    return vin


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_point(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The 65-byte uncompressed point, as the car's whitelist stores it."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def pair_key(live: LiveDemo, vin: str, public_key: bytes) -> None:
    """Enrol a client key on the car, as the owner does with a key card (on the car's loop)."""
    assert len(public_key) == 65 and public_key[0] == 4
    device = live.device(vin)

    async def enrol() -> None:
        device.pair_key(public_key)

    live.call(enrol())


def pair_pem_file(live: LiveDemo, vin: str, pem_path: Path) -> None:
    key = serialization.load_pem_public_key(pem_path.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    pair_key(live, vin, public_point(key))


def write_private_pem(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)
    return path


def vehicle_data(live: LiveDemo, vin: str, endpoints: str | None = None) -> dict[str, Any]:
    """Read vehicle_data over plain HTTP, to check what a client's command changed."""
    params = {"endpoints": endpoints} if endpoints else None
    with http(live) as client:
        response = client.get(f"/api/1/vehicles/{vin}/vehicle_data", params=params)
        response.raise_for_status()
        data: dict[str, Any] = response.json()["response"]
        return data


def charge_limit(live: LiveDemo, vin: str) -> int:
    return int(vehicle_data(live, vin, "charge_state")["charge_state"]["charge_limit_soc"])


def other_limit(current: int, *choices: int) -> int:
    """A charge limit different from `current`, so a command that does nothing is caught."""
    return next(c for c in choices if c != current)


def tescmd_env(live: LiveDemo, home: Path, vin: str, **extra: str) -> dict[str, str]:
    """clients.md's non-interactive tescmd recipe: a private HOME and config, our base URLs."""
    (home / "work").mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TESLA_CONFIG_DIR": str(home / "cfg"),
        "TESLA_TOKEN_FILE": str(home / "cfg" / "tokens.json"),
        "TESLA_CACHE_ENABLED": "false",
        "TESLA_API_BASE_URL": live.base_url,
        "TESLA_AUTH_BASE_URL": live.base_url,
        "TESLA_VIN": vin,
        **extra,
    }
