"""Two real `flotta serve` processes sharing PostgreSQL, NATS and Redis, for scaled tests."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from flotta.settings import Settings
from tests.conftest import service_reachable
from tests.postgres import fresh_database

T = TypeVar("T")

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"
PRESENCE_TTL_S = 2.0
STARTUP_S = 30.0


class LoopThread:
    """An event loop in a background thread, for the simulator and async set-up."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.05
) -> float:
    """Poll `check`, bounded by time and count; return the seconds it took."""
    started = time.monotonic()
    for _ in range(int(timeout_s / step_s) + 1):
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            break
        time.sleep(step_s)
    raise AssertionError(f"{what} did not happen within {timeout_s:g} s")


class Server:
    """One `flotta serve` subprocess, its port and its log."""

    def __init__(self, name: str, env: dict[str, str], data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flotta.cli", "serve"],
            env={**env, "FLOTTA_PORT": str(self.port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def wait_ready(self) -> None:
        def up() -> bool:
            assert self.proc.poll() is None, f"server exited early:\n{self.log_tail()}"
            try:
                return httpx.get(f"{self.url}/status", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, STARTUP_S, f"{self.url} becoming ready", step_s=0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@contextmanager
def shared_database(loop: LoopThread) -> Iterator[str]:
    """A fresh PostgreSQL database, created and dropped on the helper loop."""
    cm = fresh_database()
    url = loop.call(cm.__aenter__())
    try:
        yield url
    finally:
        loop.call(cm.__aexit__(None, None, None))


def scaled_env(db_url: str, data_dir: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLOTTA_")}
    return {
        **base,
        "PYTHONUNBUFFERED": "1",
        "FLOTTA_PROFILE": "scaled",
        "FLOTTA_DB__URL": db_url,
        "FLOTTA_BUS__URL": NATS_URL,
        "FLOTTA_KV__URL": REDIS_URL,
        # Unique per run, so parallel runs on the same NATS and Redis never meet.
        "FLOTTA_NAMESPACE": f"t{secrets.token_hex(4)}",
        "FLOTTA_SECRET_KEY": secrets.token_urlsafe(24),
        # Shared, so both processes sign and verify tokens with the same key.
        "FLOTTA_DATA_DIR": str(data_dir),
        "FLOTTA_GATEWAY__PRESENCE_TTL_S": str(PRESENCE_TTL_S),
        "FLOTTA_LOG_LEVEL": "warning",
        # The brokers and receivers the tests deliver to listen on loopback, as an operator's
        # own might on a private network: `flotta serve` refuses those unless allowed.
        "FLOTTA_OUTBOUND__ALLOW": '["127.0.0.0/8"]',
    }


@dataclass
class ScaledPair:
    """Process A (migrated first) and process B, their shared settings and a helper loop."""

    a: Server
    b: Server
    settings: Settings
    loop: LoopThread


@contextmanager
def scaled_pair(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[ScaledPair]:
    """Start A and B on a fresh database (with `extra_env` on top of the scaled profile's);
    stop them (and the loop) however the test ends."""
    service_reachable("127.0.0.1", 4222, "NATS")
    service_reachable("127.0.0.1", 6379, "Redis")
    loop = LoopThread()
    servers: list[Server] = []
    try:
        with shared_database(loop) as db_url:
            try:
                env = {**scaled_env(db_url, tmp_path), **(extra_env or {})}
                servers.append(Server("a", env, tmp_path))
                servers[0].wait_ready()  # A migrates the database and creates the signing key
                servers.append(Server("b", env, tmp_path))
                settings = Settings(
                    profile="scaled",
                    data_dir=tmp_path,
                    secret_key=env["FLOTTA_SECRET_KEY"],
                    db={"url": db_url},
                    bus={"url": NATS_URL},
                    kv={"url": REDIS_URL},
                )
                yield ScaledPair(servers[0], servers[1], settings, loop)
            finally:
                # Before the database is dropped: a server stopping commits what it holds.
                for server in servers:
                    server.stop()
    finally:
        loop.stop()


def clear_flotta_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in the test process must not pick up the developer's FLOTTA_* variables."""
    for key in [
        k for k in os.environ if k.startswith("FLOTTA_") and k != "FLOTTA_REQUIRE_SERVICES"
    ]:
        monkeypatch.delenv(key)
