"""One CA file per database (issue 18): a client of database A trusts only A's container.

The attack this closes: `env` used to write one `<service>-ca.pem` per service with the CAs of
all the containers its databases live on. A service owning `app` (its own container) and
`billing` (on the shared server, where other tenants' databases run) then verified `app`'s
server against the shared server's CA too, and every container's certificate names `127.0.0.1`:
whoever holds the shared server's key (its container) could answer for `app` on the host's
loopback. Here a TLS endpoint serving the shared server's own certificate and key
(tests/support/pg_relay.py, cleartext mode: it asks for the password in clear) stands where
`app` is reached; an asyncpg client (no channel binding, so the CA is all it has) uses the URL
`env --driver asyncpg` prints for `app`:
  - with the CA file `env` writes now (`app-ca.pem`, only app's container's CA): refused at the
    TLS handshake, the endpoint gets nothing;
  - with the old per-service bundle in that file (app's CA + the shared server's): the endpoint
    receives the password. This is the failing case: the test shows the attack works without the fix.
No Docker needed: the certificates and keys are those the program makes (pulumi-tls under the
mock runtime), the client is the real asyncpg.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from dotenv import dotenv_values

from bulkhead.cli import main
from bulkhead.offline.mock_runtime import exports_plain
from tests.support.program import ROOT

SERVICE, OWN, SHARED = "app-service", "app", "billing"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _resource(dev_run, name: str):
    return next(r for r in dev_run.resources if r.name == name)


def _key_of(dev_run, cert_pem: str) -> str:
    """The private key (a secret of the run) whose public key is the certificate's."""
    want = x509.load_pem_x509_certificate(cert_pem.encode()).public_key().public_numbers()
    for value in dev_run.secret_values:
        if isinstance(value, str) and "BEGIN EC PRIVATE KEY" in value:
            key = serialization.load_pem_private_key(value.encode(), None)
            if key.public_key().public_numbers() == want:
                return value
    raise AssertionError("no private key of the run matches the certificate")


def _relay_events(out: str) -> list[str]:
    events = []
    for line in out.splitlines():
        try:
            events.append(json.loads(line)["event"])
        except (json.JSONDecodeError, KeyError):
            pass
    return events


def test_a_url_of_one_database_does_not_trust_another_containers_ca(dev_run, tmp_path, capsys, monkeypatch):
    outputs = exports_plain(dev_run.exports)
    dbs = outputs["databases"]
    dbs[SHARED]["owner"] = SERVICE  # app-service owns app (own container) and billing (shared server)
    del outputs["services"]
    assert dbs[OWN]["ca_cert"] != dbs[SHARED]["ca_cert"]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    monkeypatch.chdir(tmp_path)
    assert main(["env", "--outputs", str(path), "--service", SERVICE, "--driver", "asyncpg", "--ca-dir", "ca"]) == 0
    env = dotenv_values(stream=io.StringIO(capsys.readouterr().out))
    url = env[dbs[OWN]["env_var"]]
    ca_file = Path(dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["sslrootcert"])
    assert ca_file == tmp_path / "ca" / f"{OWN}-ca.pem"
    assert ca_file.read_text().strip() == dbs[OWN]["ca_cert"].strip()  # nothing but app's own container's CA

    # the shared server's own certificate and key, served where app's client connects
    shared_cert = _resource(dev_run, "server-shared-tls-cert").outputs["certPem"]
    (tmp_path / "shared.crt").write_text(shared_cert)
    (tmp_path / "shared.key").write_text(_key_of(dev_run, shared_cert))
    port = _free_port()
    relay = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "support", "pg_relay.py"), "--upstream",
                              "127.0.0.1:9", "--cert", str(tmp_path / "shared.crt"), "--key", str(tmp_path / "shared.key"),
                              "--mode", "cleartext", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        parts = urlsplit(url)
        at = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}"))

        def probe() -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "tests.support.client_probe", "asyncpg"], cwd=ROOT,
                                  env={**os.environ, "URL": at}, capture_output=True, text=True, timeout=60)

        now = probe()  # the per-database file: refused at the handshake
        old_bundle = dbs[OWN]["ca_cert"].strip() + "\n" + dbs[SHARED]["ca_cert"].strip() + "\n"
        ca_file.write_text(old_bundle)  # the per-service bundle `env` wrote before
        before = probe()
    finally:
        relay.terminate()
        out, _ = relay.communicate(timeout=10)
    events = _relay_events(out)
    assert now.returncode == 1 and "certificate verify failed" in now.stderr, now.stderr
    assert before.returncode == 1  # the endpoint hangs up after taking the password
    # one refused handshake, then the old bundle: TLS accepted and the password handed over
    assert events.count("tls") == 1 and events.count("password") == 1, events
