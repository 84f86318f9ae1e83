"""Flotta's vehicle CA: made once, kept private in the data directory, the same for every
process that shares it, and issuing per-VIN client certificates that verify against it."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from flotta.telemetry.vehicle_ca import VehicleCA

VIN = "5YJ3E1EA7KF000001"


def test_the_ca_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "vehicle-ca.pem"
    with ThreadPoolExecutor(4) as pool:  # processes starting together end up with one CA
        made = list(pool.map(lambda _: VehicleCA.load_or_create(path), range(4)))
    again = VehicleCA.load_or_create(path)
    assert {ca.certificate_pem for ca in made} == {again.certificate_pem}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["vehicle-ca.pem"]  # no stray temp files


def test_a_leaf_names_the_vin_and_verifies_against_the_ca(tmp_path: Path) -> None:
    ca = VehicleCA.load_or_create(tmp_path / "vehicle-ca.pem")
    chain, key_pem = ca.leaf(VIN)
    leaf, issuer = x509.load_pem_x509_certificates(chain.encode())
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == VIN
    assert issuer == ca.certificate
    leaf.verify_directly_issued_by(ca.certificate)
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert "PRIVATE KEY" in key_pem
    assert ca.leaf(VIN) == (chain, key_pem)  # cached: one key per car, not per connection
    assert ca.leaf("7SAYGDEE1PF000002")[0] != chain
    assert isinstance(ca.certificate.public_key(), ec.EllipticCurvePublicKey)
