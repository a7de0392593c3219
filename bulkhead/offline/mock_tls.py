"""The mock runtime's pulumi-tls: real keys and certificates, the same on every run.

`bulkhead plan` and the tests run the program under the mock runtime; the real-engine tests
put its TLS uploads into real containers and verify them with real clients, so what the mock
returns must be real PEM that OpenSSL, Java and Node accept. Deterministic, so that the plan
and the golden file of the dev container inputs do not change from run to run: each key is
derived from the resource's seed (an ECDSA P-256 scalar, as `algorithm="ECDSA"`,
`ecdsa_curve="P256"` makes), signatures are RFC 6979 deterministic ECDSA, validity starts at a
fixed instant. The real provider (terraform-provider-tls) makes random keys at apply time.
These keys are NOT secret (anyone can derive them): only for plans and tests.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"
TYPES = frozenset({PRIVATE_KEY, SELF_SIGNED_CERT, CERT_REQUEST, LOCALLY_SIGNED_CERT})
# The provider's schema marks these sensitive.
SECRET_OUTPUTS = {PRIVATE_KEY: {"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"}}
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
_SUBJECT_OIDS = {"commonName": NameOID.COMMON_NAME, "organization": NameOID.ORGANIZATION_NAME}
_N_P256 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _key(seed: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(("tls-key/" + seed).encode()).digest(), "big") % (_N_P256 - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _load_key(pem: str) -> ec.EllipticCurvePrivateKey:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _name(subject: Any) -> x509.Name:
    subject = subject[0] if isinstance(subject, list) and subject else subject or {}
    return x509.Name([x509.NameAttribute(oid, str(subject[k])) for k, oid in _SUBJECT_OIDS.items() if subject.get(k)])


def _serial(seed: str) -> int:
    return int.from_bytes(hashlib.sha256(("serial/" + seed).encode()).digest()[:16], "big") >> 1


def _usages(builder: x509.CertificateBuilder, uses: list, is_ca: bool, path_len) -> x509.CertificateBuilder:
    uses = set(uses or [])
    path_len = int(path_len) if is_ca and path_len is not None else None
    builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_len), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature="digital_signature" in uses, content_commitment=False,
            key_encipherment="key_encipherment" in uses, data_encipherment=False, key_agreement=False,
            key_cert_sign="cert_signing" in uses, crl_sign="crl_signing" in uses, encipher_only=False, decipher_only=False,
        ),
        critical=True,
    )  # fmt: skip
    if "server_auth" in uses:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fake(typ: str, seed: str, inputs: dict) -> dict:
    """The outputs pulumi-tls gives `typ` for these inputs."""
    if typ == PRIVATE_KEY:
        key = _key(seed)
        public = key.public_key()
        return {
            "privateKeyPem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()).decode(),
            "privateKeyPemPkcs8": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()).decode(),
            "publicKeyPem": public.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            "publicKeyFingerprintSha256": hashlib.sha256(
                public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest(),
        }  # fmt: skip
    hours = int(inputs.get("validityPeriodHours") or 24)
    not_after = NOT_BEFORE + datetime.timedelta(hours=hours)
    if typ == SELF_SIGNED_CERT:
        key = _load_key(inputs["privateKeyPem"])
        name = _name(inputs.get("subject"))
        builder = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(_serial(seed)).not_valid_before(NOT_BEFORE).not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        builder = _usages(builder, inputs.get("allowedUses"), bool(inputs.get("isCaCertificate")), inputs.get("maxPathLength"))
        cert = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        return {"certPem": _pem(cert), "validityStartTime": NOT_BEFORE.isoformat(), "validityEndTime": not_after.isoformat()}
    if typ == CERT_REQUEST:
        key = _load_key(inputs["privateKeyPem"])
        sans = [x509.DNSName(n) for n in inputs.get("dnsNames") or []]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in inputs.get("ipAddresses") or []]
        builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        csr = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        return {"certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode()}
    if typ == LOCALLY_SIGNED_CERT:
        csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        ca_key = _load_key(inputs["caPrivateKeyPem"])
        ca = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
        builder = (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject).public_key(csr.public_key())
            .serial_number(_serial(seed)).not_valid_before(NOT_BEFORE).not_valid_after(not_after)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        for ext in csr.extensions:
            if isinstance(ext.value, x509.SubjectAlternativeName):
                builder = builder.add_extension(ext.value, critical=False)
        builder = _usages(builder, inputs.get("allowedUses"), bool(inputs.get("isCaCertificate")), inputs.get("maxPathLength"))
        cert = builder.sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
        return {"certPem": _pem(cert), "validityStartTime": NOT_BEFORE.isoformat(), "validityEndTime": not_after.isoformat(),
                "readyForRenewal": False}
    raise ValueError(typ)
