"""Helpers for streaming-config tests against a live demo: a loopback receiver, a CA, pairing."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from flotta.devices.models import Vehicle
from flotta.oauth.models import OAuthClient
from tests.live import LiveDemo

T = TypeVar("T")


@contextmanager
def loopback_listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (the kernel's backlog does it)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ca_pem() -> str:
    """A self-signed P-256 CA certificate valid around the real time (the demo's clock)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Flotta Test Receiver CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def config(port: int, ca: str, **extra: Any) -> dict[str, Any]:
    """A valid config for a receiver on 127.0.0.1:`port`."""
    body: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": port,
        "ca": ca,
        "fields": {"Odometer": {"interval_seconds": 10}, "BatteryLevel": {"interval_seconds": 60}},
    }
    body.update(extra)
    return body


def api(live: LiveDemo, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or live.token}"}
    return httpx.Client(base_url=live.base_url, headers=headers, timeout=20)


def pair_keys(live: LiveDemo, vins: list[str], paired: bool = True) -> None:
    """Mark the vehicles' virtual keys paired, as fleet_status reports them."""
    runtime = live.handle.runtime

    async def change() -> None:
        async with runtime.sessions() as session, session.begin():
            rows = await session.scalars(select(Vehicle).where(Vehicle.vin.in_(vins)))
            for row in rows:
                row.config = {**(row.config or {}), "key_paired": paired}

    live.call(change())
    runtime.directory.forget()


def set_public_key(live: LiveDemo, client_id: str, public_key_hex: str | None) -> None:
    """Register the app's public key, as partner_accounts does."""
    runtime = live.handle.runtime

    async def change() -> None:
        async with runtime.sessions() as session, session.begin():
            app = await session.scalar(
                select(OAuthClient).where(OAuthClient.client_id == client_id)
            )
            assert app is not None
            app.public_key = public_key_hex

    live.call(change())
    runtime.directory.forget()


def wait_for(check: Callable[[], T | None], timeout_s: float = 10.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy, bounded by `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or check}")
        time.sleep(0.05)


def problems(answer: httpx.Response) -> dict[str, list[str]]:
    """The `messages` of a 400 in Tesla's envelope: what is wrong, by JSON path."""
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["response"] is None and body["error"] == "invalid_request"
    messages: dict[str, list[str]] = body["messages"]
    return messages
