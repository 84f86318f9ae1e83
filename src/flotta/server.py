"""The HTTP server `flotta serve` and `flotta demo` run: uvicorn's, ending the app's live
telemetry streams when it stops."""

from __future__ import annotations

import contextlib
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI

if TYPE_CHECKING:
    from flotta.runtime import Runtime
    from flotta.settings import Settings

# How long a stopping server gives live telemetry streams to say goodbye: milliseconds, unless a
# client stopped reading.
STREAMS_END_S = 3.0


# After the streams end, how long requests still running may take before uvicorn cancels them
# (a command waits for its car up to command_timeout_s; a stream client that stopped reading
# would otherwise hold the process forever).
SHUTDOWN_GRACE_S = 30.0


def server_config(app: FastAPI, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for Flotta's app: the gateway's frame limit, no per-message
    deflate (devices send small binary frames), and a bounded graceful shutdown."""
    grace = max(SHUTDOWN_GRACE_S, settings.gateway.command_timeout_s + 5)
    return uvicorn.Config(
        app,
        ws_max_size=settings.gateway.max_frame_bytes,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=round(grace),
        **options,
    )


class FlottaServer(uvicorn.Server):
    """uvicorn's server (`flotta serve` and `flotta demo`), ending the app's telemetry streams
    when it stops. uvicorn waits for open responses before the lifespan's shutdown runs, so a
    stream, which never ends by itself, would keep the process alive until its client left."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.fastapi_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting first: a client told to reconnect must not come back to this process.
        for listener in self.servers:
            listener.close()
        # Before uvicorn closes connections: it would close WebSockets with 1012, not 1001.
        runtime: Runtime | None = getattr(self.fastapi_app.state, "runtime", None)
        if runtime is not None:
            await runtime.end_streams(STREAMS_END_S)
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            # uvicorn raises a signal it caught again once it has stopped; SIGTERM's default
            # action would turn this clean stop into "killed by SIGTERM" instead of exit 0.
            with contextlib.suppress(AttributeError, ValueError):
                self._captured_signals.remove(sig)
