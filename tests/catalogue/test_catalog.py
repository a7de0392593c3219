"""The catalogue (docs/contract.md section 3): every bad config refused with its key path and fix.

Table-driven: each malformed catalogue names the exact key path of the problem and
a fragment of the message that tells the user how to fix it.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkhead.offline.mock_runtime import run_program
from components.catalogue.model import DEFAULT_TIERS, Catalogue, CatalogueError, load_catalogue
from tests.support.catalogue import adb, aws, ddb, docker  # noqa: F401
from tests.support.program import ROOT

CRON_HOURLY = "cron(0 * * * ? *)"


SHARED = {"shared": {"port": 5440}}


def on_server(**keys: Any) -> dict:
    """docker: `billing` on server `shared`, with extra keys on billing."""
    return docker({"billing": {"owner": "billing-service", "server": "shared", **keys}}, servers=copy.deepcopy(SHARED))


def without(raw: dict, key: str) -> dict:
    raw = copy.deepcopy(raw)
    del raw[key]
    return raw


BAD = [
    # --- stack level
    pytest.param(without(docker(), "platform"), "bulkhead:platform", "set it to docker (dev) or aws (prod)", id="missing-platform"),
    pytest.param(docker(platform="gcp"), "bulkhead:platform", "'gcp' is not a platform; set it to docker", id="bad-platform"),
    pytest.param(docker(platform=["docker"]), "bulkhead:platform", "is not a platform", id="platform-list"),
    pytest.param(without(docker(), "databases"), "bulkhead:databases", "needs at least one database", id="databases-missing"),
    pytest.param(docker({}), "bulkhead:databases", "needs at least one database", id="databases-empty"),
    pytest.param(docker(databases=["app"]), "bulkhead:databases", "must be a map of database name to settings", id="databases-list"),
    pytest.param(docker(databse={}), "bulkhead:databse", "unknown key; valid keys are: platform, databases", id="unknown-stack-key"),
    pytest.param(docker(protect="yes"), "bulkhead:protect", "'yes' is not true or false", id="protect-not-bool"),
    pytest.param(docker(keep_volumes=1), "bulkhead:keep_volumes", "1 is not true or false", id="keep-volumes-not-bool"),
    pytest.param(docker(network={"vpc_id": "vpc-0abc1234", "subnet_ids": []}), "bulkhead:network",
                 "applies only to platform aws; remove it from this docker stack", id="network-on-docker"),
    pytest.param(docker(dr_region="eu-west-1"), "bulkhead:dr_region",
                 "applies only to platform aws; remove it from this docker stack", id="dr-region-on-docker"),
    pytest.param(aws(servers=copy.deepcopy(SHARED)), "bulkhead:servers",
                 "applies only to platform docker; remove it from this aws stack", id="servers-on-aws"),
    pytest.param(aws(keep_volumes=True), "bulkhead:keep_volumes",
                 "applies only to platform docker; remove it from this aws stack", id="keep-volumes-on-aws"),
    pytest.param(aws(keep_volumes=False), "bulkhead:keep_volumes",
                 "applies only to platform docker", id="keep-volumes-false-on-aws"),
    pytest.param(aws(dr_region="mars-north-1x"), "bulkhead:dr_region", "is not an AWS region name like eu-west-1", id="bad-dr-region"),
    pytest.param(aws(dr_region="eu-west-1\n"), "bulkhead:dr_region", "is not an AWS region name", id="dr-region-trailing-newline"),
    pytest.param(aws(network={"vpc_id": "vpc-0abc1234", "subnet_ids": ["subnet-0abc1234"]}), "bulkhead:network.subnet_ids",
                 "needs at least 2 entries", id="network-one-subnet"),
    pytest.param(aws(network={"vpc_id": "vpc-xyz", "subnet_ids": ["subnet-0abc1234", "subnet-0abc1236"]}), "bulkhead:network.vpc_id",
                 "a VPC id like vpc-", id="network-bad-vpc"),
    # --- database names and keys
    pytest.param(docker({"App": {"owner": "app-service", "port": 5433}}), "bulkhead:databases.App",
                 "not a valid database name; use lower case letters, digits and underscores", id="bad-database-name"),
    pytest.param(docker({"1app": {"owner": "app-service", "port": 5433}}), "bulkhead:databases.1app",
                 "starting with a letter", id="database-name-digit"),
    pytest.param(docker({"app\n": {"owner": "app-service", "port": 5433}}), "bulkhead:databases.app\n",
                 "not a valid database name", id="database-name-trailing-newline"),
    pytest.param(docker({"app": "app-service"}), "bulkhead:databases.app", "must be a map of keys to values", id="database-not-map"),
    pytest.param(ddb(owner="App_Service"), "bulkhead:databases.app.owner",
                 "use a service name like app-service", id="bad-owner"),
    pytest.param(docker({"app": {"port": 5433}}), "bulkhead:databases.app.owner", "is required; add it", id="missing-owner"),
    pytest.param(ddb(ownr="x"), "bulkhead:databases.app.ownr", "unknown key; valid keys are: owner, db_name", id="unknown-database-key"),
    pytest.param(ddb(db_name="App-DB"), "bulkhead:databases.app.db_name", "lower case, digits and underscores", id="bad-db-name"),
    pytest.param(ddb(env_var="app_url"), "bulkhead:databases.app.env_var",
                 "an upper-case environment variable name like APP_DATABASE_URL", id="bad-env-var"),
    pytest.param(ddb(env_var="1URL"), "bulkhead:databases.app.env_var", "upper-case environment variable", id="env-var-digit"),
    pytest.param(ddb(tier="gold"), "bulkhead:databases.app.tier",
                 "unknown tier 'gold'; use one of critical, standard or define it under bulkhead:backup_tiers", id="unknown-tier"),
    pytest.param(ddb(engine_version="12"), "bulkhead:databases.app.engine_version",
                 'a PostgreSQL major 13-17, optionally with a minor, quoted: "16" or "16.4"', id="engine-12"),
    pytest.param(ddb(engine_version="latest"), "bulkhead:databases.app.engine_version",
                 "a PostgreSQL major 13-17", id="engine-latest"),
    pytest.param(ddb(engine_version="18"), "bulkhead:databases.app.engine_version", "a PostgreSQL major 13-17", id="engine-18"),
    pytest.param(ddb(engine_version=16), "bulkhead:databases.app.engine_version", 'is the number 16, not a version string; quote it: engine_version: "16"', id="engine-unquoted"),
    pytest.param(ddb(parameters={"ssl": "off"}), "bulkhead:databases.app.parameters.ssl",
                 "ssl is managed by bulkhead", id="managed-param-ssl"),
    pytest.param(ddb(parameters={"hba_file": "/tmp/x"}), "bulkhead:databases.app.parameters.hba_file",
                 "hba_file is managed by bulkhead", id="managed-param-hba"),
    pytest.param(adb(parameters={"rds.force_ssl": "0"}), "bulkhead:databases.app.parameters.rds.force_ssl",
                 "rds.force_ssl is managed by bulkhead", id="managed-param-force-ssl"),
    pytest.param(ddb(parameters={"work_mem": ["4MB"]}), "bulkhead:databases.app.parameters",
                 "parameter 'work_mem' must be a string, number or boolean", id="param-value-list"),
    pytest.param(ddb(parameters={"work_mem": {"a": 1}}), "bulkhead:databases.app.parameters",
                 "parameter 'work_mem' must be a string, number or boolean", id="param-value-map"),
    pytest.param(ddb(parameters={"Work_Mem": "4MB"}), "bulkhead:databases.app.parameters.Work_Mem",
                 "is not a PostgreSQL setting name (lower case letters, digits, _ and .); write work_mem", id="param-name-case"),
    pytest.param(ddb(parameters={"work_mem\n": "4MB"}), "bulkhead:databases.app.parameters.work_mem\n",
                 "is not a PostgreSQL setting name", id="param-name-newline"),
    pytest.param(ddb(parameters={"work_mem": "4MB\n-c ssl=off"}), "bulkhead:databases.app.parameters",
                 "needs a non-empty single-line value", id="param-value-multiline"),
    pytest.param(ddb(parameters={"work_mem": ""}), "bulkhead:databases.app.parameters",
                 "needs a non-empty single-line value", id="param-value-empty"),
    pytest.param(ddb(parameters=["work_mem=4MB"]), "bulkhead:databases.app.parameters",
                 "parameters must be a map of setting name to value", id="parameters-list"),
    # --- docker: ports, servers
    pytest.param(docker({"app": {"owner": "app-service"}}), "bulkhead:databases.app.port",
                 "is required for a database with its own container; pick a free host port", id="docker-missing-port"),
    pytest.param(ddb(port=80), "bulkhead:databases.app.port", "80 is out of range: input should be greater than or equal to 1024", id="port-80"),
    pytest.param(ddb(port=70000), "bulkhead:databases.app.port", "70000 is out of range: input should be less than or equal to 65535", id="port-70000"),
    pytest.param(ddb(port="5433"), "bulkhead:databases.app.port", "is the string \"5433\" (in quotes), not a number; write it without quotes: port: 5433", id="port-string"),
    pytest.param(ddb(memory_mb=64), "bulkhead:databases.app.memory_mb", "64 is out of range", id="memory-too-small"),
    pytest.param(ddb(cpus=0), "bulkhead:databases.app.cpus", "0 is out of range: input should be greater than 0", id="cpus-zero"),
    pytest.param(docker({"a": {"owner": "a-service", "port": 5433}, "b": {"owner": "b-service", "port": 5433}}),
                 "bulkhead:databases.b.port", "port 5433 is already used by bulkhead:databases.a; choose another port", id="dup-port-databases"),
    pytest.param(docker({"app": {"owner": "app-service", "port": 5440},
                         "billing": {"owner": "billing-service", "server": "shared"}}, servers=copy.deepcopy(SHARED)),
                 "bulkhead:databases.app.port", "port 5440 is already used by bulkhead:servers.shared", id="dup-port-database-server"),
    pytest.param(docker({"a": {"owner": "a-service", "server": "s1"}, "b": {"owner": "b-service", "server": "s2"}},
                        servers={"s1": {"port": 5440}, "s2": {"port": 5440}}),
                 "bulkhead:servers.s2.port", "port 5440 is already used by bulkhead:servers.s1", id="dup-port-servers"),
    pytest.param(docker({"a": {"owner": "a-service", "port": 5433, "db_name": "shared_db"},
                         "b": {"owner": "b-service", "port": 5434, "db_name": "shared_db"}}),
                 "bulkhead:databases.b.db_name", "db_name 'shared_db' is already used by bulkhead:databases.a", id="dup-db-name"),
    pytest.param(docker({"a": {"owner": "a-service", "port": 5433},
                         "b": {"owner": "b-service", "port": 5434, "db_name": "a"}}),
                 "bulkhead:databases.b.db_name", "db_name 'a' is already used by bulkhead:databases.a", id="dup-db-name-default"),
    pytest.param(docker({"a": {"owner": "app-service", "port": 5433, "env_var": "DATABASE_URL"},
                         "b": {"owner": "app-service", "port": 5434, "env_var": "DATABASE_URL"}}),
                 "bulkhead:databases.b.env_var", "app-service already reads DATABASE_URL for bulkhead:databases.a; give this database another env_var",
                 id="same-owner-same-env-var"),
    pytest.param(aws({"a": {"owner": "app-service", "env_var": "X_URL"}, "b": {"owner": "app-service", "env_var": "X_URL"}}),
                 "bulkhead:databases.b.env_var", "app-service already reads X_URL", id="same-owner-same-env-var-aws"),
    pytest.param(docker({"billing": {"owner": "billing-service", "server": "nope"},
                         "other": {"owner": "o-service", "server": "shared"}}, servers=copy.deepcopy(SHARED)),
                 "bulkhead:databases.billing.server", "unknown server 'nope' (servers: shared); define it under bulkhead:servers",
                 id="unknown-server"),
    pytest.param(docker({"billing": {"owner": "billing-service", "server": "nope"}}), "bulkhead:databases.billing.server",
                 "(servers: none defined)", id="unknown-server-none-defined"),
    pytest.param(on_server(port=5441), "bulkhead:databases.billing.port",
                 "this database sits on server 'shared'; set port on bulkhead:servers.shared instead", id="port-on-server-database"),
    pytest.param(on_server(engine_version="17"), "bulkhead:databases.billing.engine_version",
                 "set engine_version on bulkhead:servers.shared instead", id="engine-on-server-database"),
    pytest.param(on_server(memory_mb=1024), "bulkhead:databases.billing.memory_mb",
                 "set memory_mb on bulkhead:servers.shared instead", id="memory-on-server-database"),
    pytest.param(on_server(parameters={"work_mem": "4MB"}), "bulkhead:databases.billing.parameters",
                 "set parameters on bulkhead:servers.shared instead", id="parameters-on-server-database"),
    pytest.param(docker(servers={"shared": {"port": 5440}}), "bulkhead:servers.shared",
                 "no database uses this server; remove it or set server: shared on a database", id="unused-server"),
    pytest.param(docker({"billing": {"owner": "billing-service", "server": "shared"}}, servers={"shared": {"prot": 5440, "port": 5440}}),
                 "bulkhead:servers.shared.prot", "unknown key; valid keys are: port, memory_mb, cpus, engine_version, parameters",
                 id="unknown-server-key"),
    pytest.param(docker({"billing": {"owner": "billing-service", "server": "shared"}}, servers={"shared": {}}),
                 "bulkhead:servers.shared.port", "is required; add it", id="server-missing-port"),
    pytest.param(docker({"billing": {"owner": "billing-service", "server": "Shared"}}, servers={"Shared": {"port": 5440}}),
                 "bulkhead:servers.Shared", "not a valid server name", id="bad-server-name"),
    pytest.param(docker({"billing": {"owner": "billing-service", "server": "shared"}},
                        servers={"shared": {"port": 5440, "parameters": {"ssl": "off"}}}),
                 "bulkhead:servers.shared.parameters.ssl", "ssl is managed by bulkhead", id="server-managed-param"),
    pytest.param(docker({"billing": {"owner": "billing-service", "server": "shared"}},
                        servers={"shared": {"port": 5440, "engine_version": "latest"}}),
                 "bulkhead:servers.shared.engine_version", "a PostgreSQL major 13-17", id="server-engine-latest"),
    # --- aws-only keys on docker
    *[
        pytest.param(ddb(**{key: value}), f"bulkhead:databases.app.{key}",
                     "applies only to platform aws; remove it from this docker stack", id=f"docker-has-{key}")
        for key, value in [
            ("instance_class", "db.t4g.medium"),
            ("replicas", 1),
            ("multi_az", True),
            ("storage_gb", 50),
            ("max_storage_gb", 200),
            ("replica_instance_class", "db.t4g.large"),
            ("deletion_protection", False),
        ]
    ],
    # --- docker-only keys on aws
    *[
        pytest.param(adb(**{key: value}), f"bulkhead:databases.app.{key}",
                     "applies only to platform docker; remove it from this aws stack", id=f"aws-has-{key}")
        for key, value in [("port", 5433), ("server", "shared"), ("memory_mb", 1024), ("cpus", 2)]
    ],
    # --- aws values
    pytest.param(adb(replicas=6), "bulkhead:databases.app.replicas", "6 is out of range: input should be less than or equal to 5", id="replicas-6"),
    pytest.param(adb(replicas=-1), "bulkhead:databases.app.replicas", "-1 is out of range", id="replicas-negative"),
    pytest.param(adb(replicas=True), "bulkhead:databases.app.replicas", "is not a whole number", id="replicas-bool"),
    pytest.param(adb(instance_class="t3.micro"), "bulkhead:databases.app.instance_class",
                 "an RDS class of the form db.<family>.<size>, e.g. db.t4g.medium", id="instance-class-no-db"),
    pytest.param(adb(replica_instance_class="r6g.large"), "bulkhead:databases.app.replica_instance_class",
                 "an RDS class of the form db.<family>.<size>", id="replica-class-no-db"),
    pytest.param(adb(storage_gb=200, max_storage_gb=100), "bulkhead:databases.app.max_storage_gb",
                 "100 is below storage_gb 200; raise it so storage can autoscale", id="max-storage-below-storage"),
    pytest.param(adb(storage_gb=10), "bulkhead:databases.app.storage_gb", "10 is out of range", id="storage-too-small"),
    pytest.param(adb(multi_az="yes"), "bulkhead:databases.app.multi_az", "is not true or false", id="multi-az-string"),
    pytest.param(aws(dr_region="eu-west-1"), "bulkhead:dr_region",
                 "eu-west-1 is the stack's own region (aws:region); pick another region", id="dr-region-is-region"),
    # --- backup tiers
    pytest.param(docker(backup_tiers={"critical": {"pitr_days": 0}}), "bulkhead:backup_tiers.critical.pitr_days",
                 "0 is out of range: input should be greater than or equal to 1", id="pitr-0"),
    pytest.param(docker(backup_tiers={"critical": {"pitr_days": 36, "retention_days": 60}}), "bulkhead:backup_tiers.critical.pitr_days",
                 "36 is out of range: input should be less than or equal to 35", id="pitr-36"),
    pytest.param(aws(backup_tiers={"standard": {"retention_days": 3}}), "bulkhead:backup_tiers.standard.retention_days",
                 "3 is shorter than pitr_days 7; keep backups at least as long as point-in-time recovery", id="retention-below-pitr"),
    pytest.param(aws(backup_tiers={"critical": {"retention": 30}}), "bulkhead:backup_tiers.critical.retention",
                 "unknown key; valid keys are: schedule, retention_days, pitr_days, copy_to_dr", id="unknown-tier-key"),
    pytest.param(aws(backup_tiers={"gold": {"schedule": CRON_HOURLY, "pitr_days": 3}}), "bulkhead:backup_tiers.gold.retention_days",
                 "is required; add it", id="new-tier-missing-retention"),
    pytest.param(aws(backup_tiers={"gold": {"schedule": "hourly", "retention_days": 7, "pitr_days": 3}}),
                 "bulkhead:backup_tiers.gold.schedule", "an AWS Backup expression, e.g. cron(0 * * * ? *)", id="bad-schedule"),
    pytest.param(aws(backup_tiers={"Gold": {"schedule": CRON_HOURLY, "retention_days": 7, "pitr_days": 3}}),
                 "bulkhead:backup_tiers.Gold", "not a valid tier name", id="bad-tier-name"),
    pytest.param(aws(backup_tiers={"gold": 7}), "bulkhead:backup_tiers.gold",
                 "must be a map with schedule, retention_days, pitr_days, copy_to_dr", id="tier-not-map"),
]


def _problems(raw: Any, region: str | None = None) -> list:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(raw, "test", region=region)
    assert info.value.problems, "CatalogueError without problems"
    return info.value.problems


@pytest.mark.parametrize("raw, path, fragment", BAD)
def test_bad_catalogue_names_key_path_and_fix(raw, path, fragment):
    problems = _problems(raw, region="eu-west-1")
    matching = [p for p in problems if p.path == path]
    assert matching, f"no problem at {path!r}; got {[(p.path, p.message) for p in problems]}"
    assert any(fragment in p.message for p in matching), (
        f"no message at {path!r} contains {fragment!r}; got {[p.message for p in matching]}"
    )
    # The error's text is what the user sees: one line per problem, path first.
    text = str(CatalogueError(problems))
    assert f"{path}: " in text


def test_bad_table_is_large_enough():
    assert len(BAD) >= 35


def test_config_not_a_map():
    (problem,) = _problems(["platform", "docker"])
    assert problem.path == "bulkhead"
    assert "must be a map" in problem.message


def test_aws_stack_without_region_is_an_error():
    # The provider would fall back to a default region without a word; the catalogue says so first.
    problems = _problems(aws(dr_region="eu-west-1"))
    assert [(p.path, p.message.split(";")[0]) for p in problems] == [
        ("aws:region", "is required on platform aws (without it the stack would silently use the provider's "
                       "default region)")]
    assert "add `aws:region: eu-west-1` (your region)" in problems[0].message


def test_every_problem_is_reported_in_one_error():
    raw = {
        "platform": "docker",
        "colour": "blue",  # 1 unknown stack key
        "databases": {
            "Bad": {"owner": "x-service", "port": 5000},  # 2 bad name
            "a": {"owner": "a-service", "port": 80},  # 3 port out of range
            "b": {"owner": "b-service", "port": 5433, "replicas": 2},  # 4 aws-only key
            "c": {"owner": "c-service", "port": 5433, "tier": "gold"},  # 5 duplicate port, 6 unknown tier
            "d": {"port": 5434},  # 7 missing owner
            "e": {"owner": "e-service", "server": "nope"},  # 8 unknown server
        },
        "servers": {"idle": {"port": 5450}},  # 9 unused server
        "backup_tiers": {"standard": {"pitr_days": 0}},  # 10 pitr out of range
    }
    problems = _problems(raw)
    got = sorted(p.path for p in problems)
    assert got == sorted([
        "bulkhead:colour",
        "bulkhead:databases.Bad",
        "bulkhead:databases.a.port",
        "bulkhead:databases.b.replicas",
        "bulkhead:databases.c.port",
        "bulkhead:databases.c.tier",
        "bulkhead:databases.d.owner",
        "bulkhead:databases.e.server",
        "bulkhead:servers.idle",
        "bulkhead:backup_tiers.standard.pitr_days",
    ]), [str(p) for p in problems]
    assert len(problems) == 10
    # the message lists them all, one per line
    assert len(str(CatalogueError(problems)).splitlines()) == 10


def test_invalid_server_or_tier_is_not_also_reported_unknown():
    # A defined-but-invalid server/tier has its own problem; its users must not be told it does not exist.
    problems = _problems(docker({"billing": {"owner": "billing-service", "server": "shared", "tier": "gold"}},
                                servers={"shared": {"port": 80}},
                                backup_tiers={"gold": {"schedule": CRON_HOURLY, "retention_days": 7, "pitr_days": 99}}))
    assert sorted(str(p) for p in problems) == [
        "bulkhead:backup_tiers.gold.pitr_days: 99 is out of range: input should be less than or equal to 35",
        "bulkhead:servers.shared.port: 80 is out of range: input should be greater than or equal to 1024",
    ]


# ------------------------------------------------------------------ positive cases


def test_docker_defaults_resolved():
    cat = load_catalogue(docker({"app": {"owner": "app-service", "port": 5433}}), "dev")
    assert isinstance(cat, Catalogue)
    assert cat.stack == "dev"
    assert cat.platform == "docker"
    assert list(cat.databases) == ["app"]
    db = cat.databases["app"]
    assert db.owner == "app-service"
    assert db.db_name == "app"
    assert db.env_var == "APP_DATABASE_URL"
    assert db.tier == "standard"
    assert db.engine_version == "16"
    assert db.major == 16
    assert db.parameters == {}
    assert db.port == 5433
    assert db.server is None
    assert db.memory_mb == 512
    assert db.cpus == 1.0
    assert cat.protect is False
    assert cat.keep_volumes is True
    assert cat.servers == {}
    assert cat.network is None
    assert cat.dr_region is None


def test_aws_defaults_resolved():
    cat = load_catalogue(aws({"orders_v2": {"owner": "orders"}}), "prod", region="us-east-1")
    db = cat.databases["orders_v2"]
    assert db.db_name == "orders_v2"
    assert db.env_var == "ORDERS_V2_DATABASE_URL"
    assert db.tier == "standard"
    assert db.instance_class == "db.t4g.medium"
    assert db.replica_instance_class == "db.t4g.medium"
    assert (db.storage_gb, db.max_storage_gb) == (20, 100)
    assert db.multi_az is True
    assert db.replicas == 0
    assert db.deletion_protection is True
    assert db.port is None
    assert cat.protect is True
    assert cat.keep_volumes is True
    assert cat.region == "us-east-1"


def test_default_tiers_exactly_as_design():
    cat = load_catalogue(docker(), "dev")
    got = {name: tier.model_dump() for name, tier in cat.backup_tiers.items()}
    assert got == {
        "critical": {"schedule": "cron(0 * * * ? *)", "retention_days": 30, "pitr_days": 14, "copy_to_dr": True, "restore_test_schedule": "cron(0 6 ? * SUN *)", "log_retention_days": 30, "master_max_age_days": 90,
         "alarms": {"cpu_percent": 70, "free_storage_percent": 20, "connections_percent": 70, "freeable_memory_percent": 15, "replica_lag_seconds": 60}},
        "standard": {"schedule": "cron(0 */6 * * ? *)", "retention_days": 7, "pitr_days": 7, "copy_to_dr": False, "restore_test_schedule": "cron(0 6 1 * ? *)", "log_retention_days": 30, "master_max_age_days": 90,
         "alarms": {"cpu_percent": 80, "free_storage_percent": 10, "connections_percent": 80, "freeable_memory_percent": 10, "replica_lag_seconds": 300}},
    }
    assert got == DEFAULT_TIERS


def test_replica_instance_class_falls_back_to_instance_class():
    cat = load_catalogue(aws({"a": {"owner": "a-service", "instance_class": "db.r6g.large", "replicas": 2},
                              "b": {"owner": "b-service", "instance_class": "db.r6g.large",
                                    "replica_instance_class": "db.r6g.xlarge"}}), "prod", region="eu-west-1")
    assert cat.databases["a"].replica_instance_class == "db.r6g.large"
    assert cat.databases["a"].replicas == 2
    assert cat.databases["b"].replica_instance_class == "db.r6g.xlarge"


def test_user_tiers_merged_over_defaults():
    cat = load_catalogue(
        aws(
            {"a": {"owner": "a-service", "tier": "gold"}, "b": {"owner": "b-service", "tier": "critical"}},
            backup_tiers={
                "critical": {"retention_days": 90},
                "gold": {"schedule": "cron(0 */2 * * ? *)", "retention_days": 365, "pitr_days": 35, "copy_to_dr": True},
            },
            dr_region="eu-central-1",  # copy_to_dr: true without it is refused (test_mistakes.py)
        ),
        "prod", region="eu-west-1",
    )
    tiers = {n: t.model_dump() for n, t in cat.backup_tiers.items()}
    assert tiers == {
        "critical": {"schedule": "cron(0 * * * ? *)", "retention_days": 90, "pitr_days": 14, "copy_to_dr": True, "restore_test_schedule": "cron(0 6 ? * SUN *)", "log_retention_days": 30, "master_max_age_days": 90,
         "alarms": {"cpu_percent": 70, "free_storage_percent": 20, "connections_percent": 70, "freeable_memory_percent": 15, "replica_lag_seconds": 60}},
        "standard": {"schedule": "cron(0 */6 * * ? *)", "retention_days": 7, "pitr_days": 7, "copy_to_dr": False, "restore_test_schedule": "cron(0 6 1 * ? *)", "log_retention_days": 30, "master_max_age_days": 90,
         "alarms": {"cpu_percent": 80, "free_storage_percent": 10, "connections_percent": 80, "freeable_memory_percent": 10, "replica_lag_seconds": 300}},
        # a tier of one's own: restore tests monthly and logs 30 days unless it says otherwise
        "gold": {"schedule": "cron(0 */2 * * ? *)", "retention_days": 365, "pitr_days": 35, "copy_to_dr": True, "restore_test_schedule": "cron(0 6 1 * ? *)", "log_retention_days": 30, "master_max_age_days": 90,
         "alarms": {"cpu_percent": 80, "free_storage_percent": 10, "connections_percent": 80, "freeable_memory_percent": 10, "replica_lag_seconds": 300}},
    }
    assert cat.databases["a"].tier == "gold"
    # the defaults themselves were not mutated by the merge
    assert DEFAULT_TIERS["critical"]["retention_days"] == 30


def test_two_owners_may_both_use_database_url():
    cat = load_catalogue(docker({"a": {"owner": "a-service", "port": 5433, "env_var": "DATABASE_URL"},
                                 "b": {"owner": "b-service", "port": 5434, "env_var": "DATABASE_URL"}}), "dev")
    assert [d.env_var for d in cat.databases.values()] == ["DATABASE_URL", "DATABASE_URL"]
    assert cat.owners() == {"a-service": ["a"], "b-service": ["b"]}


def test_one_owner_two_databases_default_env_vars_differ():
    cat = load_catalogue(docker({"a": {"owner": "x-service", "port": 5433}, "b": {"owner": "x-service", "port": 5434}}), "dev")
    assert cat.owners() == {"x-service": ["a", "b"]}
    assert {n: d.env_var for n, d in cat.databases.items()} == {"a": "A_DATABASE_URL", "b": "B_DATABASE_URL"}


def test_shared_server_and_parameters_normalised():
    cat = load_catalogue(
        docker(
            {"billing": {"owner": "billing-service", "server": "shared"},
             "notify": {"owner": "notify-service", "server": "shared", "tier": "critical"},
             "app": {"owner": "app-service", "port": 5433, "parameters": {"work_mem": "4MB", "max_connections": 200,
                                                                        "log_connections": True, "jit": False,
                                                                        "random_page_cost": 1.1}}},
            servers={"shared": {"port": 5440, "memory_mb": 768, "engine_version": "16.4"}},
            keep_volumes=False,
            protect=True,
        ),
        "dev",
    )
    assert cat.databases_on("shared") == {"billing": cat.databases["billing"], "notify": cat.databases["notify"]}
    assert cat.servers["shared"].port == 5440
    assert cat.servers["shared"].memory_mb == 768
    assert cat.servers["shared"].major == 16
    assert cat.servers["shared"].cpus == 1.0
    assert cat.databases["billing"].port is None
    # parameters: all strings, booleans as on/off, sorted by name
    assert cat.databases["app"].parameters == {"jit": "off", "log_connections": "on", "max_connections": "200",
                                               "random_page_cost": "1.1", "work_mem": "4MB"}
    assert list(cat.databases["app"].parameters) == sorted(cat.databases["app"].parameters)
    assert cat.keep_volumes is False
    assert cat.protect is True
    assert list(cat.databases) == ["app", "billing", "notify"]


def test_explicit_protect_false_on_aws_is_refused_like_the_pack_and_network():
    problems = _problems(aws(protect=False), region="us-east-1")
    assert [p.path for p in problems] == ["bulkhead:protect"]
    assert "which policy rds-protected-resource (mandatory) refuses" in problems[0].message
    cat = load_catalogue(
        aws(network={"vpc_id": "vpc-0abc1234", "subnet_ids": ["subnet-0abc1234", "subnet-0abc1236"]},
            dr_region="us-west-2"),
        "prod", region="us-east-1",
    )
    assert cat.protect is True
    assert cat.network is not None and cat.network.vpc_id == "vpc-0abc1234"
    assert cat.network.subnet_ids == ["subnet-0abc1234", "subnet-0abc1236"]
    assert cat.dr_region == "us-west-2"


def test_repo_dev_stack_file_is_valid():
    from bulkhead.offline.stack_config import load_catalogue_for

    cat = load_catalogue_for(ROOT, "dev")
    assert cat.platform == "docker"
    assert set(cat.databases) == {"auth", "app", "worker", "billing", "notify"}


# ------------------------------------------------------------------ properties

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["docker", "aws", "16", "17.2", "latest", "standard", "critical", "shared", "db.t4g.medium",
                     "eu-west-1", "us-east-1", "cron(0 * * * ? *)", "app-service", "APP_URL", "4MB", "on", "\n", ""]),
)
KEYS = st.one_of(
    st.sampled_from([
        "platform", "databases", "servers", "backup_tiers", "network", "dr_region", "protect", "keep_volumes",
        "owner", "db_name", "engine_version", "tier", "env_var", "parameters", "port", "server", "memory_mb", "cpus",
        "instance_class", "storage_gb", "max_storage_gb", "multi_az", "replicas", "replica_instance_class",
        "deletion_protection", "schedule", "retention_days", "pitr_days", "copy_to_dr", "vpc_id", "subnet_ids",
        "app", "shared", "critical", "ssl", "work_mem", "rds.force_ssl",
    ]),
    st.text(max_size=10),
)
ANY = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=5),
        st.dictionaries(st.one_of(st.integers(), st.booleans(), st.none()), children, max_size=2),
    ),
    max_leaves=12,
)
PLATFORM = st.one_of(st.sampled_from(["docker", "aws"]), ANY)


def _check(raw: Any, region: Any = "eu-west-1") -> None:
    try:
        result = load_catalogue(raw, "prop", region=region)
    except CatalogueError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert isinstance(problem.path, str) and problem.path.startswith(("bulkhead", "aws:region")), problem.path
            assert isinstance(problem.message, str) and problem.message
        return
    assert isinstance(result, Catalogue)
    assert result.databases


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(raw=ANY)
def test_property_whole_config(raw):
    _check(raw)


@PROPERTY
@given(platform=PLATFORM, databases=ANY, rest=st.dictionaries(KEYS, ANY, max_size=3))
def test_property_databases_value(platform, databases, rest):
    _check({**rest, "platform": platform, "databases": databases})


@PROPERTY
@given(platform=st.sampled_from(["docker", "aws"]), entry=st.dictionaries(KEYS, ANY, max_size=8), name=KEYS)
def test_property_database_entry(platform, entry, name):
    _check({"platform": platform, "databases": {name: entry, "other": {"owner": "o-service", "port": 5433}}})


@PROPERTY
@given(servers=ANY, server_entry=st.dictionaries(KEYS, ANY, max_size=6))
def test_property_servers(servers, server_entry):
    _check({"platform": "docker", "servers": servers,
            "databases": {"app": {"owner": "app-service", "server": "shared"}}})
    _check({"platform": "docker", "servers": {"shared": server_entry},
            "databases": {"app": {"owner": "app-service", "server": "shared"}}})


@PROPERTY
@given(platform=st.sampled_from(["docker", "aws"]), tiers=ANY, tier=st.dictionaries(KEYS, ANY, max_size=5), name=KEYS)
def test_property_backup_tiers(platform, tiers, tier, name):
    base = {"platform": platform, "databases": {"app": {"owner": "app-service", "port": 5433, "tier": "critical"}}}
    _check({**base, "backup_tiers": tiers})
    _check({**base, "backup_tiers": {name: tier}})


@PROPERTY
@given(platform=st.sampled_from(["docker", "aws"]), parameters=ANY, values=st.dictionaries(KEYS, ANY, max_size=5))
def test_property_parameters(platform, parameters, values):
    _check({"platform": platform, "databases": {"app": {"owner": "app-service", "port": 5433, "parameters": parameters}}})
    _check({"platform": platform, "databases": {"app": {"owner": "app-service", "port": 5433, "parameters": values}}})


@PROPERTY
@given(raw=st.dictionaries(KEYS, ANY, max_size=8), region=st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["eu-west-1"])))
def test_property_stack_keys_and_region(raw, region):
    _check(raw, region=region)


# ------------------------------------------------------------------ refused before any resource

BAD_STACK_FILE = {
    "config": {
        "bulkhead:platform": "docker",
        "bulkhead:databases": {
            "auth": {"owner": "auth-service", "port": 5433},
            "app": {"owner": "app-service", "port": 5433, "replicas": 2},
        },
    }
}


def test_cli_plan_refuses_bad_config(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(os.path.join(ROOT, "Pulumi.yaml"), project / "Pulumi.yaml")
    shutil.copy(os.path.join(ROOT, "__main__.py"), project / "__main__.py")
    shutil.copytree(os.path.join(ROOT, "components"), project / "components",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (project / "Pulumi.bad.yaml").write_text(yaml.safe_dump(BAD_STACK_FILE, sort_keys=False))
    out = tmp_path / "plan.json"
    env = {**os.environ, "BULKHEAD_PROJECT_DIR": str(project)}
    proc = subprocess.run(
        [sys.executable, "-m", "bulkhead", "plan", "--stack", "bad", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "bulkhead:databases.app.port" in proc.stderr
    assert "port 5433 is already used by bulkhead:databases.auth" in proc.stderr
    assert "bulkhead:databases.app.replicas" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()
    assert not (project / ".bulkhead").exists()


def test_program_registers_nothing_on_bad_config():
    config = dict(BAD_STACK_FILE["config"])
    run = run_program(ROOT, "bad", config)
    assert run.error is not None
    assert "bulkhead:databases.app.port" in str(run.error)
    assert "nothing was created" in str(run.error)
    assert run.resources == []
    assert run.exports == {}


@pytest.mark.parametrize("text, fragment", [
    ("- bulkhead:platform: docker\n", "the top level must be a map (config: {bulkhead:databases: ..., ...}), not a list"),
    ("just a string\n", "the top level must be a map (config: {bulkhead:databases: ..., ...}), not a string"),
    ("42\n", "the top level must be a map (config: {bulkhead:databases: ..., ...}), not a number"),
    ("config:\n  - bulkhead:platform: docker\n", "`config:` must be a map of key: value"),
    ("config: docker\n", "`config:` must be a map of key: value"),
    ("config:\n  1: docker\n", "config key 1 is not a string"),
])
def test_cli_plan_refuses_badly_shaped_stack_file(tmp_path, capsys, text, fragment):
    """A Pulumi.<stack>.yaml that is not a map (or whose `config:` is not) is exit 2 naming the file."""
    from bulkhead.cli import main

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(os.path.join(ROOT, "Pulumi.yaml"), project / "Pulumi.yaml")
    stack_file = project / "Pulumi.bad.yaml"
    stack_file.write_text(text)
    code = main(["plan", "--stack", "bad", "--project-dir", str(project), "--out", str(tmp_path / "plan.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert str(stack_file) in err and fragment in err
    assert not (tmp_path / "plan.json").exists()


def test_cli_plan_refuses_badly_shaped_project_file(tmp_path, capsys):
    from bulkhead.cli import main

    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("- name: bulkhead\n")
    (project / "Pulumi.dev.yaml").write_text("config: {}\n")
    code = main(["plan", "--stack", "dev", "--project-dir", str(project)])
    err = capsys.readouterr().err
    assert code == 2 and str(project / "Pulumi.yaml") in err and "must be a map" in err and "Traceback" not in err
