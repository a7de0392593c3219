"""Issue 21, sections 4 and 5: every mistake a team made that bulkhead took silently (4) or refused
with a misleading message (5), as a stack file through the same pipeline as `plan` and `check`
(bulkhead/offline/stack_config.py load_catalogue_for), with its verdict and message asserted.

`before` records what bulkhead said before issue 21 (silent / the misleading message)."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from bulkhead.commands.plan import host_port_findings
from bulkhead.errors import UserError
from bulkhead.offline.stack_config import load_catalogue_for
from components.catalogue.checks import rds_memory_gib

PROJECT = "name: bulkhead\nruntime: python\n"
DEV_APP = """
config:
  bulkhead:platform: docker
  bulkhead:databases:
    app:
      owner: app-service
      port: 5433
"""
PROD_APP = """
config:
  aws:region: eu-west-1
  bulkhead:platform: aws
  bulkhead:dr_region: eu-central-1
  bulkhead:alerts: {emails: [dba@example.com]}
  bulkhead:databases:
    app:
      owner: app-service
"""


def dev(extra_db: str = "", extra: str = "") -> str:
    return DEV_APP + textwrap.indent(textwrap.dedent(extra_db), " " * 6) + extra


def prod(extra_db: str = "", extra: str = "", dr: bool = True) -> str:
    text = PROD_APP if dr else PROD_APP.replace("  bulkhead:dr_region: eu-central-1\n", "")
    return text + textwrap.indent(textwrap.dedent(extra_db), " " * 6) + extra


# (id, stack, stack file, other stack files, verdict, key path, message, before)
CASES = [
    # ---- section 4: silently accepted ----
    ("statement-timeout-30", "dev", dev("statement_timeout: 30\n"), {}, "warning",
     "bulkhead:databases.app.statement_timeout",
     "30 has no unit, so PostgreSQL reads it as 30 ms (statement_timeout is in milliseconds); write the unit you "
     "mean, e.g. '30s' if you meant seconds, or '30ms' to keep this value", "silent"),
    ("temp-file-limit-2048", "dev", dev("temp_file_limit: 2048\n"), {}, "warning",
     "bulkhead:databases.app.temp_file_limit",
     "2048 has no unit, so PostgreSQL reads it as 2048 x kB = 2MB (temp_file_limit is in kilobytes); write the unit "
     "you mean, e.g. '2048MB' if you meant megabytes, or '2048kB' to keep this value", "silent"),
    ("prod-shared-buffers-256", "prod", prod("instance_class: db.r6g.large\nparameters: {shared_buffers: \"256\"}\n"),
     {}, "warning", "bulkhead:databases.app.parameters.shared_buffers",
     "256 has no unit, so PostgreSQL reads it as 256 x 8kB = 2MB (shared_buffers is in 8kB pages); write the unit "
     "you mean, e.g. '256MB' to keep this value", "silent"),
    ("critical-without-dr-region", "prod", prod("tier: critical\n", dr=False), {}, "warning", "bulkhead:dr_region",
     "is not set, but tier critical copies its backups to a DR region by default (copy_to_dr) (databases app): no "
     "copy would be made. Set bulkhead:dr_region to a region other than aws:region, e.g. eu-central-1, or set "
     "copy_to_dr: false under bulkhead:backup_tiers.critical to go without", "silent"),
    ("copy-to-dr-without-dr-region", "prod",
     prod("tier: gold\n", "  bulkhead:backup_tiers:\n    gold: {schedule: 'cron(0 * * * ? *)', retention_days: 30, "
                          "pitr_days: 7, copy_to_dr: true}\n", dr=False), {}, "error", "bulkhead:dr_region",
     "is not set, but bulkhead:backup_tiers.gold.copy_to_dr is true (databases app): no copy would be made", "silent"),
    ("misspelt-namespace-dr-region", "prod", prod("", "  bulkhaed:dr_region: eu-central-1\n", dr=False), {}, "error",
     "Pulumi.prod.yaml: bulkhaed:dr_region",
     "namespace 'bulkhaed' is not bulkhead, so the program ignores this key; write bulkhead:dr_region", "silent"),
    ("dev-port-of-another-stack", "dev", dev(), {"alice-dev": dev()}, "warning", "bulkhead:databases.app.port",
     "port 5433 is also bulkhead:databases.app.port of stack alice-dev (Pulumi.alice-dev.yaml); Docker cannot "
     "publish it twice, so the two stacks cannot run on one machine: choose another port", "silent"),
    ("env-var-path", "dev", dev("env_var: PATH\n"), {}, "error", "bulkhead:databases.app.env_var",
     "PATH is a variable the service's process or shell depends on (or that libpq reads); a database URL there "
     "breaks it. Use a name of its own, e.g. APP_DATABASE_URL", "silent"),
    ("env-var-of-another-database", "dev",
     dev("", "    worker:\n      owner: worker-service\n      port: 5434\n      env_var: APP_DATABASE_URL\n"), {},
     "warning", "bulkhead:databases.worker.env_var",
     "APP_DATABASE_URL is the default variable of bulkhead:databases.app, but it holds worker's URL; a reader takes "
     "it for app's database: use WORKER_DATABASE_URL (this database's default) or another name of its own", "silent"),
    ("password-in-parameter-value", "dev", dev("parameters: {application_name: 'postgres://u:hunter2@db/x'}\n"), {},
     "error", "bulkhead:databases.app.parameters.application_name",
     "the value of application_name holds a URL with a password (user:password@); parameters go on the server's "
     "command line", "silent"),
    ("shared-buffers-8gb-on-micro", "prod",
     prod("instance_class: db.t4g.micro\nmulti_az: false\nparameters: {shared_buffers: 8GB}\n"), {}, "error",
     "bulkhead:databases.app.parameters.shared_buffers",
     "8GB is not below the 1 GiB of memory of db.t4g.micro (AWS: https://docs.aws.amazon.com/AmazonRDS/latest/"
     "UserGuide/Concepts.DBInstanceClass.html#Concepts.DBInstanceClass.Summary); RDS would not start the instance",
     "silent"),
    ("aws-max-connections-below-limit", "prod", prod("connection_limit: 100\nparameters: {max_connections: 50}\n"), {},
     "error", "bulkhead:databases.app.parameters.max_connections",
     "max_connections 50 is below the connection_limit of its databases (app 100) plus 0 reserved slots = 100; "
     "raise max_connections to at least 100 or lower connection_limit", "silent (an error on docker only)"),
    ("mixed-case-prod-on-docker", "Shop-Prod", dev(), {}, "warning", "bulkhead:platform",
     "stack Shop-Prod is named like a production stack ('prod', case aside) but runs on docker", "silent"),
    ("prd-on-docker", "kanban-prd", dev(), {}, "warning", "bulkhead:platform",
     "stack kanban-prd is named like a production stack ('prd', case aside) but runs on docker", "silent"),
    ("alias-as-whole-map", "dev",
     dev("parameters: &tuning {work_mem: 1MB}\n",
         "    worker:\n      owner: worker-service\n      port: 5434\n      parameters: *tuning\n"), {}, "warning",
     "Pulumi.dev.yaml",
     "line 12: `parameters` is the map of line 8 itself (an alias), not a copy with changes: nothing is merged. If "
     "you meant to start from it and change keys, write `parameters: {<<: *anchor, key: value}` (a merge key)",
     "silent"),
    # ---- section 5: refused with a misleading message ----
    ("quoted-port", "dev", DEV_APP.replace("port: 5433", 'port: "5505"'), {}, "error", "bulkhead:databases.app.port",
     'is the string "5505" (in quotes), not a number; write it without quotes: port: 5505',
     "'5505' is not a whole number"),
    ("postgres-password-parameter", "dev", dev("parameters: {POSTGRES_PASSWORD: hunter2}\n"), {}, "error",
     "bulkhead:databases.app.parameters.POSTGRES_PASSWORD",
     "POSTGRES_PASSWORD looks like a password, and parameters are PostgreSQL settings: they go on the server's "
     "command line (shown by `docker inspect` and `ps`) and into the plan, never as a secret. bulkhead makes every "
     "password itself (the admin's and each role's, random, Pulumi secrets); remove POSTGRES_PASSWORD",
     "'POSTGRES_PASSWORD' is not a PostgreSQL setting name ...; write postgres_password"),
    ("misspelt-namespace-servers", "dev",
     DEV_APP.replace("port: 5433", "server: shared") + "  bulkhaed:servers:\n    shared: {port: 5440}\n", {}, "error",
     "Pulumi.dev.yaml: bulkhaed:servers",
     "namespace 'bulkhaed' is not bulkhead, so the program ignores this key; write bulkhead:servers",
     "bulkhead:databases.app.server: unknown server 'shared'"),
    ("seventy-character-name", "dev", DEV_APP.replace("    app:", "    " + "a" * 70 + ":"), {}, "error",
     "bulkhead:databases." + "a" * 70, f"'{'a' * 70}' is 70 characters; PostgreSQL names are at most 63 (longer ones are cut off); "
     "shorten it", "... not a valid database name; use lower case letters, digits and underscores ..."),
]


def _project(tmp_path: Path, stack: str, text: str, others: dict) -> str:
    (tmp_path / "Pulumi.yaml").write_text(PROJECT)
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(text)
    for name, other in others.items():
        (tmp_path / f"Pulumi.{name}.yaml").write_text(other)
    return str(tmp_path)


@pytest.mark.parametrize("case_id, stack, text, others, verdict, path, message, before", CASES, ids=[c[0] for c in CASES])
def test_each_mistake_has_its_verdict_and_message(tmp_path, case_id, stack, text, others, verdict, path, message, before):
    project = _project(tmp_path, stack, text, others)
    if verdict == "error":
        with pytest.raises(UserError) as excinfo:
            load_catalogue_for(project, stack)
        assert f"{path}: {message}" in str(excinfo.value), str(excinfo.value)
        assert "nothing was planned" in str(excinfo.value)
    else:
        catalogue = load_catalogue_for(project, stack)
        said = [str(w) for w in catalogue.warnings]
        assert any(f"{path}: {message}" in w for w in said), said


def test_a_misspelt_namespace_is_reported_before_what_it_causes(tmp_path):
    text = DEV_APP.replace("port: 5433", "server: shared") + "  bulkhaed:servers:\n    shared: {port: 5440}\n"
    with pytest.raises(UserError) as excinfo:
        load_catalogue_for(_project(tmp_path, "dev", text, {}), "dev")
    lines = str(excinfo.value).splitlines()
    assert lines[1].startswith("Pulumi.dev.yaml: bulkhaed:servers: namespace 'bulkhaed' is not bulkhead")


# ---- section 5: accepted as Pulumi accepts them ----

def test_merge_keys_are_merged_as_pulumi_merges_them(tmp_path):
    """`<<: *tuning` (go-yaml v3, which the Pulumi CLI reads stack files with, applies merge keys)."""
    text = dev("parameters: &tuning {work_mem: 4MB, random_page_cost: '1.1'}\n",
               "    worker:\n      owner: worker-service\n      port: 5434\n"
               "      parameters:\n        <<: *tuning\n        work_mem: 8MB\n")
    catalogue = load_catalogue_for(_project(tmp_path, "dev", text, {}), "dev")
    assert catalogue.databases["worker"].parameters == {"random_page_cost": "1.1", "work_mem": "8MB"}
    assert catalogue.databases["app"].parameters == {"random_page_cost": "1.1", "work_mem": "4MB"}
    assert not [w for w in catalogue.warnings if "alias" in w.message]  # a merge is not a whole-map alias


def test_a_database_named_on_is_on_as_pulumi_reads_it(tmp_path):
    """YAML 1.1 (PyYAML) reads `on:` as true; the Pulumi CLI's YAML 1.2 reads the string "on"."""
    text = DEV_APP.replace("    app:", "    on:")
    catalogue = load_catalogue_for(_project(tmp_path, "dev", text, {}), "dev")
    assert list(catalogue.databases) == ["on"] and catalogue.databases["on"].env_var == "ON_DATABASE_URL"
    # and a YAML 1.1 boolean where a boolean belongs is refused as Pulumi's program would see it: a string
    bad = DEV_APP + "  bulkhead:keep_volumes: yes\n"
    with pytest.raises(UserError, match="bulkhead:keep_volumes: 'yes' is not true or false"):
        load_catalogue_for(_project(tmp_path, "dev", bad, {}), "dev")


# ---- a port in use on this host: a `plan` warning ----

def test_a_port_in_use_on_this_host_is_a_plan_warning(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        text = DEV_APP.replace("port: 5433", f"port: {port}")
        catalogue = load_catalogue_for(_project(tmp_path, "dev", text, {}), "dev")
        findings = host_port_findings(catalogue, publisher=lambda p, s: None)
        assert findings == [("bulkhead:databases.app.port", f"port {port} is already in use on this host (another "
                             "PostgreSQL?); `up` would fail to publish it: choose another port or stop what listens there")]
        # this stack's own container (an `up` already ran): no warning; another container: named
        assert host_port_findings(catalogue, publisher=lambda p, s: True) == []
        assert "published by container bulkhead-other-app" in host_port_findings(
            catalogue, publisher=lambda p, s: "bulkhead-other-app")[0][1]
    assert host_port_findings(catalogue, publisher=lambda p, s: None) == []  # closed: free again


# ---- passing cases: the checks do not fire on what is meant ----

@pytest.mark.parametrize("stack, text", [
    ("dev", dev("statement_timeout: 30s\ntemp_file_limit: 2048MB\nparameters: {shared_buffers: 128MB}\n")),
    ("dev", dev("statement_timeout: 0\n")),
    ("prod", prod("tier: critical\ninstance_class: db.r6g.large\nparameters: {shared_buffers: 4GB, max_connections: 200}\n")),
    ("shop-dev", dev()),
    ("productive-dev", dev()),  # "prod" inside a word: no warning
])
def test_what_is_meant_passes_without_a_word(tmp_path, stack, text):
    catalogue = load_catalogue_for(_project(tmp_path, stack, text, {}), stack)
    assert [str(w) for w in catalogue.warnings] == []


def test_rds_memory_table_says_unknown_rather_than_guess(tmp_path):
    assert rds_memory_gib("db.t4g.micro") == 1 and rds_memory_gib("db.r6g.large") == 16
    assert rds_memory_gib("db.m8g.large") is None  # newer than AWS's page: unknown, not guessed
    text = prod("instance_class: db.m8g.large\nparameters: {shared_buffers: 64GB}\n")
    catalogue = load_catalogue_for(_project(tmp_path, "prod", text, {}), "prod")
    assert any("the memory of db.m8g.large is unknown to bulkhead's table" in str(w) for w in catalogue.warnings)
