"""A device's WebSocket as the three callables a hub serves: receive, send and close."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect


class LinkClosed(Exception):
    """`send` on a link the peer or the server has closed meanwhile."""


@dataclass(frozen=True, slots=True)
class LinkIO:
    """`receive()` answers None once the peer is gone and `send` raises LinkClosed, so hubs
    need not know Starlette."""

    receive: Callable[[], Awaitable[bytes | str | None]]
    send: Callable[[bytes], Awaitable[None]]
    close: Callable[[int, str], Awaitable[None]]


def link_io(websocket: WebSocket) -> LinkIO:
    async def receive() -> bytes | str | None:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            return None
        if message["type"] == "websocket.disconnect":
            return None
        data: bytes | str | None = message.get("bytes")
        return data if data is not None else message.get("text", "")

    async def send(data: bytes) -> None:
        try:
            await websocket.send_bytes(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            # Starlette raises RuntimeError once the socket is closed; the transport, OSError.
            raise LinkClosed(str(exc)) from exc

    async def close(code: int, reason: str) -> None:
        await websocket.close(code=code, reason=reason)

    return LinkIO(receive, send, close)
