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
    # provenance: every figure says where it comes from, and `method` does not claim more
    (lambda t: t["provenance"].pop("us-east-1.alarm_month"), "us-east-1.alarm_month: no provenance"),
    (lambda t: t["provenance"].__setitem__("us-east-1.alarm_month", "a blog"), "must start with one of"),
    (lambda t: t["provenance"].__setitem__("us-east-1.gpu_hour", "offer:x"), "provenance us-east-1.gpu_hour: no such figure"),
    (lambda t: t["provenance"].__setitem__("us-east-1.alarm_month", "transcribed: a page"),
     "not every price's provenance is AWS price data"),
    (lambda t: t.__setitem__("method", "copied by hand"), "method must start with"),
    (lambda t: t["regions"]["us-east-1"]["rds_postgres_instance_hour"]["db.t4g.medium"].__setitem__("az", 1),
     "needs single_az and multi_az"),
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
    # the rewritten rows say which offer file they come from; the others keep theirs
    assert table["provenance"]["us-east-1.rds_postgres_instance_hour"] == \
        "offer:AmazonRDS/us-east-1 version ? published 2027-01-02T00:00:00Z"
    assert table["provenance"]["us-east-1.kms_key_month"].startswith("aws-price-data:")
    assert not table["method"].startswith(gen.GENERATED) and gen.problems(table, _tables()[2]) == []


def _offer(version, published, rows):
    """A regional offer file with one on-demand product per (sku, usagetype, usd[, engine]), the
    usagetype with its region prefix as AWS writes it."""
    products = {r[0]: {"sku": r[0], "productFamily": "x",
                       "attributes": {"usagetype": r[1], **({"databaseEngine": r[3]} if len(r) > 3 else {})}}
                for r in rows}
    terms = {"OnDemand": {r[0]: {"T": {"priceDimensions": {"R": {"pricePerUnit": {"USD": str(r[2])}}}}} for r in rows}}
    return {"version": version, "publicationDate": published, "products": products, "terms": terms}


def test_from_offer_files_prices_every_figure_and_then_says_generated(tmp_path):
    """All the stack-wide and per-database figures from their offers (usagetype suffix after the
    region prefix, which differs per offer; PostgreSQL's row where rows name an engine; the dearest
    inter-region transfer), each with the offer's version and publication date; once every price
    of the table comes from an offer file, `method` says so and --check agrees (the proxy's 2-vCPU
    minimum is a billing rule on the pricing page, not a price: it may stay transcribed)."""
    gen, table, offerings = _tables()
    offers = {
        "AmazonVPC": [("v", "EU-VpcEndpoint-Hours", 0.011), ("w", "EU-VpcEndpoint-Bytes", 0.01)],
        "awskms": [("k", "eu-west-1-KMS-Keys", 1.0), ("r", "eu-west-1-KMS-Requests", 0.000003)],
        "AWSSecretsManager": [("s", "EU-AWSSecretsManager-Secrets", 0.4)],
        "AmazonCloudWatch": [("a", "EU-CW:AlarmMonitorUsage", 0.1), ("h", "EU-CW:HighResAlarmMonitorUsage", 0.3)],
        "AmazonRDS": [("p1", "EU-RDS:ProxyUsage", 0.099, "MySQL"), ("p2", "EU-RDS:ProxyUsage", 0.018, "PostgreSQL"),
                      ("b", "EU-RDS:ChargedBackupUsage", 0.095, "PostgreSQL")],
        "AWSDataTransfer": [("t1", "EU-EUC1-AWS-Out-Bytes", 0.02), ("t2", "EU-APS1-AWS-Out-Bytes", 0.03),
                            ("t3", "EU-DataTransfer-Out-Bytes", 0.09)],
    }
    for code, rows in offers.items():
        d = tmp_path / code / "eu-west-1"
        d.mkdir(parents=True)
        (d / "index.json").write_text(json.dumps(_offer("20261001000000", "2026-10-01T00:00:00Z", rows)))
    only_eu = copy.deepcopy(table)
    only_eu["regions"] = {"eu-west-1": {"proxy_min_vcpu": 2}}
    only_eu["provenance"] = {"eu-west-1.proxy_min_vcpu": "transcribed: https://aws.amazon.com/rds/proxy/pricing/"}
    out = gen.regenerate(only_eu, str(tmp_path), offerings=offerings)
    eu = out["regions"]["eu-west-1"]
    assert eu == {"interface_endpoint_az_hour": 0.011, "kms_key_month": 1.0, "secret_month": 0.4,
                  "alarm_month": 0.1, "proxy_vcpu_hour": 0.018, "backup_gb_month": 0.095,
                  "cross_region_copy_gb": 0.03, "proxy_min_vcpu": 2}
    assert out["provenance"]["eu-west-1.alarm_month"] == \
        "offer:AmazonCloudWatch/eu-west-1 version 20261001000000 published 2026-10-01T00:00:00Z"
    assert out["date"] == "2026-10-01" and out["method"].startswith(gen.GENERATED)
    assert gen.problems(out, offerings) == []
    # an offer without the product leaves the figure alone and says so
    (tmp_path / "AmazonCloudWatch" / "eu-west-1" / "index.json").write_text(json.dumps(_offer("2", "2026-10-02", [])))
    said = []
    again = gen.regenerate(copy.deepcopy(table), str(tmp_path), report=said.append)
    assert again["regions"]["eu-west-1"]["alarm_month"] == table["regions"]["eu-west-1"]["alarm_month"]
    assert said == ["AmazonCloudWatch/eu-west-1: no on-demand product with usagetype *CW:AlarmMonitorUsage: alarm_month unchanged"]


def test_from_leaves_out_classes_rds_does_not_offer_for_postgresql_there(tmp_path):
    gen, table, offerings = _tables()

    def row(sku, cls, deployment, usd):
        return sku, {"sku": sku, "productFamily": "Database Instance", "attributes": {
            "databaseEngine": "PostgreSQL", "instanceType": cls, "deploymentOption": deployment, "vcpu": "2"}}, usd

    rows = [row("a", "db.t4g.micro", "Single-AZ", 0.016), row("b", "db.t4g.micro", "Multi-AZ", 0.032),
            row("c", "db.x9.nope", "Single-AZ", 1), row("d", "db.x9.nope", "Multi-AZ", 2)]
    offer = {"publicationDate": "2027-01-02T00:00:00Z", "products": {sku: p for sku, p, _ in rows},
             "terms": {"OnDemand": {sku: {"T": {"priceDimensions": {"R": {"pricePerUnit": {"USD": str(u)}}}}}
                                    for sku, _, u in rows}}}
    d = tmp_path / "AmazonRDS" / "us-east-1"
    d.mkdir(parents=True)
    (d / "index.json").write_text(json.dumps(offer))
    said = []
    out = gen.regenerate(copy.deepcopy(table), str(tmp_path), report=said.append, offerings=offerings)
    assert set(out["regions"]["us-east-1"]["rds_postgres_instance_hour"]) == {"db.t4g.micro"}
    assert said and "db.x9.nope" in said[0]
    assert gen.problems(out, offerings) == []


def test_committed_table_is_generated_from_the_committed_extract_of_aws_price_data():
    """Every price of the table comes from AWS's price data through the committed extract (the
    proxy's 2-vCPU minimum, a billing rule, from its pricing page); `method` says so, and --check
    regenerates the table from the extract byte for byte."""
    gen, table, offerings = _tables()
    assert table["method"].startswith("generated from AWS's public price data") and "aws_price_extract.json" in table["method"]
    assert set(table["provenance"]) == set(gen.figures(table))
    for figure, origin in table["provenance"].items():
        expected = "transcribed:" if figure.endswith(".proxy_min_vcpu") else "aws-price-data: QuinnyPig/aws-price-watcher@"
        assert origin.startswith(expected), figure
    with open(gen.EXTRACT) as fh:
        extract = json.load(fh)
    assert gen.dump(gen.table_from_extract(extract, offerings)) == gen.dump(table)
    assert {"us-east-1", "eu-west-1"} <= set(table["regions"])
    assert table["date"] == "2025-06-17"


def test_check_refuses_a_table_that_is_not_what_the_extract_gives(tmp_path, monkeypatch):
    gen = _generator()
    table = cost.load_prices()
    table["regions"]["eu-west-1"]["alarm_month"] = 0.05  # a hand edit, written as the tool writes
    out = tmp_path / "aws_prices.json"
    out.write_text(gen.dump(table))
    monkeypatch.setattr(gen, "OUT", str(out))
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and json.loads(out.read_text()) == cost.load_prices()  # regenerated


def _watcher(tmp_path):
    """A miniature aws-price-watcher checkout: processed/<file>.json (price name -> location ->
    price) and, for one file, raw/<file>.json with AWS's manifest."""
    ie, ue = "EU (Ireland)", "US East (N. Virginia)"

    def inst(cls, cpus, price):
        return {f"{loc} (Instance Type: {cls}, Memory: 4 GiB, vCPU: {cpus}, Network Performance: x)": p
                for loc, p in ((ie, price), (ue, price), ("Asia Pacific (Tokyo)", price))}

    name = "Database Instance PostgreSQL No license required db {} General purpose {} Current Generation"
    processed = {
        "rds-postgresql-ondemand": {
            name.format("t4g.medium", "Single-AZ"): inst("db.t4g.medium", 2, "0.0690000000"),
            name.format("t4g.medium", "Multi-AZ"): inst("db.t4g.medium", 2, "0.1380000000"),
            name.format("t4g.medium", "Multi-AZ readable standbys"): inst("db.t4g.medium", 2, "9.0000000000"),
            name.format("x9.nope", "Single-AZ"): inst("db.x9.nope", 2, "1.0000000000"),
            name.format("x9.nope", "Multi-AZ"): inst("db.x9.nope", 2, "2.0000000000"),
            "Database Instance MySQL db t4g.medium Single-AZ": inst("db.t4g.medium", 2, "5.0000000000"),
        },
        "rds-storage": {"Database Storage Single AZ General Purpose-GP3": {ie: "0.1270000000", ue: "0.1150000000"},
                        "Database Storage Multi AZ General Purpose-GP3": {ie: "0.2540000000", ue: "0.2300000000"},
                        "Storage Snapshot": {ie: "0.0950000000", ue: "0.0950000000"},
                        "Storage Snapshot Aurora PostgreSQL": {ie: "0.0210000000"}},
        "rds-proxy": {"RDSProxy": {ie: "0.0160000000"}, "RDSProxy Aurora PostgreSQL Hrs": {ie: "0.0999000000"}},
        "vpc": {"Hourly charge for VPC Endpoints per Hrs": {ie: "0.0110000000"}},
        "kms": {"Encryption Key": {ie: "1.0000000000"}},
        "secretsmanager": {"Secret": {ie: "0.4000000000"}},
        "cloudwatch": {"Alarm Standard": {ie: "0.1000000000"}, "Alarm High Resolution": {ie: "0.3000000000"}},
        "datatransfer": {
            "DataTransfer InterRegion Outbound to EU Frankfurt": {f"{ie} (To Location: EU (Frankfurt))": "0.0200000000"},
            "DataTransfer InterRegion Outbound to EU London": {f"{ie} (To Location: EU (London))": "0.0200000000"},
            "DataTransfer InterRegion Outbound to Asia Pacific Thailand": {f"{ie} (To Location: x)": "0.0800000000"},
            "DataTransfer External Outbound": {ie: "0.0900000000"}},
    }
    for f, data in processed.items():
        (tmp_path / "processed").mkdir(exist_ok=True)
        (tmp_path / "processed" / f"{f}.json").write_text(json.dumps(data))
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "rds-storage.json").write_text(json.dumps(
        {"manifest": {"hawkFilePublicationDate": "2025-06-17T16:11:03Z"}, "regions": {}}))
    return tmp_path


def test_from_watcher_extracts_the_prices_used_and_the_table_follows(tmp_path):
    gen, _, offerings = _tables()
    extract = gen.extract_from_watcher(str(_watcher(tmp_path)), "a" * 40, "2025-06-18T14:10:40-07:00")
    files = extract["files"]
    # verbatim, only the prices used, only the covered regions (Tokyo is not), MySQL and clusters out
    pg = files["rds-postgresql-ondemand"]["prices"]
    assert len(pg) == 4 and all("Tokyo" not in loc for by in pg.values() for loc in by)
    assert files["rds-storage"]["prices"]["Storage Snapshot"] == {"EU (Ireland)": "0.0950000000",
                                                                 "US East (N. Virginia)": "0.0950000000"}
    assert files["rds-storage"]["published"] == "2025-06-17T16:11:03Z" and files["vpc"]["published"] is None
    assert "DataTransfer External Outbound" not in files["datatransfer"]["prices"]
    table = gen.table_from_extract(extract, offerings)
    eu = table["regions"]["eu-west-1"]
    assert eu == {
        "rds_postgres_instance_hour": {"db.t4g.medium": {"single_az": 0.069, "multi_az": 0.138, "vcpu": 2}},
        "rds_gp3_gb_month": {"single_az": 0.127, "multi_az": 0.254}, "backup_gb_month": 0.095,
        "proxy_vcpu_hour": 0.016, "proxy_min_vcpu": 2, "interface_endpoint_az_hour": 0.011,
        "kms_key_month": 1.0, "secret_month": 0.4, "alarm_month": 0.1, "cross_region_copy_gb": 0.02}
    assert set(table["regions"]["us-east-1"]) == {"rds_postgres_instance_hour", "rds_gp3_gb_month", "backup_gb_month"}
    assert table["date"] == "2025-06-17" and table["method"].startswith("generated from AWS's public price data")
    assert table["provenance"]["eu-west-1.alarm_month"] == (
        f'aws-price-data: QuinnyPig/aws-price-watcher@{"a" * 12} processed/cloudwatch.json "Alarm Standard" / EU (Ireland)')
    assert table["provenance"]["eu-west-1.cross_region_copy_gb"].endswith(": the rate of 2 of 3 destinations")
    assert gen.problems(table, offerings) == []
