"""The dev stack (docs/contract.md sections 4-6) under Pulumi's mock runtime.

Every check is against real values of Pulumi.dev.yaml: one container per own
database plus the `shared` server, ports on 127.0.0.1, labels, limits, flags,
secrets, outputs, and that editing one database never touches another's resources.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Callable

import pytest

from bulkhead.offline.mock_runtime import SECRET_ENVELOPE, ProgramRun, RecordedResource, Secret, fake_password, run_program
from components.dev.container import (
    ADMIN_USER, HBA_PATH, HEALTH_SCRIPT_PATH, IDENT_PATH, START_SCRIPT_PATH, TLS_CERT, TLS_CERT_UPLOAD, TLS_KEY,
    TLS_KEY_UPLOAD, secret_file,
)
from tests.support.program import ROOT, run_stack

from policies.bulkhead_types import CONTAINER, NETWORK, VOLUME
from policies.bulkhead_types import RANDOM_ID as SALT
from policies.bulkhead_types import RANDOM_PASSWORD as PASSWORD
from policies.bulkhead_types import REMOTE_IMAGE as IMAGE
COMPONENT = "bulkhead:index:DockerPostgres"
DATA_PATH = "/var/lib/postgresql/data"

# What Pulumi.dev.yaml declares, container by container (component name -> expectations).
EXPECTED = {
    "auth": dict(databases={"auth": "auth-service"}, port=5433, memory=512, cpus="1.0", engine="16",
                 tiers="critical", parameters={"log_connections": "on"}),
    "app": dict(databases={"app": "app-service"}, port=5434, memory=1024, cpus="2.0", engine="16",
                tiers="standard", parameters={"max_connections": "200", "work_mem": "4MB"}),
    "worker": dict(databases={"worker": "worker-service"}, port=5435, memory=512, cpus="1.0", engine="17",
                   tiers="standard", parameters={}),
    "server-shared": dict(databases={"billing": "billing-service", "notify": "notify-service"}, port=5440, memory=768,
                          cpus="1.0", engine="16", tiers="standard", parameters={"log_min_duration_statement": "500ms"}),
}
COMPONENTS = sorted(EXPECTED)
DB_COMPONENT = {db: comp for comp, exp in EXPECTED.items() for db in exp["databases"]}

# docs/contract.md section 5: keys every docker database output has; and the extras this implementation adds.
OUTPUT_KEYS = {"owner", "platform", "host", "port", "db_name", "username", "sslmode", "env_var", "tier", "reader_hosts",
               "password", "url", "network", "internal_host"}
EXTRA_OUTPUT_KEYS = {"internal_port", "internal_url", "server", "container", "ca_cert"}
SECRET_OUTPUT_KEYS = {"password", "url", "internal_url"}
# ServerTls and its children: CA key, CA certificate, server key, request, server certificate.
TLS_KINDS = ["bulkhead:index:ServerTls", "tls:index/privateKey:PrivateKey", "tls:index/selfSignedCert:SelfSignedCert",
             "tls:index/privateKey:PrivateKey", "tls:index/certRequest:CertRequest",
             "tls:index/locallySignedCert:LocallySignedCert"]


# ------------------------------------------------------------------ helpers


def component_of(run: ProgramRun, r: RecordedResource) -> str:
    """Name of the DockerPostgres a resource belongs to ('' for none)."""
    comps = {c.urn: c.name for c in run.resources if c.type == COMPONENT}
    parents = {c.urn: c.parent for c in run.resources}
    if r.type == COMPONENT:
        return r.name
    parent = r.parent
    while parent and parent not in comps:  # e.g. the TLS resources under its ServerTls
        parent = parents.get(parent)
    return comps.get(parent, "")


def children(run: ProgramRun, comp: str, typ: str | None = None) -> list[RecordedResource]:
    return [r for r in run.resources if r.type != COMPONENT and component_of(run, r) == comp and (typ is None or r.type == typ)]


def one(run: ProgramRun, comp: str, typ: str) -> RecordedResource:
    found = children(run, comp, typ)
    assert len(found) == 1, f"{comp}: expected one {typ}, got {[r.name for r in found]}"
    return found[0]


def labels(r: RecordedResource) -> dict[str, str]:
    items = r.inputs["labels"]
    got = {item["label"]: item["value"] for item in items}
    assert len(got) == len(items), f"{r.name}: duplicate label keys {items}"
    return got


def flag_pairs(command: list[str]) -> list[str]:
    """`postgres -c a=b -c c=d` -> ['a=b', 'c=d'], asserting the shape."""
    assert command[0] == "postgres"
    rest = command[1:]
    assert len(rest) % 2 == 0, command
    assert rest[0::2] == ["-c"] * (len(rest) // 2), command
    return rest[1::2]


def password_seed(stack: str, resource_name: str) -> str:
    return f"{stack}/{PASSWORD}/{resource_name}"


def by_urn_inputs(run: ProgramRun, exclude_components: set[str]) -> dict[str, dict]:
    return {r.urn: r.inputs for r in run.resources if component_of(run, r) not in exclude_components}


# ------------------------------------------------------------------ resources per container


def test_expected_table_matches_the_stack_file(dev_run):
    comps = sorted(r.name for r in dev_run.resources if r.type == COMPONENT)
    assert comps == COMPONENTS
    assert sorted(dev_run.exports["databases"]) == sorted(DB_COMPONENT)


def test_expected_table_is_the_catalogue():
    from bulkhead.offline.stack_config import load_catalogue_for
    from components.dev.forms import cpus_string

    cat = load_catalogue_for(ROOT, "dev")
    derived = {}
    for name, db in cat.databases.items():
        if db.server is None:
            derived[name] = dict(databases={name: db.owner}, port=db.port, memory=db.memory_mb, cpus=cpus_string(db.cpus),
                                 engine=db.engine_version, tiers=db.tier, parameters=dict(db.parameters))
    for name, server in cat.servers.items():
        dbs = cat.databases_on(name)
        derived[f"server-{name}"] = dict(
            databases={n: d.owner for n, d in dbs.items()}, port=server.port, memory=server.memory_mb,
            cpus=cpus_string(server.cpus), engine=server.engine_version,
            tiers=",".join(sorted({d.tier for d in dbs.values()})), parameters=dict(server.parameters))
    assert derived == EXPECTED


@pytest.mark.parametrize("comp", COMPONENTS)
def test_one_container_volume_network_image_per_component(dev_run, comp):
    exp = EXPECTED[comp]
    kinds = sorted(r.type for r in children(dev_run, comp))
    n_passwords = 1 + len(exp["databases"])  # admin + one per role
    # the container's own CA and key pair (tests/program/test_server_tls.py)
    # a shared server: a network per tenant database (test_shared_server_has_a_network_per_tenant)
    networks = [NETWORK] * (len(exp["databases"]) if comp.startswith("server-") else 1)
    # and a random SCRAM salt per password, kept in the state (container.secret_content)
    assert kinds == sorted([CONTAINER, VOLUME, *networks, IMAGE, *TLS_KINDS] + [PASSWORD, SALT] * n_passwords)
    names = sorted(r.name for r in children(dev_run, comp, PASSWORD))
    assert names == sorted([f"{comp}-admin-password"] + [f"{comp}-role-{db}-password" for db in exp["databases"]])
    salts = children(dev_run, comp, SALT)
    assert sorted(r.name for r in salts) == [n.replace("-password", "-scram-salt") for n in names]
    assert all(r.inputs == {"byteLength": 16} for r in salts)
    for pw in children(dev_run, comp, PASSWORD):
        assert pw.inputs == {"length": 32, "special": False}
        assert pw.outputs["result"] == SECRET_ENVELOPE
        assert pw.outputs["bcryptHash"] == SECRET_ENVELOPE


def test_no_custom_resource_outside_a_database_component(dev_run):
    assert all(component_of(dev_run, r) for r in dev_run.resources if r.custom)
    assert sum(1 for r in dev_run.resources if r.type == CONTAINER) == len(EXPECTED)


def test_passwords_are_distinct_and_used_by_one_container_only(dev_run):
    users: dict[str, list[str]] = {}
    for ctr in dev_run.by_type(CONTAINER):
        comp = component_of(dev_run, ctr)
        env_deps = ctr.property_dependencies["uploads"]  # the password files
        assert ctr.property_dependencies.get("envs", []) == []
        own = {r.urn for r in children(dev_run, comp, PASSWORD)} | {r.urn for r in children(dev_run, comp, SALT)}
        # and its own TLS key and certificate (test_server_tls.py)
        own |= {r.urn for r in children(dev_run, comp) if r.name in (f"{comp}-tls-key", f"{comp}-tls-cert")}
        assert set(env_deps) == own, f"{comp}: uploads depend on {env_deps}"
        assert len(env_deps) == len(set(env_deps)) == 2 * (1 + len(EXPECTED[comp]["databases"])) + 2
        for urn in env_deps:
            users.setdefault(urn, []).append(comp)
    assert all(len(v) == 1 for v in users.values()), users
    # and the generated values themselves differ: 4 admins + 5 roles
    plain = {fake_password(password_seed("dev", r.name)) for r in dev_run.by_type(PASSWORD)}
    assert len(plain) == len(dev_run.by_type(PASSWORD)) == 4 + 5
    assert plain <= dev_run.secret_values


@pytest.mark.parametrize("comp", COMPONENTS)
def test_ports_loopback_only(dev_run, comp):
    ctr = one(dev_run, comp, CONTAINER)
    assert ctr.inputs["ports"] == [{"internal": 5432, "external": EXPECTED[comp]["port"], "ip": "127.0.0.1", "protocol": "tcp"}]


def test_published_ports_are_unique(dev_run):
    ports = [p["external"] for c in dev_run.by_type(CONTAINER) for p in c.inputs["ports"]]
    assert sorted(ports) == [5433, 5434, 5435, 5440]


@pytest.mark.parametrize("comp", COMPONENTS)
@pytest.mark.parametrize("typ", [CONTAINER, VOLUME, NETWORK])
def test_labels_exact(dev_run, comp, typ):
    exp = EXPECTED[comp]
    for res in children(dev_run, comp, typ):  # a shared server's tenant networks carry the server's labels
        assert labels(res) == labels(one(dev_run, comp, CONTAINER))
    assert labels(children(dev_run, comp, typ)[0]) == {
        "bulkhead:database": ",".join(sorted(exp["databases"])),
        "bulkhead:owner": ",".join(sorted(exp["databases"].values())),
        "bulkhead:stack": "dev",
        "bulkhead:tier": exp["tiers"],
    }


def test_shared_server_labels_are_sorted_lists(dev_run):
    got = labels(one(dev_run, "server-shared", CONTAINER))
    assert got["bulkhead:database"] == "billing,notify"
    assert got["bulkhead:owner"] == "billing-service,notify-service"


@pytest.mark.parametrize("comp", COMPONENTS)
def test_limits_healthcheck_and_image(dev_run, comp):
    exp = EXPECTED[comp]
    ctr = one(dev_run, comp, CONTAINER)
    assert ctr.inputs["memory"] == exp["memory"]
    assert ctr.inputs["memorySwap"] == exp["memory"]
    assert ctr.inputs["cpus"] == exp["cpus"]
    assert ctr.inputs["name"] == f"bulkhead-dev-{comp}"
    assert ctr.inputs["restart"] == "unless-stopped"
    hc = ctr.inputs["healthcheck"]
    # no connection to the server (nothing in its log every few seconds): the wrapper's status
    # and postmaster.pid; durations in the form the provider reads back (Go Duration.String)
    assert hc["tests"] == ["CMD", "/bin/bash", HEALTH_SCRIPT_PATH]
    assert (hc["interval"], hc["timeout"], hc["startPeriod"]) == ("3s", "5s", "1m0s")
    assert ctr.inputs["destroyGraceSeconds"] == 60 and ctr.inputs["stopTimeout"] == 60
    assert hc["retries"] == 10
    image = one(dev_run, comp, IMAGE)
    assert image.inputs["name"] == f"postgres:{exp['engine']}-bookworm"
    assert "latest" not in image.inputs["name"]
    assert image.inputs["keepLocally"] is True


@pytest.mark.parametrize("comp", COMPONENTS)
def test_command_flags(dev_run, comp):
    exp = EXPECTED[comp]
    ctr = one(dev_run, comp, CONTAINER)
    flags = flag_pairs(ctr.inputs["command"])
    assert flags == [
        "ssl=on",
        f"ssl_cert_file={TLS_CERT}",
        f"ssl_key_file={TLS_KEY}",
        f"hba_file={HBA_PATH}",
        f"ident_file={IDENT_PATH}",
        "password_encryption=scram-sha-256",
        *[f"{k}={v}" for k, v in sorted(exp["parameters"].items())],
    ]
    # the hba and ident files the flags name are uploaded, and so is the start wrapper (the
    # entrypoint, which runs the init on every start); nothing goes to initdb.d any more
    uploads = {u["file"]: u for u in ctr.inputs["uploads"]}
    secrets = {secret_file("admin"), *(secret_file(db) for db in exp["databases"])}
    secrets.add(TLS_KEY_UPLOAD)  # the server's own key (test_server_tls.py)
    assert set(uploads) == {HBA_PATH, IDENT_PATH, START_SCRIPT_PATH, HEALTH_SCRIPT_PATH, TLS_CERT_UPLOAD, *secrets}
    assert uploads[START_SCRIPT_PATH]["executable"] is True
    for path in secrets:  # a password file each, root-only, its content a secret
        assert uploads[path]["permissions"] == "0400" and uploads[path]["content"] == SECRET_ENVELOPE
    assert ctr.inputs["entrypoints"] == ["/bin/bash", START_SCRIPT_PATH]
    hba = uploads[HBA_PATH]["content"]
    for db in exp["databases"]:
        assert f'hostssl "{db}" "{db}" 0.0.0.0/0 scram-sha-256' in hba
    # the admin has no network line (issue 22): the socket only
    assert [line for line in hba.splitlines() if ADMIN_USER in line and not line.startswith("#")] == [
        f'local all "{ADMIN_USER}" peer map=bulkhead'
    ]
    assert ctr.inputs["logDriver"] == "json-file"
    assert ctr.inputs["logOpts"] == {"max-size": "10m", "max-file": "3", "compress": "false"}
    assert hba.rstrip().endswith("host all all all reject")
    for db in exp["databases"]:  # the socket, like TCP: each role to its own database only
        assert f'local "{db}" "{db}" scram-sha-256' in hba
    assert "local all all reject" in hba and "local all all scram" not in hba


def _set(key: str, value: Any) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        config[key] = value

    return edit


@pytest.mark.parametrize(
    "edit, retain, protect",
    [
        pytest.param(None, True, False, id="defaults"),
        pytest.param(_set("bulkhead:keep_volumes", False), False, False, id="keep_volumes-false"),
        pytest.param(_set("bulkhead:keep_volumes", True), True, False, id="keep_volumes-true"),
        pytest.param(_set("bulkhead:protect", True), True, True, id="protect-true"),
    ],
)
def test_volume_retention_and_protect(dev_run, edit, retain, protect):
    run = dev_run if edit is None else run_stack("dev", edit=edit)
    volumes = run.by_type(VOLUME)
    assert len(volumes) == 4
    for vol in volumes:
        assert vol.retain_on_delete is retain, vol.name
        assert vol.protect is protect, vol.name
        # Labels are replace-on-change in the Docker provider: never a reason to recreate the data.
        assert "labels" in vol.ignore_changes, vol.name
    for net in run.by_type(NETWORK):
        assert "labels" in net.ignore_changes, net.name
    for ctr in run.by_type(CONTAINER):
        # The container holds no data and almost every setting replaces it: never protected.
        assert ctr.protect is False, ctr.name


@pytest.mark.parametrize("comp", COMPONENTS)
def test_container_attaches_only_its_own_network_and_volume(dev_run, comp):
    ctr = one(dev_run, comp, CONTAINER)
    if comp.startswith("server-"):
        return test_shared_server_has_a_network_per_tenant(dev_run)
    net = one(dev_run, comp, NETWORK)
    vol = one(dev_run, comp, VOLUME)
    assert net.inputs["name"] == f"bulkhead-dev-{comp}"
    assert net.inputs["driver"] == "bridge"
    assert vol.inputs["name"] == f"bulkhead-dev-{comp}-data"
    assert ctr.inputs["networksAdvanced"] == [{"name": net.inputs["name"], "aliases": [comp]}]
    assert ctr.inputs["volumes"] == [{"volumeName": vol.inputs["name"], "containerPath": DATA_PATH}]
    assert ctr.property_dependencies["networksAdvanced"] == [net.urn]
    assert ctr.property_dependencies["volumes"] == [vol.urn]
    assert vol.urn in ctr.dependencies


def test_networks_and_volumes_not_shared(dev_run):
    nets = [n.inputs["name"] for n in dev_run.by_type(NETWORK)]
    vols = [v.inputs["name"] for v in dev_run.by_type(VOLUME)]
    assert len(set(nets)) == len(nets) == 5  # 3 own containers, 2 tenants of the shared server
    assert len(set(vols)) == len(vols) == 4
    attached = [a["name"] for c in dev_run.by_type(CONTAINER) for a in c.inputs["networksAdvanced"]]
    assert sorted(attached) == sorted(nets)


def test_shared_server_has_a_network_per_tenant(dev_run):
    """Issue 18: tenants of a shared server share no network (a tenant's container on the server's
    network could claim its alias); the server joins each with its own alias (its certificate's name)."""
    ctr = one(dev_run, "server-shared", CONTAINER)
    nets = {n.inputs["name"]: n for n in children(dev_run, "server-shared", NETWORK)}
    assert sorted(nets) == ["bulkhead-dev-server-shared-billing", "bulkhead-dev-server-shared-notify"]
    assert ctr.inputs["networksAdvanced"] == [{"name": n, "aliases": ["server-shared"]} for n in sorted(nets)]
    assert sorted(ctr.property_dependencies["networksAdvanced"]) == sorted(n.urn for n in nets.values())
    for db in ("billing", "notify"):
        assert dev_run.exports["databases"][db]["network"] == f"bulkhead-dev-server-shared-{db}"


# ------------------------------------------------------------------ outputs


@pytest.mark.parametrize("db", sorted(DB_COMPONENT))
def test_database_output(dev_run, db):
    comp = DB_COMPONENT[db]
    exp = EXPECTED[comp]
    out = dev_run.exports["databases"][db]
    assert set(out) == OUTPUT_KEYS | EXTRA_OUTPUT_KEYS
    for key, value in out.items():
        assert isinstance(value, Secret) == (key in SECRET_OUTPUT_KEYS), key
    password = fake_password(password_seed("dev", f"{comp}-role-{db}-password"))
    admin = fake_password(password_seed("dev", f"{comp}-admin-password"))
    assert out["password"].value == password != admin
    plain = {k: (v.value if isinstance(v, Secret) else v) for k, v in out.items()}
    # the CA of this database's container (test_server_tls.py checks what it signed)
    assert plain.pop("ca_cert").startswith("-----BEGIN CERTIFICATE-----")
    assert plain == {
        "owner": exp["databases"][db],
        "platform": "docker",
        "host": "127.0.0.1",
        "port": exp["port"],
        "db_name": db,
        "username": db,
        "sslmode": "require",
        "env_var": f"{db.upper()}_DATABASE_URL",
        "tier": "critical" if db == "auth" else "standard",
        "reader_hosts": [],
        "password": password,
        "url": f"postgresql://{db}:{password}@127.0.0.1:{exp['port']}/{db}?sslmode=require&channel_binding=require",
        "network": f"bulkhead-dev-{comp}" + (f"-{db}" if comp.startswith("server-") else ""),
        "internal_host": comp,
        "internal_port": 5432,
        "internal_url": f"postgresql://{db}:{password}@{comp}:5432/{db}?sslmode=require&channel_binding=require",
        "server": "shared" if comp == "server-shared" else None,
        "container": f"bulkhead-dev-{comp}",
    }


def test_services_output(dev_run):
    services = dev_run.exports["services"]
    dbs = dev_run.exports["databases"]
    assert sorted(services) == sorted({o for e in EXPECTED.values() for o in e["databases"].values()})
    for db, comp in DB_COMPONENT.items():
        owner = EXPECTED[comp]["databases"][db]
        svc = services[owner]
        assert set(svc) == {"databases", "env"}
        assert svc["databases"] == [db]
        assert set(svc["env"]) == {f"{db.upper()}_DATABASE_URL", "DATABASE_URL"}
        for value in svc["env"].values():
            assert isinstance(value, Secret)
            assert value.value == dbs[db]["url"].value


def _add_second_app_database(config: dict) -> None:
    config["bulkhead:databases"]["reports"] = {"owner": "app-service", "port": 5436}


def test_services_owner_with_two_databases_has_no_database_url():
    run = run_stack("dev", edit=_add_second_app_database)
    svc = run.exports["services"]["app-service"]
    assert svc["databases"] == ["app", "reports"]
    assert set(svc["env"]) == {"APP_DATABASE_URL", "REPORTS_DATABASE_URL"}
    assert svc["env"]["REPORTS_DATABASE_URL"].value == run.exports["databases"]["reports"]["url"].value
    assert svc["env"]["APP_DATABASE_URL"].value == run.exports["databases"]["app"]["url"].value
    # single-database owners keep DATABASE_URL
    assert set(run.exports["services"]["auth-service"]["env"]) == {"AUTH_DATABASE_URL", "DATABASE_URL"}


# ------------------------------------------------------------------ secrets


def test_container_envs_hold_no_password(dev_run):
    for ctr in dev_run.by_type(CONTAINER):
        assert not any("PASSWORD" in item for item in ctr.inputs["envs"]), ctr.inputs["envs"]
        assert "envs" not in ctr.secret_outputs


def test_no_secret_in_plaintext_anywhere(dev_run, dev_export):
    passwords = {fake_password(password_seed("dev", r.name)) for r in dev_run.by_type(PASSWORD)}
    assert passwords <= dev_run.secret_values
    # the URLs and env lines are recorded as secret values too
    assert any(s.startswith("postgresql://") for s in dev_run.secret_values)
    text = json.dumps(dev_export)
    leaked = [s for s in dev_run.secret_values if s in text]
    assert not leaked, f"{len(leaked)} secret value(s) in plaintext in the export"
    raw = json.dumps([[r.inputs, r.outputs] for r in dev_run.resources])
    assert not [s for s in dev_run.secret_values if s in raw]


def test_cli_plan_writes_no_secret(tmp_path, dev_run, dev_export):
    out = tmp_path / "plan-dev.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bulkhead", "plan", "--stack", "dev", "--out", str(out)],
        cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "BULKHEAD_PROJECT_DIR"},
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    written = out.read_text()
    plan = json.loads(written)
    # the subprocess planned the same thing as the in-process run whose secrets we know
    # (registration order may differ between runs: compare by URN)
    assert {r["urn"]: r.get("inputs") for r in plan["deployment"]["resources"]} == {
        r["urn"]: r.get("inputs") for r in json.loads(json.dumps(dev_export))["deployment"]["resources"]
    }
    passwords = {fake_password(password_seed("dev", r.name)) for r in dev_run.by_type(PASSWORD)}
    assert len(passwords) == 9
    for blob in (written, proc.stdout, proc.stderr):
        assert not [s for s in dev_run.secret_values | passwords if s in blob]
    assert "stack dev: 5 databases" in proc.stdout


# ------------------------------------------------------------------ replacement guard


def _edit_add_database(config: dict) -> None:
    config["bulkhead:databases"]["search"] = {"owner": "search-service", "port": 5436}


def _edit_parameters(config: dict) -> None:
    config["bulkhead:databases"]["app"]["parameters"]["work_mem"] = "16MB"
    config["bulkhead:databases"]["app"]["parameters"]["statement_timeout"] = "30s"


def _edit_memory(config: dict) -> None:
    config["bulkhead:databases"]["worker"]["memory_mb"] = 2048


def _edit_port(config: dict) -> None:
    config["bulkhead:databases"]["auth"]["port"] = 5450


def _edit_engine(config: dict) -> None:
    config["bulkhead:databases"]["worker"]["engine_version"] = "16"


def _edit_add_to_shared(config: dict) -> None:
    config["bulkhead:databases"]["audit"] = {"owner": "audit-service", "server": "shared"}


def _edit_remove_database(config: dict) -> None:
    del config["bulkhead:databases"]["worker"]


@pytest.fixture(scope="module")
def baseline() -> ProgramRun:
    # a fresh run of the unchanged stack, so that both sides come from the same code path
    return run_stack("dev")


@pytest.mark.parametrize(
    "edit, touched",
    [
        pytest.param(_edit_add_database, {"search"}, id="add-database"),
        pytest.param(_edit_parameters, {"app"}, id="change-parameters"),
        pytest.param(_edit_memory, {"worker"}, id="change-memory"),
        pytest.param(_edit_port, {"auth"}, id="change-port"),
        pytest.param(_edit_engine, {"worker"}, id="change-engine"),
        pytest.param(_edit_add_to_shared, {"server-shared"}, id="add-to-shared-server"),
        pytest.param(_edit_remove_database, {"worker"}, id="remove-database"),
    ],
)
def test_edit_leaves_other_databases_untouched(baseline, edit, touched):
    after = run_stack("dev", edit=edit)
    before_map = by_urn_inputs(baseline, touched)
    after_map = by_urn_inputs(after, touched)
    assert sorted(before_map) == sorted(after_map), "resources of other databases were added, removed or renamed"
    changed = [urn for urn in before_map if before_map[urn] != after_map[urn]]
    assert changed == [], f"edit changed inputs of other databases' resources: {changed}"
    # ...and the edit really did something to the touched component
    touched_before = {r.urn: r.inputs for r in baseline.resources if component_of(baseline, r) in touched}
    touched_after = {r.urn: r.inputs for r in after.resources if component_of(after, r) in touched}
    assert touched_before != touched_after
    # the other containers' passwords are unchanged too (deterministic per resource)
    for db in sorted(baseline.exports["databases"]):
        if DB_COMPONENT.get(db) not in touched and db in after.exports["databases"]:
            assert after.exports["databases"][db]["url"].value == baseline.exports["databases"][db]["url"].value


# ------------------------------------------------------------------ plan export shape

RESOURCE_KEYS = {"urn", "type", "custom", "id", "inputs", "outputs", "parent", "dependencies", "propertyDependencies",
                 "protect", "retainOnDelete"}


def test_plan_export_shape(dev_export):
    assert dev_export["version"] == 3
    resources = dev_export["deployment"]["resources"]
    stack = [r for r in resources if r["type"] == "pulumi:pulumi:Stack"]
    assert len(stack) == 1 and resources[0] is stack[0]
    assert stack[0]["urn"] == "urn:pulumi:dev::bulkhead::pulumi:pulumi:Stack::bulkhead-dev"
    assert stack[0]["custom"] is False
    assert set(stack[0]["outputs"]) == {"databases", "services", "stack", "project"}
    assert (stack[0]["outputs"]["stack"], stack[0]["outputs"]["project"]) == ("dev", "bulkhead")
    urns = [r["urn"] for r in resources]
    assert len(urns) == len(set(urns)), "duplicate URNs"
    for r in resources[1:]:
        missing = RESOURCE_KEYS - set(r)
        assert not missing, f"{r['urn']} lacks {sorted(missing)}"
        assert r["urn"].startswith("urn:pulumi:dev::bulkhead::") and r["urn"].endswith("::" + r["urn"].rsplit("::", 1)[1])
        assert isinstance(r["custom"], bool) and isinstance(r["protect"], bool) and isinstance(r["retainOnDelete"], bool)
        if r["custom"]:
            assert isinstance(r["id"], str) and r["id"], r["urn"]
        else:
            assert r["id"] == ""
        assert isinstance(r["dependencies"], list)
        assert isinstance(r["propertyDependencies"], dict)
    # stack, 4 components, 4 x (image, network, volume, container), 4 admin + 5 role passwords,
    # 4 x ServerTls and its 5 resources, a second tenant network of the shared server, a SCRAM salt per password
    assert len(resources) == 1 + 4 + 4 * 4 + 9 + 4 * 6 + 1 + 9


def test_plan_references_resolve(dev_export):
    resources = dev_export["deployment"]["resources"]
    by_urn = {r["urn"]: r for r in resources}
    for r in resources[1:]:
        refs = [r["parent"], *r["dependencies"], *[u for us in r["propertyDependencies"].values() for u in us]]
        missing = [u for u in refs if u not in by_urn]
        assert not missing, f"{r['urn']} references unknown {missing}"
        assert set(u for us in r["propertyDependencies"].values() for u in us) <= set(r["dependencies"])
    containers = [r for r in resources if r["type"] == CONTAINER]
    assert len(containers) == 4
    for ctr in containers:
        deps = ctr["propertyDependencies"]
        (image,) = [by_urn[u] for u in deps["image"]]
        assert image["type"] == IMAGE
        assert ctr["inputs"]["image"] == image["outputs"]["imageId"]
        assert image["outputs"]["imageId"].startswith("sha256:")
        nets = [by_urn[u] for u in deps["networksAdvanced"]]  # several: a shared server's tenant networks
        assert all(n["type"] == NETWORK for n in nets)
        assert sorted(a["name"] for a in ctr["inputs"]["networksAdvanced"]) == sorted(n["outputs"]["name"] for n in nets)
        net = nets[0]
        (vol,) = [by_urn[u] for u in deps["volumes"]]
        assert vol["type"] == VOLUME
        assert ctr["inputs"]["volumes"][0]["volumeName"] == vol["outputs"]["name"] == vol["id"]
        assert ctr["parent"] == image["parent"] == net["parent"] == vol["parent"]
        assert by_urn[ctr["parent"]]["type"] == COMPONENT


def test_stack_outputs_in_export_are_envelopes(dev_export):
    stack = dev_export["deployment"]["resources"][0]
    for name, out in stack["outputs"]["databases"].items():
        for key in SECRET_OUTPUT_KEYS:
            assert out[key] == SECRET_ENVELOPE, (name, key)
        assert out["network"] == f"bulkhead-dev-{DB_COMPONENT[name]}" + ("" if out["server"] is None else f"-{name}")
    for owner, svc in stack["outputs"]["services"].items():
        assert all(v == SECRET_ENVELOPE for v in svc["env"].values()), owner


@pytest.mark.parametrize("on_server", [False, True], ids=["own-container", "shared-server"])
def test_database_named_admin_gets_its_own_password(on_server):
    """A database called `admin` must not collide with the server's admin password."""

    def edit(cfg):
        spec = {"owner": "admin-service", **({"server": "shared"} if on_server else {"port": 5499})}
        cfg["bulkhead:databases"]["admin"] = spec

    run = run_stack("dev", edit=edit)
    comp = "server-shared" if on_server else "admin"
    names = sorted(r.name for r in run.by_type(PASSWORD) if r.name.startswith(f"{comp}-"))
    assert f"{comp}-admin-password" in names and f"{comp}-role-admin-password" in names
    assert len({r.urn for r in run.resources}) == len(run.resources), "every URN is unique"


def test_duplicate_urn_is_an_error_as_in_the_engine(tmp_path):
    program = tmp_path / "__main__.py"
    program.write_text(
        "import pulumi_random as random\n"
        "random.RandomPassword('same', length=8)\n"
        "random.RandomPassword('same', length=8)\n"
    )
    run = run_program(str(tmp_path), "dev", {})
    assert run.error is not None and "Duplicate resource URN" in str(run.error)


def test_admin_tcp_off_by_default_no_admin_output(dev_run):
    """bulkhead:admin_tcp unset: no `admin` output, and no pg_hba line lets the admin in over the network."""
    assert "admin" not in dev_run.exports
    for ctr in dev_run.by_type(CONTAINER):
        hba = {u["file"]: u for u in ctr.inputs["uploads"]}[HBA_PATH]["content"]
        assert "samenet" not in hba
        assert not [line for line in hba.splitlines() if line.startswith("host") and ADMIN_USER in line]


def test_admin_tcp_true_admits_the_admin_from_the_containers_networks_and_exports_its_url():
    run = run_stack("dev", edit=_set("bulkhead:admin_tcp", True))
    admin = run.exports["admin"]
    containers = run.by_type(CONTAINER)
    assert sorted(admin) == sorted(c.inputs["name"] for c in containers)
    for ctr in containers:
        hba = {u["file"]: u for u in ctr.inputs["uploads"]}[HBA_PATH]["content"].splitlines()
        admin_lines = [line for line in hba if line.startswith("host") and ADMIN_USER in line]
        assert admin_lines == [f'hostssl all "{ADMIN_USER}" samenet scram-sha-256']
        # before the catch-all rejects (first match wins)
        assert hba.index(admin_lines[0]) < hba.index("hostssl all all all reject")
        out = admin[ctr.inputs["name"]]
        port = ctr.inputs["ports"][0]["external"]
        assert (out["host"], out["port"], out["username"], out["sslmode"]) == ("127.0.0.1", port, ADMIN_USER, "require")
        assert isinstance(out["password"], Secret) and isinstance(out["url"], Secret)
        assert out["url"].value.startswith(f"postgresql://{ADMIN_USER}:") and f"@127.0.0.1:{port}/postgres?" in out["url"].value
    # the admin's URL is never in a tenant's outputs
    for db in run.exports["databases"].values():
        assert ADMIN_USER not in json.dumps({k: v for k, v in db.items() if not isinstance(v, Secret)})


def test_admin_tcp_warns_and_refuses_a_non_bool():
    from components.catalogue.model import ADMIN_TCP_WARNING, CatalogueError, load_catalogue
    from tests.support.program import stack_config

    raw = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("bulkhead:")}
    raw = {k: json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for k, v in raw.items()}
    cat = load_catalogue({**raw, "admin_tcp": True}, "dev")
    assert cat.admin_tcp is True
    assert [str(w) for w in cat.warnings if w.path == "bulkhead:admin_tcp"] == [
        f"bulkhead:admin_tcp: {ADMIN_TCP_WARNING}"]
    assert load_catalogue(raw, "dev").admin_tcp is False
    assert not [w for w in load_catalogue(raw, "dev").warnings if w.path == "bulkhead:admin_tcp"]
    with pytest.raises(CatalogueError) as exc:
        load_catalogue({**raw, "admin_tcp": "yes"}, "dev")
    assert "bulkhead:admin_tcp: 'yes' is not true or false" in str(exc.value)
