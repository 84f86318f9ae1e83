"""Stopping `flotta demo` or `flotta serve` while telemetry streams are open: each client is told
why its stream ends (SSE `event: closed`, WebSocket close 1001), and the process exits at once
instead of waiting for the clients to leave."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from flotta.oauth.endpoints import TOKEN_PATH
from flotta.telemetry.dispatch import SERVER_STOPPING, Dispatcher
from tests.live import LiveDemo
from tests.scaled import free_port, wait_until

FLOTTA = [sys.executable, "-m", "flotta.cli"]
SSE = "/flotta/v1/telemetry/stream"
WS = "/flotta/v1/telemetry/ws"
EXIT_WITHIN_S = 10.0


def start_demo(data_dir: Path) -> subprocess.Popen[str]:
    args = ["demo", "--port", "0", "--data-dir", str(data_dir), "--vehicles", "1"]
    return subprocess.Popen(
        [*FLOTTA, *args, "--wake-profile", "instant"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_serve(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """`flotta serve` on the data a demo left (its app and credentials), in demo mode."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOTTA_")}
    env.update(PYTHONUNBUFFERED="1", FLOTTA_DEMO="true", FLOTTA_DATA_DIR=str(data_dir),
               FLOTTA_PORT=str(port), FLOTTA_LOG_LEVEL="warning")  # fmt: skip
    proc = subprocess.Popen(
        [*FLOTTA, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen[str], ready: Any) -> None:
    def up() -> bool:
        assert proc.poll() is None, f"the server exited early:\n{proc.communicate()[0]}"
        try:
            return bool(ready())
        except httpx.TransportError:
            return False

    wait_until(up, 30, "the server becoming ready", step_s=0.1)


async def partner_token(base_url: str, info: dict[str, Any]) -> str:
    """The demo app's partner token, as a developer's backend gets it (client_credentials)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "audience": base_url,
    }
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(base_url + TOKEN_PATH, data=form)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def stop_with_streams_open(
    proc: subprocess.Popen[str], base_url: str, token: str
) -> tuple[list[str], int | None, str, float]:
    """Open an SSE and a WebSocket stream, SIGTERM the server; return the SSE lines after the
    signal, the WebSocket's close code and reason, and how long the process took to exit."""
    auth = {"Authorization": f"Bearer {token}"}
    ws_url = base_url.replace("http", "ws", 1) + WS
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
        client.stream("GET", SSE, headers=auth) as response,
        websockets.connect(ws_url, additional_headers=auth) as ws,
        asyncio.timeout(15),
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith(": flotta telemetry stream")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        after: list[str] = []
        async for line in lines:  # ends when the server ends the response
            after.append(line)
        try:
            while True:  # no records: only the close can come
                await ws.recv()
        except websockets.ConnectionClosed:
            pass
        exited = await asyncio.to_thread(proc.wait, EXIT_WITHIN_S)
        assert exited is not None
        return after, ws.close_code, ws.close_reason or "", time.monotonic() - signalled


def assert_streams_told_and_process_gone(
    proc: subprocess.Popen[str], base_url: str, info: dict[str, Any]
) -> None:
    token = asyncio.run(partner_token(base_url, info))
    sse_lines, ws_code, ws_reason, took = asyncio.run(stop_with_streams_open(proc, base_url, token))
    output = proc.communicate()[0]
    assert "event: closed" in sse_lines, sse_lines
    data = next(line for line in sse_lines if line.startswith("data: "))
    assert "the server is stopping" in orjson.loads(data[6:])["reason"]
    assert ws_code == 1001 and "the server is stopping" in ws_reason, (ws_code, ws_reason)
    assert proc.returncode == 0, output
    assert took < EXIT_WITHIN_S
    assert "Traceback" not in output


def test_sigterm_ends_open_streams_with_their_reason_and_the_process_exits(
    tmp_path: Path,
) -> None:
    demo = start_demo(tmp_path)
    try:
        wait_ready(demo, lambda: (tmp_path / "demo.json").exists())
        info = json.loads((tmp_path / "demo.json").read_text())
        assert_streams_told_and_process_gone(demo, info["base_url"], info)

        serve, base_url = start_serve(tmp_path)  # the same app, now under `flotta serve`
        try:
            wait_ready(serve, lambda: httpx.get(f"{base_url}/status", timeout=1).is_success)
            assert_streams_told_and_process_gone(serve, base_url, info)
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.communicate()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()


def test_a_stream_that_starts_while_the_server_stops_ends_at_once(live: LiveDemo) -> None:
    runtime = live.handle.runtime
    streams = runtime.streams
    assert streams is not None

    async def scenario() -> None:
        # Its own dispatcher: ending the shared demo's streams would end other tests' too.
        dispatcher = Dispatcher(
            runtime.sessions, streams.records, streams.entitlements, runtime.clock
        )
        open_before = dispatcher.subscribe("app", 10)
        ending = asyncio.create_task(dispatcher.end_streams(within_s=5))
        await asyncio.sleep(0.05)
        assert open_before.closed_reason == SERVER_STOPPING and not ending.done()
        late = dispatcher.subscribe("app", 10)  # its request got in as the listener closed
        assert late.closed_reason == SERVER_STOPPING and late.changed.is_set()
        started = time.monotonic()
        dispatcher.unsubscribe(open_before)
        dispatcher.unsubscribe(late)  # both readers let go: the server need not wait longer
        await asyncio.wait_for(ending, 1)
        assert time.monotonic() - started < 1
        stuck = dispatcher.subscribe("app", 10)  # a reader that never lets go is not waited
        started = time.monotonic()  # for beyond the bound
        await dispatcher.end_streams(within_s=0.3)
        assert 0.3 <= time.monotonic() - started < 2 and stuck.closed_reason == SERVER_STOPPING

    asyncio.run(scenario())
