"""tesla-fleet-api 1.5.0's own VCP code talks to our verifier in-process (no HTTP)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import keys_pb2, vcsec_pb2
from tesla_protocol.command import universal_message_pb2 as um

from flotta.sim.vcp import (
    AuthenticatedCommand,
    AuthMethod,
    VehicleVerifier,
    generate_private_key,
    public_key_bytes,
)

commands_mod = pytest.importorskip("tesla_fleet_api.tesla.vehicle.commands")
tfa_exceptions = pytest.importorskip("tesla_fleet_api.exceptions")
tfa_um = pytest.importorskip("tesla_fleet_api.tesla.vehicle.proto.universal_message_pb2")

VIN = "5YJ30123456789ABC"


class Car:
    """Two verifiers (VCSEC, Infotainment) that answer every command with success."""

    def __init__(self) -> None:
        self.verifiers = {
            d: VehicleVerifier(VIN, d, generate_private_key(), time.time)
            for d in (um.DOMAIN_VEHICLE_SECURITY, um.DOMAIN_INFOTAINMENT)
        }
        self.executed: list[AuthenticatedCommand] = []
        self.faults: list[int] = []
        self.encrypted_replies = 0

    def exchange(self, wire: bytes) -> bytes:
        request = um.RoutableMessage.FromString(wire)
        verifier = self.verifiers[request.to_destination.domain]
        outcome = verifier.handle(request)
        if not isinstance(outcome, AuthenticatedCommand):
            self.faults.append(outcome.fault)
            return outcome.message.SerializeToString()
        self.executed.append(outcome)
        if request.to_destination.domain == um.DOMAIN_VEHICLE_SECURITY:
            vcsec = vcsec_pb2.FromVCSECMessage()
            vcsec.commandStatus.operationStatus = vcsec_pb2.OPERATIONSTATUS_OK
            payload = vcsec.SerializeToString()
        else:
            response = cs.Response()
            response.actionStatus.result = um.OPERATIONSTATUS_OK
            payload = response.SerializeToString()
        reply = verifier.build_reply(request, payload)
        self.encrypted_replies += reply.signature_data.HasField("AES_GCM_Response_data")
        return reply.SerializeToString()


def make_client(car: Car, auth_method: str = "hmac") -> Any:
    class InProcess(commands_mod.Commands):  # type: ignore[misc]
        _auth_method = auth_method

        async def _send(self, msg: Any, requires: str) -> Any:
            # Cross descriptor pools (UniversalMessage vs tesla_protocol) through bytes.
            reply = tfa_um.RoutableMessage.FromString(car.exchange(msg.SerializeToString()))
            self.validate_msg(reply)
            return reply

    parent = SimpleNamespace(private_key=generate_private_key())
    return InProcess(parent, VIN)


def enroll(car: Car, client: Any) -> None:
    for verifier in car.verifiers.values():
        verifier.enroll(public_key_bytes(client.private_key), keys_pb2.ROLE_OWNER)


async def test_handshake_and_commands_both_domains() -> None:
    car = Car()
    client = make_client(car)
    enroll(car, client)
    assert await client.honk_horn() == {"response": {"result": True, "reason": ""}}
    assert await client.door_lock() == {"response": {"result": True, "reason": ""}}
    assert await client.flash_lights() == {"response": {"result": True, "reason": ""}}
    methods = {c.method for c in car.executed}
    assert methods == {AuthMethod.HMAC_PERSONALIZED}
    assert car.encrypted_replies == 0  # HMAC over Fleet never sets FLAG_ENCRYPT_RESPONSE
    action = cs.Action.FromString(car.executed[0].payload)
    assert action.vehicleAction.HasField("vehicleControlHonkHornAction")
    assert vcsec_pb2.UnsignedMessage.FromString(car.executed[1].payload).RKEAction == (
        vcsec_pb2.RKE_ACTION_LOCK
    )


async def test_client_recovers_after_vehicle_reboot() -> None:
    car = Car()
    client = make_client(car)
    enroll(car, client)
    await client.honk_horn()
    car.verifiers[um.DOMAIN_INFOTAINMENT].new_epoch()
    # The client gets INCORRECT_EPOCH plus fresh session info, updates and retries.
    assert await client.honk_horn() == {"response": {"result": True, "reason": ""}}
    assert len(car.executed) == 2
    assert um.MESSAGEFAULT_ERROR_INCORRECT_EPOCH in car.faults


async def test_unenrolled_client_gets_not_on_whitelist() -> None:
    car = Car()
    client = make_client(car)
    with pytest.raises(tfa_exceptions.NotOnWhitelistFault):
        await client.honk_horn()


async def test_aes_gcm_with_encrypted_responses() -> None:
    """The client's BLE mode encrypts requests and decrypts our encrypted replies."""
    car = Car()
    client = make_client(car, "aes")
    enroll(car, client)
    assert await client.honk_horn() == {"response": {"result": True, "reason": ""}}
    assert await client.door_unlock() == {"response": {"result": True, "reason": ""}}
    assert {c.method for c in car.executed} == {AuthMethod.AES_GCM_PERSONALIZED}
    assert car.encrypted_replies == 2
