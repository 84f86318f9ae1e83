"""The P4 baseline: uvicorn + a minimal Starlette WebSocket endpoint that only receives.

Same server stack and WebSocket options as Flotta's gateway (uvicorn's default WebSocket
implementation, no per-message deflate, the same maximum frame size), none of its work:

    python bench/bare_ws_server.py --port 8765
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_FRAME_BYTES = 1_000_000  # Flotta's gateway default (FLOTTA_GATEWAY__MAX_FRAME_BYTES)


async def status(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def connect(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.receive_bytes()
    except WebSocketDisconnect:
        return


app = Starlette(routes=[Route("/status", status), WebSocketRoute("/gateway/v1/connect", connect)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--ws",
        default="auto",
        help="uvicorn WebSocket implementation "
        "(auto, as Flotta's gateway; or websockets-sansio, wsproto)",
    )
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws=args.ws,
        ws_max_size=MAX_FRAME_BYTES,
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
