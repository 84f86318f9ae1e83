"""Can a car open a TCP connection to a telemetry config's `hostname:port`? (network check)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence

from flotta.outbound import first_connected

MAX_TIMEOUT_S = 30.0
"""Upper bound on one check, whatever the caller asks: a config request must not hang."""


async def check_reachable(
    hostname: str, port: int, timeout_s: float, addresses: Sequence[str] = ()
) -> str | None:
    """None when `hostname:port` accepts a TCP connection within `timeout_s`, else why not.

    `addresses` are where to connect: those flotta.outbound checked for `hostname` (a name
    resolved again here could answer with an internal address, and the answer would tell a
    developer whether a port is open there); without them, the name."""
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout_s must be in (0, {MAX_TIMEOUT_S}], got {timeout_s}")
    target = f"{hostname}:{port}"

    async def connect(address: str, share: float | None) -> asyncio.StreamWriter:
        async with asyncio.timeout(share):
            return (await asyncio.open_connection(address, port))[1]

    try:
        writer = await first_connected(addresses or (hostname,), connect, timeout_s)
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
