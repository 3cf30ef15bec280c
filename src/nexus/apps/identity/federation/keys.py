"""Key pairs for SAML: generated here (self-signed X.509, as SAML metadata expects) and
written to private temporary files only while xmlsec1 needs them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    private_key_pem: str
    certificate_pem: str


def generate_keypair(common_name: str, days: int = 3650) -> KeyPair:
    """An RSA-2048 key and a self-signed certificate: SAML trusts the certificate pinned in
    metadata, not a CA chain, so self-signed is the norm (Okta, Azure AD and Keycloak do it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()).decode(),
        cert.public_bytes(serialization.Encoding.PEM).decode(),
    )


def cert_body(pem: str) -> str:
    """The base64 body of a PEM certificate (what <ds:X509Certificate> holds)."""
    lines = [ln.strip() for ln in pem.strip().splitlines()]
    return "".join(ln for ln in lines if ln and not ln.startswith("-----"))


def normalise_certificate(text: str) -> str:
    """Accept a PEM or a bare base64 body (as metadata and admin consoles show it); return PEM.
    Raises ValueError when it is not an X.509 certificate."""
    body = cert_body(text) if "-----BEGIN" in text else "".join(text.split())
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) \
        + "\n-----END CERTIFICATE-----\n"
    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ValueError("not an X.509 certificate (PEM or base64)") from None
    return pem


@contextmanager
def key_files(pair: KeyPair) -> Iterator[tuple[str, str]]:
    """(key path, cert path) in a fresh 0700 directory, removed afterwards: xmlsec1 reads
    keys from files, and the private key must not outlive the operation on disk."""
    d = tempfile.mkdtemp(prefix="nexus-saml-")
    try:
        key_path, cert_path = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pair.private_key_pem)
        with open(cert_path, "w") as f:
            f.write(pair.certificate_pem)
        yield key_path, cert_path
    finally:
        shutil.rmtree(d, ignore_errors=True)
