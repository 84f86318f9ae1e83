"""`PATCH /flotta/v1/telemetry/sinks/{id}`: pause, resume or edit a sink (partner token).

`settings` is a JSON merge patch (RFC 7396) of the sink's settings: a member replaces the
setting, `null` puts it back to its default; the result is checked as on create, and a 400
names every bad member before anything changes. A paused sink keeps its position: resumed, it
delivers what was streamed meanwhile (replay reaches further back).
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictBool
from starlette.responses import Response

from flotta.adapters.sinks import (
    SinkSettingsError,
    check_sink_destinations,
    restore_hidden,
    validate_sink_settings,
)
from flotta.errors import InvalidRequest, NotFound
from flotta.fleet.deps import PrincipalDep, RuntimeDep
from flotta.fleet.errors_doc import ErrorEnvelope
from flotta.fleet.responses import envelope
from flotta.runtime import Runtime
from flotta.telemetry.formats import FORMATS
from flotta.telemetry.leases import forget_lease
from flotta.telemetry.models import TelemetrySinkRow
from flotta.telemetry.schemas import sink_json
from flotta.telemetry.sink_worker import lease_name
from flotta.telemetry.sinks_api import SINKS, SinkId, owned_sink
from flotta.telemetry.stream import stream_app, streams_of

router = APIRouter(tags=["telemetry"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorEnvelope, "description": "Invalid format or settings, or a new kind"},
    401: {"model": ErrorEnvelope, "description": "Missing, malformed or expired access token"},
    403: {"model": ErrorEnvelope, "description": "Not the app's partner token"},
    404: {"model": ErrorEnvelope, "description": "No such sink for this app"},
}


class SinkPatch(BaseModel):
    """The members to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool | None = None
    format: str | None = None
    settings: dict[str, Any] | None = None
    # Accepted only unchanged: a sink's kind is fixed (add another sink instead).
    kind: str | None = None


def merge_settings(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 on the top level: members replace, `null` removes (back to the default); a
    secret sent back as the API shows it (`HIDDEN`) stays as it is."""
    merged = {**current, **restore_hidden(current, patch)}
    return {key: value for key, value in merged.items() if value is not None}


async def _checked(
    row: TelemetrySinkRow, body: SinkPatch, runtime: Runtime
) -> dict[str, Any] | None:
    """The new settings (None: unchanged); InvalidRequest naming every bad member."""
    messages: dict[str, list[str]] = {}
    if body.kind is not None and body.kind != row.kind:
        messages["kind"] = [
            f"a sink's kind cannot change (this one is {row.kind}): add a new sink instead"
        ]
    if body.format is not None and body.format not in FORMATS:
        messages["format"] = [f"must be one of {', '.join(FORMATS)}"]
    settings = None
    if body.settings is not None:
        try:
            settings = validate_sink_settings(row.kind, merge_settings(row.settings, body.settings))
            await check_sink_destinations(row.kind, settings, runtime.outbound)
        except SinkSettingsError as exc:
            messages.update(exc.messages or {})
    if messages:
        path, found = next(iter(messages.items()))
        raise InvalidRequest(f"invalid sink update: {path}: {found[0]}", messages=messages)
    return settings


@router.patch(
    SINKS + "/{sink_id}",
    summary="Pause, resume or edit a telemetry sink (partner token)",
    responses=_ERRORS,
)
async def edit_sink(
    sink_id: SinkId, body: SinkPatch, runtime: RuntimeDep, who: PrincipalDep
) -> Response:
    client_id = await stream_app(who, runtime)
    dispatcher = streams_of(runtime).dispatcher
    settings = await _checked(await owned_sink(runtime, client_id, sink_id), body, runtime)
    # Stop this process's worker first: it may move `delivered_through` until it has stopped,
    # and the restarted one resumes from where it really got to, with the new settings.
    await dispatcher.remove_sink(sink_id)
    try:
        row = await _apply(runtime, sink_id, body, settings)
    except Exception:
        with contextlib.suppress(Exception):  # unchanged, then: deliver as before
            dispatcher.add_sink(await owned_sink(runtime, client_id, sink_id))
        raise
    dispatcher.add_sink(row)  # starts only when enabled
    return envelope(sink_json(row))


async def _apply(
    runtime: Runtime, sink_id: int, body: SinkPatch, settings: dict[str, Any] | None
) -> TelemetrySinkRow:
    async with runtime.sessions() as db, db.begin():
        row = await db.get(TelemetrySinkRow, sink_id)
        if row is None:  # deleted meanwhile
            raise NotFound(f"no telemetry sink {sink_id} for this app")
        if body.enabled is not None:
            row.enabled = body.enabled
        if body.format is not None:
            row.format = body.format
        if settings is not None:
            row.settings = settings
        # Whichever process delivers the sink stops at its next fence; a scan (or this
        # process, below) takes it up again with the new settings if it is enabled.
        await forget_lease(db, lease_name(sink_id))
    return row
