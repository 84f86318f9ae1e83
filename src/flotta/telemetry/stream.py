"""The Fleet API's own telemetry stream: Server-Sent Events and WebSocket, per app.

`GET /flotta/v1/telemetry/stream` (SSE; `id:` is the cursor, resume with `Last-Event-ID` or
`?cursor=`) and `WS /flotta/v1/telemetry/ws` (`?cursor=`), authorised by the app's partner
token. Each starts from the record log after the cursor, then goes live without a gap or a
duplicate: it subscribes before reading the log and skips live records it already sent.
Records ingested by another process reach it from the log, without reconnecting.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Literal, cast, get_args

import orjson
from fastapi import APIRouter, Header, Query, Request, WebSocket
from starlette.responses import StreamingResponse
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect

from flotta.auth.tokens import Principal, bearer_token
from flotta.db.base import MAX_ROW_ID
from flotta.errors import (
    FlottaError,
    InvalidRequest,
    MissingScopes,
    Unauthorized,
    error_response,
)
from flotta.fleet.deps import PrincipalDep, RuntimeDep
from flotta.fleet.errors_doc import ErrorEnvelope
from flotta.runtime import Runtime
from flotta.telemetry.dispatch import Subscription, TelemetryStreams
from flotta.telemetry.formats import record_json
from flotta.telemetry.records import StreamRecord
from flotta.telemetry.schemas import record_envelope

router = APIRouter(tags=["telemetry"])

PAGE = 500
# Above ingest's largest batch (MAX_BATCH), which a live subscriber is offered at once.
BUFFER = 10_000
MAX_CURSOR = MAX_ROW_ID  # cursors are record-log ids
KEEPALIVE_S = 15.0
# An idle stream reads the log this often: records another process committed arrive within
# it even if that process's announcement on the bus was lost.
IDLE_POLL_S = 2.0

Format = Literal["json", "protobuf"]
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorEnvelope, "description": "Missing, malformed or expired access token"},
    403: {"model": ErrorEnvelope, "description": "Not the app's partner token"},
}


class StreamsOff(FlottaError):
    status = 503
    key = "service_unavailable"


def streams_of(runtime: Runtime) -> TelemetryStreams:
    """The running telemetry streams (503 when this process does not run them)."""
    streams: TelemetryStreams | None = getattr(runtime, "streams", None)
    if streams is None:
        raise StreamsOff("telemetry streaming is not running in this process")
    return streams


async def stream_app(who: Principal, runtime: Runtime) -> str:
    """The app whose records a partner token may read; 401/403 otherwise."""
    if not who.partner:
        raise MissingScopes(
            "telemetry streams and sinks need the app's partner token (grant_type="
            "client_credentials), not a user's token"
        )
    app = await runtime.directory.app(who.client_id)
    if app is None or not app.approved:
        raise Unauthorized("the app this token was issued to is no longer registered or approved")
    return who.client_id


async def records_from(
    streams: TelemetryStreams, sub: Subscription, cursor: int
) -> AsyncIterator[list[StreamRecord] | None]:
    """The app's records after `cursor` in batches: the log first, then live; None is a
    keep-alive. The log is read again whenever it holds records the buffer lacks (the buffer
    overflowed, or another process committed them) and every IDLE_POLL_S of silence.
    Entitlement is checked once per (app, car) of each batch."""
    dispatcher = streams.dispatcher
    from_log, silent_s = True, 0.0
    while sub.closed_reason is None:  # the client left, or the server stops
        # Checked before every take: past an overflow the buffer has a gap, the log has none.
        if from_log or sub.lagged or sub.behind(cursor, dispatcher.gap_at):
            horizon = dispatcher.published_through or 0  # committed before the read starts
            page = await streams.records.after(sub.client_id, cursor, PAGE)
            if page:
                cursor = page[-1].cursor
                allowed = await _entitled(streams, page)
                if allowed:
                    silent_s = 0.0
                    yield allowed
            from_log = len(page) == PAGE or sub.lagged
            if sub.lagged:
                sub.catch_up_again()  # the buffer overflowed: the log has it all
            if not from_log:
                sub.covered = max(sub.covered, horizon)
            continue
        if not sub.buffer:
            sub.changed.clear()
            try:
                await asyncio.wait_for(sub.changed.wait(), IDLE_POLL_S)
            except TimeoutError:
                from_log, silent_s = True, silent_s + IDLE_POLL_S
                if silent_s >= KEEPALIVE_S:
                    silent_s = 0.0
                    yield None
            continue
        silent_s = 0.0
        batch: list[StreamRecord] = []
        for record in sub.take(PAGE):
            if record.cursor > cursor:  # already sent while catching up from the log
                cursor = record.cursor
                batch.append(record)
        allowed = await _entitled(streams, batch) if batch else []
        if allowed:
            yield allowed


async def _entitled(streams: TelemetryStreams, records: list[StreamRecord]) -> list[StreamRecord]:
    """The records whose app still has a config on, and consent for, their car."""
    pairs = {(record.client_id, record.vin) for record in records}
    allowed = await streams.entitlements.streaming_pairs(pairs)
    if len(allowed) == len(pairs):
        return records
    return [record for record in records if (record.client_id, record.vin) in allowed]


async def watch_disconnect(receive: Callable[[], Awaitable[Message]], sub: Subscription) -> None:
    """End the subscription as soon as the client goes away, not at the next record."""
    while True:
        message = await receive()
        if message["type"] in ("http.disconnect", "websocket.disconnect"):
            sub.end("the client disconnected")
            return


def parse_cursor(text: str, name: str) -> int:
    """A cursor sent as text (the WebSocket's query, SSE's Last-Event-ID); 400 otherwise."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_CURSOR:
        raise InvalidRequest(f"{name} must be a cursor this stream sent: an integer from 0 to "
                             f"{MAX_CURSOR}")  # fmt: skip
    return int(text)


def _start_cursor(query_cursor: int | None, last_event_id: str | None) -> int:
    """Last-Event-ID (what an SSE client sends on reconnect) wins over `?cursor=`."""
    if last_event_id:
        return parse_cursor(last_event_id, "Last-Event-ID")
    return query_cursor or 0


def sse_event(record: StreamRecord, fmt: Format) -> bytes:
    """One SSE event: `id:` the cursor, `event:` the topic, `data:` JSON or base64 protobuf."""
    json = fmt == "json"
    data = orjson.dumps(record_json(record)) if json else base64.b64encode(record.payload)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (record.cursor, record.topic.encode(), data)


@router.get(
    "/flotta/v1/telemetry/stream",
    summary="Stream the app's telemetry records (Server-Sent Events, partner token)",
    responses=_ERRORS,
    response_class=StreamingResponse,
)
async def stream_sse(
    request: Request,
    runtime: RuntimeDep,
    who: PrincipalDep,
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_CURSOR, description="Resume after this cursor")
    ] = None,
    format: Annotated[Format, Query(description="json, or base64 protobuf payloads")] = "json",
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    client_id = await stream_app(who, runtime)
    streams = streams_of(runtime)
    start = _start_cursor(cursor, last_event_id)

    async def events() -> AsyncIterator[bytes]:
        # Subscribed only once the response runs: a request refused or abandoned before that
        # leaves no subscription behind to collect records for nobody.
        sub = streams.dispatcher.subscribe(client_id, BUFFER)
        watcher = asyncio.create_task(watch_disconnect(request.receive, sub))
        try:
            yield b": flotta telemetry stream\nretry: 2000\n\n"
            async for batch in records_from(streams, sub, start):
                if batch is None:
                    yield b": keep-alive\n\n"
                else:  # one chunk per batch: a write per event would cost more than the event
                    yield b"".join([sse_event(record, format) for record in batch])
            if sub.closed_reason is not None:
                reason = orjson.dumps({"reason": sub.closed_reason})
                yield b"event: closed\ndata: %s\n\n" % reason
        finally:
            watcher.cancel()
            streams.dispatcher.unsubscribe(sub)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.websocket("/flotta/v1/telemetry/ws")
async def stream_ws(websocket: WebSocket) -> None:
    """The same records over a WebSocket: JSON text messages, or binary fleet-telemetry
    envelopes (protobuf payload, message id = cursor) with `?format=protobuf`."""
    runtime: Runtime = websocket.app.state.runtime
    try:
        client_id = await _ws_client(websocket, runtime)
        fmt = _ws_format(websocket.query_params.get("format", "json"))
        start = parse_cursor(websocket.query_params.get("cursor", "0"), "cursor")
        streams = streams_of(runtime)
    except FlottaError as error:
        await _refuse(websocket, error)
        return
    await websocket.accept()
    sub = streams.dispatcher.subscribe(client_id, BUFFER)
    watcher = asyncio.create_task(watch_disconnect(websocket.receive, sub))
    try:
        async for batch in records_from(streams, sub, start):
            for record in batch or ():
                if fmt == "json":
                    await websocket.send_text(orjson.dumps(record_json(record)).decode())
                else:
                    await websocket.send_bytes(record_envelope(record))
        reason = sub.closed_reason or "stream ended"
        if not watcher.done():
            await websocket.close(1001, reason[:120])
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away
    finally:
        watcher.cancel()
        streams.dispatcher.unsubscribe(sub)


def _ws_format(text: str) -> Format:
    """`?format=` as the SSE endpoint validates it: refused, not silently JSON, if unknown."""
    if text not in get_args(Format):
        problem = "Input should be 'json' or 'protobuf'"
        raise InvalidRequest(f"invalid format param: {problem}", messages={"format": [problem]})
    return cast(Format, text)


async def _ws_client(websocket: WebSocket, runtime: Runtime) -> str:
    token = bearer_token(websocket.headers.get("authorization"))
    if token is None:
        raise Unauthorized("send Authorization: Bearer <the app's partner token>")
    return await stream_app(runtime.tokens.verify(token), runtime)


async def _refuse(websocket: WebSocket, error: FlottaError) -> None:
    """Answer the handshake with Tesla's error envelope when the server can, else close."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(error))
        return
    with contextlib.suppress(Exception):
        await websocket.close(4000 + error.status, error.description[:120])
