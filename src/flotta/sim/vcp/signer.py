"""Minimal client-side VCP signer, so Flotta's tests can drive the verifier on their own."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from tesla_protocol.command import signatures_pb2 as sig
from tesla_protocol.command import universal_message_pb2 as um

from flotta.sim.vcp import keys
from flotta.sim.vcp.tlv import Metadata, command_metadata, request_hash, response_metadata

DEFAULT_TTL_SECONDS = 10
FLAG_ENCRYPT_RESPONSE = 1 << um.FLAG_ENCRYPT_RESPONSE


class SignerError(Exception):
    """A reply could not be trusted or used."""


class NotOnWhitelistError(SignerError):
    """The vehicle does not know this client's key."""


@dataclass(slots=True)
class SignerSession:
    """What a client knows about one vehicle domain after a handshake."""

    vehicle_public_key: bytes
    k: bytes
    command_key: bytes
    info_key: bytes
    epoch: bytes
    counter: int
    clock_time: int
    # Local time minus vehicle time, so vehicle time = local clock - offset.
    clock_offset: float
    seen_responses: set[tuple[bytes, int]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class OpenedReply:
    """A reply's plaintext payload and protocol status."""

    payload: bytes
    fault: int
    operation_status: int
    encrypted: bool
    session_refreshed: bool


class ClientSigner:
    """Signs commands for one vehicle domain with one client key."""

    def __init__(
        self,
        vin: str,
        domain: int,
        private_key: ec.EllipticCurvePrivateKey,
        *,
        clock: Callable[[], float] = time.time,
        routing_address: bytes | None = None,
    ) -> None:
        self.vin = vin
        self.domain = int(domain)
        self._private_key = private_key
        self.public_key = keys.public_key_bytes(private_key)
        self._clock = clock
        self.routing_address = routing_address or os.urandom(16)
        self.session: SignerSession | None = None

    def _envelope(self, uuid: bytes | None) -> um.RoutableMessage:
        msg = um.RoutableMessage()
        msg.to_destination.domain = self.domain  # type: ignore[assignment]
        msg.from_destination.routing_address = self.routing_address
        msg.uuid = uuid if uuid is not None else os.urandom(16)
        return msg

    def session_info_request(self, uuid: bytes | None = None) -> um.RoutableMessage:
        """Build a handshake request; its uuid is the challenge the reply's tag binds."""
        msg = self._envelope(uuid)
        msg.session_info_request.public_key = self.public_key
        return msg

    def accept_session_info(self, reply: um.RoutableMessage, challenge: bytes) -> SignerSession:
        """Check a reply's SessionInfo tag and adopt it; raise SignerError if untrustworthy."""
        if not reply.session_info:
            raise SignerError("reply carries no session info")
        info = sig.SessionInfo.FromString(reply.session_info)
        if info.status == sig.SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST:
            raise NotOnWhitelistError("key not on whitelist")
        k = keys.shared_key(self._private_key, bytes(info.publicKey))
        info_key = keys.session_info_key(k)
        expected = keys.session_info_tag(
            info_key, vin=self.vin, challenge=challenge, encoded_info=bytes(reply.session_info)
        )
        if not hmac.compare_digest(expected, bytes(reply.signature_data.session_info_tag.tag)):
            raise SignerError("session info tag mismatch")
        return self._adopt(info, k, info_key)

    def _adopt(self, info: sig.SessionInfo, k: bytes, info_key: bytes) -> SignerSession:
        old = self.session
        counter = int(info.counter)
        if old is not None and old.epoch == info.epoch:
            if info.clock_time < old.clock_time:
                raise SignerError("session info clock went backwards")
            # Within an epoch never roll the counter back: that would invite replay faults.
            counter = max(counter, old.counter)
        self.session = SignerSession(
            vehicle_public_key=bytes(info.publicKey),
            k=k,
            command_key=keys.command_key(k),
            info_key=info_key,
            epoch=bytes(info.epoch),
            counter=counter,
            clock_time=int(info.clock_time),
            clock_offset=self._clock() - info.clock_time,
            seen_responses=old.seen_responses if old is not None else set(),
        )
        return self.session

    def _require_session(self) -> SignerSession:
        if self.session is None:
            raise SignerError("no session: handshake first")
        return self.session

    def vehicle_time(self) -> int:
        """Current time on the vehicle's clock, as estimated from the last handshake."""
        return int(self._clock() - self._require_session().clock_offset)

    def sign(
        self,
        payload: bytes,
        *,
        flags: int = 0,
        ttl: int = DEFAULT_TTL_SECONDS,
        counter: int | None = None,
        uuid: bytes | None = None,
    ) -> um.RoutableMessage:
        """HMAC-personalised command; `counter` overrides the next counter (for tests)."""
        session = self._require_session()
        counter = self._next_counter(session, counter)
        expires_at = max(0, self.vehicle_time() + ttl)
        meta = self._metadata(
            sig.SIGNATURE_TYPE_HMAC_PERSONALIZED, session, expires_at, counter, flags
        ).serialize()
        msg = self._envelope(uuid)
        msg.protobuf_message_as_bytes = payload
        msg.flags = flags
        msg.signature_data.signer_identity.public_key = self.public_key
        data = msg.signature_data.HMAC_Personalized_data
        data.epoch, data.counter, data.expires_at = session.epoch, counter, expires_at
        data.tag = hmac.new(session.command_key, meta + payload, hashlib.sha256).digest()
        return msg

    def _metadata(
        self,
        signature_type: int,
        session: SignerSession,
        expires_at: int,
        counter: int,
        flags: int,
    ) -> Metadata:
        """The command metadata both signing methods authenticate (fleet-api.md §10.4)."""
        return command_metadata(
            signature_type=signature_type,
            domain=self.domain,
            vin=self.vin,
            epoch=session.epoch,
            expires_at=expires_at,
            counter=counter,
            flags=flags,
        )

    def encrypt(
        self,
        payload: bytes,
        *,
        flags: int = FLAG_ENCRYPT_RESPONSE,
        ttl: int = DEFAULT_TTL_SECONDS,
        nonce: bytes | None = None,
        uuid: bytes | None = None,
    ) -> um.RoutableMessage:
        """AES-GCM-personalised command, as the Go SDK sends over BLE."""
        session = self._require_session()
        counter = self._next_counter(session, None)
        expires_at = self.vehicle_time() + ttl
        meta = self._metadata(
            sig.SIGNATURE_TYPE_AES_GCM_PERSONALIZED, session, expires_at, counter, flags
        )
        nonce = nonce if nonce is not None else os.urandom(keys.NONCE_LENGTH)
        ciphertext, tag = keys.gcm_seal(session.k, nonce, payload, meta.checksum())
        msg = self._envelope(uuid)
        msg.protobuf_message_as_bytes = ciphertext
        msg.flags = flags
        msg.signature_data.signer_identity.public_key = self.public_key
        data = msg.signature_data.AES_GCM_Personalized_data
        data.epoch, data.nonce, data.counter = session.epoch, nonce, counter
        data.expires_at, data.tag = expires_at, tag
        return msg

    @staticmethod
    def _next_counter(session: SignerSession, counter: int | None) -> int:
        if counter is None:
            session.counter += 1
            return session.counter
        session.counter = max(session.counter, counter)
        return counter

    def open_reply(self, request: um.RoutableMessage, reply: um.RoutableMessage) -> OpenedReply:
        """Refresh the session from attached info, then return the (decrypted) payload."""
        refreshed = False
        if reply.session_info:
            info = sig.SessionInfo.FromString(reply.session_info)
            if info.status == sig.SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST:
                raise NotOnWhitelistError("key not on whitelist")
            self.accept_session_info(reply, bytes(request.uuid))
            refreshed = True
        payload = bytes(reply.protobuf_message_as_bytes)
        encrypted = reply.signature_data.HasField("AES_GCM_Response_data")
        if encrypted:
            payload = self._decrypt_reply(request, reply)
        status = reply.signedMessageStatus
        return OpenedReply(
            payload=payload,
            fault=int(status.signed_message_fault),
            operation_status=int(status.operation_status),
            encrypted=encrypted,
            session_refreshed=refreshed,
        )

    def _decrypt_reply(self, request: um.RoutableMessage, reply: um.RoutableMessage) -> bytes:
        session = self._require_session()
        data = reply.signature_data.AES_GCM_Response_data
        kind = request.signature_data.WhichOneof("sig_type")
        if kind == "HMAC_Personalized_data":
            sig_type = sig.SIGNATURE_TYPE_HMAC_PERSONALIZED
            tag = bytes(request.signature_data.HMAC_Personalized_data.tag)
        elif kind == "AES_GCM_Personalized_data":
            sig_type = sig.SIGNATURE_TYPE_AES_GCM_PERSONALIZED
            tag = bytes(request.signature_data.AES_GCM_Personalized_data.tag)
        else:
            raise SignerError("encrypted reply to an unsigned request")
        req_hash = request_hash(sig_type, tag, reply.from_destination.domain)
        # A repeated (request, response counter) pair is a replayed response.
        seen_key = (req_hash, int(data.counter))
        if seen_key in session.seen_responses:
            raise SignerError("response counter reused")
        meta = response_metadata(
            domain=reply.from_destination.domain,
            vin=self.vin,
            counter=data.counter,
            flags=reply.flags,
            request_hash=req_hash,
            fault=reply.signedMessageStatus.signed_message_fault,
        )
        try:
            plaintext = keys.gcm_open(
                session.k,
                bytes(data.nonce),
                bytes(reply.protobuf_message_as_bytes),
                bytes(data.tag),
                meta.checksum(),
            )
        except InvalidTag:
            raise SignerError("response failed authentication") from None
        session.seen_responses.add(seen_key)
        return plaintext
