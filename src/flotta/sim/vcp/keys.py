"""P-256 key handling and the key derivations of the Vehicle Command Protocol."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flotta.sim.vcp.tlv import session_info_metadata

PUBLIC_KEY_LENGTH = 65
SHARED_KEY_LENGTH = 16
NONCE_LENGTH = 12
GCM_TAG_LENGTH = 16
LABEL_SESSION_INFO = b"session info"
LABEL_COMMAND = b"authenticated command"

PublicKeyLike: TypeAlias = bytes | ec.EllipticCurvePublicKey


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """Create a fresh P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def public_key_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """Encode a key's public point as 65 uncompressed bytes (0x04 ‖ X ‖ Y)."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def load_public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """Parse a 65-byte uncompressed P-256 point; raise ValueError if it is not one."""
    if len(data) != PUBLIC_KEY_LENGTH or data[0] != 0x04:
        raise ValueError("public key must be a 65-byte uncompressed P-256 point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(data))


def load_private_key_pem(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """Load an unencrypted PEM (SEC1 or PKCS#8) P-256 private key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("expected a P-256 private key")
    return key


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Serialise a private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def shared_key(private_key: ec.EllipticCurvePrivateKey, peer_public: PublicKeyLike) -> bytes:
    """Session key K = SHA1(ECDH x-coordinate)[:16]."""
    peer = load_public_key(peer_public) if isinstance(peer_public, bytes) else peer_public
    secret = private_key.exchange(ec.ECDH(), peer)
    return hashlib.sha1(secret).digest()[:SHARED_KEY_LENGTH]


def _derive(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, label, hashlib.sha256).digest()


def session_info_key(k: bytes) -> bytes:
    """Key that authenticates SessionInfo: HMAC-SHA256(K, "session info")."""
    return _derive(k, LABEL_SESSION_INFO)


def command_key(k: bytes) -> bytes:
    """Key that authenticates commands: HMAC-SHA256(K, "authenticated command")."""
    return _derive(k, LABEL_COMMAND)


def session_info_tag(info_key: bytes, *, vin: str, challenge: bytes, encoded_info: bytes) -> bytes:
    """Tag over TLV(type=HMAC, VIN, challenge) ‖ SessionInfo bytes, keyed by `info_key`."""
    meta = session_info_metadata(vin=vin, challenge=challenge).serialize()
    return hmac.new(info_key, meta + encoded_info, hashlib.sha256).digest()


def gcm_seal(k: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """AES-GCM encrypt; return (ciphertext, 16-byte tag) as VCP carries them apart."""
    sealed = AESGCM(k).encrypt(nonce, plaintext, aad)
    return sealed[:-GCM_TAG_LENGTH], sealed[-GCM_TAG_LENGTH:]


def gcm_open(k: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    """AES-GCM decrypt; raise cryptography's InvalidTag if anything was altered."""
    return AESGCM(k).decrypt(nonce, ciphertext + tag, aad)


class KeyWhitelist:
    """Enrolled client public keys and their roles; may be shared by a car's domains."""

    def __init__(self) -> None:
        self._roles: dict[bytes, int] = {}

    def enroll(self, public_key: bytes, role: int) -> None:
        """Add or re-role a key; raise ValueError if it is not a P-256 point."""
        load_public_key(public_key)
        self._roles[bytes(public_key)] = int(role)

    def revoke(self, public_key: bytes) -> bool:
        """Remove a key; return whether it was enrolled."""
        return self._roles.pop(bytes(public_key), None) is not None

    def role_of(self, public_key: bytes) -> int | None:
        """Return the key's role, or None if it is not enrolled."""
        return self._roles.get(bytes(public_key))

    def keys(self) -> dict[bytes, int]:
        """Return a copy of the whitelist."""
        return dict(self._roles)


@dataclass(frozen=True, slots=True)
class VehicleKeyPair:
    """One domain's P-256 key pair, as a simulated vehicle holds it."""

    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> VehicleKeyPair:
        """Create a new random key pair."""
        return cls(generate_private_key())

    @classmethod
    def from_pem(cls, pem: bytes) -> VehicleKeyPair:
        """Load a key pair from its private-key PEM."""
        return cls(load_private_key_pem(pem))

    def to_pem(self) -> bytes:
        """Serialise the private key as PKCS#8 PEM."""
        return private_key_pem(self.private_key)

    @property
    def public_bytes(self) -> bytes:
        """The 65-byte uncompressed public key sent in SessionInfo."""
        return public_key_bytes(self.private_key)
