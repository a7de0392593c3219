"""The committed price table (components/catalogue/data/aws_prices.json) and its generator."""

from __future__ import annotations

import copy
import importlib.util
import json
import os

import pytest

from bulkhead import cost
from tests.support.program import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("generate_aws_prices", os.path.join(ROOT, "tools", "generate_aws_prices.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tables():
    gen = _generator()
    with open(gen.OFFERINGS) as fh:
        offerings = json.load(fh)
    return gen, cost.load_prices(), offerings


def test_committed_table_passes_the_offline_check():
    gen, table, offerings = _tables()
    assert gen.problems(table, offerings) == []
    assert gen.main(["--check"]) == 0
    assert table["source"] and table["date"] and table["hours_per_month"] == 730


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t["regions"].setdefault("mars-north-1", {}), "mars-north-1: not a region"),
    (lambda t: t["regions"]["us-east-1"]["rds_postgres_instance_hour"].__setitem__(
        "db.x9.huge", {"single_az": 1, "multi_az": 2, "vcpu": 4}), "does not offer db.x9.huge"),
    (lambda t: t["regions"]["us-east-1"]["rds_postgres_instance_hour"]["db.t4g.medium"].__setitem__(
        "multi_az", 0.01), "multi_az >= single_az"),
    (lambda t: t["regions"]["us-east-1"].__setitem__("alarm_month", "cheap"), "is not a price"),
    (lambda t: t["regions"]["us-east-1"].__setitem__("gpu_hour", 1.0), "unknown rate"),
    (lambda t: t.__setitem__("date", "last week"), "not an ISO date"),
    (lambda t: t.__delitem__("source"), "missing top-level key source"),
])
def test_check_refuses_an_inconsistent_table(edit, expected):
    gen, table, offerings = _tables()
    broken = copy.deepcopy(table)
    edit(broken)
    assert any(expected in p for p in gen.problems(broken, offerings)), gen.problems(broken, offerings)


def test_check_refuses_a_hand_formatted_file(tmp_path, monkeypatch):
    gen = _generator()
    out = tmp_path / "aws_prices.json"
    out.write_text(json.dumps(cost.load_prices()))  # same content, another layout
    monkeypatch.setattr(gen, "OUT", str(out))
    assert gen.main(["--check"]) == 1


def test_from_offer_files_rewrites_the_rds_rows(tmp_path, monkeypatch):
    """The offer-file reader on a minimal AmazonRDS regional offer (the Price List's shape:
    products[sku].attributes, terms.OnDemand[sku][term].priceDimensions[rate].pricePerUnit.USD)."""
    gen = _generator()

    def product(sku, family, **attrs):
        return sku, {"sku": sku, "productFamily": family, "attributes": {"databaseEngine": "PostgreSQL", **attrs}}

    def term(usd):
        return {"T": {"priceDimensions": {"R": {"unit": "Hrs", "pricePerUnit": {"USD": str(usd)}}}}}

    products = dict([
        product("a", "Database Instance", instanceType="db.t4g.medium", deploymentOption="Single-AZ", vcpu="2"),
        product("b", "Database Instance", instanceType="db.t4g.medium", deploymentOption="Multi-AZ", vcpu="2"),
        product("c", "Database Storage", volumeType="General Purpose-GP3", deploymentOption="Single-AZ"),
        product("d", "Database Storage", volumeType="General Purpose-GP3", deploymentOption="Multi-AZ"),
        product("e", "Database Instance", instanceType="db.t4g.medium", deploymentOption="Single-AZ", vcpu="2",
                databaseEngine="MySQL"),
    ])
    terms = {"OnDemand": {"a": term(0.07), "b": term(0.14), "c": term(0.12), "d": term(0.24), "e": term(9)}}
    region_dir = tmp_path / "AmazonRDS" / "us-east-1"
    region_dir.mkdir(parents=True)
    (region_dir / "index.json").write_text(json.dumps(
        {"publicationDate": "2027-01-02T00:00:00Z", "products": products, "terms": terms}))
    table = gen.regenerate(copy.deepcopy(cost.load_prices()), str(tmp_path))
    us = table["regions"]["us-east-1"]
    assert us["rds_postgres_instance_hour"] == {"db.t4g.medium": {"single_az": 0.07, "multi_az": 0.14, "vcpu": 2}}
    assert us["rds_gp3_gb_month"] == {"single_az": 0.12, "multi_az": 0.24}
    assert us["kms_key_month"] == 1.0 and table["date"] == "2027-01-02"
