"""`flotta serve` logs each request, but never the one-time links and codes in query strings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import structlog

from flotta.logs import configure_logging, redact


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redact_keeps_the_path_and_hides_secret_values() -> None:
    line = 'GET /portal/verify?token=fev_abc&next=/x HTTP/1.1" 200'
    assert redact(line) == 'GET /portal/verify?token=[redacted]&next=/x HTTP/1.1" 200'
    assert "NA_123" not in redact("/cb?code=NA_123&state=s")
    assert redact("/cb?state=s") == "/cb?state=s"


def test_a_logged_exception_names_the_error_and_line_but_no_local_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info")

    def sign_in(password: str) -> None:
        raise ValueError("wrong password")

    secret = "-".join(["hunter2", "not", "for", "logs"])  # not in the source a traceback quotes
    try:
        sign_in(secret)
    except ValueError:
        structlog.get_logger("test").exception("sign-in failed")
    logged = capsys.readouterr().out
    assert "sign-in failed" in logged
    assert "ValueError: wrong password" in logged
    assert 'raise ValueError("wrong password")' in logged  # where it happened
    assert secret not in logged


def test_access_log_hides_portal_link_tokens(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "FLOTTA_SECRET_KEY": "serve-log-test-secret-0123456789",
        "FLOTTA_DATA_DIR": str(tmp_path),
        "FLOTTA_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "flotta.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    secret = "fev_" + "s3cr3t" * 6
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "flotta serve did not start within 30 s"
            try:
                httpx.get(f"http://127.0.0.1:{port}/status", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        answer = httpx.get(f"http://127.0.0.1:{port}/portal/verify?token={secret}", timeout=10)
        assert answer.status_code in (200, 400)  # an unknown link: a page saying so
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "/portal/verify?token=[redacted]" in output
    assert secret not in output
