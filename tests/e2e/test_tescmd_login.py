"""tescmd's own `auth login` (PKCE S256, localhost callback), completed in Chromium on our pages.

tescmd prints the authorize URL and "opens a browser" (BROWSER=true makes that a no-op); the
test's Chromium signs the demo owner in and allows on the consent page; Flotta redirects to
tescmd's callback server, and tescmd exchanges the code. Then tescmd uses the stored token.
"""

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.contract.support import tescmd_env
from tests.live import LiveDemo
from tests.oauth.flow import register_app

pytestmark = pytest.mark.contract
TESCMD = Path(sys.executable).with_name("tescmd")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_lines(process: subprocess.Popen[str], seen: list[str]) -> tuple[Any, threading.Thread]:
    """A thread copying tescmd's output lines into `seen` and a queue, until it exits."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, name="tescmd-stdout", daemon=True)
    reader.start()
    return lines, reader


def _authorize_url(lines: Any, seen: list[str], timeout: float = 30.0) -> str:
    """The URL tescmd prints, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        match = re.search(r"(http://\S+/oauth2/v3/authorize\?\S+)", line)
        if match:
            return match.group(1)
    pytest.fail(f"tescmd printed no authorize URL within {timeout} s:\n{''.join(seen)[-2000:]}")


def test_tescmd_auth_login_with_pkce_on_our_consent_page(
    live: LiveDemo, browser: Any, tmp_path: Path
) -> None:
    port = _free_port()
    app = register_app(
        live, redirect_uris=[f"http://localhost:{port}/callback"], name="tescmd login test"
    )
    env = tescmd_env(
        live,
        tmp_path,
        live.vins[0],
        TESLA_CLIENT_ID=app.client_id,
        TESLA_CLIENT_SECRET=app.secret or "",
        BROWSER="true",  # webbrowser.open runs `true <url>`: the test's Chromium goes instead
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [str(TESCMD), "auth", "login", "--port", str(port)],
        env=env,
        cwd=tmp_path / "work",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    lines, reader = _read_lines(process, seen)
    try:
        url = _authorize_url(lines, seen)
        assert "code_challenge_method=S256" in url
        owner = live.info["owner"]
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.fill("#email", owner["email"])
        page.fill("#password", owner["password"])
        page.click("form[action$='/login'] button[type=submit]")
        assert "tescmd login test" in page.inner_text("main")  # the consent page names the app
        page.click("button[name=decision][value=allow]")
        page.wait_for_url(re.compile(rf"^http://localhost:{port}/callback"))
        context.close()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        reader.join(10)  # tescmd exited: its output ends
        if process.stdout is not None:
            process.stdout.close()
    output = "".join(seen)
    assert process.returncode == 0, output[-3000:]
    assert "Login successful" in output
    saved = json.loads((tmp_path / "cfg" / "tokens.json").read_text())
    stored = {key.rsplit("/", 1)[-1]: value for key, value in saved.items()}
    assert str(stored.get("refresh_token", "")).startswith("NA_"), saved.keys()
    assert "vehicle_device_data" in json.loads(stored["metadata"])["scopes"]

    assert "TESLA_ACCESS_TOKEN" not in env  # the next call uses the stored login
    listed = subprocess.run(
        [str(TESCMD), "--format", "json", "vehicle", "list"],
        env={k: v for k, v in env.items() if k != "BROWSER"},
        cwd=tmp_path / "work",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    document = json.loads(listed.stdout or listed.stderr)
    assert document.get("ok") is True, document
    vins = {v["vin"] for v in document["data"]}
    assert vins and vins <= set(live.vins)
