"""The demo answers a keep-alive connection promptly (no Nagle delay on accepted sockets)."""

from __future__ import annotations

import socket
import time

from tests.live import LiveDemo


def test_accepted_sockets_have_tcp_nodelay(live: LiveDemo) -> None:
    host, port = live.base_url.removeprefix("http://").split(":")
    request = f"GET /status HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        durations = []
        for _ in range(20):
            started = time.perf_counter()
            conn.sendall(request)
            data = b""
            while not data.endswith(b"ok"):
                data += conn.recv(4096)
            durations.append(time.perf_counter() - started)
    durations.sort()
    # Nagle plus delayed ACK adds ~40 ms to every answer; a healthy median is well under that.
    assert durations[len(durations) // 2] < 0.02, durations
