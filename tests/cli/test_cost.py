"""`plan`'s monthly cost: Pulumi.prod.yaml against a hand computation from the committed table."""

from __future__ import annotations

import copy
import json

import pytest

from bulkhead import cost
from bulkhead.cli import main
from bulkhead.planfile import Plan

PRICES = cost.load_prices()
US = PRICES["regions"]["us-east-1"]
EU = PRICES["regions"]["eu-west-1"]
H = PRICES["hours_per_month"]


def _hour(cls, multi, rates=US):
    return rates["rds_postgres_instance_hour"][cls]["multi_az" if multi else "single_az"]


def _backup(gb, days, copied, rates=US):
    stored = gb * (1 + cost.DAILY_CHANGE * days) * rates["backup_gb_month"]
    if copied:
        stored = stored * 2 + gb * cost.DAILY_CHANGE * 30 * rates["cross_region_copy_gb"]
    return stored


def _hand_prod(rates):
    """Pulumi.prod.yaml, line by line, at the prices of one region of the table: auth (critical: 30
    days, DR copy) db.r6g.large multi-AZ + 2 replicas, 50 GB; app (standard: 7 days) db.r6g.xlarge
    multi-AZ + 1 db.r6g.large, 100 GB; worker (standard) db.t4g.medium multi-AZ, 20 GB (the
    defaults). One key and one secret each; 6 interface endpoints in 3 subnets."""
    gp3 = rates["rds_gp3_gb_month"]
    key, secret, alarm = rates["kms_key_month"], rates["secret_month"], rates["alarm_month"]
    auth = (_hour("db.r6g.large", True, rates) + 2 * _hour("db.r6g.large", False, rates)) * H \
        + 50 * gp3["multi_az"] + 2 * 50 * gp3["single_az"] + _backup(50, 30, True, rates) + key + secret
    app = (_hour("db.r6g.xlarge", True, rates) + _hour("db.r6g.large", False, rates)) * H \
        + 100 * gp3["multi_az"] + 100 * gp3["single_az"] + _backup(100, 7, False, rates) + key + secret
    worker = _hour("db.t4g.medium", True, rates) * H + 20 * gp3["multi_az"] + _backup(20, 7, False, rates) + key + secret
    # CloudWatch alarms (issue 24): 4 on each primary (CPU, storage, connections, memory), 2 on each
    # replica (CPU, replica lag).
    auth += (4 + 2 * 2) * alarm
    app += (4 + 2 * 1) * alarm
    worker += 4 * alarm
    endpoints = 6 * 3 * rates["interface_endpoint_az_hour"] * H
    return {"auth": auth, "app": app, "worker": worker, "endpoints": endpoints}


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_prod_matches_the_hand_computation(prod_export, region):
    """eu-west-1 is Pulumi.prod.yaml as committed (its ARNs name the region); us-east-1 the same
    catalogue priced there."""
    rates = PRICES["regions"][region]
    plan = Plan.from_export(prod_export)
    got = cost.estimate(plan, region=None if region == "eu-west-1" else region)
    assert got["region"] == region
    hand = _hand_prod(rates)
    for name in ("auth", "app", "worker"):
        assert got["databases"][name]["total"] == pytest.approx(hand[name], abs=0.05), name
    assert got["stack_wide"]["endpoints"] == pytest.approx(hand["endpoints"], abs=0.01)
    keys = sum(1 for r in plan.of_type(cost.KEY)) - 3
    assert got["stack_wide"]["keys"] == pytest.approx(keys * rates["kms_key_month"])
    expected_total = hand["auth"] + hand["app"] + hand["worker"] + hand["endpoints"] + keys * rates["kms_key_month"]
    assert got["total"] == pytest.approx(expected_total, abs=0.1)
    assert got["unknown"] == [] and got["source"] and got["date"] == PRICES["date"]
    assert got["provenance"]["rds_postgres_instance_hour"].startswith("aws-price-data: ")


def test_issue_figures_at_us_east_1():
    """Issue 24's anchors: about $131 a month of endpoints per stack and about $100 per default
    database (db.t4g.medium, multi-AZ, 20 GB), us-east-1 public prices."""
    assert 6 * 3 * US["interface_endpoint_az_hour"] * H == pytest.approx(131.40)
    default = _hour("db.t4g.medium", True) * H + 20 * US["rds_gp3_gb_month"]["multi_az"]
    assert 95 < default < 105


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_single_az_and_with_proxy_alternatives(prod_export, region):
    rates = PRICES["regions"][region]
    plan = Plan.from_export(prod_export)
    got = cost.estimate(plan, region=region)
    gp3 = rates["rds_gp3_gb_month"]
    saved = sum((_hour(c, True, rates) - _hour(c, False, rates)) * H + gb * (gp3["multi_az"] - gp3["single_az"])
                for c, gb in (("db.r6g.large", 50), ("db.r6g.xlarge", 100), ("db.t4g.medium", 20)))
    assert got["single_az_total"] == pytest.approx(got["total"] - saved, abs=0.1)
    # A proxy per database: per vCPU of the primary (the table's, from AWS's data: 2, 4 and 2), at
    # least proxy_min_vcpu (2).
    cpus = [rates["rds_postgres_instance_hour"][c]["vcpu"] for c in ("db.r6g.large", "db.r6g.xlarge", "db.t4g.medium")]
    assert cpus == [2, 4, 2]
    proxies = sum(max(c, rates["proxy_min_vcpu"]) for c in cpus) * rates["proxy_vcpu_hour"] * H
    assert got["with_proxy_total"] == pytest.approx(got["total"] + proxies, abs=0.1)


def test_a_region_with_few_prices_is_unknown_where_the_table_has_none(prod_export):
    """Where the table lists only keys, secrets and alarms for the region, every figure that needs
    another price is "unknown", and so is every total, never a guess."""
    prices = copy.deepcopy(PRICES)
    prices["regions"]["eu-west-1"] = {k: EU[k] for k in ("kms_key_month", "secret_month", "alarm_month")}
    got = cost.estimate(Plan.from_export(prod_export), prices=prices)
    assert got["region"] == "eu-west-1"
    assert got["databases"]["auth"]["instances"] == "unknown"
    assert got["databases"]["auth"]["keys"] == EU["kms_key_month"] and got["databases"]["auth"]["secrets"] == EU["secret_month"]
    assert got["databases"]["auth"]["alarms"] == pytest.approx((4 + 2 * 2) * EU["alarm_month"])
    assert got["stack_wide"]["endpoints"] == "unknown"
    assert got["total"] == got["single_az_total"] == got["with_proxy_total"] == "unknown"
    assert any("db.r6g.large" in u for u in got["unknown"])
    printed = cost.render(got)
    reasons = [line for line in printed.splitlines() if line.startswith("unknown: ")]
    assert len(got["unknown"]) > 3 and reasons[:3] == [f"unknown: {r}" for r in got["unknown"][:3]]
    assert reasons[3] == f"unknown: ... and {len(got['unknown']) - 3} more (`check --json`: cost.unknown)"
    assert "the price table has instance prices for: " in printed


def test_unknown_class_and_unknown_region(prod_export):
    export = copy.deepcopy(prod_export)
    for r in export["deployment"]["resources"]:
        if r["type"] == cost.INSTANCE and r["inputs"]["tags"]["bulkhead:database"] == "worker":
            r["inputs"]["instanceClass"] = "db.x9.notpriced"
    got = cost.estimate(Plan.from_export(export), region="us-east-1")
    assert got["databases"]["worker"]["instances"] == "unknown" and got["databases"]["worker"]["total"] == "unknown"
    assert isinstance(got["databases"]["auth"]["total"], float)
    assert got["total"] == "unknown"
    assert "us-east-1: no price for instance class db.x9.notpriced" in got["unknown"]
    nowhere = cost.estimate(Plan.from_export(prod_export), region="ap-south-2")
    assert nowhere["total"] == "unknown" and nowhere["unknown"] == ["region ap-south-2: not in the price table"]


def test_plan_prints_and_carries_the_cost_and_check_json_has_it(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["plan", "--stack", "prod", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "estimated monthly cost (USD, eu-west-1; prices of " + PRICES["date"] in printed
    export = json.loads(out.read_text())
    figures = export["bulkhead"]["cost"]
    assert f"stack total: ${figures['total']:,.2f}   single-AZ: ${figures['single_az_total']:,.2f}   " \
           f"with proxy: ${figures['with_proxy_total']:,.2f}" in printed
    assert not [line for line in printed.splitlines() if line.startswith("unknown: ")]
    assert ("prices for eu-west-1: 9 from AWS's public price data; 1 transcribed by hand from AWS pricing pages "
            "(aws_prices.json `provenance`)") in printed
    assert export["version"] == 3 and figures["region"] == "eu-west-1"
    assert figures["method"] == PRICES["method"] and figures["provenance"]["proxy_min_vcpu"].startswith("transcribed:")
    main(["check", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["cost"] == figures
    # A `pulumi stack export` has no `bulkhead` key: check --json estimates from its resources.
    del export["bulkhead"]
    out.write_text(json.dumps(export))
    main(["check", str(out), "--json"])
    assert json.loads(capsys.readouterr().out)["cost"]["databases"].keys() == {"auth", "app", "worker"}


def test_dev_plans_have_no_cost(dev_export):
    from bulkhead.commands.check import cost_of

    assert cost_of(dev_export) == {}
