"""The web endpoint's TLS certificate: self-signed ECDSA P-256, valid at most 14 days.

WebTransport accepts a certificate the browser cannot verify only when the page pins it by its
SHA-256 hash (``serverCertificateHashes``) and it is an ECDSA (P-256) certificate valid for at
most 14 days. The certificate is kept in the configuration directory so a link (and its QR
code) stays valid across restarts, and replaced when fewer than ``RENEW_BEFORE`` remain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wavry.atomicfile import atomic_write
from wavry.store import StoreError, config_dir

VALIDITY = dt.timedelta(days=13)
BACKDATE = dt.timedelta(hours=1)  # clocks of phones and laptops disagree a little
RENEW_BEFORE = dt.timedelta(days=4)
MAX_SPAN = dt.timedelta(days=14)  # WebTransport's limit for hash-pinned certificates
FILENAME = "web-certificate.pem"


@dataclass(frozen=True, slots=True)
class WebCertificate:
    cert_pem: bytes
    key_pem: bytes
    sha256: bytes  # of the DER certificate: what serverCertificateHashes pins
    not_before: dt.datetime
    not_after: dt.datetime

    def renewal_due(self, now: dt.datetime) -> bool:
        return now >= self.not_after - RENEW_BEFORE or now < self.not_before

    @property
    def path_bytes(self) -> bytes:
        return self.cert_pem + self.key_pem


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_certificate(names: list[str], now: dt.datetime | None = None) -> WebCertificate:
    """A new self-signed certificate for ``names`` (IP addresses and host names)."""
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wavry host")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for name in dict.fromkeys(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            if name and name != "localhost":
                alt.append(x509.DNSName(name))
    not_before = now - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _wrap(
        cert,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _wrap(cert: x509.Certificate, key_pem: bytes) -> WebCertificate:
    der = cert.public_bytes(serialization.Encoding.DER)
    return WebCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key_pem,
        sha256=hashlib.sha256(der).digest(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def certificate_path(directory: Path | None = None) -> Path:
    return (directory or config_dir()) / FILENAME


def load_certificate(path: Path) -> WebCertificate | None:
    """The stored certificate, or None when there is none or it cannot be used any more."""
    if not path.exists():
        return None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise StoreError(
            f"{path} is readable by other users; run `chmod 600 {path}` (or delete it: a new "
            "certificate is made) and try again"
        )
    data = path.read_bytes()
    try:
        cert = x509.load_pem_x509_certificate(data)
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        return None  # unreadable: replaced by a new one
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        return None
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    wc = _wrap(cert, key_pem)
    if wc.not_after - wc.not_before > MAX_SPAN:
        return None
    return wc


def load_or_create_certificate(
    names: list[str], directory: Path | None = None, now: dt.datetime | None = None
) -> tuple[WebCertificate, bool]:
    """The stored certificate while it is valid for long enough, else a new one (stored);
    returns it and whether it is new."""
    path = certificate_path(directory)
    now = now or _now()
    current = load_certificate(path)
    if current is not None and not current.renewal_due(now):
        return current, False
    fresh = create_certificate(names, now)
    atomic_write(path, fresh.path_bytes)
    return fresh, True
