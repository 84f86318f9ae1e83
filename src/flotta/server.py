"""The HTTP server `flotta serve` and `flotta demo` run: uvicorn's, ending the app's live
telemetry streams when it stops."""

from __future__ import annotations

import contextlib
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI

if TYPE_CHECKING:
    from flotta.runtime import Runtime

# How long a stopping server gives live telemetry streams to say goodbye: milliseconds, unless a
# client stopped reading.
STREAMS_END_S = 3.0


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
