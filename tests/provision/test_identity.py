"""Device identities: CSR, certificate chained to the station CA, checked by openssl and cryptography."""

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rig.errors import RigError
from rig.image.keys import load_signer
from rig.provision.identity import csr, device_key, fingerprint, issue, make_ca


@pytest.fixture
def ca_signer(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ca.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return load_signer(path)


def test_device_certificate_chains_to_the_station_ca(ca_signer, tmp_path):
    ca = make_ca(ca_signer)
    key = device_key()
    cert = issue(csr(key, "RIG-H7-000123", "stm32h7"), ca, ca_signer)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "RIG-H7-000123"
    assert fingerprint(cert.public_key()) == fingerprint(key.public_key())
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "dev.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    check = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", tmp_path / "ca.pem", tmp_path / "dev.pem"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_csr_that_does_not_verify_is_refused(ca_signer):
    ca = make_ca(ca_signer)
    request = csr(device_key(), "RIG-1", "esp32")
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x55  # a bit of the signature
    from cryptography import x509

    with pytest.raises(RigError, match="CSR signature does not verify"):
        issue(x509.load_der_x509_csr(bytes(der)), ca, ca_signer)
