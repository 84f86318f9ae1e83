"""VCSEC (vehicle security domain) messages: RKE actions, closure moves and status queries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tesla_protocol.command import vcsec_pb2

if TYPE_CHECKING:
    from flotta.sim.vehicle_state import SimVehicle

_OPEN_MOVES = (
    "CLOSURE_MOVE_TYPE_OPEN",
    "CLOSURE_MOVE_TYPE_MOVE",
    "CLOSURE_MOVE_TYPE_OVERRIDE_OPEN",
)
_CLOSE_MOVES = ("CLOSURE_MOVE_TYPE_CLOSE", "CLOSURE_MOVE_TYPE_OVERRIDE_CLOSE")


def _status(ok: bool) -> vcsec_pb2.FromVCSECMessage:
    msg = vcsec_pb2.FromVCSECMessage()
    msg.commandStatus.operationStatus = (
        vcsec_pb2.OPERATIONSTATUS_OK if ok else vcsec_pb2.OPERATIONSTATUS_ERROR
    )
    return msg


def _rke(v: SimVehicle, action: int) -> bool:
    name = vcsec_pb2.RKEAction_E.Name(action)
    doors = v.sig["DoorState"]
    if name in ("RKE_ACTION_LOCK", "RKE_ACTION_AUTO_SECURE_VEHICLE"):
        if name == "RKE_ACTION_AUTO_SECURE_VEHICLE":
            # Auto-secure closes the windows before locking, as the car does when walked away from.
            for w in ("FdWindow", "FpWindow", "RdWindow", "RpWindow"):
                v.sig[w] = "WindowStateClosed"
        v.sig["Locked"] = True
    elif name in ("RKE_ACTION_UNLOCK", "RKE_ACTION_UNLOCK_UNRESTRICTED_CLOSURES"):
        v.sig["Locked"] = False
    elif name in ("RKE_ACTION_REMOTE_DRIVE", "RKE_ACTION_UNLOCK_AND_REMOTE_DRIVE"):
        v.sig["RemoteStartActive"] = True
        v.sig["Locked"] = name == "RKE_ACTION_REMOTE_DRIVE"
    elif name == "RKE_ACTION_OPEN_TRUNK":
        doors["TrunkRear"] = True
    elif name == "RKE_ACTION_OPEN_FRUNK":
        doors["TrunkFront"] = True
    elif name == "RKE_ACTION_OPEN_CHARGE_PORT":
        v.sig["ChargePortDoorOpen"] = True
    elif name == "RKE_ACTION_CLOSE_CHARGE_PORT":
        if v.session is not None:
            return False
        v.sig["ChargePortDoorOpen"] = False
    elif name != "RKE_ACTION_WAKE_VEHICLE":
        return False
    return True


def _move(v: SimVehicle, req: vcsec_pb2.ClosureMoveRequest) -> bool:
    doors = v.sig["DoorState"]
    moves = {
        "frontTrunk": req.frontTrunk,
        "rearTrunk": req.rearTrunk,
        "chargePort": req.chargePort,
        "tonneau": req.tonneau,
    }
    for closure, move in moves.items():
        name = vcsec_pb2.ClosureMoveType_E.Name(move)
        if name == "CLOSURE_MOVE_TYPE_NONE":
            continue
        if closure == "tonneau":
            if not v.model.has_tonneau:
                return False
            _move_tonneau(v, name)
            continue
        opening = name in _OPEN_MOVES
        if not opening and name not in _CLOSE_MOVES:
            continue  # STOP on a hinged closure has nothing to do
        if closure == "frontTrunk":
            if opening:  # a frunk cannot be closed remotely
                doors["TrunkFront"] = True
        elif closure == "rearTrunk":
            # A powered liftgate toggles on MOVE, as actuate_trunk does.
            toggle = name == "CLOSURE_MOVE_TYPE_MOVE"
            doors["TrunkRear"] = (not doors["TrunkRear"]) if toggle else opening
        elif opening or v.session is None:
            v.sig["ChargePortDoorOpen"] = opening
    return True


def _move_tonneau(v: SimVehicle, name: str) -> None:
    if name == "CLOSURE_MOVE_TYPE_STOP":
        v.sig["TonneauPosition"] = "TonneauPositionStatePartiallyOpen"
        v.sig["TonneauOpenPercent"] = 50.0
        return
    opening = name in _OPEN_MOVES
    v.sig["TonneauPosition"] = (
        "TonneauPositionStateFullyOpen" if opening else "TonneauPositionStateClosed"
    )
    v.sig["TonneauOpenPercent"] = 100.0 if opening else 0.0


def _closure(open_: bool) -> vcsec_pb2.ClosureState_E:
    return vcsec_pb2.CLOSURESTATE_OPEN if open_ else vcsec_pb2.CLOSURESTATE_CLOSED


def vehicle_status(v: SimVehicle) -> vcsec_pb2.FromVCSECMessage:
    """The VehicleStatus answer to an InformationRequest GET_STATUS."""
    msg = vcsec_pb2.FromVCSECMessage()
    st = msg.vehicleStatus
    doors = v.sig["DoorState"]
    cs = st.closureStatuses
    cs.frontDriverDoor = _closure(doors["DriverFront"])
    cs.frontPassengerDoor = _closure(doors["PassengerFront"])
    cs.rearDriverDoor = _closure(doors["DriverRear"])
    cs.rearPassengerDoor = _closure(doors["PassengerRear"])
    cs.frontTrunk = _closure(doors["TrunkFront"])
    cs.rearTrunk = _closure(doors["TrunkRear"])
    cs.chargePort = _closure(bool(v.sig["ChargePortDoorOpen"]))
    if v.model.has_tonneau:
        cs.tonneau = _closure(v.sig["TonneauPosition"] != "TonneauPositionStateClosed")
    st.vehicleLockState = (
        vcsec_pb2.VEHICLELOCKSTATE_LOCKED
        if v.sig["Locked"]
        else vcsec_pb2.VEHICLELOCKSTATE_UNLOCKED
    )
    st.vehicleSleepStatus = vcsec_pb2.VEHICLE_SLEEP_STATUS_AWAKE
    st.userPresence = (
        vcsec_pb2.VEHICLE_USER_PRESENCE_PRESENT
        if v.sig["IsUserPresent"]
        else vcsec_pb2.VEHICLE_USER_PRESENCE_NOT_PRESENT
    )
    st.gear = vcsec_pb2.GEAR_DRIVE if v.driving else vcsec_pb2.GEAR_PARK
    return msg


def execute_vcsec(v: SimVehicle, msg: vcsec_pb2.UnsignedMessage) -> vcsec_pb2.FromVCSECMessage:
    """Apply an UnsignedMessage: RKE action, closure move or information request."""
    which = msg.WhichOneof("sub_message")
    try:
        if which == "RKEAction":
            return _status(_rke(v, msg.RKEAction))
        if which == "closureMoveRequest":
            return _status(_move(v, msg.closureMoveRequest))
        if which == "InformationRequest":
            return vehicle_status(v)
    except ValueError:  # an enum number the car does not know
        return _status(False)
    return _status(False)
