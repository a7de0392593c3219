"""Catalogue `parameters`, versions, stack names and pack agreement, checked as the server and the pack do.

The bad cases are table-driven (key path + the fix); the validator's verdict on a value is
compared with the real servers' own (`postgres -C name -c name=value`, every generated major),
and every setting in Pulumi.dev.yaml and in docs/configuration.md's examples is given to every server.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkhead.cli import main
from components.catalogue import pack_agreement
from components.catalogue import parameters as pg_parameters
from components.catalogue import settings as pg_settings
from components.catalogue.model import CatalogueError, load_catalogue
from tools import generate_pg_settings as gen
from tests.support.program import ROOT

REGION = "eu-west-1"


def docker_db(parameters: dict, **keys: Any) -> dict:
    return {"platform": "docker", "databases": {"app": {"owner": "app-service", "port": 5433,
                                                        "parameters": parameters, **keys}}}


def aws_db(parameters: dict, **keys: Any) -> dict:
    return {"platform": "aws", "databases": {"app": {"owner": "app-service", "parameters": parameters, **keys}}}


def problems_of(raw: dict, stack: str = "test") -> list:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(raw, stack, region=REGION)
    return info.value.problems


P = "bulkhead:databases.app.parameters"
BAD_PARAMETERS = [
    # (id, raw catalogue, key path, fragment of the message that names the fix)
    ("typo-shared-buffer", docker_db({"shared_buffer": "256MB"}), f"{P}.shared_buffer", "did you mean shared_buffers?"),
    ("typo-shared-buffer-aws", aws_db({"shared_buffer": "32768"}), f"{P}.shared_buffer", "did you mean shared_buffers?"),
    ("lowercase-unit", docker_db({"work_mem": "4mb"}), f"{P}.work_mem", "write 4MB (units are case-sensitive)"),
    ("lowercase-unit-aws", aws_db({"work_mem": "4mb"}), f"{P}.work_mem", "write 4MB (units are case-sensitive)"),
    ("kb-lower-k", docker_db({"maintenance_work_mem": "64KB"}), f"{P}.maintenance_work_mem", "write 64kB"),
    ("unknown-unit", docker_db({"work_mem": "4 megs"}), f"{P}.work_mem",
     "write a number of kB, or a number with one of the units B, kB, MB, GB, TB"),
    ("time-unit-on-memory", docker_db({"work_mem": "4s"}), f"{P}.work_mem", "one of the units B, kB, MB, GB, TB"),
    ("memory-unit-on-time", docker_db({"statement_timeout": "4MB"}), f"{P}.statement_timeout",
     "one of the units us, ms, s, min, h, d"),
    ("time-unit-case", docker_db({"statement_timeout": "30S"}), f"{P}.statement_timeout", "write 30s"),
    ("unit-on-unitless", docker_db({"max_connections": "100MB"}), f"{P}.max_connections",
     "is not a plain number (this setting has no unit)"),
    ("bogus-name", docker_db({"bogus_param": "1"}), f"{P}.bogus_param", "check its spelling or remove it"),
    ("bogus-name-aws", aws_db({"bogus_param": "1"}), f"{P}.bogus_param", "is not a setting of PostgreSQL 16"),
    ("name-from-newer-major", docker_db({"io_combine_limit": "16"}, engine_version="16"), f"{P}.io_combine_limit",
     "is not a setting of PostgreSQL 16"),
    ("name-removed-in-17", docker_db({"old_snapshot_threshold": "-1"}, engine_version="17"),
     f"{P}.old_snapshot_threshold", "is not a setting of PostgreSQL 17"),
    ("name-upper-case", docker_db({"Work_Mem": "4MB"}), f"{P}.Work_Mem", "write work_mem"),
    ("not-a-number", docker_db({"max_connections": "lots"}), f"{P}.max_connections", "is not a number"),
    ("octal-trap-08", docker_db({"max_connections": "08"}), f"{P}.max_connections", "is not a plain number"),
    ("below-min", docker_db({"work_mem": "32kB"}), f"{P}.work_mem", "is outside the range PostgreSQL allows for work_mem (64 .. 2147483647 kB)"),
    ("above-max", docker_db({"max_connections": "300000"}), f"{P}.max_connections", "(1 .. 262143)"),
    ("above-max-aws", aws_db({"max_connections": "300000"}), f"{P}.max_connections", "(1 .. 262143)"),
    ("real-above-max", docker_db({"vacuum_cost_delay": "200"}), f"{P}.vacuum_cost_delay", "(0 .. 100 ms)"),
    ("negative-cost", docker_db({"random_page_cost": "-1"}), f"{P}.random_page_cost", "is outside the range"),
    ("nan", docker_db({"random_page_cost": "nan"}), f"{P}.random_page_cost", "is not a number"),
    ("bool-maybe", docker_db({"enable_seqscan": "maybe"}), f"{P}.enable_seqscan", "is not a boolean; use on or off"),
    ("bool-ambiguous-o", docker_db({"enable_seqscan": "o"}), f"{P}.enable_seqscan", "is not a boolean"),
    ("bool-trailing-space", docker_db({"enable_seqscan": "on "}), f"{P}.enable_seqscan", "is not a boolean"),
    ("bool-aws", aws_db({"log_connections": "sometimes"}), f"{P}.log_connections", "use on or off"),
    ("enum-typo", docker_db({"wal_level": "logicall"}), f"{P}.wal_level", "is not one of minimal, replica, logical"),
    ("enum-typo-sync", docker_db({"synchronous_commit": "remote"}), f"{P}.synchronous_commit",
     "is not one of local, remote_write, remote_apply, on, off"),
    ("enum-aws", aws_db({"log_min_messages": "loud"}), f"{P}.log_min_messages", "is not one of debug5"),
    ("internal-read-only", docker_db({"block_size": "8192"}), f"{P}.block_size", "is read-only"),
    ("internal-read-only-aws", aws_db({"server_version": "16.0"}), f"{P}.server_version", "is read-only"),
    ("managed-ssl", docker_db({"ssl": "off"}), f"{P}.ssl", "ssl is managed by bulkhead"),
    ("managed-port", docker_db({"port": "5432"}), f"{P}.port", "port is managed by bulkhead"),
    ("managed-listen", docker_db({"listen_addresses": "*"}), f"{P}.listen_addresses", "listen_addresses is managed"),
    ("managed-password-encryption", aws_db({"password_encryption": "md5"}), f"{P}.password_encryption", "is managed"),
    ("managed-force-ssl", aws_db({"rds.force_ssl": "0"}), f"{P}.rds.force_ssl", "rds.force_ssl is managed"),
    ("rds-setting-on-docker", docker_db({"rds.logical_replication": "1"}), f"{P}.rds.logical_replication",
     "applies only to platform aws; remove it from this docker stack"),
    ("rds-unknown", aws_db({"rds.force_sl": "1"}), f"{P}.rds.force_sl", "is not an RDS setting bulkhead knows"),
    ("rds-read-only", aws_db({"rds.extensions": "postgis"}), f"{P}.rds.extensions", "RDS does not let a parameter group change"),
    ("rds-bool", aws_db({"rds.logical_replication": "yes please"}), f"{P}.rds.logical_replication", "as 1 or 0"),
    ("rds-not-settable-wal-level", aws_db({"wal_level": "logical"}), f"{P}.wal_level",
     "set rds.logical_replication: 1 instead"),
    ("rds-not-settable-archive", aws_db({"archive_command": "cp %p /x"}), f"{P}.archive_command",
     "RDS archives WAL itself"),
    ("memory-does-not-fit", docker_db({"shared_buffers": "2GB"}, memory_mb=512), f"{P}.shared_buffers",
     "does not fit in memory_mb 512; the container is killed once the cache fills. Lower shared_buffers to about 128MB"),
    ("memory-does-not-fit-server", {
        "platform": "docker", "servers": {"shared": {"port": 5440, "memory_mb": 256, "parameters": {"shared_buffers": "256MB"}}},
        "databases": {"app": {"owner": "app-service", "server": "shared"}}},
     "bulkhead:servers.shared.parameters.shared_buffers", "does not fit in memory_mb 256"),
]


@pytest.mark.parametrize("raw, path, fragment", [pytest.param(r, p, f, id=i) for i, r, p, f in BAD_PARAMETERS])
def test_bad_parameters_name_key_path_and_fix(raw, path, fragment):
    problems = problems_of(raw)
    at_path = [p.message for p in problems if p.path == path]
    assert at_path, f"no problem at {path}; got {[(p.path, p.message) for p in problems]}"
    assert any(fragment in message for message in at_path), at_path


def test_at_least_forty_bad_parameter_cases_on_both_platforms():
    platforms = {raw["platform"] for _, raw, _, _ in BAD_PARAMETERS}
    assert len(BAD_PARAMETERS) >= 40 and platforms == {"docker", "aws"}


def test_every_managed_setting_is_reported_not_only_the_first():
    problems = problems_of(docker_db({"ssl": "off", "port": "5432", "listen_addresses": "*", "work_mem": "4mb"}))
    assert sorted(p.path for p in problems) == [f"{P}.listen_addresses", f"{P}.port", f"{P}.ssl", f"{P}.work_mem"]


SEED_TUNING = {"shared_buffers": "256MB", "max_connections": 100, "work_mem": "4MB"}


@pytest.mark.parametrize("raw", [docker_db(SEED_TUNING), docker_db(SEED_TUNING, memory_mb=1024), aws_db(SEED_TUNING)],
                         ids=["docker-512", "docker-1024", "aws"])
def test_seed_style_tuning_passes(raw):
    cat = load_catalogue(raw, "test", region=REGION)
    assert set(cat.databases["app"].parameters) == set(SEED_TUNING)


@pytest.mark.parametrize("parameters, expected", [
    # RDS takes numbers in the setting's base unit, booleans as 1/0 and enums by name
    ({"work_mem": "8MB"}, {"work_mem": "8192"}),
    ({"work_mem": "16384"}, {"work_mem": "16384"}),
    ({"shared_buffers": "1GB"}, {"shared_buffers": "131072"}),  # 8kB pages
    ({"log_min_duration_statement": "1s"}, {"log_min_duration_statement": "1000"}),
    ({"idle_in_transaction_session_timeout": "5min"}, {"idle_in_transaction_session_timeout": "300000"}),
    ({"log_connections": True, "jit": "off"}, {"log_connections": "1", "jit": "0"}),
    ({"synchronous_commit": "yes"}, {"synchronous_commit": "on"}),
    ({"wal_compression": "LZ4"}, {"wal_compression": "lz4"}),
    ({"random_page_cost": 1.1}, {"random_page_cost": "1.1"}),
    ({"rds.logical_replication": True}, {"rds.logical_replication": "1"}),
])
def test_aws_values_in_the_form_rds_takes(parameters, expected):
    cat = load_catalogue(aws_db(parameters), "prod", region=REGION)
    assert cat.databases["app"].parameters == expected


@pytest.mark.parametrize("parameters", [{"work_mem": "8MB"}, {"synchronous_commit": "yes"}, {"log_connections": True}])
def test_docker_values_stay_as_postgresql_reads_them(parameters):
    cat = load_catalogue(docker_db(parameters), "dev", region=REGION)
    assert cat.databases["app"].parameters == {k: ("on" if v is True else v) for k, v in parameters.items()}


@pytest.mark.parametrize("raw, path, fragment", [
    (docker_db({"shared_buffers": "256MB"}), f"{P}.shared_buffers", "is over 40% of memory_mb 512"),
    (docker_db({"max_connections": "200", "work_mem": "8MB"}, memory_mb=1024), f"{P}.work_mem",
     "max_connections 200 x work_mem 8MB = 1600MB"),
    (docker_db({"max_connections": "0x64", "work_mem": "64MB"}), f"{P}.work_mem",
     "max_connections 100 x work_mem 64MB = 6400MB"),  # hex, as the server reads it
    (docker_db({"pg_stat_statements.track": "all"}), f"{P}.pg_stat_statements.track", "extension setting"),
    (docker_db({"work_mem": "4MB"}, engine_version="14"), "bulkhead:databases.app.engine_version",
     "PostgreSQL 14 is not in the generated settings table; its settings are checked against PostgreSQL 15's"),
])
def test_warnings_that_do_not_stop_the_plan(raw, path, fragment):
    cat = load_catalogue(raw, "dev", region=REGION)
    assert any(w.path == path and fragment in w.message for w in cat.warnings), cat.warnings


# ------------------------------------------------------------------ the servers' own verdicts

SERVERS = gen.find_servers()
PROBES = [
    ("work_mem", v) for v in ("4MB", "inf", "-infinity", "1e400", "4mb", "4 MB", "4MB ", "1.5MB", "0x100", "010", "08", "63", "64", "2147483647",
                              "2147483648", "-1", "4TB", "1e3", "4kb")
] + [
    ("shared_buffers", v) for v in ("128MB", "1.5GB", "16", "15", "100kB", "8kB")
] + [
    ("max_connections", v) for v in ("100", "1.5", "0", "abc", "1e2", "100MB", "0x64", "0144")
] + [
    ("synchronous_commit", v) for v in ("on", "yes", "YES", "Local", "remote", "true", "1", "2")
] + [
    ("enable_seqscan", v) for v in ("on", "of", "o", "tru", "TRUE", "2", "on ", "y", "n")
] + [
    ("log_min_duration_statement", v) for v in ("1s", "1.5s", "500us", "1S", "-1", "2min", "1h", "1d")
] + [
    ("vacuum_cost_delay", v) for v in ("0.5", "2ms", "200", "500us", "1s")
] + [
    ("random_page_cost", v) for v in ("1.1", "-1", "1e3", "inf", ".5")
] + [
    ("wal_level", v) for v in ("logical", "LOGICAL", "logicall")
] + [
    ("huge_pages", v) for v in ("try", "yes", "0")
] + [("bogus_param", "1"), ("shared_buffer", "256MB"), ("block_size", "8192"), ("log_timezone", "UTC")]


def _table_verdict(major: int, name: str, value: str) -> bool:
    checked = pg_parameters.check_parameters({name: value}, major, "docker", "p")
    return not checked.problems


@pytest.fixture(scope="module", params=sorted(SERVERS), ids=lambda m: f"pg{m}")
def cluster(request):
    with gen.cluster(SERVERS[request.param][0]) as c:
        yield request.param, c


# Where the server and the table are known to differ, and why (docs/configuration.md: "Where the table and the server differ").
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    # String settings with a check hook (time zones, library names, ...): the table knows only "string".
    ("log_timezone", "Mars/Phobos"): "string checked by a hook the table does not have",
}
PROBES += [("wal_level", "archive"), ("wal_level", "hot_standby"), *KNOWN_DIFFERENCES]


def test_the_validator_gives_the_servers_verdict(cluster):
    major, c = cluster
    disagree = []
    for name, value in PROBES:
        server_ok, said = c.probe(name, value)
        if (name, value) in KNOWN_DIFFERENCES:
            assert server_ok != _table_verdict(major, name, value), f"{name}={value!r} no longer differs; drop it"
            continue
        if server_ok != _table_verdict(major, name, value):
            disagree.append(f"{name}={value!r}: server {'accepts' if server_ok else 'refuses'} ({said})")
    assert disagree == []


DEV_STACK = yaml.safe_load(Path(ROOT, "Pulumi.dev.yaml").read_text())["config"]


def _documented_examples() -> list[dict]:
    """The `parameters:` maps of docs/configuration.md's yaml examples (platform docker ones)."""
    text = Path(ROOT, "docs", "configuration.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        for data in yaml.safe_load_all(block):
            found += _walk_parameters(data)
    return found


def _walk_parameters(node) -> list[dict]:
    if isinstance(node, dict):
        out = [node["parameters"]] if isinstance(node.get("parameters"), dict) else []
        for value in node.values():
            out += _walk_parameters(value)
        return out
    if isinstance(node, list):
        return [x for item in node for x in _walk_parameters(item)]
    return []


def _every_example_setting() -> list[tuple[str, str]]:
    cat = load_catalogue({k.split(":", 1)[1]: v for k, v in DEV_STACK.items() if k.startswith("bulkhead:")}, "dev")
    settings_ = [(k, v) for db in cat.databases.values() for k, v in db.parameters.items()]
    settings_ += [(k, v) for s in cat.servers.values() for k, v in s.parameters.items()]
    for spec in _documented_examples():
        settings_ += [(k, "on" if v is True else "off" if v is False else str(v)) for k, v in spec.items()
                      if not k.startswith("rds.")]
    return sorted(set(settings_))


def test_configuration_doc_has_parameter_examples():
    assert len(_documented_examples()) >= 2


def test_configuration_doc_settings_example_is_what_the_catalogue_does():
    text = Path(ROOT, "docs", "configuration.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "units as PostgreSQL reads them" in b)
    dev, prod = list(yaml.safe_load_all(block))
    load_catalogue({"platform": "docker", "databases": dev}, "dev")
    cat = load_catalogue({"platform": "aws", "databases": prod}, "prod", region=REGION)
    assert cat.databases["app"].parameters["shared_buffers"] == "32768"
    assert cat.databases["app"].parameters["work_mem"] == "4096"


def test_every_dev_and_documented_setting_is_accepted_by_every_server(cluster):
    major, c = cluster
    refused = [f"{name}={value} ({said})" for name, value in _every_example_setting()
               for ok, said in [c.probe(name, value)] if not ok]
    assert refused == [], f"PostgreSQL {major} refuses: {refused}"


# ------------------------------------------------------------------ versions

@pytest.mark.parametrize("raw, path, fragment", [
    (docker_db({}, engine_version="16.99"), "bulkhead:databases.app.engine_version",
     "PostgreSQL 16.99 has not been released (the newest 16 is 16.13"),
    ({"platform": "aws", "databases": {"app": {"owner": "app-service", "engine_version": "17.99"}}},
     "bulkhead:databases.app.engine_version", 'use "17" for the newest or a released minor such as "17.12"'),
    (docker_db({}, engine_version="16.04"), "bulkhead:databases.app.engine_version", 'has a leading zero; write "16.4"'),
    (docker_db({}, engine_version="13.2"), "bulkhead:databases.app.engine_version",
     "there is no image postgres:13.2-bookworm (the bookworm images of 13 start at 13.11)"),
    ({"platform": "docker", "servers": {"shared": {"port": 5440, "engine_version": "15.99"}},
      "databases": {"app": {"owner": "app-service", "server": "shared"}}},
     "bulkhead:servers.shared.engine_version", "PostgreSQL 15.99 has not been released"),
])
def test_versions_must_exist(raw, path, fragment):
    problems = problems_of(raw)
    assert any(p.path == path and fragment in p.message for p in problems), [(p.path, p.message) for p in problems]


@pytest.mark.parametrize("value, fragment", [
    (16.1, 'quote it: engine_version: "16.1" (or "16.10" if you wrote 16.10: YAML drops the trailing zero)'),
    (17, 'is the number 17, not a version string; quote it: engine_version: "17"'),
    (16.4, 'quote it: engine_version: "16.4" (or "16.40"'),
])
def test_number_versions_through_pulumi_config(value, fragment):
    # The program gets config as JSON: the YAML text is gone, so both spellings are named.
    problems = problems_of(docker_db({}, engine_version=value))
    assert any(p.path == "bulkhead:databases.app.engine_version" and fragment in p.message for p in problems), problems


@pytest.mark.parametrize("version", ["16", "16.4", "16.13", "17.12", "13.23", "13.11", "15.18"])
def test_released_versions_pass(version):
    load_catalogue(docker_db({}, engine_version=version), "dev")


def test_aws_13_minor_before_bookworm_images_is_judged_by_rds_not_by_images():
    # The image rule is docker's; on aws the version is judged by RDS's offerings alone.
    with pytest.raises(CatalogueError) as info:
        load_catalogue({"platform": "aws", "databases": {"app": {"owner": "a", "engine_version": "13.2"}}}, "p", region=REGION)
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 1 and "is not offered by RDS for PostgreSQL" in messages[0], messages
    assert "bookworm" not in messages[0]


# ------------------------------------------------------------------ pack agreement

@pytest.mark.parametrize("raw, stack, path, policy", [
    (aws_db({}, deletion_protection=False), "prod", "bulkhead:databases.app.deletion_protection", "rds-deletion-protection"),
    ({**aws_db({}), "protect": False}, "prod", "bulkhead:protect", "rds-protected-resource"),
    ({**aws_db({}), "backup_tiers": {"standard": {"pitr_days": 3, "retention_days": 7}}}, "prod",
     "bulkhead:backup_tiers.standard.pitr_days", "rds-backup-retention"),
    ({**aws_db({}, tier="critical"), "backup_tiers": {"critical": {"retention_days": 14, "pitr_days": 14}}}, "prod",
     "bulkhead:backup_tiers.critical.retention_days", "rds-in-backup-plan"),
    (docker_db({}), "shop-prod", "bulkhead:platform", "platform-matches-stack"),
    (docker_db({}), "prod", "bulkhead:platform", "platform-matches-stack"),
    (aws_db({}), "dev", "bulkhead:platform", "platform-matches-stack"),
])
def test_mandatory_policies_are_catalogue_errors_in_their_words(raw, stack, path, policy):
    problems = problems_of(raw, stack)
    level, description = pack_agreement.POLICY_TEXT[policy]
    mine = [p for p in problems if p.path == path]
    assert mine and f"which policy {policy} ({level}) refuses: {description}" in mine[0].message, problems


@pytest.mark.parametrize("raw, stack, path, policy", [
    (aws_db({}, multi_az=False), "prod", "bulkhead:databases.app.multi_az", "rds-multi-az"),
    (aws_db({}, engine_version="16.9"), "prod", "bulkhead:databases.app.engine_version", "rds-auto-minor-upgrade"),
    (docker_db({}, memory_mb=8192), "dev", "bulkhead:databases.app.memory_mb", "dev-resource-limits"),
    ({**docker_db({}), "keep_volumes": False}, "dev", "bulkhead:keep_volumes", "dev-volume-retained"),
])
def test_advisory_policies_are_plan_warnings_in_their_words(raw, stack, path, policy):
    cat = load_catalogue(raw, stack, region=REGION)
    level, description = pack_agreement.POLICY_TEXT[policy]
    assert level == "advisory"
    assert any(w.path == path and f"which policy {policy} (advisory) refuses: {description}" in w.message
               for w in cat.warnings), cat.warnings


def test_the_catalogue_quotes_the_pack_exactly():
    from bulkhead.commands.check import load_pack

    pack = load_pack()
    for name, (level, description) in pack_agreement.POLICY_TEXT.items():
        policy = pack.POLICIES_BY_NAME[name]
        assert policy.description == description, name
        assert policy.enforcement_level.value == level, name
    assert pack_agreement.thresholds().MIN_RETENTION_DAYS_BY_TIER == pack.thresholds.MIN_RETENTION_DAYS_BY_TIER


def test_the_repo_stacks_pass_with_no_pack_errors():
    from bulkhead.offline.stack_config import load_catalogue_for

    # (by name: run_program imports components afresh, so the class object may be another one)
    for stack in ("dev", "prod"):
        cat = load_catalogue_for(ROOT, stack)
        assert type(cat).__name__ == "Catalogue" and cat.databases
        assert not [w for w in cat.warnings if "which policy" in w.message]


# ------------------------------------------------------------------ the CLI: exit codes and messages

def _project(tmp_path: Path, stack: str, text: str) -> Path:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    shutil.copy(os.path.join(ROOT, "Pulumi.yaml"), project / "Pulumi.yaml")
    (project / f"Pulumi.{stack}.yaml").write_text(text)
    return project


DUPLICATE_KEYS = """config:
  bulkhead:platform: docker
  bulkhead:databases:
    api:
      owner: api-service
      port: 5433
    api:
      owner: other-service
      port: 5434
      parameters:
        work_mem: 4MB
        work_mem: 8MB
"""


@pytest.mark.parametrize("stack, text, fragments", [
    ("dupes", DUPLICATE_KEYS, ["2 duplicate key(s); nothing was planned",
                               "line 7: key 'api' is already defined at line 4 of the same map",
                               "line 12: key 'work_mem' is already defined at line 11 of the same map"]),
    ("floaty", "config:\n  bulkhead:platform: docker\n  bulkhead:databases:\n    app:\n      owner: a\n      port: 5433\n"
               "      engine_version: 16.10\n",
     ['bulkhead:databases.app.engine_version: is 16.10 (YAML read it as the number 16.1), not a version string; '
      'quote it: engine_version: "16.10"']),
    ("nominor", "config:\n  bulkhead:platform: docker\n  bulkhead:databases:\n    app:\n      owner: a\n      port: 5433\n"
                "      engine_version: '16.99'\n",
     ["bulkhead:databases.app.engine_version: PostgreSQL 16.99 has not been released"]),
    ("shop-prod", "config:\n  bulkhead:platform: docker\n  bulkhead:databases:\n    app:\n      owner: a\n      port: 5433\n",
     ["bulkhead:platform: stack shop-prod runs on docker, which policy platform-matches-stack (mandatory) refuses",
      "Set bulkhead:platform to aws in Pulumi.shop-prod.yaml"]),
    ("noregion", "config:\n  bulkhead:platform: aws\n  bulkhead:databases:\n    app:\n      owner: a\n",
     ["aws:region: is required on platform aws", "add `aws:region: eu-west-1` (your region)"]),
    ("badparams", "config:\n  bulkhead:platform: docker\n  bulkhead:databases:\n    app:\n      owner: a\n      port: 5433\n"
                  "      parameters: {shared_buffer: 256MB, work_mem: 4mb, bogus_param: 1, ssl: 'off', port: 1, "
                  "listen_addresses: '*'}\n",
     ["6 problem(s)", "parameters.shared_buffer: 'shared_buffer' is not a setting of PostgreSQL 16; did you mean "
      "shared_buffers?", "parameters.work_mem: '4mb' has unit 'mb'", "parameters.bogus_param:", "parameters.ssl:",
      "parameters.port:", "parameters.listen_addresses:"]),
])
def test_cli_plan_exit_2_with_the_message(tmp_path, capsys, stack, text, fragments):
    project = _project(tmp_path, stack, text)
    code = main(["plan", "--stack", stack, "--project-dir", str(project), "--out", str(tmp_path / "plan.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "plan.json").exists()


def test_cli_check_of_a_docker_stack_named_shop_prod_is_exit_1(tmp_path, capsys, dev_export):
    """A plan made elsewhere (say by an older bulkhead) for stack shop-prod on docker: the pack refuses it."""
    export = copy.deepcopy(dev_export)
    text = yaml.safe_dump(export).replace("urn:pulumi:dev::", "urn:pulumi:shop-prod::")
    export = yaml.safe_load(text)
    for r in export["deployment"]["resources"]:
        for label in (r.get("inputs") or {}).get("labels") or []:
            if label.get("label") == "bulkhead:stack":
                label["value"] = "shop-prod"
    path = tmp_path / "plan.json"
    path.write_text(__import__("json").dumps(export))
    code = main(["check", str(path)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "platform-matches-stack" in out and "in stack shop-prod, which must use the aws platform" in out


# ------------------------------------------------------------------ property: parameters never crash

NAMES = st.one_of(st.sampled_from(sorted(pg_settings.names(16)) + sorted(pg_settings.RDS_SETTINGS)),
                  st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=20))
VALUES = st.one_of(
    st.booleans(), st.integers(min_value=-2**40, max_value=2**40), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.builds(lambda n, u: f"{n}{u}", st.integers(-10, 10**7), st.sampled_from(["", "kB", "MB", "GB", "mb", "ms", "s", "min", " MB", "x"])),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(platform=st.sampled_from(["docker", "aws"]), parameters=st.dictionaries(NAMES, VALUES, max_size=6),
       major=st.sampled_from(["13", "14", "15", "16", "17"]), memory_mb=st.integers(128, 8192))
def test_property_parameters_from_the_table(platform, parameters, major, memory_mb):
    """Any names and values: a Catalogue or problems under their own key paths, never a traceback."""
    extra = {"memory_mb": memory_mb} if platform == "docker" else {}
    raw = (docker_db if platform == "docker" else aws_db)(parameters, engine_version=major, **extra)
    try:
        cat = load_catalogue(raw, "prop", region=REGION)
    except CatalogueError as exc:
        for problem in exc.problems:
            assert problem.path.startswith("bulkhead:databases.app"), problem
            assert problem.message
        return
    values = cat.databases["app"].parameters
    assert set(values) <= {str(k) for k in parameters}
    for name, value in values.items():
        assert isinstance(value, str) and value
        if platform == "aws" and (s := pg_settings.setting(int(major), name)) is not None:
            if s.type in ("integer", "real"):
                float(value)  # RDS form: a plain number
            elif s.type == "bool":
                assert value in ("0", "1")
            elif s.type == "enum":
                assert value in s.enum


@pytest.mark.parametrize("major", pg_settings.SUPPORTED_MAJORS)
def test_bulkheads_own_rds_parameters_are_valid_for_every_major(major):
    from components.prod.rds_postgres import BASE_PARAMETERS

    own = {k: v for k, v in BASE_PARAMETERS.items() if k not in pg_parameters.MANAGED}
    checked = pg_parameters.check_parameters(own, major, "aws", "rds_postgres.BASE_PARAMETERS")
    assert checked.problems == [] and checked.values == own
    managed = set(BASE_PARAMETERS) - set(own)
    assert all(name in pg_settings.RDS_SETTINGS or pg_settings.setting(major, name) for name in managed)
    for name in managed - set(pg_settings.RDS_SETTINGS):  # a PostgreSQL setting bulkhead owns: a valid value
        assert BASE_PARAMETERS[name] in pg_settings.setting(major, name).enum
