"""Config receivers as the app sees them (partner token): where each car's receiver stands and
the batches that needed retries or became dead letters; and the vehicle CA's certificate."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Query
from sqlalchemy import Table, func, select
from starlette.responses import Response

from flotta.fleet.deps import PrincipalDep, RuntimeDep
from flotta.fleet.errors_doc import ErrorEnvelope
from flotta.fleet.responses import envelope
from flotta.telemetry.delivery_models import TelemetryReceiverDeliveryRow, TelemetryReceiverRow
from flotta.telemetry.models import TelemetryConfigRow, TelemetryRecordGroupRow
from flotta.telemetry.receiver_positions import names_receiver
from flotta.telemetry.stream import StreamsOff, stream_app, streams_of

router = APIRouter(tags=["telemetry"])

RECEIVERS = "/flotta/v1/telemetry/receivers"
_GROUPS = cast(Table, TelemetryRecordGroupRow.__table__)
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorEnvelope, "description": "Missing, malformed or expired access token"},
    403: {"model": ErrorEnvelope, "description": "Not the app's partner token"},
}
Vin = Annotated[str | None, Query(max_length=17, description="Only this car")]


@router.get(
    "/flotta/v1/telemetry/vehicle-ca.pem",
    summary="The CA of the client certificates Flotta's cars present to receivers (partner token)",
    responses={
        **_ERRORS,
        503: {"model": ErrorEnvelope, "description": "Streaming is not running"},
    },
    response_class=Response,
)
async def vehicle_ca(runtime: RuntimeDep, who: PrincipalDep) -> Response:
    """Trust it in your fleet-telemetry server as you trust Tesla's vehicle CA."""
    await stream_app(who, runtime)
    ca = streams_of(runtime).vehicle_ca
    if ca is None:
        raise StreamsOff("this process has no vehicle CA")
    return Response(ca.certificate_pem, media_type="application/x-pem-file")


@router.get(RECEIVERS, summary="The app's config receivers and their positions", responses=_ERRORS)
async def list_receivers(
    runtime: RuntimeDep,
    who: PrincipalDep,
    vin: Vin = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    client_id = await stream_app(who, runtime)
    query = select(TelemetryConfigRow).where(TelemetryConfigRow.client_id == client_id)
    if vin is not None:
        query = query.where(TelemetryConfigRow.vin == vin)
    async with runtime.sessions() as db:
        configs = [
            c
            for c in await db.scalars(query.order_by(TelemetryConfigRow.id))
            if names_receiver(c.config)
        ][:limit]
        ids = [c.id for c in configs]
        rows = await db.scalars(
            select(TelemetryReceiverRow).where(TelemetryReceiverRow.config_id.in_(ids))
        )
        through = {row.config_id: row.delivered_through for row in rows}
        newest_query = (
            select(_GROUPS.c.vin, func.max(_GROUPS.c.last_cursor))
            .where(_GROUPS.c.client_id == client_id)
            .where(_GROUPS.c.vin.in_([c.vin for c in configs]))
            .group_by(_GROUPS.c.vin)
        )
        newest = {str(v): int(n) for v, n in (await db.execute(newest_query)).all()}
    return envelope([_receiver_json(c, through.get(c.id), newest.get(c.vin)) for c in configs])


def _receiver_json(
    config: TelemetryConfigRow, through: int | None, newest: int | None
) -> dict[str, Any]:
    target = config.config or {}
    return {
        "config_id": config.id,
        "vin": config.vin,
        "hostname": target.get("hostname"),
        "port": target.get("port"),
        # None until the car's first record since the config was set reached delivery
        "delivered_through": through,
        "newest_record": newest,
        "pending": newest is not None and (through is None or newest > through),
    }


@router.get(
    RECEIVERS + "/deliveries",
    summary="Config receiver batches that were retried; ?status=dead lists the dead letters",
    responses=_ERRORS,
)
async def receiver_deliveries(
    runtime: RuntimeDep,
    who: PrincipalDep,
    status: Annotated[Literal["delivered", "retrying", "dead"] | None, Query()] = None,
    vin: Vin = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    client_id = await stream_app(who, runtime)
    row = TelemetryReceiverDeliveryRow
    query = select(row).where(row.client_id == client_id)
    if status is not None:
        query = query.where(row.status == status)
    if vin is not None:
        query = query.where(row.vin == vin)
    async with runtime.sessions() as db:
        rows = (await db.scalars(query.order_by(row.id.desc()).limit(limit))).all()
    return envelope([_delivery_json(r) for r in rows])


def _delivery_json(row: TelemetryReceiverDeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "config_id": row.config_id,
        "vin": row.vin,
        "first_record_id": row.first_record_id,
        "last_record_id": row.last_record_id,
        "records": row.records,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
