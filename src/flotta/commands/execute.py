"""Deliver a command to a vehicle through the gateway and read its answer (reference §4.4)."""

from __future__ import annotations

import os
from typing import Any

from google.protobuf.message import DecodeError, Message
from tesla_protocol.command import (
    car_server_pb2,
    errors_pb2,
    universal_message_pb2,
    vcsec_pb2,
)

from flotta.errors import FlottaError
from flotta.gateway.hub import Hub

DOMAINS = {
    "infotainment": universal_message_pb2.DOMAIN_INFOTAINMENT,
    "vcsec": universal_message_pb2.DOMAIN_VEHICLE_SECURITY,
}


class VehicleError(FlottaError):
    """The vehicle answered with something the platform cannot interpret."""

    status = 540
    key = "device_unexpected_response"


def routable_for(domain: str, message: Message) -> universal_message_pb2.RoutableMessage:
    """Wrap a command for the device link. The link itself is authenticated, so no signature."""
    routable = universal_message_pb2.RoutableMessage()
    routable.to_destination.domain = DOMAINS[domain]
    routable.from_destination.routing_address = os.urandom(16)
    routable.protobuf_message_as_bytes = message.SerializeToString()
    routable.uuid = os.urandom(16)
    return routable


async def send_routable(
    hub: Hub, vin: str, routable: bytes
) -> universal_message_pb2.RoutableMessage:
    reply_bytes = await hub.command(vin, routable)
    reply = universal_message_pb2.RoutableMessage()
    try:
        reply.ParseFromString(reply_bytes)
    except DecodeError as exc:
        raise VehicleError("the vehicle's reply is not a RoutableMessage") from exc
    return reply


async def run_command(hub: Hub, vin: str, domain: str, message: Message) -> dict[str, Any]:
    """Run one command; returns Tesla's `{"result", "reason"}`."""
    routable = routable_for(domain, message)
    reply = await send_routable(hub, vin, routable.SerializeToString())
    return result_of(domain, reply)


def result_of(domain: str, reply: universal_message_pb2.RoutableMessage) -> dict[str, Any]:
    """Translate the vehicle's reply into the REST answer, as Tesla's proxy does."""
    status = reply.signedMessageStatus
    if status.signed_message_fault:
        fault = universal_message_pb2.MessageFault_E.Name(status.signed_message_fault)
        return {"result": False, "reason": fault.removeprefix("MESSAGEFAULT_ERROR_").lower()}
    if not reply.protobuf_message_as_bytes:
        return {"result": True, "reason": ""}
    try:
        if domain == "vcsec":
            return _vcsec_result(reply.protobuf_message_as_bytes)
        return _infotainment_result(reply.protobuf_message_as_bytes)
    except DecodeError as exc:
        raise VehicleError(f"the vehicle's {domain} reply could not be decoded") from exc


def _infotainment_result(data: bytes) -> dict[str, Any]:
    response = car_server_pb2.Response()
    response.ParseFromString(data)
    ok = response.actionStatus.result == car_server_pb2.OPERATIONSTATUS_OK
    reason = response.actionStatus.result_reason.plain_text
    return {"result": ok, "reason": "" if ok else reason}


def _vcsec_result(data: bytes) -> dict[str, Any]:
    answer = vcsec_pb2.FromVCSECMessage()
    answer.ParseFromString(data)
    which = answer.WhichOneof("sub_message")
    if which == "nominalError":
        name = errors_pb2.GenericError_E.Name(answer.nominalError.genericError)
        return {"result": False, "reason": name.removeprefix("GENERICERROR_").lower()}
    if which == "commandStatus":
        status = answer.commandStatus
        if status.operationStatus == vcsec_pb2.OPERATIONSTATUS_OK:
            return {"result": True, "reason": ""}
        fault = vcsec_pb2.SignedMessage_information_E.Name(
            status.signedMessageStatus.signedMessageInformation
        )
        return {"result": False, "reason": fault.removeprefix("SIGNEDMESSAGE_INFORMATION_").lower()}
    return {"result": True, "reason": ""}
