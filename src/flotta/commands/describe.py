"""Map a plaintext signed-command payload back to the REST command name it performs.

``/signed_command`` bodies carry HMAC-authenticated plaintext, so the API layer can decode
them to check scopes and bill them like the matching REST command (fleet-api.md §2.6).
Messages that are not commands (ping, vehicle data, whitelist and information requests,
session handshakes) and anything that does not decode give ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.message import DecodeError, Message
from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import universal_message_pb2 as um
from tesla_protocol.command import vcsec_pb2 as vc

from flotta.commands.catalogue import CATALOGUE

VCSEC_DOMAIN: int = um.DOMAIN_VEHICLE_SECURITY
INFOTAINMENT_DOMAIN: int = um.DOMAIN_INFOTAINMENT

_CHARGING = {
    "start": "charge_start",
    "start_standard": "charge_standard",
    "start_max_range": "charge_max_range",
    "stop": "charge_stop",
}


def _volume(msg: Any) -> str | None:
    if msg.WhichOneof("media_volume") == "volume_absolute_float":
        return "adjust_volume"
    if msg.volume_delta > 0:
        return "media_volume_up"
    return "media_volume_down" if msg.volume_delta < 0 else None


# VehicleAction fields shared by several REST commands, told apart by their contents.
_DISCRIMINATORS: Mapping[str, Callable[[Any], str | None]] = {
    "chargingStartStopAction": lambda m: _CHARGING.get(m.WhichOneof("charging_action") or ""),
    "hvacAutoAction": lambda m: "auto_conditioning_" + ("start" if m.power_on else "stop"),
    "drivingSpeedLimitAction": lambda m: (
        "speed_limit_activate" if m.activate else "speed_limit_deactivate"
    ),
    "parentalControlsAction": lambda m: (
        "parental_controls_activate" if m.activate else "parental_controls_deactivate"
    ),
    "mediaUpdateVolume": _volume,
}

# Protocol forms of commands whose catalogue entry uses another form (or REST).
_EXTRA_FIELDS: Mapping[str, str] = {
    "navigationRequest": "navigation_request",
    "remoteStartDrive": "remote_start_drive",
}


def _infotainment_fields() -> dict[str, str]:
    """Build ``VehicleAction`` field -> command name for fields used by exactly one command."""
    table = dict(_EXTRA_FIELDS)
    for spec in CATALOGUE.values():
        field = spec.field
        if spec.domain == "infotainment" and field and field not in _DISCRIMINATORS:
            table.setdefault(field, spec.canonical)
    return table


_BY_FIELD: Mapping[str, str] = _infotainment_fields()

_RKE: Mapping[int, str] = {
    vc.RKE_ACTION_UNLOCK: "door_unlock",
    vc.RKE_ACTION_LOCK: "door_lock",
    vc.RKE_ACTION_OPEN_TRUNK: "actuate_trunk",
    vc.RKE_ACTION_OPEN_FRUNK: "actuate_trunk",
    vc.RKE_ACTION_OPEN_CHARGE_PORT: "charge_port_door_open",
    vc.RKE_ACTION_CLOSE_CHARGE_PORT: "charge_port_door_close",
    vc.RKE_ACTION_REMOTE_DRIVE: "remote_start_drive",
    vc.RKE_ACTION_AUTO_SECURE_VEHICLE: "auto_secure_vehicle",
    vc.RKE_ACTION_UNLOCK_AND_REMOTE_DRIVE: "remote_start_drive",
    vc.RKE_ACTION_UNLOCK_UNRESTRICTED_CLOSURES: "door_unlock",
}
_CHARGE_PORT: Mapping[int, str] = {
    vc.CLOSURE_MOVE_TYPE_MOVE: "charge_port_door_open",
    vc.CLOSURE_MOVE_TYPE_OPEN: "charge_port_door_open",
    vc.CLOSURE_MOVE_TYPE_OVERRIDE_OPEN: "charge_port_door_open",
    vc.CLOSURE_MOVE_TYPE_CLOSE: "charge_port_door_close",
    vc.CLOSURE_MOVE_TYPE_OVERRIDE_CLOSE: "charge_port_door_close",
}
_TONNEAU: Mapping[int, str] = {
    vc.CLOSURE_MOVE_TYPE_OPEN: "open_tonneau",
    vc.CLOSURE_MOVE_TYPE_CLOSE: "close_tonneau",
    vc.CLOSURE_MOVE_TYPE_STOP: "stop_tonneau",
}


def describe_message(domain: int, payload: bytes) -> str | None:
    """Return the REST command name a plaintext ``Action``/``UnsignedMessage`` performs."""
    if domain == INFOTAINMENT_DOMAIN:
        action = _parse(cs.Action(), payload)
        return None if action is None else _describe_action(action)
    if domain == VCSEC_DOMAIN:
        unsigned = _parse(vc.UnsignedMessage(), payload)
        return None if unsigned is None else _describe_unsigned(unsigned)
    return None


def _parse(msg: Message, payload: bytes) -> Any:
    try:
        msg.ParseFromString(payload)
    except (DecodeError, ValueError, TypeError):
        return None
    return msg


def _describe_action(action: Any) -> str | None:
    if action.WhichOneof("action_msg") != "vehicleAction":
        return None
    field = action.vehicleAction.WhichOneof("vehicle_action_msg")
    if field is None:
        return None
    discriminate = _DISCRIMINATORS.get(field)
    if discriminate is not None:
        return discriminate(getattr(action.vehicleAction, field))
    return _BY_FIELD.get(field)


def _describe_unsigned(unsigned: Any) -> str | None:
    kind = unsigned.WhichOneof("sub_message")
    if kind == "RKEAction":
        return _RKE.get(unsigned.RKEAction)
    if kind == "closureMoveRequest":
        return _describe_closure(unsigned.closureMoveRequest)
    return None


def _describe_closure(request: Any) -> str | None:
    if request.frontTrunk or request.rearTrunk:
        return "actuate_trunk"
    if request.chargePort:
        return _CHARGE_PORT.get(request.chargePort)
    if request.tonneau:
        return _TONNEAU.get(request.tonneau)
    return None
