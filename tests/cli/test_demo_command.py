"""`flotta demo` as a newcomer runs it: a real process, demo.json, a working API, clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

FLOTTA = [sys.executable, "-m", "flotta.cli"]


def wait_for(path: Path, proc: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"flotta demo exited early: {proc.communicate()[0]}")
        assert time.monotonic() < deadline, "demo.json never appeared"
        time.sleep(0.05)


def test_demo_writes_demo_json_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            *FLOTTA,
            "demo",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--vehicles",
            "3",
            "--wake-profile",
            "instant",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        wait_for(tmp_path / "demo.json", proc, 30)
        info = json.loads((tmp_path / "demo.json").read_text())
        assert set(info) >= {
            "base_url",
            "access_token",
            "refresh_token",
            "vehicles",
            "energy_sites",
        }
        assert info["refresh_token"].startswith("NA_")
        assert info["client_secret"].startswith("fcs_") and len(info["client_id"]) == 32
        assert info["portal_url"] == f"{info['base_url']}/portal/"
        assert info["developer"]["email"] == "developer@flotta.demo"
        assert len(info["developer"]["totp_secret"]) == 32
        assert info["owner"]["password"] and info["developer"]["password"]
        assert len(info["energy_sites"]) == 2 and all(
            isinstance(s, int) for s in info["energy_sites"]
        )
        assert len(info["vehicles"]) == 3 and all(len(v) == 17 for v in info["vehicles"])
        headers = {"Authorization": f"Bearer {info['access_token']}"}
        listed = httpx.get(f"{info['base_url']}/api/1/vehicles", headers=headers, timeout=10)
        assert [v["vin"] for v in listed.json()["response"]] == info["vehicles"]
        assert {v["state"] for v in listed.json()["response"]} == {"online"}
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert info["access_token"] in output  # the banner prints the token and the VINs
    assert all(vin in output for vin in info["vehicles"])
    assert info["portal_url"] in output and info["owner"]["password"] in output
    assert "stopped" in output
    assert "Traceback" not in output


def test_demo_restarts_on_the_same_data_dir_with_the_same_devices(tmp_path: Path) -> None:
    vins: list[list[str]] = []
    passwords: list[tuple[str, str]] = []
    for _ in range(2):
        proc = subprocess.Popen(
            [*FLOTTA, "demo", "--port", "0", "--data-dir", str(tmp_path), "--vehicles", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            (tmp_path / "demo.json").unlink(missing_ok=True)
            wait_for(tmp_path / "demo.json", proc, 30)
            info = json.loads((tmp_path / "demo.json").read_text())
            vins.append(info["vehicles"] + [str(s) for s in info["energy_sites"]])
            passwords.append((info["owner"]["password"], info["developer"]["password"]))
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0
    assert vins[0] == vins[1]
    assert passwords[0] == passwords[1]  # the printed sign-ins stay valid across restarts


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = subprocess.run(
            [*FLOTTA, "demo", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot start" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def _flotta(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLOTTA, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        cwd=tmp_path,
    )


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    result = _flotta(
        ["demo", "--port", "0", "--data-dir", str(tmp_path)],
        tmp_path,
        FLOTTA_DB__URL="postgresql+asyncpg://nobody:s3cret@127.0.0.1:1/none",
    )
    assert result.returncode == 1
    assert "cannot open the database postgresql+asyncpg://nobody:***@127.0.0.1:1/none" in (
        result.stdout
    )
    assert "s3cret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_unwritable_data_dir_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _flotta(["demo", "--port", "0", "--data-dir", str(blocker / "data")], tmp_path)
    assert result.returncode == 1
    assert "is not writable" in result.stdout


def test_unworkable_settings_are_refused_before_starting(tmp_path: Path) -> None:
    result = _flotta(
        ["demo", "--port", "0", "--data-dir", str(tmp_path)], tmp_path, FLOTTA_WORKERS="2"
    )
    assert result.returncode == 2
    assert "configuration error" in result.stdout and "FLOTTA_WORKERS=1" in result.stdout
    serve = _flotta(["serve"], tmp_path, FLOTTA_DATA_DIR=str(tmp_path))
    assert serve.returncode == 2
    assert "FLOTTA_SECRET_KEY is the public demo secret" in serve.stdout
