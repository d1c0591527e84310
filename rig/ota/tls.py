"""A local certificate authority for HTTPS OTA: the CA a device trusts and the server's certificates.

Real fleets pin a CA too; generating one per lab keeps TLS on in tests without any public PKI.
Files are written atomically; the keys are P-256.

    make_local_ca(folder) -> (ca.pem, server.pem, server.key)   the CA and a good server certificate
    campaign_certs(folder) -> CampaignCerts                       that, and the certificates a device
                                                                  must refuse (OTA scenarios)
"""

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rig.atomic import write_bytes

VALIDITY = datetime.timedelta(days=825)
HOSTS = ("127.0.0.1", "localhost")
OTHER_HOST = "ota.rig.invalid"  # a name no lab host has (.invalid is reserved, RFC 2606)
# The server certificates of the campaign kit: what the server presents, and how a device that
# checks it as esp_https_ota does must react. "trusted" is the good one.
SERVER_CERTS = ("trusted", "wrong-ca", "expired", "wrong-host")


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rig lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


@dataclass(frozen=True)
class _Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _make_ca(cn: str, now: datetime.datetime) -> _Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _Ca(cert, key)


def _issue(ca: _Ca, hosts, not_before: datetime.datetime, not_after: datetime.datetime):
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in hosts]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0])).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert, key


def _write_pair(folder: Path, stem: str, cert: x509.Certificate, key) -> tuple[Path, Path]:
    paths = folder / f"{stem}.pem", folder / f"{stem}.key"
    write_bytes(paths[0], cert.public_bytes(serialization.Encoding.PEM))
    write_bytes(paths[1], key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()), mode=0o600)
    return paths


def _local_ca(folder: Path, hosts) -> tuple[_Ca, datetime.datetime]:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca = _make_ca("rig lab OTA CA", now)
    write_bytes(folder / "ca.pem", ca.cert.public_bytes(serialization.Encoding.PEM))
    _write_pair(folder, "server", *_issue(ca, hosts, now, now + VALIDITY))
    return ca, now


def make_local_ca(folder: Path, hosts=HOSTS) -> tuple[Path, Path, Path]:
    """Write ca.pem, server.pem and server.key into folder; return their paths."""
    folder = Path(folder)
    _local_ca(folder, hosts)
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


@dataclass(frozen=True)
class CampaignCerts:
    ca: Path  # the CA the campaign's ESP32 firmware embeds (PEM)
    servers: dict[str, tuple[Path, Path]]  # SERVER_CERTS name -> (certificate, key)

    def context(self, name: str) -> ssl.SSLContext:
        return server_context(*self.servers[name])


def campaign_certs(folder: Path, hosts=HOSTS) -> CampaignCerts:
    """The campaign's CA and four server certificates for `hosts`: trusted; signed by another CA
    ("wrong-ca"); by the CA but expired a day ago ("expired"); by the CA for another host name
    ("wrong-host"). Made afresh each time: the CA's key is never written down, and the firmware
    a campaign installs embeds the CA of its own run."""
    folder = Path(folder)
    ca, now = _local_ca(folder, hosts)
    stranger = _make_ca("rig lab stranger CA", now)
    servers = {
        "trusted": (folder / "server.pem", folder / "server.key"),
        "wrong-ca": _write_pair(folder, "wrong-ca", *_issue(stranger, hosts, now, now + VALIDITY)),
        "expired": _write_pair(folder, "expired", *_issue(ca, hosts, now - VALIDITY, now - datetime.timedelta(days=1))),
        "wrong-host": _write_pair(folder, "wrong-host", *_issue(ca, (OTHER_HOST,), now, now + VALIDITY)),
    }
    return CampaignCerts(folder / "ca.pem", servers)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx
