"""REST commands and `signed_command` (reference §4.4, §10.6)."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Depends, Path, Request
from google.protobuf.message import DecodeError
from starlette.responses import Response
from tesla_protocol.command import universal_message_pb2

from flotta.auth.tokens import Principal
from flotta.commands import CommandError, command_spec, describe_message, parse_command
from flotta.commands.execute import DOMAINS, run_command
from flotta.errors import FlottaError, InvalidRequest, MissingScopes
from flotta.fleet.body import json_object
from flotta.fleet.deps import RuntimeDep, VehicleTag, principal, vehicle_for
from flotta.fleet.errors_doc import errors
from flotta.fleet.responses import envelope

router = APIRouter(tags=["commands"])

VEHICLE_SCOPES = frozenset(
    {"vehicle_device_data", "vehicle_cmds", "vehicle_charging_cmds", "vehicle_location"}
)
PROTOCOL_REQUIRED = (
    "Tesla Vehicle Command Protocol required, please refer to the documentation here: "
    "https://developer.tesla.com/docs/fleet-api#2023-10-09-rest-api-vehicle-commands-endpoint-"
    "deprecation-warning"
)


# Tesla documents `{"result": true, "queued": true}` for a shared destination.
QUEUED_ANSWER = frozenset({"navigation_request", "share"})


def _check_scopes(who: Principal, scopes: frozenset[str] | set[str], what: str) -> None:
    if not (who.scopes & set(scopes)):
        raise MissingScopes(f"{what} needs one of these scopes: {' '.join(sorted(scopes))}")


@router.post(
    "/api/1/vehicles/{vehicle_tag}/command/{command}",
    responses=errors(400, 401, 403, 404, 408),
)
async def command(
    vehicle_tag: VehicleTag,
    request: Request,
    runtime: RuntimeDep,
    command: str = Path(max_length=64),
    who: Principal = Depends(principal),
) -> Response:
    """Validate a legacy REST command, then run it on the vehicle through the gateway."""
    body = await json_object(request)
    try:
        parsed = parse_command(command, body)
    except CommandError as exc:
        raise FlottaError(
            exc.message,
            status=exc.status,
            key=exc.key,
            messages={exc.field: [exc.message]} if exc.field else None,
        ) from exc
    _check_scopes(who, parsed.scopes, f"command {command}")
    record = await vehicle_for(who, runtime, vehicle_tag)
    if record.command_signing == "required":
        raise FlottaError(PROTOCOL_REQUIRED, status=403, key=PROTOCOL_REQUIRED)
    if parsed.message is None:
        # Not representable in the vehicle protocol: the platform queues it, as Tesla does.
        await runtime.hub.view(record.vin)  # 408 unless online, wherever its link is
        return envelope({"result": True, "reason": "", "queued": True})
    result = await run_command(runtime.hub, record.vin, parsed.domain, parsed.message)
    if parsed.name in QUEUED_ANSWER:
        result["queued"] = True
    return envelope(result)


def _decode_routable(
    body: dict[str, object],
) -> tuple[bytes, universal_message_pb2.RoutableMessage]:
    encoded = body.get("routable_message")
    if encoded is None or encoded == "":
        raise InvalidRequest("missing routable_message param", key="invalid_request")
    if not isinstance(encoded, str):
        raise InvalidRequest(
            "invalid routable_message param: must be a string (a base64 RoutableMessage)"
        )
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("invalid routable_message param: not standard base64") from exc
    message = universal_message_pb2.RoutableMessage()
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        raise InvalidRequest("invalid routable_message param: not a RoutableMessage") from exc
    return raw, message


def _scopes_for(message: universal_message_pb2.RoutableMessage) -> tuple[frozenset[str], str]:
    """Which scopes this signed message needs; the plaintext payload tells (reference §2.6)."""
    domain = message.to_destination.domain
    if domain not in DOMAINS.values():
        raise InvalidRequest(
            "invalid routable_message param: address it to DOMAIN_VEHICLE_SECURITY or "
            "DOMAIN_INFOTAINMENT"
        )
    which = message.WhichOneof("payload")
    if which == "session_info_request":
        return VEHICLE_SCOPES, "a session handshake"
    signature = message.signature_data
    if signature.WhichOneof("sig_type") == "AES_GCM_Personalized_data":
        raise InvalidRequest(
            "encrypted commands are refused: the Fleet API must read the payload to check "
            "scopes; sign with HMAC_Personalized_data instead"
        )
    if signature.WhichOneof("sig_type") != "HMAC_Personalized_data" or which != (
        "protobuf_message_as_bytes"
    ):
        raise InvalidRequest("invalid routable_message param: the command is not signed")
    name = describe_message(domain, message.protobuf_message_as_bytes)
    if name is None:
        # Pings, wakes and information requests: no REST twin, so the plain command scope.
        return frozenset({"vehicle_cmds"}), "this signed command"
    return frozenset(command_spec(name).scopes), f"command {name}"


@router.post(
    "/api/1/vehicles/{vehicle_tag}/signed_command", responses=errors(400, 401, 403, 404, 408)
)
async def signed_command(
    vehicle_tag: VehicleTag,
    request: Request,
    runtime: RuntimeDep,
    who: Principal = Depends(principal),
) -> Response:
    """Forward a signed RoutableMessage to the vehicle, which checks the signature itself."""
    raw, message = _decode_routable(await json_object(request))
    scopes, what = _scopes_for(message)
    _check_scopes(who, scopes, what)
    record = await vehicle_for(who, runtime, vehicle_tag)
    reply = await runtime.hub.command(record.vin, raw)
    return envelope(base64.b64encode(reply).decode())
