"""Each dev container serves a key pair of its own, signed by a CA of its own (components/dev/server_tls.py).

What a client verifies (sslmode=verify-full): the chain to the CA that `env` writes, and the
host name it dials (the network alias, `localhost`, `127.0.0.1`). Another container's
certificate must NOT verify against this one's CA (else any dev container's key could stand
in for any other's at 127.0.0.1). Keys are secrets in the state and root-only uploads.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from bulkhead.offline.mock_runtime import Secret
from bulkhead.planfile import SECRET_ENVELOPE
from components.dev.container import TLS_CERT_UPLOAD, TLS_KEY_UPLOAD

CONTAINER = "docker:index/container:Container"
COMPONENT = "bulkhead:index:DockerPostgres"
KEY = "tls:index/privateKey:PrivateKey"
CA = "tls:index/selfSignedCert:SelfSignedCert"


def _comps(dev_run) -> list[str]:
    return sorted(r.name for r in dev_run.resources if r.type == COMPONENT)


def _by_name(dev_run, name):
    return next(r for r in dev_run.resources if r.name == name)


def _openssl_verify(tmp: Path, ca_pem: str, cert_pem: str, host: str) -> subprocess.CompletedProcess:
    (tmp / "ca.pem").write_text(ca_pem)
    (tmp / "cert.pem").write_text(cert_pem)
    flag = ["-verify_ip", host] if host[0].isdigit() else ["-verify_hostname", host]
    return subprocess.run(["openssl", "verify", "-CAfile", str(tmp / "ca.pem"), *flag, str(tmp / "cert.pem")],
                          capture_output=True, text=True)


def test_every_container_has_its_own_ca_and_key(dev_run) -> None:
    comps = _comps(dev_run)
    cas = {c: _by_name(dev_run, f"{c}-tls-ca").outputs["certPem"] for c in comps}
    certs = {c: _by_name(dev_run, f"{c}-tls-cert").outputs["certPem"] for c in comps}
    assert len(set(cas.values())) == len(set(certs.values())) == len(comps) == 4
    keys = [r for r in dev_run.resources if r.type == KEY]
    assert len(keys) == 2 * len(comps)
    for key in keys:  # ECDSA P-256: tls-server-end-point channel binding hashes its SHA-256 signature
        assert key.inputs == {"algorithm": "ECDSA", "ecdsaCurve": "P256"}
        assert key.outputs["privateKeyPem"] == SECRET_ENVELOPE
        assert key.outputs["privateKeyPemPkcs8"] == SECRET_ENVELOPE


@pytest.mark.parametrize("comp", ["auth", "server-shared"])
def test_the_certificate_verifies_for_its_names_against_its_own_ca_only(dev_run, comp, tmp_path) -> None:
    ca = _by_name(dev_run, f"{comp}-tls-ca").outputs["certPem"]
    cert_pem = _by_name(dev_run, f"{comp}-tls-cert").outputs["certPem"]
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(map(str, sans.get_values_for_type(x509.DNSName))) == sorted([comp, "localhost"])
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    for host in (comp, "localhost", "127.0.0.1"):
        result = _openssl_verify(tmp_path, ca, cert_pem, host)
        assert result.returncode == 0, result.stderr
    # the failing cases: another name, another container's CA
    assert _openssl_verify(tmp_path, ca, cert_pem, "server-other").returncode != 0
    other = next(c for c in _comps(dev_run) if c != comp)
    other_ca = _by_name(dev_run, f"{other}-tls-ca").outputs["certPem"]
    assert _openssl_verify(tmp_path, other_ca, cert_pem, "127.0.0.1").returncode != 0
    ca_cert = x509.load_pem_x509_certificate(ca.encode())
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_uploads_key_root_only_secret_and_outputs_the_ca(dev_run) -> None:
    for ctr in dev_run.by_type(CONTAINER):
        comp = ctr.name.removesuffix("-postgres")
        uploads = {u["file"]: u for u in ctr.inputs["uploads"]}
        assert uploads[TLS_KEY_UPLOAD]["permissions"] == "0400"
        assert uploads[TLS_KEY_UPLOAD]["content"] == SECRET_ENVELOPE
        assert uploads[TLS_CERT_UPLOAD]["content"] == _by_name(dev_run, f"{comp}-tls-cert").outputs["certPem"]
    for name, db in dev_run.exports["databases"].items():
        assert not isinstance(db["ca_cert"], Secret), name
        comp = "server-shared" if db["server"] == "shared" else name
        assert db["ca_cert"] == _by_name(dev_run, f"{comp}-tls-ca").outputs["certPem"]
    # no private key in any output, nor anywhere in plain text in the plan's inputs
    key_pems = {v for v in dev_run.secret_values if "PRIVATE KEY" in v}
    assert len(key_pems) >= 8
