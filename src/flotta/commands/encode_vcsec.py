"""Encoders from validated parameters to ``vcsec_pb2.UnsignedMessage`` (VCSEC domain)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tesla_protocol.command import vcsec_pb2 as vc

from flotta.commands.spec import Encoder

Params = Mapping[str, Any]


def rke(value: vc.RKEAction_E) -> Encoder:
    """Build an encoder for a remote-keyless-entry action (lock, unlock, remote drive...)."""

    def encode(_: Params) -> vc.UnsignedMessage:
        return vc.UnsignedMessage(RKEAction=value)

    return encode


def closure(**moves: vc.ClosureMoveType_E) -> Encoder:
    """Build an encoder for a fixed ``ClosureMoveRequest`` (e.g. ``tonneau=OPEN``)."""

    def encode(_: Params) -> vc.UnsignedMessage:
        return vc.UnsignedMessage(closureMoveRequest=vc.ClosureMoveRequest(**moves))

    return encode


def actuate_trunk(params: Params) -> vc.UnsignedMessage:
    """Encode ``actuate_trunk``: a MOVE (toggle) of the front or rear trunk."""
    part = "frontTrunk" if params["which_trunk"] == "front" else "rearTrunk"
    request = vc.ClosureMoveRequest(**{part: vc.CLOSURE_MOVE_TYPE_MOVE})
    return vc.UnsignedMessage(closureMoveRequest=request)
