"""Every client a team uses, on the REAL engine, with exactly what `env --driver X` prints (issue 18).

A dev stack (an own container on PostgreSQL 17 and a shared server on 15 with two tenants) is
planned by the program under the mock runtime and created on the engine by the provider stand-in
(tests/support/docker_engine.py). Its outputs are written to a file and `python -m bulkhead env`
is run on them, as a user does. Each form is then used by its real client:

  libpq        psql (Debian's postgresql-client)        sqlalchemy+psycopg   SQLAlchemy 2 + psycopg 3
  psycopg      psycopg 3                                jdbc                 pgjdbc (Debian's libpostgresql-jdbc-java)
  asyncpg      asyncpg                                  node                 node-postgres (npm `pg`)
  sqlalchemy+asyncpg  SQLAlchemy 2 + asyncpg

from the host (127.0.0.1) and from a container on the database's network (`env --internal`;
the client container is the test image with the host's /usr, Python and this checkout mounted
read-only, so the very same client builds run in it).

The relay (issue 18, reason 4): a container of another tenant joins the shared server's network,
claims the server's alias and ends the client's TLS with a certificate of its own
(tests/support/pg_relay.py). Docker's DNS gives it about half of the answers; here the victim's
container is pinned to the attacker's address (`--add-host`), the case where it wins. Every form
must refuse before any authentication message or statement; the same forms with the server
authentication removed (sslmode=require, no CA, no channel binding) show the relay succeeding,
so the test can fail.
"""

from __future__ import annotations

import copy
import datetime
import io
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from dotenv import dotenv_values

from bulkhead.offline.mock_runtime import exports_plain, run_program
from tests.support.docker_engine import Engine, Planned, plan_resources
from tests.support.program import ROOT, stack_config

pytestmark = pytest.mark.docker

STACK = "rclients"
PY = sys.executable
CLIENT_IMAGE = "bulkhead-test/postgres:15"  # bookworm, as the host whose /usr is mounted into it
JDBC_JAR = "/usr/share/java/postgresql.jar"
# resolved: /usr/bin/java is a link into /etc/alternatives, which the client container does not have
JAVA = os.path.realpath(shutil.which("java") or "java")
FORMS = ("libpq", "psycopg", "asyncpg", "sqlalchemy+asyncpg", "sqlalchemy+psycopg", "jdbc", "node")
QUERY = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
OWN, SHARED = "auth", "billing"  # "notify" shares the server with billing: the relay tests use it


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clients_config() -> dict:
    config = copy.deepcopy(stack_config("dev"))
    dbs = config["bulkhead:databases"]
    for name in ("app", "worker"):
        del dbs[name]
    dbs[OWN]["engine_version"] = "17"
    dbs[OWN]["port"] = free_port()
    config["bulkhead:servers"]["shared"]["engine_version"] = "15"
    config["bulkhead:servers"]["shared"]["port"] = free_port()
    return config


def command(form: str) -> list[str]:
    """The client that uses `form`, reading the URL from $URL (paths relative to the checkout)."""
    if form == "libpq":
        return ["psql", "-XAtq", "-F", " ", "-d", "$URL", "-c", QUERY]
    if form == "jdbc":
        return [JAVA, "-cp", JDBC_JAR, "tests/docker/java/Probe.java"]
    if form == "node":
        return ["node", "tests/docker/node/probe.js"]
    return [PY, "-m", "tests.support.client_probe", form]


def _script(runs: list[tuple[str, dict]]) -> str:
    """bash: each run with its own variables, its result as `== <i> <rc>` then its output."""
    lines = [f"cd {ROOT}"]
    for i, (form, env) in enumerate(runs):
        exports = " ".join(f'{k}="${{R{i}_{k}}}"' for k in env)
        argv = " ".join(f'"${{R{i}_URL}}"' if a == "$URL" else f"'{a}'" for a in command(form))
        lines.append(f"out=$(timeout 60 env {exports} {argv} 2>&1); echo \"== {i} $?\"; printf '%s\\n' \"$out\" | head -3")
    return "\n".join(lines) + "\n"


def _parse(output: str, n: int) -> list[tuple[int, str]]:
    results: list[tuple[int, str]] = [(-1, "no output")] * n
    current, buf = None, []
    for line in output.splitlines() + ["== end"]:
        if line.startswith("== "):
            if current is not None:
                results[current[0]] = (current[1], "\n".join(buf))
            parts = line.split()
            current = (int(parts[1]), int(parts[2])) if parts[1] != "end" else None
            buf = []
        else:
            buf.append(line)
    return results


def run_on_host(runs: list[tuple[str, dict]]) -> list[tuple[int, str]]:
    env = {**os.environ}
    for i, (_, values) in enumerate(runs):
        env.update({f"R{i}_{k}": v for k, v in values.items()})
    out = subprocess.run(["bash", "-c", _script(runs)], capture_output=True, text=True, env=env, timeout=600)
    return _parse(out.stdout, len(runs))


def client_mounts(ca_dir: Path) -> dict:
    mounts = {"/usr": {"bind": "/usr", "mode": "ro"}, ROOT: {"bind": ROOT, "mode": "ro"},
              sys.base_prefix: {"bind": sys.base_prefix, "mode": "ro"}, str(ca_dir): {"bind": "/ca", "mode": "ro"}}
    if os.path.isdir("/etc/java-17-openjdk"):
        mounts["/etc/java-17-openjdk"] = {"bind": "/etc/java-17-openjdk", "mode": "ro"}
    return mounts


def run_in_container(engine: Engine, network: str, ca_dir: Path, runs: list[tuple[str, dict]],
                     extra_hosts: dict | None = None) -> list[tuple[int, str]]:
    env = {"HOME": "/tmp", "PATH": "/usr/local/bin:/usr/bin:/bin"}
    for i, (_, values) in enumerate(runs):
        env.update({f"R{i}_{k}": v for k, v in values.items()})
    ctr = engine.client.containers.run(
        CLIENT_IMAGE, ["-c", _script(runs)], entrypoint="bash", environment=env, network=network,
        volumes=client_mounts(ca_dir), extra_hosts=extra_hosts or {}, detach=True,
        labels={"bulkhead.test": engine.run_id},
    )  # fmt: skip
    try:
        ctr.wait(timeout=600)
        return _parse(ctr.logs(stdout=True, stderr=False).decode(errors="replace"), len(runs))
    finally:
        ctr.remove(force=True, v=True)


# ------------------------------------------------------------------ the stack


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    eng = Engine(run_id=f"bulkhead-test-{STACK}")
    eng.teardown()
    try:
        yield eng
    finally:
        eng.teardown()


@pytest.fixture(scope="module")
def stack(engine: Engine, tmp_path_factory):
    config = clients_config()
    holder = {}

    def run():
        result = run_program(ROOT, STACK, config)
        if result.error is not None:
            raise result.error
        holder["run"] = result
        return result

    plan: list[Planned] = plan_resources(run)
    outputs = exports_plain(holder["run"].exports)
    workdir = tmp_path_factory.mktemp("clients")
    path = workdir / "outputs.json"
    path.write_text(json.dumps(outputs))
    containers = engine.apply(plan)
    return {"plan": plan, "outputs": outputs, "path": path, "dir": workdir, "containers": containers,
            "run": holder["run"]}


def env_lines(stack, service: str, *args: str, ca_dir: Path) -> dict:
    """What `python -m bulkhead env` prints for the stack's outputs, read by python-dotenv."""
    out = subprocess.run([PY, "-m", "bulkhead", "env", "--outputs", str(stack["path"]), "--service", service,
                          "--ca-dir", str(ca_dir), *args], capture_output=True, text=True, cwd=ROOT, check=True)
    return dict(dotenv_values(stream=io.StringIO(out.stdout)))


def client_env(stack, database: str, form: str, internal: bool, ca_dir: Path) -> dict:
    db = stack["outputs"]["databases"][database]
    args = ["--driver", form] + (["--internal", "--ca-mount", "/ca"] if internal else [])
    lines = env_lines(stack, db["owner"], *args, ca_dir=ca_dir)
    env = {"URL": lines[db["env_var"]]}
    if "PGSSLROOTCERT" in lines:
        env["PGSSLROOTCERT"] = lines["PGSSLROOTCERT"]
    return env


def _report(request, title: str, rows: list[str]) -> None:
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\n{title}\n  " + "\n  ".join(rows))


# ------------------------------------------------------------------ the matrix


@pytest.mark.parametrize("where", ["host", "container"])
def test_every_form_connects_verified_as_the_owner(engine: Engine, stack, where, request) -> None:
    ca_dir = stack["dir"] / f"ca-{where}"
    runs, labels = [], []
    for database in (OWN, SHARED):
        for form in FORMS:
            env = client_env(stack, database, form, where == "container", ca_dir)
            assert "verify-full" in env["URL"], (form, "the server is verified")
            runs.append((form, env))
            labels.append((database, form))
    if where == "host":
        results = run_on_host(runs)
    else:
        networks = {d: stack["outputs"]["databases"][d]["network"] for d in (OWN, SHARED)}
        results = []
        for database in (OWN, SHARED):
            idx = [i for i, (d, _) in enumerate(labels) if d == database]
            results += run_in_container(engine, networks[database], ca_dir, [runs[i] for i in idx])
    rows = []
    for (database, form), (rc, out) in zip(labels, results, strict=True):
        rows.append(f"{where:9} {database:8} {form:19} rc={rc} {out.splitlines()[0] if out else ''}")
    _report(request, f"client matrix ({where})", rows)
    for (database, form), (rc, out) in zip(labels, results, strict=True):
        assert rc == 0, f"{form} -> {database} from the {where}: {out}"
        first = out.splitlines()[0].split()
        if form == "libpq":
            first = ["OK", *first]
        assert first[1] == database and first[2] in ("t", "true"), (form, database, out)


# ------------------------------------------------------------------ the relay


def _relay_cert(directory: Path, alias: str) -> None:
    """The attacker's own certificate, naming the server's alias (it has no key of bulkhead's CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, alias)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(alias), x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "relay.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "relay.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    (directory / "relay.key").chmod(0o644)


def _unauthenticated(form: str, env: dict) -> dict:
    """The same form with the server authentication removed: encrypted, nothing verified or bound
    (libpq binds by default when the server offers SCRAM-SHA-256-PLUS, so binding is switched off)."""
    url = env["URL"]
    for part in ("&channel_binding=require", "channel_binding=require&"):
        url = url.replace(part, "")
    if form in ("libpq", "psycopg", "sqlalchemy+psycopg"):
        url += "&channel_binding=disable"
    import re

    url = re.sub(r"[?&]sslrootcert=[^&]*", "", url).replace("?&", "?")
    if "?" not in url and "&" in url:
        url = url.replace("&", "?", 1)
    mode = "no-verify" if form == "node" else "require"
    url = url.replace("sslmode=verify-full", f"sslmode={mode}").replace("ssl=verify-full", "ssl=require")
    return {"URL": url}


def _relay_events(ctr) -> list[dict]:
    out = []
    for line in ctr.logs(stdout=True, stderr=False).decode(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


@pytest.mark.parametrize("mode", ["relay", "cleartext"])
def test_a_tenant_claiming_the_servers_alias_is_refused_by_every_form(engine: Engine, stack, mode, request) -> None:
    outputs = stack["outputs"]["databases"]
    victim = outputs[SHARED]
    network, alias = victim["network"], victim["internal_host"]
    server = engine.client.containers.get(f"bulkhead-{STACK}-server-shared")
    server.reload()
    server_ip = server.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    relay_dir = stack["dir"] / f"relay-{mode}"
    _relay_cert(relay_dir, alias)
    api = engine.client.api
    binds = {src: spec for src, spec in client_mounts(relay_dir).items()}
    created = api.create_container(
        CLIENT_IMAGE, [f"{ROOT}/tests/support/pg_relay.py", "--upstream", f"{server_ip}:5432",
                       "--cert", "/ca/relay.crt", "--key", "/ca/relay.key", "--mode", mode],
        entrypoint=[PY], environment={"HOME": "/tmp"}, labels={"bulkhead.test": engine.run_id},
        name=f"bulkhead-{STACK}-attacker-{mode}",
        host_config=api.create_host_config(binds=binds, network_mode=network),
        # ...claiming the server's alias on the victim's network, as a tenant's own container can
        networking_config=api.create_networking_config({network: api.create_endpoint_config(aliases=[alias])}),
    )  # fmt: skip
    attacker = engine.client.containers.get(created["Id"])
    attacker.start()
    try:
        attacker.reload()
        attacker_ip = attacker.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        for _ in range(50):
            if any(e["event"] == "listening" for e in _relay_events(attacker)):
                break
            time.sleep(0.2)
        ca_dir = stack["dir"] / f"ca-relay-{mode}"
        rows, failures = [], []
        for verified in (True, False):
            for form in FORMS:
                env = client_env(stack, SHARED, form, True, ca_dir)
                if not verified:
                    env = _unauthenticated(form, env)
                before = len(_relay_events(attacker))
                (rc, out), = run_in_container(engine, network, ca_dir, [(form, env)], extra_hosts={alias: attacker_ip})
                events = [e["event"] for e in _relay_events(attacker)[before:]]
                leaked = [e for e in events if e in ("auth", "query", "password")]
                ran_sql = "query" in events and rc == 0
                rows.append(f"{'verified' if verified else 'no-auth ':8} {form:19} rc={rc} relay saw {events} "
                            f"{out.splitlines()[0] if out else ''}")
                if verified and (rc == 0 or leaked):
                    failures.append(f"{form}: relayed ({events}): {out}")
                if not verified:
                    # the attack works once server authentication is gone: the test can fail
                    wanted = "password" if mode == "cleartext" else "query"
                    if wanted not in events and not (mode == "relay" and ran_sql):
                        failures.append(f"{form} without server authentication: the {mode} got no {wanted} ({events})")
        _report(request, f"relay ({mode}) on {network} as {alias}", rows)
        assert not failures, "\n".join(failures)
    finally:
        attacker.remove(force=True)


# ------------------------------------------------------------------ .env loaders and compose

COMPOSE = """\
services:
  api:
    image: {image}
    env_file: .env
    volumes:
      - ./ca:/ca:ro
    networks: [db]
    entrypoint: ["bash", "-c", "printf 'URL=%s\\\\n' \\"$$AUTH_DATABASE_URL\\"; psql \\"$$AUTH_DATABASE_URL\\" -XAtc 'select current_user'"]
networks:
  db:
    external: true
    name: {network}
"""


def test_dotenv_reads_the_same_in_every_loader_and_the_compose_example_connects(engine: Engine, stack) -> None:
    """`.env` (default format) for compose env_file, python-dotenv and `set -a; . ./.env`;
    `--format docker` for `docker run --env-file`: every loader sees the same values, and a compose
    service on the database's external network connects with them (Debian's docker-compose)."""
    db = stack["outputs"]["databases"][OWN]
    work = stack["dir"] / "compose"
    work.mkdir()
    base = [PY, "-m", "bulkhead", "env", "--outputs", str(stack["path"]), "--service", db["owner"], "--internal",
            "--ca-dir", str(work / "ca"), "--ca-mount", "/ca"]
    (work / ".env").write_text(subprocess.run(base, capture_output=True, text=True, cwd=ROOT, check=True).stdout)
    (work / "docker.env").write_text(subprocess.run(base + ["--format", "docker"], capture_output=True, text=True,
                                                    cwd=ROOT, check=True).stdout)
    want = dict(dotenv_values(work / ".env"))
    assert set(want) == {"AUTH_DATABASE_URL", "DATABASE_URL"} and "verify-full" in want["AUTH_DATABASE_URL"]
    # the shell
    shell = subprocess.run(["bash", "-c", "set -a; . ./.env; printf '%s\\n' \"$AUTH_DATABASE_URL\" \"$DATABASE_URL\""],
                           cwd=work, capture_output=True, text=True, check=True).stdout.splitlines()
    assert shell == [want["AUTH_DATABASE_URL"], want["DATABASE_URL"]]
    # docker run --env-file: the docker format reads the same; the quoted file keeps its quotes (why it exists)
    for name, expect_same in (("docker.env", True), (".env", False)):
        out = subprocess.run(["docker", "run", "--rm", "--network", "none", "--env-file", name, "--entrypoint", "env",
                              CLIENT_IMAGE], cwd=work, capture_output=True, text=True, check=True).stdout
        seen = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        assert (seen.get("AUTH_DATABASE_URL") == want["AUTH_DATABASE_URL"]) is expect_same, (name, seen.get("AUTH_DATABASE_URL", "")[:20])
    # docker-compose: env_file + the database's external network + the CA mounted
    (work / "docker-compose.yml").write_text(COMPOSE.format(image=CLIENT_IMAGE, network=db["network"]))
    project = f"{STACK}compose"
    try:
        out = subprocess.run(["docker-compose", "-p", project, "run", "--rm", "-T", "api"], cwd=work,
                             capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run(["docker-compose", "-p", project, "down", "--remove-orphans"], cwd=work, capture_output=True)
    lines = out.stdout.splitlines()
    assert f"URL={want['AUTH_DATABASE_URL']}" in lines, (out.returncode, out.stderr[-500:])
    assert lines[-1] == OWN, (out.returncode, out.stderr[-500:])


# ------------------------------------------------------------------ dsn and psql verify the server too


def _bulkhead(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "bulkhead", *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, **(env or {})})


def _psql(dsn: str, sql: str = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"):
    return subprocess.run(["psql", "-XAtq", "-F", " ", "-d", dsn, "-c", sql], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})


@pytest.mark.parametrize("database", [OWN, SHARED])
def test_dsn_then_psql_connect_verified_as_the_owner(engine: Engine, stack, database, tmp_path) -> None:
    """The journey: `dsn` prints a verify-full URI with the database's own CA; psql connects with it as
    the owner, over TLS; `bulkhead psql` (the same DSN) too."""
    ca_env = {"BULKHEAD_CA_DIR": str(tmp_path / "ca")}
    out = _bulkhead("dsn", "--outputs", str(stack["path"]), "--database", database, env=ca_env)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    dsn = out.stdout.strip()
    assert "sslmode=verify-full" in dsn and "channel_binding=require" in dsn and f"sslrootcert={tmp_path}" in dsn
    got = _psql(dsn)
    assert got.returncode == 0 and got.stdout.split() == [database, "t"], got.stderr
    verb = _bulkhead("psql", "--outputs", str(stack["path"]), "--database", database, "--", "-XAtqc",
                     "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", env=ca_env)
    assert verb.returncode == 0 and verb.stdout.split() == [database, "true"], verb.stderr


def test_dsn_and_psql_refuse_a_relay_on_the_databases_address(engine: Engine, stack, tmp_path, request) -> None:
    """Whoever holds the address `dsn` names (here a relay on the host, with a certificate of its own for
    127.0.0.1, passing bytes to the real server) gets nothing from `dsn` | psql nor from `bulkhead psql`;
    with the server authentication removed (sslmode=require, no CA, no channel binding: the URL the
    outputs held before, minus binding) the relay runs the session."""
    db = stack["outputs"]["databases"][SHARED]
    relay_dir = tmp_path / "relay"
    _relay_cert(relay_dir, db["internal_host"])
    port = free_port()
    relay = subprocess.Popen([PY, f"{ROOT}/tests/support/pg_relay.py", "--upstream", f"127.0.0.1:{db['port']}",
                              "--cert", str(relay_dir / "relay.crt"), "--key", str(relay_dir / "relay.key"),
                              "--mode", "relay", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    # the outputs as the relay would have them answered: the database's port is the relay's
    moved = copy.deepcopy(stack["outputs"])
    moved["databases"][SHARED]["port"] = port
    moved["databases"][SHARED]["url"] = db["url"].replace(f":{db['port']}/", f":{port}/")
    moved_path = tmp_path / "outputs-relayed.json"
    moved_path.write_text(json.dumps(moved))
    ca_env = {"BULKHEAD_CA_DIR": str(tmp_path / "ca")}
    rows = []
    try:
        for _ in range(100):
            try:
                __import__("socket").create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        dsn = _bulkhead("dsn", "--outputs", str(moved_path), "--database", SHARED, env=ca_env).stdout.strip()
        via_dsn = _psql(dsn)
        via_verb = _bulkhead("psql", "--outputs", str(moved_path), "--database", SHARED, "--", "-XAtqc",
                             "SELECT current_user", env=ca_env)
        # the failing case: the same without server authentication
        bare = (dsn.split("?")[0] + "?sslmode=require&channel_binding=disable")
        via_bare = _psql(bare)
    finally:
        relay.terminate()
        out, _ = relay.communicate(timeout=10)
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    rows = [f"dsn|psql rc={via_dsn.returncode} {via_dsn.stderr.strip()[:90]}",
            f"bulkhead psql rc={via_verb.returncode} {via_verb.stderr.strip()[-90:]}",
            f"no-auth psql rc={via_bare.returncode} {via_bare.stdout.strip()}", f"relay saw {events}"]
    _report(request, "relay on the address dsn names", rows)
    assert via_dsn.returncode != 0 and "certificate verify failed" in via_dsn.stderr, via_dsn.stderr
    assert via_verb.returncode != 0 and "certificate verify failed" in via_verb.stderr, via_verb.stderr
    # the only session the relay saw through is the unauthenticated one
    assert via_bare.returncode == 0 and via_bare.stdout.split() == [SHARED, "t"], via_bare.stderr
    assert events.count("tls") == 1 and events.count("query") >= 1, events


# ------------------------------------------------------------------ examples/service on the engine


def test_the_example_services_container_connects_verified(engine: Engine, stack) -> None:
    """examples/service planned against this stack's outputs (its StackReference), its container
    created on the engine as the provider would (envs, its CA uploads, its database's network only),
    running psql on `DATABASE_URL` instead of the service's image: verify-full, as the owner."""
    from bulkhead.offline.mock_runtime import run_program as run_example

    project = "bulkhead-example-service"
    ref = "acme/bulkhead/dev"
    service = stack["outputs"]["databases"][OWN]["owner"]
    config = {f"{project}:databaseStack": ref, f"{project}:service": service, f"{project}:platform": "docker",
              f"{project}:image": "postgres:15"}
    stack_run = stack["run"]
    plan = plan_resources(lambda: run_example(os.path.join(ROOT, "examples", "service"), "dev", config, project=project,
                                              stack_references={ref: stack_run.exports}))
    [res] = [r for r in plan if r.type == "docker:index/container:Container"]
    assert "sslmode=verify-full" in "".join(res.inputs["envs"])
    inputs = {k: v for k, v in res.inputs.items() if k != "restart"}  # runs once, not a service
    inputs["name"] = f"bulkhead-{STACK}-example-service"
    inputs["entrypoints"] = ["bash", "-c"]
    inputs["command"] = ['psql "$DATABASE_URL" -XAtq -F " " -c '
                         '"SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"']
    ctr = engine.create_container(type(res)(res.name, res.type, inputs, res.outputs), {"postgres:15": "postgres:15"},
                                  wait=False)
    try:
        status = ctr.wait(timeout=120)
        logs = ctr.logs().decode(errors="replace")
    finally:
        ctr.remove(force=True)
    assert status["StatusCode"] == 0 and logs.split() == [OWN, "t"], logs
