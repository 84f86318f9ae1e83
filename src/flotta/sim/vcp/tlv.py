"""Metadata tag-length-value encoding that binds VCP signatures to their context."""

from __future__ import annotations

import hashlib

from tesla_protocol.command import signatures_pb2 as sig
from tesla_protocol.command import universal_message_pb2 as um

END = int(sig.TAG_END)
_MAX_VALUE_LEN = 255
_U32_MAX = 0xFFFFFFFF
# VCSEC truncates the request hash to the type byte plus the first 16 bytes of the MAC.
_VCSEC_REQUEST_HASH_LEN = 17


def encode_uint32(value: int) -> bytes:
    """Encode an integer as the 4-byte big-endian form metadata uses."""
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"metadata integer out of range: {value}")
    return value.to_bytes(4, "big")


class Metadata:
    """Tag/value items serialised sorted by tag, each `tag ‖ len ‖ value`, then 0xFF."""

    def __init__(self) -> None:
        self._items: dict[int, bytes] = {}

    def add(self, tag: int, value: bytes) -> Metadata:
        """Add one item; a tag may appear once and a value holds at most 255 bytes."""
        if not 0 <= tag < END:
            raise ValueError(f"invalid metadata tag: {tag}")
        if tag in self._items:
            raise ValueError(f"duplicate metadata tag: {tag}")
        if len(value) > _MAX_VALUE_LEN:
            raise ValueError(f"metadata value for tag {tag} is too long")
        self._items[tag] = bytes(value)
        return self

    def add_uint32(self, tag: int, value: int) -> Metadata:
        """Add an integer item as 4 big-endian bytes."""
        return self.add(tag, encode_uint32(value))

    def serialize(self) -> bytes:
        """Return the canonical byte string (sorted by tag, 0xFF-terminated)."""
        out = bytearray()
        for tag in sorted(self._items):
            value = self._items[tag]
            out += bytes((tag, len(value)))
            out += value
        out.append(END)
        return bytes(out)

    def checksum(self) -> bytes:
        """Return SHA-256 of the serialised metadata (the AES-GCM associated data)."""
        return hashlib.sha256(self.serialize()).digest()


def _domain_byte(domain: int) -> bytes:
    if not 0 <= domain <= _MAX_VALUE_LEN:
        raise ValueError(f"domain out of range: {domain}")
    return bytes((domain,))


def command_metadata(
    *,
    signature_type: int,
    domain: int,
    vin: str,
    epoch: bytes,
    expires_at: int,
    counter: int,
    flags: int = 0,
) -> Metadata:
    """Metadata M authenticated by an HMAC- or AES-GCM-personalised command."""
    meta = Metadata()
    meta.add(sig.TAG_SIGNATURE_TYPE, bytes((signature_type,)))
    meta.add(sig.TAG_DOMAIN, _domain_byte(domain))
    meta.add(sig.TAG_PERSONALIZATION, vin.encode("ascii"))
    meta.add(sig.TAG_EPOCH, epoch)
    meta.add_uint32(sig.TAG_EXPIRES_AT, expires_at)
    meta.add_uint32(sig.TAG_COUNTER, counter)
    # Flags are bound only when non-zero so that older signers keep working.
    if flags:
        meta.add_uint32(sig.TAG_FLAGS, flags)
    return meta


def session_info_metadata(*, vin: str, challenge: bytes) -> Metadata:
    """Metadata prefixed to SessionInfo bytes when computing the session-info tag."""
    meta = Metadata()
    meta.add(sig.TAG_SIGNATURE_TYPE, bytes((sig.SIGNATURE_TYPE_HMAC,)))
    meta.add(sig.TAG_PERSONALIZATION, vin.encode("ascii"))
    meta.add(sig.TAG_CHALLENGE, challenge)
    return meta


def response_metadata(
    *, domain: int, vin: str, counter: int, flags: int, request_hash: bytes, fault: int
) -> Metadata:
    """Metadata whose SHA-256 is the associated data of an encrypted response."""
    meta = Metadata()
    meta.add(sig.TAG_SIGNATURE_TYPE, bytes((sig.SIGNATURE_TYPE_AES_GCM_RESPONSE,)))
    meta.add(sig.TAG_DOMAIN, _domain_byte(domain))
    meta.add(sig.TAG_PERSONALIZATION, vin.encode("ascii"))
    meta.add_uint32(sig.TAG_COUNTER, counter)
    # Unlike requests, responses always bind the flags, even when zero.
    meta.add_uint32(sig.TAG_FLAGS, flags)
    meta.add(sig.TAG_REQUEST_HASH, request_hash)
    meta.add_uint32(sig.TAG_FAULT, fault)
    return meta


def request_hash(signature_type: int, tag: bytes, domain: int) -> bytes:
    """Identify a request for response encryption: type byte ‖ request tag."""
    digest = bytes((signature_type,)) + tag
    if domain == um.DOMAIN_VEHICLE_SECURITY:
        return digest[:_VCSEC_REQUEST_HASH_LEN]
    return digest
