"""RDS offerings (engine versions, instance classes per region) and the catalogue errors built on them."""

from __future__ import annotations

import importlib.util
import os

import pytest

from components.catalogue import offerings as aws_offerings
from components.catalogue.model import CatalogueError, load_catalogue
from tests.support.program import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("generate_rds_offerings", os.path.join(ROOT, "tools", "generate_rds_offerings.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_table_is_what_the_pinned_cfn_lint_gives():
    gen = _generator()
    with open(aws_offerings.DATA) as fh:
        committed = fh.read()
    assert committed == gen.render(gen.build()), (
        "components/catalogue/data/rds_offerings.json differs from the installed cfn-lint's data; "
        "run .venv/bin/python tools/generate_rds_offerings.py and commit the table")
    assert gen.main(["--check"]) == 0


def test_engine_versions_and_classes_per_region():
    versions = aws_offerings.engine_versions("eu-west-1")
    assert versions == sorted(versions, key=aws_offerings.version_key)
    assert all(v.count(".") == 1 for v in versions)
    assert "16.9" in versions and "16.4" not in versions  # 16.4 is deprecated in AWS's list
    assert "db.r6g.large" in aws_offerings.instance_classes("eu-west-1")
    # A class RDS still prices in the region but no PostgreSQL 17 minor runs on.
    assert "db.t2.micro" in aws_offerings.instance_classes("eu-west-1")
    assert "db.t2.micro" not in aws_offerings.instance_classes("eu-west-1", "17")
    # Regions differ: a small region offers fewer classes.
    assert len(aws_offerings.instance_classes("me-central-1")) < len(aws_offerings.instance_classes("us-east-1"))
    with pytest.raises(KeyError):
        aws_offerings.engine_versions("mars-north-1")
    assert aws_offerings.data_source().startswith("cfn-lint ")


@pytest.mark.parametrize("version,offered", [("16", True), ("17", True), ("16.9", True), ("16.4", False), ("17.99", False)])
def test_offers_engine_version(version, offered):
    assert aws_offerings.offers_engine_version("eu-west-1", version) is offered


def test_nearest_values_start_with_the_same_major_and_family():
    assert aws_offerings.nearest_engine_versions("eu-west-1", "16.4") == ["16.9", "16.10", "16.11"]
    assert aws_offerings.nearest_engine_versions("eu-west-1", "17.99")[0] == "17.11"
    assert aws_offerings.nearest_instance_classes("eu-west-1", "db.r6g.larg")[0] == "db.r6g.large"


def _aws(**db) -> dict:
    return {"platform": "aws", "databases": {"app": {"owner": "app-service", **db}}}


def _problems(raw, region="eu-west-1") -> list[str]:
    try:
        load_catalogue(raw, "prod", region=region)
    except CatalogueError as exc:
        return [str(p) for p in exc.problems]
    return []


REFUSED = [
    pytest.param(_aws(engine_version="16.4"), "bulkhead:databases.app.engine_version: '16.4' is not offered by RDS for "
                 "PostgreSQL in eu-west-1 (cfn-lint", "use one of the nearest offered: 16.9, 16.10, 16.11", id="deprecated-minor"),
    pytest.param(_aws(instance_class="db.r6g.huge"), "bulkhead:databases.app.instance_class: 'db.r6g.huge' is not offered by "
                 "RDS for PostgreSQL 16 in eu-west-1", "nearest offered: db.r6g.", id="unknown-class"),
    pytest.param(_aws(instance_class="db.t2.micro", engine_version="17"), "bulkhead:databases.app.instance_class: 'db.t2.micro' "
                 "is not offered by RDS for PostgreSQL 17", "nearest offered: db.t", id="class-not-for-major"),
    pytest.param(_aws(replicas=1, replica_instance_class="db.r6g.larg"), "bulkhead:databases.app.replica_instance_class: "
                 "'db.r6g.larg' is not offered", "nearest offered: db.r6g.large", id="unknown-replica-class"),
    pytest.param(_aws(engine_version="17.2", instance_class="db.r6g.huge"), "bulkhead:databases.app.instance_class: "
                 "'db.r6g.huge' is not offered by RDS for PostgreSQL 17", "", id="class-checked-despite-bad-version"),
]


@pytest.mark.parametrize("raw,message,hint", REFUSED)
def test_catalogue_refuses_what_rds_does_not_offer(raw, message, hint):
    problems = _problems(raw)
    hits = [p for p in problems if p.startswith(message)]
    assert hits, problems
    assert hint in hits[0]


def test_unknown_region_is_a_catalogue_error():
    assert _problems(_aws(), region="eu-west-9") == [
        "aws:region: 'eu-west-9' is not a region RDS lists (cfn-lint 1.58.0); check the region name, or refresh the "
        "table with tools/generate_rds_offerings.py"]


@pytest.mark.parametrize("raw,region", [
    (_aws(), "eu-west-1"),
    (_aws(engine_version="16.9", instance_class="db.r6g.large", replicas=2, replica_instance_class="db.r6g.xlarge"), "eu-west-1"),
    (_aws(engine_version="17", instance_class="db.t4g.medium"), "us-east-1"),
])
def test_catalogue_accepts_what_rds_offers(raw, region):
    assert _problems(raw, region=region) == []


def test_without_region_only_the_missing_region_is_reported():
    # aws:region is required (nothing to check the offerings against otherwise): one problem, not an offerings one.
    problems = _problems(_aws(engine_version="16.4"), region=None)
    assert [p.split(":", 2)[:2] for p in problems] == [["aws", "region"]]


def test_docker_versions_are_not_checked_against_rds():
    raw = {"platform": "docker", "databases": {"app": {"owner": "app-service", "port": 5433, "engine_version": "16.4"}}}
    assert load_catalogue(raw, "dev", region="eu-west-1").databases["app"].engine_version == "16.4"


def test_replica_class_equal_to_primary_class_is_reported_once():
    problems = _problems(_aws(instance_class="db.r6g.huge", replicas=1))
    assert [p.split(":")[1] for p in problems] == ["databases.app.instance_class"]
