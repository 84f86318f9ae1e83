"""Sink management for an app (partner token): create, list, delete, delivery log, replay; the
config receivers' positions and delivery log; and the vehicle CA's certificate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import delete, select
from starlette.responses import Response

from flotta.adapters.sinks import (
    check_sink_destinations,
    new_webhook_secret,
    validate_sink_settings,
)
from flotta.db.base import MAX_ROW_ID
from flotta.errors import InvalidRequest, NotFound
from flotta.fleet.deps import PrincipalDep, RuntimeDep
from flotta.fleet.errors_doc import ErrorEnvelope
from flotta.fleet.responses import envelope
from flotta.runtime import Runtime
from flotta.telemetry.leases import forget_lease
from flotta.telemetry.models import TelemetryDeliveryRow, TelemetrySinkRow
from flotta.telemetry.receivers_api import router as receivers_router
from flotta.telemetry.schemas import (
    ReplayRequest,
    SinkCreate,
    delivery_json,
    sink_json,
)
from flotta.telemetry.sink_worker import lease_name
from flotta.telemetry.stream import StreamsOff, stream_app, streams_of

router = APIRouter(tags=["telemetry"])
router.include_router(receivers_router)

SINKS = "/flotta/v1/telemetry/sinks"
SinkId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The sink's id")]
_TOKEN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorEnvelope, "description": "Missing, malformed or expired access token"},
    403: {"model": ErrorEnvelope, "description": "Not the app's partner token"},
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorEnvelope, "description": "Invalid kind, format or settings"},
    **_TOKEN,
    404: {"model": ErrorEnvelope, "description": "No such sink for this app"},
}
_REPLAY_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    503: {"model": ErrorEnvelope, "description": "The process delivering the sink is unreachable"},
}


async def owned_sink(runtime: Runtime, client_id: str, sink_id: int) -> TelemetrySinkRow:
    async with runtime.sessions() as db:
        row = await db.get(TelemetrySinkRow, sink_id)
    if row is None or row.client_id != client_id:
        raise NotFound(f"no telemetry sink {sink_id} for this app")
    return row


@router.post(SINKS, summary="Add a telemetry sink (partner token)", responses=_ERRORS)
async def create_sink(body: SinkCreate, runtime: RuntimeDep, who: PrincipalDep) -> Response:
    client_id = await stream_app(who, runtime)
    streams = streams_of(runtime)
    settings = validate_sink_settings(body.kind, body.settings)
    await check_sink_destinations(body.kind, settings, runtime.outbound)
    # A new sink starts with what is streamed from now on; replay reaches back further.
    start = await streams.records.last_cursor()
    async with runtime.sessions() as db, db.begin():
        row = TelemetrySinkRow(
            client_id=client_id,
            kind=body.kind,
            format=body.format,
            settings=settings,
            secret=new_webhook_secret() if body.kind == "webhook" else None,
            enabled=body.enabled,
            created_at=runtime.clock.now(),
            delivered_through=start,
        )
        db.add(row)
    streams.dispatcher.add_sink(row)
    return envelope(sink_json(row, with_secret=True), status=201)


@router.get(SINKS, summary="List the app's telemetry sinks (partner token)", responses=_ERRORS)
async def list_sinks(runtime: RuntimeDep, who: PrincipalDep) -> Response:
    client_id = await stream_app(who, runtime)
    async with runtime.sessions() as db:
        query = select(TelemetrySinkRow).where(TelemetrySinkRow.client_id == client_id)
        rows = (await db.scalars(query.order_by(TelemetrySinkRow.id))).all()
    return envelope([sink_json(r) for r in rows])


@router.delete(SINKS + "/{sink_id}", summary="Remove a telemetry sink", responses=_ERRORS)
async def delete_sink(sink_id: SinkId, runtime: RuntimeDep, who: PrincipalDep) -> Response:
    client_id = await stream_app(who, runtime)
    await owned_sink(runtime, client_id, sink_id)
    await streams_of(runtime).dispatcher.remove_sink(sink_id)
    async with runtime.sessions() as db, db.begin():
        await db.execute(
            delete(TelemetryDeliveryRow).where(TelemetryDeliveryRow.sink_id == sink_id)
        )
        await db.execute(delete(TelemetrySinkRow).where(TelemetrySinkRow.id == sink_id))
        await forget_lease(db, lease_name(sink_id))  # whoever delivers it stops at its fence
    return envelope({"deleted": True, "id": sink_id})


@router.get(
    SINKS + "/{sink_id}/deliveries",
    summary="A sink's delivery log; ?status=dead lists its dead letters",
    responses=_ERRORS,
)
async def deliveries(
    sink_id: SinkId,
    runtime: RuntimeDep,
    who: PrincipalDep,
    status: Annotated[Literal["delivered", "retrying", "dead"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    client_id = await stream_app(who, runtime)
    await owned_sink(runtime, client_id, sink_id)
    query = select(TelemetryDeliveryRow).where(TelemetryDeliveryRow.sink_id == sink_id)
    if status is not None:
        query = query.where(TelemetryDeliveryRow.status == status)
    async with runtime.sessions() as db:
        rows = (await db.scalars(query.order_by(TelemetryDeliveryRow.id.desc()).limit(limit))).all()
    return envelope([delivery_json(r) for r in rows])


@router.post(
    SINKS + "/{sink_id}/replay",
    summary="Re-send the records created in a time range to a sink (marked replay)",
    responses=_REPLAY_ERRORS,
)
async def replay(
    sink_id: SinkId, body: ReplayRequest, runtime: RuntimeDep, who: PrincipalDep
) -> Response:
    client_id = await stream_app(who, runtime)
    row = await owned_sink(runtime, client_id, sink_id)
    if body.start.tzinfo is None or body.end.tzinfo is None:
        raise InvalidRequest("from and to need a time zone, e.g. 2026-01-31T12:00:00Z")
    if body.start > body.end:
        raise InvalidRequest("from must not be after to")
    streams = streams_of(runtime)
    if not row.enabled:
        raise InvalidRequest("the sink is disabled: enable it to replay")
    if not await streams.dispatcher.request_replay(sink_id, body.start, body.end):
        raise StreamsOff("the process delivering this sink cannot be reached; try again")
    per_vin = await streams.records.count_between(client_id, body.start, body.end)
    # As the replay sends them: records of cars the app no longer streams from are skipped.
    allowed = await streams.entitlements.streaming_pairs({(client_id, vin) for vin in per_vin})
    records = sum(count for vin, count in per_vin.items() if (client_id, vin) in allowed)
    return envelope({"sink_id": sink_id, "records": records, "queued": True}, status=202)
