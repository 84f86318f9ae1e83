"""Flotta's vehicle CA: the issuer of the client certificates Flotta presents, one per VIN, to
fleet-telemetry receivers, as real cars present Tesla-issued ones (reference §9.3).

A receiver takes the vehicle's identity from the client certificate's Subject CN (the VIN), so
a developer's server trusts this CA (`GET /flotta/v1/telemetry/vehicle-ca.pem`) the way it
trusts Tesla's. The CA is made once, on first start, and kept in the data directory
(`keys/vehicle-ca.pem`, 0600: certificate and key); processes sharing a data directory share
it. Leaves are made on demand and cached.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "Flotta Vehicle CA"
CA_YEARS = 20
LEAF_DAYS = 397
# Re-issue a cached leaf once it has less than this left.
LEAF_MARGIN = timedelta(days=30)
CACHED_LEAVES = 20_000


def _wall_clock() -> datetime:
    # Certificates are checked by other machines against their wall clocks, never against
    # Flotta's (possibly accelerated) simulation clock.
    return datetime.now(UTC)


class VehicleCA:
    """The CA certificate and key, and per-VIN client certificates it signs."""

    def __init__(
        self,
        certificate: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        now: Callable[[], datetime] = _wall_clock,
    ) -> None:
        self.certificate = certificate
        self._key = key
        self._now = now
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        self._leaves: OrderedDict[str, tuple[datetime, str, str]] = OrderedDict()

    @classmethod
    def load_or_create(cls, path: Path) -> VehicleCA:
        """Load the CA from `path`, creating it there (0600) on first start."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_once(path, _new_ca())
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} does not hold the vehicle CA's EC private key")
        return cls(x509.load_pem_x509_certificate(data), key)

    def leaf(self, vin: str) -> tuple[str, str]:
        """The client certificate (PEM, CN = VIN, then the CA) and its key (PEM) for a car."""
        now = self._now()
        cached = self._leaves.get(vin)
        if cached is not None and cached[0] - now > LEAF_MARGIN:
            self._leaves.move_to_end(vin)
            return cached[1], cached[2]
        expires = now + timedelta(days=LEAF_DAYS)
        cert_pem, key_pem = self._issue(vin, now, expires)
        self._leaves[vin] = (expires, cert_pem, key_pem)
        while len(self._leaves) > CACHED_LEAVES:
            self._leaves.popitem(last=False)
        return cert_pem, key_pem

    def _issue(self, vin: str, now: datetime, expires: datetime) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, vin)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))  # receivers' clocks may lag
            .not_valid_after(min(expires, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
            .sign(self._key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        chain = certificate.public_bytes(pem).decode() + self.certificate_pem
        key_pem = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return chain, key_pem


def _new_ca() -> bytes:
    """A fresh CA: P-256 key and self-signed certificate, as one PEM (certificate, then key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Flotta"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
        ]
    )
    now = _wall_clock()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return certificate.public_bytes(pem) + key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _create_once(path: Path, data: bytes) -> None:
    """Write `data` to `path` unless it exists: processes starting together keep one CA."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".vehicle-ca.")  # 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)  # atomic, and fails if another process got there first
    finally:
        os.unlink(temporary)
