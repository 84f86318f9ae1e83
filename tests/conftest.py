"""Shared fixtures: a live demo server on loopback, and service reachability rules."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveDemo, start_live_demo

REQUIRE_SERVICES = os.environ.get("FLOTTA_REQUIRE_SERVICES") == "1"


def service_reachable(host: str, port: int, name: str) -> None:
    """Skip (or, with FLOTTA_REQUIRE_SERVICES=1, fail) when a server is not reachable."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        message = f"{name} at {host}:{port} is not reachable: {exc}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    """One demo server for the whole session (instant wakes, four vehicles)."""
    demo = start_live_demo(tmp_path_factory.mktemp("live"))
    try:
        yield demo
    finally:
        demo.stop()


@pytest.fixture
def demo_factory(tmp_path: Path) -> Iterator[Callable[..., LiveDemo]]:
    """Start private demos (own data dir, options of `start_live_demo`); all stop afterwards."""
    started: list[LiveDemo] = []

    def start(**options: Any) -> LiveDemo:
        demo = start_live_demo(tmp_path / f"demo{len(started)}", **options)
        started.append(demo)
        return demo

    try:
        yield start
    finally:
        for demo in started:
            demo.stop()
