"""Can a car open a TCP connection to a telemetry config's `hostname:port`? (network check)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

MAX_TIMEOUT_S = 30.0
"""Upper bound on one check, whatever the caller asks: a config request must not hang."""


async def check_reachable(hostname: str, port: int, timeout_s: float) -> str | None:
    """None when `hostname:port` accepts a TCP connection within `timeout_s`, else why not."""
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout_s must be in (0, {MAX_TIMEOUT_S}], got {timeout_s}")
    target = f"{hostname}:{port}"
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(hostname, port)
    except TimeoutError:
        return f"{target} did not accept a TCP connection within {timeout_s:g} s"
    except socket.gaierror as exc:
        return f"{hostname} does not resolve: {exc.strerror or exc}"
    except ConnectionRefusedError:
        return f"{target} refused the connection: is the telemetry server listening on that port?"
    except OSError as exc:
        return f"{target} is not reachable: {exc.strerror or exc}"
    writer.close()
    with contextlib.suppress(OSError):  # the peer may close first; the handshake was enough
        await writer.wait_closed()
    return None
