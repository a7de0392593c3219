"""ServerTls: a dev server's own CA and the key pair it serves, so every client can verify it.

Why a CA per container (per own-container database, per shared server): channel binding
(`channel_binding=require`, libpq >= 13) was the dev URLs' only protection against a relay,
and asyncpg, node-postgres and pgjdbc < 42.7.4 do not bind (issue 18). Certificate
verification (`sslmode=verify-full` + `sslrootcert`) is what every client does, and it needs
a certificate a client can check: one signed by a CA it is given. CloudNativePG does the
same (a self-signed CA per Cluster, the server certificate signed by it, the CA in a Secret
for clients: cloudnative-pg docs/src/certificates.md "Operator-managed mode"). One CA per
container, not per stack: a client of server A trusts only A's CA, so another container's
pair (every one has `127.0.0.1` and `localhost` in its names) never validates for A.

pulumi-tls (terraform-provider-tls): `PrivateKey` ECDSA P-256 (a signature with SHA-256:
tls-server-end-point channel binding, RFC 5929 section 4.1, hashes it with SHA-256; an
Ed25519 certificate has no such hash and pgjdbc 42.7.4-42.7.11 silently dropped the binding
for one, CVE-2026-54291). `SelfSignedCert` with `is_ca_certificate` for the CA;
`CertRequest` + `LocallySignedCert` for the server (SANs: the network aliases, `localhost`,
`127.0.0.1`). Both private keys live only in the Pulumi state, where `private_key_pem` is a
secret (the provider's schema marks it sensitive), and reach the container as a root-only
upload (components/dev/container.py TLS_KEY_UPLOAD).

Validity: ten years, no early renewal: the provider re-creates a certificate whose validity
ended when the stack is next refreshed (`ready_for_renewal`), which replaces the container.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_tls as tls

VALIDITY_HOURS = 24 * 365 * 10
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1",)


@dataclass
class ServerTlsArgs:
    stack: str
    # Host names clients use inside Docker networks (the container's aliases).
    aliases: Sequence[str]


class ServerTls(pulumi.ComponentResource):
    """Outputs `ca_cert_pem` (public), `cert_pem` (public), `key_pem` (secret)."""

    def __init__(self, name: str, args: ServerTlsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:ServerTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            # the CA signs server certificates only (no intermediates below it)
            max_path_length=0,
            subject={"common_name": f"bulkhead {args.stack} {name} CA", "organization": "bulkhead"},
            validity_period_hours=VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=child,
        )
        key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        request = tls.CertRequest(
            f"{name}-csr",
            private_key_pem=key.private_key_pem,
            subject={"common_name": str(args.aliases[0]), "organization": "bulkhead"},
            dns_names=[*dict.fromkeys([*args.aliases, *LOOPBACK_NAMES])],
            ip_addresses=list(LOOPBACK_IPS),
            opts=child,
        )
        cert = tls.LocallySignedCert(
            f"{name}-cert",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=VALIDITY_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=child,
        )
        self.ca_cert_pem: pulumi.Output[str] = ca.cert_pem
        self.cert_pem: pulumi.Output[str] = cert.cert_pem
        self.key_pem: pulumi.Output[str] = pulumi.Output.secret(key.private_key_pem)
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "cert_pem": self.cert_pem})
