"""Vehicle-side VCP verifier: spec vectors, handshake, faults, counters, response encryption."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tesla_protocol.command import car_server_pb2 as cs
from tesla_protocol.command import keys_pb2
from tesla_protocol.command import signatures_pb2 as sig
from tesla_protocol.command import universal_message_pb2 as um

from flotta.sim.vcp import (
    FLAG_ENCRYPT_RESPONSE,
    AuthenticatedCommand,
    AuthMethod,
    ClientSigner,
    ImmediateReply,
    NotOnWhitelistError,
    SignerError,
    VehicleVerifier,
    command_key,
    command_metadata,
    generate_private_key,
    public_key_bytes,
    session_info_key,
    session_info_metadata,
    session_info_tag,
    shared_key,
    signature_kind,
)

INFO = um.DOMAIN_INFOTAINMENT
VCSEC = um.DOMAIN_VEHICLE_SECURITY
OWNER = keys_pb2.ROLE_OWNER

# Worked example of teslamotors/vehicle-command pkg/protocol/protocol.md.
SPEC_VIN = "5YJ30123456789ABC"
SPEC_V = 0x344EE5B466A7CF1EEB12B6F50331DB2E5EC5834EF5F4BEFCFD8CBE55C2528D70
SPEC_C = 0x2538CDC29A97C19C1E99A637D6CF4F8C970C118B56EDE1E6323E6D162C4B30DB
SPEC_V_PUB = bytes.fromhex(
    "04c7a1f47138486aa4729971494878d33b1a24e39571f748a6e16c5955b3d877d3"
    "a6aaa0e955166474af5d32c410f439a2234137ad1bb085fd4e8813c958f11d97"
)
SPEC_C_PUB = bytes.fromhex(
    "04b2b6bc68c2da0665ce656815594996c62394edd8bea905fe781a754fe6a845a7"
    "14330902f225e9269d466e05b349981fda9d85cc23c6fb444aa73b629105dc6e"
)
SPEC_K = bytes.fromhex("1b2fce19967b79db696f909cff89ea9a")
SPEC_INFO_KEY = bytes.fromhex("fceb679ee7bca756fcd441bf238bf2f338629b41d9eb9c67be1b32c9672ce300")
SPEC_UUID = bytes.fromhex("1588d5a30eabc6f8fc9a951b11f6fd11")
SPEC_ROUTING = bytes.fromhex("2c907bd76c640d360b3027dc7404efde")
SPEC_EPOCH = bytes.fromhex("4c463f9cc0d3d26906e982ed224adde6")
SPEC_INFO_METADATA = bytes.fromhex(
    "000106021135594a333031323334353637383941424306101588d5a30eabc6f8fc9a951b11f6fd11ff"
)
SPEC_SESSION_INFO = bytes.fromhex(
    "0806124104c7a1f47138486aa4729971494878d33b1a24e39571f748a6e16c5955b3d877d3a6aaa0e9"
    "55166474af5d32c410f439a2234137ad1bb085fd4e8813c958f11d971a104c463f9cc0d3d26906e982"
    "ed224adde6255a0a0000"
)
SPEC_TAG = bytes.fromhex("996c1fe38331be138f8039c194b14db2198846ed7d8251e6749284d7b32ea002")
SPEC_GCM_METADATA = bytes.fromhex(
    "000105010103021135594a333031323334353637383941424303104c463f9cc0d3d26906e982ed224add"
    "e6040400000a5f050400000007070400000002ff"
)


class FakeClock:
    """Settable vehicle clock."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def spec_keys() -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey]:
    curve = ec.SECP256R1()
    return ec.derive_private_key(SPEC_V, curve), ec.derive_private_key(SPEC_C, curve)


def make_pair(
    domain: int = INFO, *, enroll: bool = True, vin: str = SPEC_VIN
) -> tuple[VehicleVerifier, ClientSigner, FakeClock]:
    clock = FakeClock()
    verifier = VehicleVerifier(vin, domain, generate_private_key(), clock)
    signer = ClientSigner(vin, domain, generate_private_key(), clock=clock)
    if enroll:
        verifier.enroll(signer.public_key, OWNER)
    return verifier, signer, clock


def immediate(outcome: object) -> ImmediateReply:
    assert isinstance(outcome, ImmediateReply), outcome
    return outcome


def accepted(outcome: object) -> AuthenticatedCommand:
    assert isinstance(outcome, AuthenticatedCommand), outcome
    return outcome


def handshake(verifier: VehicleVerifier, signer: ClientSigner) -> um.RoutableMessage:
    request = signer.session_info_request()
    reply = immediate(verifier.handle(request)).message
    signer.accept_session_info(reply, bytes(request.uuid))
    return reply


def honk() -> bytes:
    action = cs.Action()
    action.vehicleAction.vehicleControlHonkHornAction.SetInParent()
    return action.SerializeToString()


# Spec vectors


def test_spec_key_derivations() -> None:
    vehicle, client = spec_keys()
    assert public_key_bytes(vehicle) == SPEC_V_PUB
    assert public_key_bytes(client) == SPEC_C_PUB
    assert shared_key(client, SPEC_V_PUB) == SPEC_K
    assert shared_key(vehicle, SPEC_C_PUB) == SPEC_K
    assert session_info_key(SPEC_K) == SPEC_INFO_KEY
    meta = session_info_metadata(vin=SPEC_VIN, challenge=SPEC_UUID).serialize()
    assert meta == SPEC_INFO_METADATA
    tag = session_info_tag(
        SPEC_INFO_KEY, vin=SPEC_VIN, challenge=SPEC_UUID, encoded_info=SPEC_SESSION_INFO
    )
    assert tag == SPEC_TAG
    assert len(command_key(SPEC_K)) == 32


def test_spec_gcm_metadata() -> None:
    meta = command_metadata(
        signature_type=sig.SIGNATURE_TYPE_AES_GCM_PERSONALIZED,
        domain=INFO,
        vin=SPEC_VIN,
        epoch=SPEC_EPOCH,
        expires_at=2655,
        counter=7,
        flags=FLAG_ENCRYPT_RESPONSE,
    )
    assert meta.serialize() == SPEC_GCM_METADATA


def spec_gcm_request() -> um.RoutableMessage:
    msg = um.RoutableMessage(flags=2, uuid=bytes.fromhex("58406580528b6a5301391800b4fe9b99"))
    msg.to_destination.domain = INFO
    msg.from_destination.routing_address = SPEC_ROUTING
    msg.protobuf_message_as_bytes = bytes.fromhex("38038e8c0f2e")
    msg.signature_data.signer_identity.public_key = SPEC_C_PUB
    data = msg.signature_data.AES_GCM_Personalized_data
    data.epoch = SPEC_EPOCH
    data.nonce = bytes.fromhex("dbf79447fa156674dae1caed")
    data.counter = 7
    data.expires_at = 2655
    data.tag = bytes.fromhex("c228e0ff64991481db3a7bbc133696c5")
    return msg


def test_spec_worked_example_end_to_end() -> None:
    """The verifier reproduces the spec's handshake reply and accepts its AES-GCM command."""
    vehicle_key, client_key = spec_keys()
    clock = FakeClock(1_000.0)
    verifier = VehicleVerifier(SPEC_VIN, INFO, vehicle_key, clock, epoch_source=lambda: SPEC_EPOCH)
    verifier.enroll(SPEC_C_PUB, OWNER)
    signer = ClientSigner(SPEC_VIN, INFO, client_key, clock=clock, routing_address=SPEC_ROUTING)
    handshake(verifier, signer)
    for _ in range(6):  # bring the vehicle's counter to the spec's value of 6
        accepted(verifier.handle(signer.sign(honk())))
    clock.now += 2_650

    request = signer.session_info_request(uuid=SPEC_UUID)
    reply = immediate(verifier.handle(request)).message
    assert reply.session_info == SPEC_SESSION_INFO
    assert reply.signature_data.session_info_tag.tag == SPEC_TAG
    assert reply.to_destination.routing_address == SPEC_ROUTING
    assert reply.from_destination.domain == INFO
    assert reply.request_uuid == SPEC_UUID

    signer.accept_session_info(reply, SPEC_UUID)
    gcm_request = spec_gcm_request()
    command = accepted(verifier.handle(gcm_request))
    assert command.payload == bytes.fromhex("120452020801")
    assert command.method is AuthMethod.AES_GCM_PERSONALIZED
    assert signature_kind(gcm_request) is AuthMethod.AES_GCM_PERSONALIZED
    assert command.counter == 7

    response = cs.Response()
    response.actionStatus.result = um.OPERATIONSTATUS_OK
    encrypted = verifier.build_reply(gcm_request, response.SerializeToString())
    assert encrypted.signature_data.HasField("AES_GCM_Response_data")
    opened = signer.open_reply(gcm_request, encrypted)
    assert opened.encrypted
    assert cs.Response.FromString(opened.payload) == response


# Handshake


def test_handshake_round_trip() -> None:
    verifier, signer, _ = make_pair()
    reply = handshake(verifier, signer)
    info = sig.SessionInfo.FromString(reply.session_info)
    assert info.status == sig.SESSION_INFO_STATUS_OK
    assert info.publicKey == verifier.public_key
    assert len(info.epoch) == 16
    assert reply.to_destination.routing_address == signer.routing_address
    assert reply.from_destination.domain == INFO
    assert not reply.HasField("signedMessageStatus")
    assert signer.session is not None
    assert signer.session.epoch == info.epoch
    assert verifier.session_snapshot(signer.public_key) == (info.epoch, 0, 0)


def test_handshake_reply_echoes_uuid_and_tag_binds_challenge() -> None:
    verifier, signer, _ = make_pair()
    request = signer.session_info_request()
    reply = immediate(verifier.handle(request)).message
    assert reply.request_uuid == request.uuid
    with pytest.raises(SignerError, match="tag"):
        signer.accept_session_info(reply, b"another challenge")


def test_unenrolled_key_handshake() -> None:
    verifier, signer, _ = make_pair(enroll=False)
    outcome = immediate(verifier.handle(signer.session_info_request()))
    info = sig.SessionInfo.FromString(outcome.message.session_info)
    assert info.status == sig.SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST
    assert info.publicKey == b""
    assert outcome.fault == um.MESSAGEFAULT_ERROR_UNKNOWN_KEY_ID
    status = outcome.message.signedMessageStatus
    assert status.signed_message_fault == um.MESSAGEFAULT_ERROR_UNKNOWN_KEY_ID
    assert status.operation_status == um.OPERATIONSTATUS_ERROR
    with pytest.raises(NotOnWhitelistError):
        signer.accept_session_info(outcome.message, b"")


def test_revoked_key_commands_rejected() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    verifier.revoke(signer.public_key)
    assert not verifier.is_enrolled(signer.public_key)
    outcome = immediate(verifier.handle(signer.sign(honk())))
    assert outcome.fault == um.MESSAGEFAULT_ERROR_UNKNOWN_KEY_ID
    info = sig.SessionInfo.FromString(outcome.message.session_info)
    assert info.status == sig.SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST


def test_enroll_rejects_invalid_point() -> None:
    verifier, _, _ = make_pair(enroll=False)
    with pytest.raises(ValueError):
        verifier.enroll(b"\x04" + b"\x01" * 64, OWNER)


# Commands and faults


def test_signed_command_accepted_once_then_replay_faults() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    request = signer.sign(honk())
    command = accepted(verifier.handle(request))
    assert command.payload == honk()
    assert command.role == OWNER
    assert command.signer_public_key == signer.public_key
    assert command.method is AuthMethod.HMAC_PERSONALIZED

    replay = immediate(verifier.handle(request))
    assert replay.fault == um.MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER
    assert replay.message.signedMessageStatus.operation_status == um.OPERATIONSTATUS_ERROR
    opened = signer.open_reply(request, replay.message)  # session info is attached and signed
    assert opened.session_refreshed
    assert opened.fault == um.MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER


def test_plain_reply_shape() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    request = signer.sign(honk())
    accepted(verifier.handle(request))
    reply = verifier.build_reply(request, b"\x1a\x00")
    assert reply.to_destination.routing_address == signer.routing_address
    assert reply.from_destination.domain == INFO
    assert reply.request_uuid == request.uuid
    assert reply.protobuf_message_as_bytes == b"\x1a\x00"
    assert not reply.HasField("signature_data")
    assert not reply.HasField("signedMessageStatus")
    denied = verifier.build_reply(request, b"", um.MESSAGEFAULT_ERROR_INSUFFICIENT_PRIVILEGES)
    assert denied.signedMessageStatus.signed_message_fault == 7
    assert denied.signedMessageStatus.operation_status == um.OPERATIONSTATUS_ERROR
    assert not denied.session_info


def test_wrong_epoch_faults_then_resyncs() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    verifier.new_epoch()
    request = signer.sign(honk())
    outcome = immediate(verifier.handle(request))
    assert outcome.fault == um.MESSAGEFAULT_ERROR_INCORRECT_EPOCH
    assert signer.open_reply(request, outcome.message).session_refreshed
    accepted(verifier.handle(signer.sign(honk())))


def test_expired_command() -> None:
    verifier, signer, clock = make_pair()
    handshake(verifier, signer)
    request = signer.sign(honk(), ttl=10)
    clock.now += 11
    outcome = immediate(verifier.handle(request))
    assert outcome.fault == um.MESSAGEFAULT_ERROR_TIME_EXPIRED
    assert outcome.message.session_info


def test_bad_tag() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    request = signer.sign(honk())
    request.protobuf_message_as_bytes = honk() + b"\x00"
    outcome = immediate(verifier.handle(request))
    assert outcome.fault == um.MESSAGEFAULT_ERROR_INVALID_SIGNATURE
    assert outcome.message.signature_data.session_info_tag.tag


def test_flags_are_authenticated() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    request = signer.sign(honk(), flags=FLAG_ENCRYPT_RESPONSE)
    request.flags = 0
    assert immediate(verifier.handle(request)).fault == um.MESSAGEFAULT_ERROR_INVALID_SIGNATURE


def test_wrong_vin_is_a_bad_signature() -> None:
    verifier, _, clock = make_pair()
    other = ClientSigner("5YJ3XXXXXXXXXXXXX", INFO, generate_private_key(), clock=clock)
    verifier.enroll(other.public_key, OWNER)
    request = other.session_info_request()
    reply = immediate(verifier.handle(request)).message
    with pytest.raises(SignerError):  # the tag binds the VIN
        other.accept_session_info(reply, bytes(request.uuid))


def test_wrong_domain() -> None:
    verifier, _, clock = make_pair(INFO)
    signer = ClientSigner(SPEC_VIN, VCSEC, generate_private_key(), clock=clock)
    verifier.enroll(signer.public_key, OWNER)
    outcome = immediate(verifier.handle(signer.session_info_request()))
    assert outcome.fault == um.MESSAGEFAULT_ERROR_INVALID_DOMAINS


def test_counterless_command_needs_short_ttl() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    long_lived = signer.sign(honk(), counter=0, ttl=60)
    outcome = immediate(verifier.handle(long_lived))
    assert outcome.fault == um.MESSAGEFAULT_ERROR_TIME_TO_LIVE_TOO_LONG
    short = signer.sign(honk(), counter=0, ttl=5)
    accepted(verifier.handle(short))
    accepted(verifier.handle(short))  # counter 0 disables replay protection, as in Go


def test_expiry_beyond_epoch_length() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    outcome = immediate(verifier.handle(signer.sign(honk(), ttl=(1 << 30) + 1)))
    assert outcome.fault == um.MESSAGEFAULT_ERROR_BAD_PARAMETER


def test_unsigned_message_rejected() -> None:
    verifier, signer, _ = make_pair()
    msg = signer.session_info_request()
    msg.protobuf_message_as_bytes = honk()  # replaces the session_info_request in the oneof
    assert immediate(verifier.handle(msg)).fault == um.MESSAGEFAULT_ERROR_BAD_PARAMETER
    assert signature_kind(msg) is None


def test_infotainment_window_allows_reordering() -> None:
    verifier, signer, _ = make_pair(INFO)
    handshake(verifier, signer)
    first, second, third = (signer.sign(honk()) for _ in range(3))
    accepted(verifier.handle(first))
    accepted(verifier.handle(third))
    accepted(verifier.handle(second))
    assert immediate(verifier.handle(second)).fault == 6


def test_vcsec_requires_in_order_counters() -> None:
    verifier, signer, _ = make_pair(VCSEC)
    handshake(verifier, signer)
    first, second, third = (signer.sign(b"\x10\x01") for _ in range(3))
    accepted(verifier.handle(first))
    accepted(verifier.handle(third))
    assert immediate(verifier.handle(second)).fault == 6
    assert immediate(verifier.handle(third)).fault == 6
    accepted(verifier.handle(signer.sign(b"\x10\x01")))


def test_session_info_counter_tracks_highest_seen() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    for _ in range(4):
        accepted(verifier.handle(signer.sign(honk())))
    reply = handshake(verifier, signer)
    assert sig.SessionInfo.FromString(reply.session_info).counter == 4


def test_clock_time_never_goes_backwards() -> None:
    verifier, signer, clock = make_pair()
    handshake(verifier, signer)
    clock.now += 100
    first = sig.SessionInfo.FromString(handshake(verifier, signer).session_info).clock_time
    clock.now -= 50
    second = sig.SessionInfo.FromString(handshake(verifier, signer).session_info).clock_time
    assert first == 100
    assert second >= first


# Response encryption


@pytest.mark.parametrize("domain", [INFO, VCSEC])
def test_response_encryption_round_trip(domain: int) -> None:
    verifier, signer, _ = make_pair(domain)
    handshake(verifier, signer)
    counters = []
    for _ in range(3):
        request = signer.sign(b"\x10\x01", flags=FLAG_ENCRYPT_RESPONSE)
        accepted(verifier.handle(request))
        reply = verifier.build_reply(request, b"payload")
        assert reply.protobuf_message_as_bytes != b"payload"
        counters.append(reply.signature_data.AES_GCM_Response_data.counter)
        opened = signer.open_reply(request, reply)
        assert opened.encrypted
        assert opened.payload == b"payload"
        with pytest.raises(SignerError, match="reused"):
            signer.open_reply(request, reply)
    assert counters == sorted(set(counters))


def test_encrypted_fault_reply_binds_fault() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    request = signer.sign(honk(), flags=FLAG_ENCRYPT_RESPONSE)
    accepted(verifier.handle(request))
    reply = verifier.build_reply(request, b"x", um.MESSAGEFAULT_ERROR_INSUFFICIENT_PRIVILEGES)
    tampered = um.RoutableMessage()
    tampered.CopyFrom(reply)
    tampered.signedMessageStatus.signed_message_fault = um.MESSAGEFAULT_ERROR_NONE
    with pytest.raises(SignerError, match="authentication"):
        signer.open_reply(request, tampered)
    assert signer.open_reply(request, reply).payload == b"x"


def test_aes_gcm_request_round_trip() -> None:
    verifier, signer, _ = make_pair()
    handshake(verifier, signer)
    request = signer.encrypt(honk())
    command = accepted(verifier.handle(request))
    assert command.payload == honk()
    assert command.method is AuthMethod.AES_GCM_PERSONALIZED
    reply = verifier.build_reply(request, b"ok")
    assert signer.open_reply(request, reply).payload == b"ok"
    tampered = signer.encrypt(honk())
    sealed = tampered.protobuf_message_as_bytes
    # One bit flipped: a byte replaced by a constant left the message intact 1 time in 256.
    tampered.protobuf_message_as_bytes = bytes([sealed[0] ^ 0x01]) + sealed[1:]
    assert immediate(verifier.handle(tampered)).fault == um.MESSAGEFAULT_ERROR_INVALID_SIGNATURE
