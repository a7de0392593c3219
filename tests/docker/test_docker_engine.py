"""The dev stack on a REAL Docker engine (marker `docker`; `make test` runs these on their own).

The plan of Pulumi.dev.yaml's catalogue (the mock runtime, as `bulkhead plan` makes it) is
created through the Docker Engine API by tests/support/docker_engine.py, the stand-in for the Docker
provider, with the test images of scripts/build-test-images (Debian's PostgreSQL 15 and 17,
laid out like the official postgres images; no registry). Pulumi.dev.yaml asks for 16 (the
default) and 17; there is no Debian package of 16 to build an image from, so these tests run
a COPY of its catalogue with 16 moved to 17 and the shared server on 15 (both images in
use), free host ports and the stack name `rengine`. Nothing else differs.

Proven here: the containers turn healthy with SSL on; each role reaches exactly its own
database over the published 127.0.0.1 ports, and nothing listens on another host address;
the network matrix by real packets from throwaway client containers; a tenant's planted
trap and a connection flood; a replacement with new passwords and an added database keeps
the data and shuts down cleanly; a major change on a kept volume; passwords out of the
environment; a healthcheck that logs nothing; the provider's read-back equals the plan.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import secrets
import socket
import ssl
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from bulkhead.offline.mock_runtime import run_program
from components.dev.container import SECRETS_DIR, SNAKEOIL_CERT, TLS_KEY, TLS_KEY_UPLOAD, secret_content
from tests.support.program import ROOT, stack_config
from components.dev.docker_postgres import LOG_FILES, LOG_MAX_MB_PER_FILE
from tests.support.postgres import trap_sql
from tests.support.slots import Flood
from tests.support.docker_engine import (
    CONTAINER,
    NETWORK,
    Engine,
    Planned,
    UnmappedInput,
    by_type,
    plan_images,
    plan_resources,
    read_back,
)

pytestmark = pytest.mark.docker

STACK = "rengine"
MAJOR_OF = {"auth": "17", "app": "17", "worker": "17"}  # 16 (no Debian package) -> 17
SHARED_MAJOR = "15"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_config(edit=None) -> dict:
    config = copy.deepcopy(stack_config("dev"))
    dbs = config["bulkhead:databases"]
    for name, major in MAJOR_OF.items():
        dbs[name]["engine_version"] = major
        dbs[name]["port"] = PORTS[name]
    config["bulkhead:servers"]["shared"]["engine_version"] = SHARED_MAJOR
    config["bulkhead:servers"]["shared"]["port"] = PORTS["shared"]
    # issue 22: a tenant can hold its role row across a restart only in a prepared transaction;
    # and auth records every statement, in the log and in pg_stat_statements (on the volume).
    config["bulkhead:servers"]["shared"]["parameters"]["max_prepared_transactions"] = "5"
    dbs["auth"]["parameters"].update(shared_preload_libraries="pg_stat_statements", log_statement="all")
    if edit:
        edit(config)
    return config


PORTS = {name: free_port() for name in ("auth", "app", "worker", "shared")}


def make_plan(edit=None) -> list[Planned]:
    config = engine_config(edit)

    def run():
        result = run_program(ROOT, STACK, config)
        if result.error is not None:
            raise result.error
        return result

    return plan_resources(run)


RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def _is_password_upload(file: str) -> bool:
    """A password's verifier among the secret uploads (the TLS key sits in the same directory)."""
    return file.startswith(SECRETS_DIR) and file != TLS_KEY_UPLOAD


def _salt_of(verifier: str) -> bytes:
    """The salt of a SCRAM-SHA-256 verifier `SCRAM-SHA-256$<iterations>:<salt>$<stored>:<server>`."""
    return base64.b64decode(verifier.split("$")[1].split(":")[1])


def _password_resources(plan: list[Planned], container: Planned) -> dict[str, Planned]:
    """The container's generated passwords, by the uploads they are the verifiers of."""
    prefix = container.name.removesuffix("-postgres") + "-"
    candidates = [r for r in by_type(plan, RANDOM_PASSWORD) if r.name.startswith(prefix)]
    out = {}
    for upload in container.inputs["uploads"]:
        if _is_password_upload(upload["file"]):
            salt = _salt_of(upload["content"])
            (match,) = [r for r in candidates if secret_content(r.outputs["result"], salt) == upload["content"]]
            out[upload["file"]] = match
    return out


def secrets_of(plan: list[Planned]) -> dict[str, dict[str, str]]:
    """container name -> {secret file name -> password}: the uploads hold SCRAM verifiers only, so
    each is matched to the plan's generated password it is the verifier of."""
    out = {}
    for res in by_type(plan, CONTAINER):
        out[res.inputs["name"]] = {
            file.rsplit("/", 1)[1]: pw.outputs["result"] for file, pw in _password_resources(plan, res).items()
        }
    return out


def set_password(plan: list[Planned], container: Planned, file: str, password: str) -> None:
    """What a new generated password does to the plan: the output and the upload's verifier."""
    _password_resources(plan, container)[file].outputs["result"] = password
    for upload in container.inputs["uploads"]:
        if upload["file"] == file:
            upload["content"] = secret_content(password, _salt_of(upload["content"]))


@dataclass
class Db:
    name: str
    container: str
    port: int
    password: str
    network: str
    alias: str


def databases(plan: list[Planned]) -> dict[str, Db]:
    out = {}
    pw = secrets_of(plan)
    for res in by_type(plan, CONTAINER):
        name = res.inputs["name"]
        nets = res.inputs["networksAdvanced"]
        for file, value in pw[name].items():
            if file.startswith("role-"):
                db = file[len("role-"):]
                # a shared server joins one network per tenant (named after it); an own container one
                net = next((n for n in nets if n["name"].endswith(f"-{db}")), nets[0]) if len(nets) > 1 else nets[0]
                out[db] = Db(db, name, res.inputs["ports"][0]["external"], value, net["name"], net["aliases"][0])
    return out


def connect(db: Db, dbname: str | None = None, user: str | None = None, password: str | None = None, **kw):
    params = {"sslmode": "require", "channel_binding": "require", "connect_timeout": 10, **kw}
    return psycopg.connect(
        host="127.0.0.1", port=db.port, dbname=dbname or db.name, user=user or db.name,
        password=password if password is not None else db.password, autocommit=True, **params,
    )  # fmt: skip


def refused(db: Db, **kw) -> str:
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(db, **kw).close()
    return str(excinfo.value)


@pytest.fixture(scope="module")
def engine(request) -> Iterator[Engine]:
    eng = Engine(run_id=f"bulkhead-test-{STACK}")
    eng.teardown()
    try:
        yield eng
    finally:
        eng.teardown()
        # shown in the CI log whatever the verbosity: the first start of each container
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if capture is not None and eng.first_healthy:
            times = ", ".join(f"{k.removeprefix(f'bulkhead-{STACK}-')} {v:.1f}s" for k, v in sorted(eng.first_healthy.items()))
            with capture.global_and_fixture_disabled():
                print(f"\ncreate-to-healthy (first start, initdb): {times}")


@pytest.fixture(scope="module")
def deployed(engine: Engine):
    plan = make_plan()
    containers = engine.apply(plan)
    engine.first_healthy = dict(engine.created_to_healthy)
    return plan, containers


def logs(engine: Engine, name: str) -> str:
    return engine.client.containers.get(name).logs().decode(errors="replace")


def health(engine: Engine, name: str) -> dict:
    c = engine.client.containers.get(name)
    c.reload()
    return c.attrs["State"]["Health"]


# ----------------------------------------------------------------------------------------------
# The stand-in itself
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "res, message",
    [
        (Planned("x", CONTAINER, {"name": "x", "privileged": True}, {}), "x: no mapping for privileged"),
        (Planned("n", NETWORK, {"name": "n", "internal": True}, {}), "n: no mapping for internal"),
    ],
)
def test_stand_in_refuses_inputs_it_does_not_map(engine: Engine, res: Planned, message: str) -> None:
    with pytest.raises(UnmappedInput, match=message):
        if res.type == CONTAINER:
            engine.create_container(res, {})
        else:
            engine.create_network(res)


def test_stand_in_refuses_a_major_it_has_no_image_of(engine: Engine) -> None:
    with pytest.raises(UnmappedInput, match="no test image of PostgreSQL 16"):
        engine.image_for("postgres:16-bookworm")
    assert engine.image_for("postgres:17-bookworm") == "bulkhead-test/postgres:17"


# ----------------------------------------------------------------------------------------------
# The stack
# ----------------------------------------------------------------------------------------------


def test_containers_turn_healthy_with_ssl_and_the_role_matrix_holds(engine: Engine, deployed) -> None:
    plan, containers = deployed
    dbs = databases(plan)
    assert sorted(dbs) == ["app", "auth", "billing", "notify", "worker"]
    for name in containers:
        assert health(engine, name)["Status"] == "healthy"
    for db in dbs.values():
        with connect(db) as conn:
            row = conn.execute(
                "SELECT current_user, ssl, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
                " FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
        assert row == (db.name, True, False)
        for other in dbs.values():
            if other.name == db.name:
                continue
            # another role, with its own password, at this database's port: refused
            message = refused(db, user=other.name, password=other.password)
            assert "pg_hba.conf rejects connection" in message or "password authentication failed" in message
        assert "no encryption" in refused(db, sslmode="disable", channel_binding="disable")


def test_nothing_listens_on_other_host_addresses(engine: Engine, deployed) -> None:
    plan, containers = deployed
    addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    others = [a for a in addresses if not a.startswith("127.") and ":" not in a]
    assert others, "no non-loopback host address to try"
    for name, container in containers.items():
        container.reload()
        bindings = [b for binds in container.attrs["NetworkSettings"]["Ports"].values() if binds for b in binds]
        assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings), bindings
        for address in others:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((address, int(bindings[0]["HostPort"]))) != 0, (name, address)


CLIENT_SCRIPT = r"""
for target in $TARGETS; do
  IFS=: read -r host db pw <<<"$target"
  if PGPASSWORD="$pw" PGCONNECT_TIMEOUT=3 psql "host=$host dbname=$db user=$db sslmode=require channel_binding=require" \
       -Atc 'select 1' >/dev/null 2>&1; then echo "$db yes"; else echo "$db no"; fi
done
"""


def test_network_matrix_by_real_packets(engine: Engine, deployed) -> None:
    """From a throwaway container on each database's network, every database is tried with its
    own credentials: only the databases of that network's container answer (a shared server's
    tenants each have a network of their own, which the server joins; its roles keep them apart)."""
    plan, _ = deployed
    dbs = databases(plan)
    targets = " ".join(f"{d.alias}:{d.name}:{d.password}" for d in dbs.values())
    networks = sorted({d.network for d in dbs.values()})
    image = "bulkhead-test/postgres:17"
    for network in networks:
        client = engine.client.containers.run(
            image, ["-c", CLIENT_SCRIPT], entrypoint="bash", environment={"TARGETS": targets},
            network=network, detach=True, labels={"bulkhead.test": engine.run_id},
        )  # fmt: skip
        client.wait(timeout=120)
        out = client.logs().decode()
        client.remove(v=True)  # and the image's anonymous data volume
        reached = {line.split()[0] for line in out.splitlines() if line.endswith(" yes")}
        container = next(d.container for d in dbs.values() if d.network == network)
        expected = {d.name for d in dbs.values() if d.container == container}
        assert reached == expected, (network, out)


TRAP = trap_sql("billing") + "ALTER DATABASE billing SET search_path = trap, pg_catalog, public;"


def test_shared_server_trap_and_flood(engine: Engine, deployed) -> None:
    plan, containers = deployed
    dbs = databases(plan)
    billing, notify = dbs["billing"], dbs["notify"]
    with connect(billing) as conn:
        conn.execute(TRAP)
        conn.execute("ALTER DATABASE billing SET default_transaction_read_only = on")
    server = engine.client.containers.get(billing.container)
    server.restart(timeout=60)
    engine.wait_healthy(server, 120)
    with connect(billing) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'billing'").fetchone() == (False,)
    with connect(notify) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("notify",)
    assert "init problems" not in health(engine, billing.container)["Log"][-1]["Output"]
    # One tenant at its connection limit: the other still gets in.
    limit = 20
    flood = [connect(billing) for _ in range(limit)]
    try:
        assert "too many connections for role" in refused(billing)
        with connect(notify) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        for c in flood:
            c.close()


ADMIN_QUERY = "SELECT count(*) FROM pg_roles WHERE rolname = 'nobody'"


def _admin_sql(container: str, dbname: str, sql: str) -> subprocess.CompletedProcess:
    """The README's old advice: plain `docker exec ... psql -U <admin> -d <db>` (no protections)."""
    return subprocess.run(["docker", "exec", "-i", container, "psql", "--no-psqlrc", "-U", "bulkhead_admin", "-d",
                           dbname, "-XAtc", sql], capture_output=True, text=True, timeout=60)


def _is_super(container: str, role: str) -> bool:
    out = _admin_sql(container, "postgres", f"SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname "
                                            f"OPERATOR(pg_catalog.=) '{role}'")
    return out.stdout.strip() == "t"


def test_psql_admin_in_the_container_is_not_the_tenants_tool(engine: Engine, deployed, tmp_path) -> None:
    """Issue 21: a tenant plants search_path + an operator; `bulkhead psql --admin` runs a query in the real
    container; the tenant is not superuser; after a restart the database-level setting is gone."""
    import json

    plan, _ = deployed
    billing = databases(plan)["billing"]
    with connect(billing) as conn:
        conn.execute("DROP SCHEMA IF EXISTS trap CASCADE")
        conn.execute(TRAP)
    try:
        # reproduction: the plain admin session fires the tenant's operator
        assert _admin_sql(billing.container, "billing", ADMIN_QUERY).returncode == 0
        assert _is_super(billing.container, "billing"), "the trap did not fire: the reproduction is broken"
        assert _admin_sql(billing.container, "postgres", "ALTER ROLE billing NOSUPERUSER").returncode == 0

        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps({"stack": STACK, "project": "bulkhead", "databases": {"billing": {
            "owner": "billing-service", "platform": "docker", "db_name": "billing", "username": "billing",
            "container": billing.container, "host": "127.0.0.1", "port": billing.port}}}))
        result = subprocess.run([sys.executable, "-m", "bulkhead", "psql",
                                 "--admin", "--stack", STACK, "--database", "billing", "--outputs", str(outputs), "--",
                                 "-XAtc", f"{ADMIN_QUERY}; SHOW search_path; SELECT current_user"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["0", "pg_catalog,pg_temp", "bulkhead_admin"]
        assert not _is_super(billing.container, "billing")

        setting = ("SELECT count(*) FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid "
                   "OPERATOR(pg_catalog.=) s.setdatabase WHERE d.datname OPERATOR(pg_catalog.=) 'billing'")
        assert _admin_sql(billing.container, "postgres", setting).stdout.strip() == "1"
        server = engine.client.containers.get(billing.container)
        server.restart(timeout=60)
        engine.wait_healthy(server, 120)
        assert _admin_sql(billing.container, "postgres", setting).stdout.strip() == "0"
        assert _admin_sql(billing.container, "billing", ADMIN_QUERY).returncode == 0
        assert not _is_super(billing.container, "billing")
    finally:
        _admin_sql(billing.container, "postgres", "ALTER ROLE billing NOSUPERUSER")
        _admin_sql(billing.container, "postgres", "ALTER DATABASE billing RESET ALL")


def server_certificate(port: int) -> bytes:
    """DER certificate the server presents after PostgreSQL's SSLRequest (no login)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(struct.pack("!ii", 8, 80877103))  # SSLRequest
        assert raw.recv(1) == b"S"
        with ctx.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def test_each_container_serves_a_certificate_of_its_own(engine: Engine, deployed) -> None:
    """channel_binding=require (tls-server-end-point: a hash of the server's certificate,
    RFC 5929) stops a relay only if the relay cannot present the same certificate. The
    image's snakeoil pair is the same in every container of an image and its key is in the
    public image, so each container must serve a pair made for it, key readable by the
    server's OS user only."""
    plan, containers = deployed
    dbs = databases(plan)
    by_container = {db.container: db.port for db in dbs.values()}
    fingerprints = {name: hashlib.sha256(server_certificate(port)).hexdigest() for name, port in by_container.items()}
    assert len(set(fingerprints.values())) == len(fingerprints), fingerprints
    for name in by_container:
        ctr = engine.client.containers.get(name)
        snakeoil = ctr.exec_run(["openssl", "x509", "-in", SNAKEOIL_CERT, "-outform", "DER"]).output
        assert hashlib.sha256(snakeoil).hexdigest() != fingerprints[name], name
        mode = ctr.exec_run(["stat", "-c", "%a %U", TLS_KEY]).output.decode().strip()
        assert mode == "600 postgres", (name, mode)


def test_passwords_are_out_of_the_environment(engine: Engine, deployed) -> None:
    plan, containers = deployed
    pw = secrets_of(plan)
    for name, container in containers.items():
        container.reload()
        env = container.attrs["Config"]["Env"]
        assert not any("PASSWORD" in e for e in env), env
        values = list(pw[name].values())
        pid = container.exec_run(["bash", "-c", "head -1 \"$(cat /run/bulkhead/pgdata)/postmaster.pid\""]).output.decode().strip()
        environ = container.exec_run(["cat", f"/proc/{pid}/environ"]).output.decode(errors="replace")
        assert "PASSWORD" not in environ and not any(v in environ for v in values), name
        listing = container.exec_run(["stat", "-c", "%a %U %n", SECRETS_DIR, *[f"{SECRETS_DIR}/{f}" for f in pw[name]]])
        lines = listing.output.decode().splitlines()
        assert lines[0] == f"700 root {SECRETS_DIR}" and all(l.startswith("400 root ") for l in lines[1:]), lines
        as_server_user = container.exec_run(["cat", f"{SECRETS_DIR}/admin"], user="postgres")
        assert as_server_user.exit_code != 0
        ident = container.exec_run(["cat", "/etc/bulkhead/pg_ident.conf"]).output.decode()
        assert [l.split()[1] for l in ident.splitlines() if l and not l.startswith("#")] == ['"root"']


def test_healthcheck_logs_nothing(engine: Engine, deployed) -> None:
    """auth runs with log_connections=on: probes every 3 s would show; none may."""
    plan, _ = deployed
    name = databases(plan)["auth"].container
    before = logs(engine, name).count("connection received")
    time.sleep(7)  # two probes at least
    assert logs(engine, name).count("connection received") == before
    assert len(health(engine, name)["Log"]) >= 2


def test_provider_read_back_equals_the_plan(engine: Engine, deployed) -> None:
    """A second `up` with the same config diffs nothing the provider reads back (cpus, memory,
    swap, shm, ports, restart, stop timeout, entrypoint, command, healthcheck durations)."""
    plan, containers = deployed
    for res in by_type(plan, CONTAINER):
        back = read_back(containers[res.inputs["name"]])
        planned = {k: res.inputs[k] for k in back}
        planned["healthcheck"] = {**planned["healthcheck"]}
        assert back == planned, res.inputs["name"]


# ----------------------------------------------------------------------------------------------
# Recovery, bounded logs, no secret in clear, the admin (issue 22)
# ----------------------------------------------------------------------------------------------


def wait_health(engine: Engine, name: str, status: str, timeout: float) -> float:
    """Seconds until the container's health is `status` (AssertionError with its last output if not)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        state = health(engine, name)
        if state["Status"] == status:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"{name} not {status} after {timeout}s: {state['Log'][-1:] if state['Log'] else state}")


def _shared_only(plan: list[Planned]) -> list[Planned]:
    return [r for r in plan if not (r.type == CONTAINER and r.name != "server-shared-postgres")]


def test_flood_during_a_rotation_converges_by_itself(engine: Engine, deployed) -> None:
    """A tenant holds pre-authentication slots (no password needed) while the shared server is
    replaced with rotated passwords. After the flood: the new passwords work, the old ones (the
    attacker's included) do not, health green, no manual step."""
    plan, _ = deployed
    old = databases(plan)
    new_plan = make_plan()
    _keep_passwords(plan, new_plan)
    _rotate(_shared_only(new_plan))
    new = databases(new_plan)
    flood = Flood(PORTS["shared"], "billing", "billing", n=130).start()
    try:
        container = _replace_shared_nowait(engine, plan, new_plan)
        time.sleep(20)  # the server is up and the flood has every slot it can get
        with pytest.raises(psycopg.OperationalError):
            connect(new["notify"]).close()  # the flood is real: a tenant cannot get in meanwhile
        assert flood.held >= 90, (flood.held, flood.refused_too_many)
        # and the admin over the socket neither: pre-auth connections took the superuser_reserved slots too
        admin = container.exec_run(["psql", "-X", "-At", "-U", "bulkhead_admin", "-d", "postgres", "-c", "SELECT 1"])
        print(f"\nadmin over the socket during the flood ({flood.held} held): exit {admin.exit_code},"
              f" {admin.output.decode(errors='replace').strip()}")
    finally:
        flood.stop()
    t_end = time.monotonic()
    deadline = t_end + 120
    while True:
        try:
            with connect(new["billing"]) as conn, connect(new["notify"]) as conn2:
                conn.execute("SELECT 1"), conn2.execute("SELECT 1")
            break
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, container.logs(tail=40).decode(errors="replace")
            time.sleep(0.2)
    converged = time.monotonic() - t_end
    wait_health(engine, container.name, "healthy", 120)
    green = time.monotonic() - t_end
    for db in ("billing", "notify"):
        assert "password authentication failed" in refused(new[db], password=old[db].password)
    print(f"\nflood during rotation: new passwords work {converged:.1f}s after the flood ended, healthy after {green:.1f}s")
    deployed[0][:] = new_plan


def test_a_lock_held_across_a_restart_heals_by_itself(engine: Engine, deployed) -> None:
    """A tenant holds its own role row in a prepared transaction (it survives a restart): its
    init part fails on lock_timeout, health says which part is pending and why; once the tenant
    lets go, the next retry succeeds and health turns green with no restart."""
    plan, _ = deployed
    billing = databases(plan)["billing"]
    with connect(billing) as conn:
        conn.execute("BEGIN READ WRITE")  # an earlier test left billing read-only by default
        # its own password (the one thing a tenant may change on its role): locks its pg_authid row
        conn.execute(f"ALTER ROLE billing PASSWORD '{secret_content(billing.password, os.urandom(16))}'")
        conn.execute("PREPARE TRANSACTION 'bulkhead_test_hold'")
    server = engine.client.containers.get(billing.container)
    try:
        server.restart(timeout=60)
        deadline = time.monotonic() + 120
        output = ""
        while not ("database billing" in output and "lock timeout" in output):
            assert time.monotonic() < deadline, (output, server.logs(tail=30))
            time.sleep(1)
            log = health(engine, server.name)["Log"]
            output = log[-1]["Output"] if log else ""
        assert "init pending" in output, output
        assert health(engine, server.name)["Status"] != "healthy"
    finally:
        with connect(billing) as conn:
            conn.execute("ROLLBACK PREPARED 'bulkhead_test_hold'")
    released = time.monotonic()
    wait_health(engine, server.name, "healthy", 120)
    print(f"\nlock released: healthy after {time.monotonic() - released:.1f}s")
    assert "init complete after" in server.logs(tail=20).decode(errors="replace")


def _log_bytes(container: Any) -> int:
    container.reload()
    path = container.attrs["LogPath"]
    base = path.rsplit("/", 1)[0]
    return sum(f.stat().st_size for f in Path(base).glob(path.rsplit("/", 1)[1] + "*"))


def test_logs_stay_bounded_after_large_failing_statements(engine: Engine, deployed) -> None:
    """Each failing statement is logged whole (log_min_error_statement = error): 6 x 10 MB would
    be 60 MB of json log; max-size x max-file bounds it."""
    plan, containers = deployed
    worker = databases(plan)["worker"]
    container = containers[worker.container]
    big = "x" * (10 * 1024 * 1024)
    with connect(worker) as conn:
        for _ in range(6):
            with pytest.raises(psycopg.Error):
                conn.execute(f"SELECT '{big}'::int")
    time.sleep(1)
    bound = LOG_MAX_MB_PER_FILE * LOG_FILES * 1024 * 1024
    size = _log_bytes(container)
    print(f"\nworker's json log after 6 x 10 MB failing statements: {size / 1048576:.1f} MB (bound {bound / 1048576:.0f} MB)")
    assert size <= bound + 2 * 1024 * 1024, size


def test_no_password_in_clear_with_every_statement_recorded(engine: Engine, deployed) -> None:
    """auth preloads pg_stat_statements and logs every statement. After a restart (the init runs
    again): no password of the container in any view, the log, or any file on its data volume."""
    plan, containers = deployed
    auth = databases(plan)["auth"]
    container = engine.client.containers.get(auth.container)
    container.restart(timeout=60)
    wait_health(engine, container.name, "healthy", 120)
    passwords = list(secrets_of(plan)[container.name].values())
    with connect(auth) as conn:
        conn.execute("SELECT 1")  # a statement of its own, so the view has rows
    psql = ["psql", "-X", "-At", "-U", "bulkhead_admin", "-d", "postgres", "-c"]
    views = container.exec_run([*psql, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
                                " SELECT query FROM pg_stat_statements; SELECT query FROM pg_stat_activity;"
                                " SELECT rolname, rolpassword FROM pg_authid; SELECT * FROM pg_db_role_setting;"])
    assert views.exit_code == 0 and "ALTER ROLE" not in views.output.decode(errors="replace"), views.output
    container.stop(timeout=60)  # pg_stat_statements writes its file at shutdown
    container.start()
    wait_health(engine, container.name, "healthy", 120)
    again = container.exec_run([*psql, "SELECT query FROM pg_stat_statements"])
    assert again.exit_code == 0 and again.output.strip(), again.output  # statements are recorded (kept across restarts)
    log = container.logs().decode(errors="replace")
    assert "statement: " in log  # log_statement = all is on
    grep = container.exec_run(["bash", "-c", 'for p in "$@"; do grep -rlaF -- "$p" /var/lib/postgresql/data /run/bulkhead'
                                             ' /etc/bulkhead && echo "FOUND"; done; true', "grep", *passwords])
    for pw in passwords:
        assert pw not in views.output.decode(errors="replace") and pw not in again.output.decode(errors="replace")
        assert pw not in log
    assert b"FOUND" not in grep.output, grep.output


def test_the_admin_is_refused_over_tcp_with_its_right_password(engine: Engine, deployed) -> None:
    plan, _ = deployed
    pw = secrets_of(plan)
    for db in databases(plan).values():
        message = refused(db, user="bulkhead_admin", password=pw[db.container]["admin"])
        assert "pg_hba.conf rejects connection" in message, message
        message = refused(db, dbname="postgres", user="bulkhead_admin", password=pw[db.container]["admin"])
        assert "pg_hba.conf rejects connection" in message, message


def test_a_shared_tenant_cannot_read_the_others_locks_and_counters(engine: Engine, deployed) -> None:
    """Issue 22 item 5 on the real image (the attacks before/after on bare servers of 13, 15 and 17:
    tests/postgres/test_tenant_metadata.py): a tenant of the shared server is refused the other
    databases' locks, counters and the cluster's size; an own container revokes nothing."""
    plan, _ = deployed
    dbs = databases(plan)
    with connect(dbs["billing"]) as holder, connect(dbs["notify"]) as other:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(7)")
        for sql in ("SELECT count(*) FROM pg_locks", "SELECT count(*) FROM pg_stat_database",
                    "SELECT pg_tablespace_size('pg_default')", "SELECT count(*) FROM pg_prepared_xacts"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                other.execute(sql)
        # its own session's TLS, as clients check it, still reads
        assert other.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        holder.execute("ROLLBACK")
    with connect(dbs["auth"]) as own:
        assert own.execute("SELECT count(*) FROM pg_locks").fetchone()[0] >= 1


def test_admin_tcp_admits_the_admin_through_the_published_port(engine: Engine, deployed) -> None:
    """bulkhead:admin_tcp: true on the real engine: the shared server replaced with it admits the admin
    (superuser, TLS) through 127.0.0.1:<port>; replaced back without it, refused again."""
    plan, _ = deployed
    pw = secrets_of(plan)
    shared = databases(plan)["billing"]

    def admin_tcp(config: dict) -> None:
        config["bulkhead:admin_tcp"] = True

    with_tcp = make_plan(admin_tcp)
    _keep_passwords(plan, with_tcp)
    _replace_shared(engine, plan, with_tcp)
    try:
        with connect(shared, dbname="postgres", user="bulkhead_admin", password=pw[shared.container]["admin"]) as conn:
            assert conn.execute("SELECT rolsuper, ssl FROM pg_roles, pg_stat_ssl WHERE rolname = current_user"
                                " AND pid = pg_backend_pid()").fetchone() == (True, True)
        message = refused(shared, dbname="postgres", user="bulkhead_admin", password=pw[shared.container]["admin"],
                          sslmode="disable", channel_binding="disable")
        assert "pg_hba.conf rejects connection" in message, message
        # Review of issue 22: each tenant's service containers, on their own tenant network, with the
        # admin's right password: refused by pg_hba (with `samenet` they were admitted; start.sh now
        # narrows the line to the published port's gateway).
        dbs = databases(plan)
        for tenant in sorted((d for d in dbs.values() if d.container == shared.container), key=lambda d: d.name):
            probe = engine.client.containers.run(
                "bulkhead-test/postgres:17", ["-c", 'PGPASSWORD="$PW" PGCONNECT_TIMEOUT=5 psql "host=$HOST dbname=postgres'
                                             ' user=bulkhead_admin sslmode=require" -Atc "select 1" 2>&1; true'],
                entrypoint="bash", environment={"PW": pw[shared.container]["admin"], "HOST": tenant.alias},
                network=tenant.network, detach=True, labels={"bulkhead.test": engine.run_id},
            )  # fmt: skip
            probe.wait(timeout=60)
            out = probe.logs().decode(errors="replace")
            probe.remove(v=True)
            assert "pg_hba.conf rejects connection" in out, (tenant.network, out)
    finally:
        _replace_shared(engine, with_tcp, plan)
    message = refused(shared, dbname="postgres", user="bulkhead_admin", password=pw[shared.container]["admin"])
    assert "pg_hba.conf rejects connection" in message, message


# ----------------------------------------------------------------------------------------------
# Replacement and major change (last: they replace the shared server)
# ----------------------------------------------------------------------------------------------


def _add_ledger(config: dict) -> None:
    config["bulkhead:databases"]["ledger"] = {"owner": "ledger-service", "server": "shared"}


def _rotate(plan: list[Planned]) -> None:
    """`pulumi destroy` + `up` with the volume kept: every generated password is new."""
    for res in by_type(plan, CONTAINER):
        for upload in list(res.inputs["uploads"]):
            if _is_password_upload(upload["file"]):
                set_password(plan, res, upload["file"], secrets.token_urlsafe(24))


def _replace_shared(engine: Engine, old: list[Planned], new: list[Planned]) -> Any:
    images = plan_images(new)
    (old_res,) = [r for r in by_type(old, CONTAINER) if r.name == "server-shared-postgres"]
    (new_res,) = [r for r in by_type(new, CONTAINER) if r.name == "server-shared-postgres"]
    engine.delete_container(old_res)  # DeleteBeforeReplace: stop with the grace, then remove
    existing = {n.name for n in engine.client.networks.list()}
    for res in by_type(new, NETWORK):  # a database added to the server comes with its own network
        if res.inputs["name"] not in existing:
            engine.create_network(res)
    return engine.create_container(new_res, images)


def _replace_shared_nowait(engine: Engine, old: list[Planned], new: list[Planned]) -> Any:
    images = plan_images(new)
    (old_res,) = [r for r in by_type(old, CONTAINER) if r.name == "server-shared-postgres"]
    (new_res,) = [r for r in by_type(new, CONTAINER) if r.name == "server-shared-postgres"]
    engine.delete_container(old_res)
    return engine.create_container(new_res, images, wait=False)


def test_replacement_keeps_data_and_shuts_down_cleanly(engine: Engine, deployed) -> None:
    plan, _ = deployed
    old = databases(plan)
    with connect(old["billing"]) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('written before the replacement')")
    new_plan = make_plan(_add_ledger)
    _rotate(new_plan)
    container = _replace_shared(engine, plan, new_plan)
    new = databases(new_plan)
    with connect(new["billing"]) as conn:
        assert conn.execute("SELECT note FROM kept").fetchall() == [("written before the replacement",)]
    with connect(new["ledger"]) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("ledger",)
    assert "password authentication failed" in refused(new["billing"], password=old["billing"].password)
    log = container.logs().decode(errors="replace")
    assert "not properly shut down" not in log and "automatic recovery" not in log, log
    assert "database system was shut down at" in log
    deployed[0][:] = new_plan  # the module's plan is now this one


def test_major_change_on_a_kept_volume_keeps_the_old_cluster(engine: Engine, deployed) -> None:
    """15 -> 17 on the shared server's volume: a new, empty 17 cluster next to the untouched 15
    one (said in the log and the health output); back to 15, the data is there."""
    plan = deployed[0]
    before = databases(plan)
    to_17 = make_plan(lambda c: (_add_ledger(c), c["bulkhead:servers"]["shared"].update(engine_version="17")))
    _keep_passwords(plan, to_17)
    container = _replace_shared(engine, plan, to_17)
    note = "kept, untouched: PostgreSQL 15 data"
    assert note in container.logs().decode(errors="replace")
    assert note in health(engine, container.name)["Log"][-1]["Output"]
    with connect(before["billing"]) as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("17")
        assert conn.execute("SELECT to_regclass('public.kept')").fetchone() == (None,)
    back = make_plan(_add_ledger)
    _keep_passwords(plan, back)
    container = _replace_shared(engine, to_17, back)
    with connect(before["billing"]) as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("15")
        assert conn.execute("SELECT note FROM kept").fetchall() == [("written before the replacement",)]


def _keep_passwords(source: list[Planned], target: list[Planned]) -> None:
    old = {r.inputs["name"]: r for r in by_type(source, CONTAINER)}
    kept = secrets_of(source)
    for res in by_type(target, CONTAINER):
        mine = kept[res.inputs["name"]] if res.inputs["name"] in old else {}
        for upload in list(res.inputs["uploads"]):
            name = upload["file"].rsplit("/", 1)[1]
            if _is_password_upload(upload["file"]) and name in mine:
                set_password(target, res, upload["file"], mine[name])
