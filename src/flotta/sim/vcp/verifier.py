"""Vehicle side of the Vehicle Command Protocol: handshakes and command authentication."""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from tesla_protocol.command import signatures_pb2 as sig
from tesla_protocol.command import universal_message_pb2 as um

from flotta.sim.vcp import keys
from flotta.sim.vcp.keys import KeyWhitelist
from flotta.sim.vcp.tlv import command_metadata, request_hash, response_metadata

EPOCH_ID_LENGTH = 16
# Go's verifier: expiry times beyond 2^30 s are out of range, and so is a clock past it.
EPOCH_LENGTH_SECONDS = 1 << 30
# Counter-less or out-of-order messages must expire within this many seconds.
MAX_SECONDS_WITHOUT_COUNTER = 30
WINDOW_SIZE = 32
COUNTER_MAX = 0xFFFFFFFF
FLAG_ENCRYPT_RESPONSE = 1 << um.FLAG_ENCRYPT_RESPONSE
_WINDOW_MASK = (1 << 64) - 1

_RESYNC_FAULTS = frozenset(
    {
        um.MESSAGEFAULT_ERROR_INVALID_SIGNATURE,
        um.MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER,
        um.MESSAGEFAULT_ERROR_INCORRECT_EPOCH,
        um.MESSAGEFAULT_ERROR_TIME_EXPIRED,
        um.MESSAGEFAULT_ERROR_BAD_PARAMETER,
        um.MESSAGEFAULT_ERROR_TIME_TO_LIVE_TOO_LONG,
    }
)


class AuthMethod(enum.StrEnum):
    """How a command was authenticated."""

    HMAC_PERSONALIZED = "hmac_personalized"
    AES_GCM_PERSONALIZED = "aes_gcm_personalized"


_SIG_FIELDS = {
    "HMAC_Personalized_data": AuthMethod.HMAC_PERSONALIZED,
    "AES_GCM_Personalized_data": AuthMethod.AES_GCM_PERSONALIZED,
}


def signature_kind(request: um.RoutableMessage) -> AuthMethod | None:
    """Return how `request` is signed, or None for handshakes and unsigned messages."""
    name = request.signature_data.WhichOneof("sig_type")
    return _SIG_FIELDS.get(name) if name else None


@dataclass(frozen=True, slots=True)
class ImmediateReply:
    """The verifier answered by itself: a handshake reply or a protocol fault."""

    message: um.RoutableMessage
    fault: int = 0


@dataclass(frozen=True, slots=True)
class AuthenticatedCommand:
    """An authentic command payload (plaintext) for the caller to check the role of and run."""

    payload: bytes
    signer_public_key: bytes
    role: int
    method: AuthMethod
    counter: int


VerifyOutcome: TypeAlias = ImmediateReply | AuthenticatedCommand
_SigData: TypeAlias = sig.HMAC_Personalized_Signature_Data | sig.AES_GCM_Personalized_Signature_Data


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def update_sliding_window(counter: int, window: int, new: int) -> tuple[int, int, bool]:
    """Accept `new` unless seen before or too old; return (counter, window, ok)."""
    if new == counter:
        return counter, window, False
    if new < counter:
        age = counter - new
        if age > WINDOW_SIZE or (window >> (age - 1)) & 1:
            return counter, window, False
        return counter, window | (1 << (age - 1)), True
    shift = new - counter
    # Bits shifted past 64 are lost, as with Go's uint64; avoid building huge ints.
    shifted = (window << shift) & _WINDOW_MASK if shift < 64 else 0
    if shift <= 64:
        shifted |= 1 << (shift - 1)
    return new, shifted, True


class _Fault(Exception):
    """Internal: abort verification with a message fault."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(slots=True)
class _Session:
    """State for one (client key, domain) pair."""

    k: bytes
    command_key: bytes
    info_key: bytes
    epoch: bytes
    time_zero: float
    counter: int = 0
    window: int = 0
    last_timestamp: int = 0
    response_counter: int = 0


class VehicleVerifier:
    """One domain of a simulated car: whitelist, per-client sessions and command checks.

    Not thread-safe: drive it from one event loop (or guard it with a lock).
    """

    def __init__(
        self,
        vin: str,
        domain: int,
        private_key: ec.EllipticCurvePrivateKey,
        clock: Callable[[], float],
        *,
        whitelist: KeyWhitelist | None = None,
        epoch_source: Callable[[], bytes] | None = None,
    ) -> None:
        if len(vin.encode("ascii")) > 255:
            raise ValueError("VIN too long")
        self.vin = vin
        self.domain = int(domain)
        self._private_key = private_key
        self.public_key = keys.public_key_bytes(private_key)
        self._clock = clock
        self.whitelist = whitelist if whitelist is not None else KeyWhitelist()
        self._epoch_source = epoch_source or (lambda: os.urandom(EPOCH_ID_LENGTH))
        self._sessions: dict[bytes, _Session] = {}

    # Whitelist and lifecycle

    def enroll(self, public_key: bytes, role: int) -> None:
        """Whitelist a client key with a `keys_pb2.Role`."""
        self.whitelist.enroll(public_key, role)

    def revoke(self, public_key: bytes) -> None:
        """Remove a client key and forget its session."""
        self.whitelist.revoke(public_key)
        self._sessions.pop(bytes(public_key), None)

    def is_enrolled(self, public_key: bytes) -> bool:
        """Whether the key is on the whitelist."""
        return self.whitelist.role_of(public_key) is not None

    def new_epoch(self) -> None:
        """Simulate a reboot: every session starts a new epoch on next contact."""
        self._sessions.clear()

    def session_snapshot(self, public_key: bytes) -> tuple[bytes, int, int] | None:
        """Return (epoch, counter, clock_time) of a client's session, for diagnostics."""
        session = self._sessions.get(bytes(public_key))
        if session is None:
            return None
        return session.epoch, session.counter, self._timestamp(session)

    # Entry point

    def handle(self, request: um.RoutableMessage) -> VerifyOutcome:
        """Answer a handshake or fault, or return an authenticated command to execute."""
        try:
            if request.HasField("session_info_request"):
                return self._handshake(request)
            return self._verify(request)
        except _Fault as exc:
            return ImmediateReply(self._fault_reply(request, exc.code), exc.code)

    def build_reply(
        self,
        request: um.RoutableMessage,
        payload: bytes,
        fault: int = 0,
        *,
        operation_status: int | None = None,
    ) -> um.RoutableMessage:
        """Reply to an authenticated command, encrypting it if the request asked to."""
        reply = self._reply_base(request)
        if fault or operation_status is not None:
            status = reply.signedMessageStatus
            if operation_status is None:
                status.operation_status = um.OPERATIONSTATUS_ERROR
            else:
                status.operation_status = operation_status  # type: ignore[assignment]
            status.signed_message_fault = fault  # type: ignore[assignment]
        if not payload:
            return reply
        reply.protobuf_message_as_bytes = payload
        session = self._sessions.get(bytes(request.signature_data.signer_identity.public_key))
        kind = signature_kind(request)
        if request.flags & FLAG_ENCRYPT_RESPONSE and session is not None and kind is not None:
            self._encrypt(reply, request, session, kind)
        return reply

    # Handshake

    def _handshake(self, request: um.RoutableMessage) -> ImmediateReply:
        if request.to_destination.domain != self.domain:
            raise _Fault(um.MESSAGEFAULT_ERROR_INVALID_DOMAINS)
        public_key = bytes(request.session_info_request.public_key)
        if not self.is_enrolled(public_key):
            return self._not_whitelisted(request)
        session = self._session_for(public_key)
        reply = self._reply_base(request)
        self._attach_session_info(reply, session, bytes(request.uuid))
        return ImmediateReply(reply)

    def _not_whitelisted(self, request: um.RoutableMessage) -> ImmediateReply:
        # tesla-fleet-api reads the status (empty publicKey, no tag); tescmd reads the fault.
        reply = self._reply_base(request)
        info = sig.SessionInfo(status=sig.SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST)
        reply.session_info = info.SerializeToString()
        reply.signedMessageStatus.operation_status = um.OPERATIONSTATUS_ERROR
        reply.signedMessageStatus.signed_message_fault = um.MESSAGEFAULT_ERROR_UNKNOWN_KEY_ID
        return ImmediateReply(reply, um.MESSAGEFAULT_ERROR_UNKNOWN_KEY_ID)

    # Command verification, in the Go verifier's order

    def _verify(self, request: um.RoutableMessage) -> VerifyOutcome:
        method = signature_kind(request)
        if method is None:
            raise _Fault(um.MESSAGEFAULT_ERROR_BAD_PARAMETER)
        public_key = bytes(request.signature_data.signer_identity.public_key)
        role = self.whitelist.role_of(public_key)
        if role is None:
            self._sessions.pop(public_key, None)
            return self._not_whitelisted(request)
        session = self._session_for(public_key)
        data = (
            request.signature_data.HMAC_Personalized_data
            if method is AuthMethod.HMAC_PERSONALIZED
            else request.signature_data.AES_GCM_Personalized_data
        )
        epoch, expires_at, counter = bytes(data.epoch), int(data.expires_at), int(data.counter)
        self._check_freshness(request, session, epoch, expires_at, counter)
        if method is AuthMethod.HMAC_PERSONALIZED:
            payload = self._check_hmac(request, session)
        else:
            payload = self._decrypt_gcm(request, session)
        if counter > 0:
            self._check_counter(session, counter)
        return AuthenticatedCommand(payload, public_key, role, method, counter)

    def _check_freshness(
        self,
        request: um.RoutableMessage,
        session: _Session,
        epoch: bytes,
        expires_at: int,
        counter: int,
    ) -> None:
        if request.to_destination.domain != self.domain:
            raise _Fault(um.MESSAGEFAULT_ERROR_INVALID_DOMAINS)
        # An omitted epoch is allowed: the vehicle's own epoch is bound by the tag anyway.
        if epoch and not hmac.compare_digest(epoch, session.epoch):
            raise _Fault(um.MESSAGEFAULT_ERROR_INCORRECT_EPOCH)
        now = self._timestamp(session)
        if expires_at != 0 and expires_at < now:
            raise _Fault(um.MESSAGEFAULT_ERROR_TIME_EXPIRED)
        if expires_at > EPOCH_LENGTH_SECONDS:
            raise _Fault(um.MESSAGEFAULT_ERROR_BAD_PARAMETER)
        # A replayable (counter 0) or late message must not stay valid for long.
        late = counter == 0 or counter < session.counter
        if late and (expires_at == 0 or expires_at - now > MAX_SECONDS_WITHOUT_COUNTER):
            raise _Fault(um.MESSAGEFAULT_ERROR_TIME_TO_LIVE_TOO_LONG)

    def _metadata(
        self, request: um.RoutableMessage, session: _Session, signature_type: int, data: _SigData
    ) -> bytes:
        return command_metadata(
            signature_type=signature_type,
            domain=request.to_destination.domain,
            vin=self.vin,
            epoch=session.epoch,
            expires_at=data.expires_at,
            counter=data.counter,
            flags=request.flags,
        ).serialize()

    def _check_hmac(self, request: um.RoutableMessage, session: _Session) -> bytes:
        data = request.signature_data.HMAC_Personalized_data
        meta = self._metadata(request, session, sig.SIGNATURE_TYPE_HMAC_PERSONALIZED, data)
        payload = bytes(request.protobuf_message_as_bytes)
        expected = hmac.new(session.command_key, meta + payload, "sha256").digest()
        if not hmac.compare_digest(expected, bytes(data.tag)):
            raise _Fault(um.MESSAGEFAULT_ERROR_INVALID_SIGNATURE)
        return payload

    def _decrypt_gcm(self, request: um.RoutableMessage, session: _Session) -> bytes:
        data = request.signature_data.AES_GCM_Personalized_data
        if len(data.nonce) != keys.NONCE_LENGTH:
            raise _Fault(um.MESSAGEFAULT_ERROR_IV_INCORRECT_LENGTH)
        meta = self._metadata(request, session, sig.SIGNATURE_TYPE_AES_GCM_PERSONALIZED, data)
        aad = _sha256(meta)
        ciphertext = bytes(request.protobuf_message_as_bytes)
        try:
            return keys.gcm_open(session.k, bytes(data.nonce), ciphertext, bytes(data.tag), aad)
        except InvalidTag:
            raise _Fault(um.MESSAGEFAULT_ERROR_INVALID_SIGNATURE) from None

    def _check_counter(self, session: _Session, counter: int) -> None:
        if self.domain == um.DOMAIN_VEHICLE_SECURITY:
            # VCSEC keeps no window: counters must arrive strictly in order.
            if counter <= session.counter:
                raise _Fault(um.MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER)
            session.counter = counter
            return
        new_counter, window, ok = update_sliding_window(session.counter, session.window, counter)
        if not ok:
            raise _Fault(um.MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER)
        session.counter, session.window = new_counter, window

    # Sessions, clock and replies

    def _session_for(self, public_key: bytes) -> _Session:
        session = self._sessions.get(public_key)
        if session is None:
            k = keys.shared_key(self._private_key, public_key)
            session = _Session(
                k=k,
                command_key=keys.command_key(k),
                info_key=keys.session_info_key(k),
                epoch=self._new_epoch_id(),
                time_zero=self._clock(),
            )
            self._sessions[public_key] = session
        self._rotate_if_needed(session)
        return session

    def _new_epoch_id(self) -> bytes:
        epoch = self._epoch_source()
        if len(epoch) != EPOCH_ID_LENGTH:
            raise ValueError("epoch ids are 16 bytes")
        return epoch

    def _rotate_if_needed(self, session: _Session) -> None:
        if session.counter >= COUNTER_MAX or self._timestamp(session) > EPOCH_LENGTH_SECONDS:
            session.epoch = self._new_epoch_id()
            session.time_zero = self._clock()
            session.counter = session.window = session.last_timestamp = 0

    def _timestamp(self, session: _Session) -> int:
        elapsed = math.floor(self._clock() - session.time_zero)
        # The clock may be set back; clients reject session info whose time regresses.
        session.last_timestamp = max(session.last_timestamp, elapsed)
        return session.last_timestamp

    def _reply_base(self, request: um.RoutableMessage) -> um.RoutableMessage:
        reply = um.RoutableMessage()
        reply.to_destination.CopyFrom(request.from_destination)
        reply.from_destination.domain = self.domain  # type: ignore[assignment]
        reply.request_uuid = request.uuid
        return reply

    def _attach_session_info(
        self, reply: um.RoutableMessage, session: _Session, challenge: bytes
    ) -> None:
        info = sig.SessionInfo(
            counter=session.counter,
            publicKey=self.public_key,
            epoch=session.epoch,
            clock_time=self._timestamp(session),
            status=sig.SESSION_INFO_STATUS_OK,
        )
        encoded = info.SerializeToString()
        reply.session_info = encoded
        reply.signature_data.session_info_tag.tag = keys.session_info_tag(
            session.info_key, vin=self.vin, challenge=challenge, encoded_info=encoded
        )

    def _fault_reply(self, request: um.RoutableMessage, code: int) -> um.RoutableMessage:
        reply = self._reply_base(request)
        reply.signedMessageStatus.operation_status = um.OPERATIONSTATUS_ERROR
        reply.signedMessageStatus.signed_message_fault = code  # type: ignore[assignment]
        if code in _RESYNC_FAULTS:
            public_key = bytes(request.signature_data.signer_identity.public_key)
            session = self._sessions.get(public_key)
            if session is not None:
                self._attach_session_info(reply, session, bytes(request.uuid))
        return reply

    def _encrypt(
        self,
        reply: um.RoutableMessage,
        request: um.RoutableMessage,
        session: _Session,
        kind: AuthMethod,
    ) -> None:
        data = request.signature_data
        if kind is AuthMethod.HMAC_PERSONALIZED:
            sig_type, tag = sig.SIGNATURE_TYPE_HMAC_PERSONALIZED, data.HMAC_Personalized_data.tag
        else:
            sig_type = sig.SIGNATURE_TYPE_AES_GCM_PERSONALIZED
            tag = data.AES_GCM_Personalized_data.tag
        # One counter per session that only grows, so no (request, counter) pair repeats.
        session.response_counter += 1
        meta = response_metadata(
            domain=self.domain,
            vin=self.vin,
            counter=session.response_counter,
            flags=reply.flags,
            request_hash=request_hash(sig_type, bytes(tag), self.domain),
            fault=reply.signedMessageStatus.signed_message_fault,
        ).serialize()
        nonce = os.urandom(keys.NONCE_LENGTH)
        plaintext = bytes(reply.protobuf_message_as_bytes)
        ciphertext, gcm_tag = keys.gcm_seal(session.k, nonce, plaintext, _sha256(meta))
        reply.protobuf_message_as_bytes = ciphertext
        response = reply.signature_data.AES_GCM_Response_data
        response.nonce = nonce
        response.counter = session.response_counter
        response.tag = gcm_tag
