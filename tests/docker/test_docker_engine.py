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

import copy
import hashlib
import secrets
import socket
import ssl
import struct
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Iterator

import psycopg
import pytest

from bulkhead.offline.mock_runtime import run_program
from components.dev.container import SECRETS_DIR, SNAKEOIL_CERT, TLS_KEY
from tests.support.program import ROOT, stack_config
from tests.support.postgres import trap_sql
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


def secrets_of(plan: list[Planned]) -> dict[str, dict[str, str]]:
    """container name -> {secret file name -> password}, from the plan's uploads."""
    out = {}
    for res in by_type(plan, CONTAINER):
        out[res.inputs["name"]] = {
            u["file"].rsplit("/", 1)[1]: u["content"] for u in res.inputs["uploads"] if u["file"].startswith(SECRETS_DIR)
        }
    return out


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
# Replacement and major change (last: they replace the shared server)
# ----------------------------------------------------------------------------------------------


def _add_ledger(config: dict) -> None:
    config["bulkhead:databases"]["ledger"] = {"owner": "ledger-service", "server": "shared"}


def _rotate(plan: list[Planned]) -> None:
    """`pulumi destroy` + `up` with the volume kept: every generated password is new."""
    for res in by_type(plan, CONTAINER):
        for upload in res.inputs["uploads"]:
            if upload["file"].startswith(SECRETS_DIR):
                upload["content"] = secrets.token_urlsafe(24)


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
    old = {r.name: r for r in by_type(source, CONTAINER)}
    for res in by_type(target, CONTAINER):
        mine = {u["file"]: u["content"] for u in old[res.name].inputs["uploads"]}
        for upload in res.inputs["uploads"]:
            if upload["file"].startswith(SECRETS_DIR) and upload["file"] in mine:
                upload["content"] = mine[upload["file"]]
