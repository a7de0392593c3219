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
H = PRICES["hours_per_month"]


def _hour(cls, multi):
    return US["rds_postgres_instance_hour"][cls]["multi_az" if multi else "single_az"]


def _backup(gb, days, copied):
    stored = gb * (1 + cost.DAILY_CHANGE * days) * US["backup_gb_month"]
    if copied:
        stored = stored * 2 + gb * cost.DAILY_CHANGE * 30 * US["cross_region_copy_gb"]
    return stored


def _hand_prod_us_east_1():
    """Pulumi.prod.yaml, line by line: auth (critical: 30 days, DR copy) db.r6g.large multi-AZ + 2
    replicas, 50 GB; app (standard: 7 days) db.r6g.xlarge multi-AZ + 1 db.r6g.large, 100 GB;
    worker (standard) db.t4g.medium multi-AZ, 20 GB (the defaults). One key and one secret each;
    stack-wide 3 keys (backup, DR backup, flow logs... as the plan has them) and 6 interface
    endpoints in 3 subnets."""
    gp3 = US["rds_gp3_gb_month"]
    auth = (_hour("db.r6g.large", True) + 2 * _hour("db.r6g.large", False)) * H \
        + 50 * gp3["multi_az"] + 2 * 50 * gp3["single_az"] + _backup(50, 30, True) + US["kms_key_month"] + US["secret_month"]
    app = (_hour("db.r6g.xlarge", True) + _hour("db.r6g.large", False)) * H \
        + 100 * gp3["multi_az"] + 100 * gp3["single_az"] + _backup(100, 7, False) + US["kms_key_month"] + US["secret_month"]
    worker = _hour("db.t4g.medium", True) * H + 20 * gp3["multi_az"] + _backup(20, 7, False) \
        + US["kms_key_month"] + US["secret_month"]
    # CloudWatch alarms (issue 24): 4 on each primary (CPU, storage, connections, memory), 2 on each
    # replica (CPU, replica lag).
    alarm = US["alarm_month"]
    auth += (4 + 2 * 2) * alarm
    app += (4 + 2 * 1) * alarm
    worker += 4 * alarm
    endpoints = 6 * 3 * US["interface_endpoint_az_hour"] * H
    return {"auth": auth, "app": app, "worker": worker, "endpoints": endpoints}


def test_prod_in_us_east_1_matches_the_hand_computation(prod_export):
    plan = Plan.from_export(prod_export)
    got = cost.estimate(plan, region="us-east-1")
    hand = _hand_prod_us_east_1()
    for name in ("auth", "app", "worker"):
        assert got["databases"][name]["total"] == pytest.approx(hand[name], abs=0.05), name
    assert got["stack_wide"]["endpoints"] == pytest.approx(hand["endpoints"], abs=0.01)  # $131.40: issue 24's figure
    keys = sum(1 for r in plan.of_type(cost.KEY)) - 3
    assert got["stack_wide"]["keys"] == keys * US["kms_key_month"]
    expected_total = hand["auth"] + hand["app"] + hand["worker"] + hand["endpoints"] + keys * US["kms_key_month"]
    assert got["total"] == pytest.approx(expected_total, abs=0.1)
    # The default database (db.t4g.medium, multi-AZ, 20 GB) costs about $100 a month (issue 24).
    assert 95 < got["databases"]["worker"]["total"] < 110
    assert got["unknown"] == [] and got["source"] and got["date"] == PRICES["date"]


def test_single_az_and_with_proxy_alternatives(prod_export):
    plan = Plan.from_export(prod_export)
    got = cost.estimate(plan, region="us-east-1")
    saved = sum((_hour(c, True) - _hour(c, False)) * H + gb * (US["rds_gp3_gb_month"]["multi_az"] - US["rds_gp3_gb_month"]["single_az"])
                for c, gb in (("db.r6g.large", 50), ("db.r6g.xlarge", 100), ("db.t4g.medium", 20)))
    assert got["single_az_total"] == pytest.approx(got["total"] - saved, abs=0.1)
    # A proxy per database: per vCPU of the primary, at least proxy_min_vcpu (2, 4 and 2 vCPUs).
    proxies = (2 + 4 + 2) * US["proxy_vcpu_hour"] * H
    assert got["with_proxy_total"] == pytest.approx(got["total"] + proxies, abs=0.1)


def test_prod_as_committed_is_unknown_where_the_table_has_no_price(prod_export):
    """Pulumi.prod.yaml is in eu-west-1, where the table lists only keys and secrets: every figure
    that needs another price is "unknown", and so is every total, never a guess."""
    got = cost.estimate(Plan.from_export(prod_export))
    eu = PRICES["regions"]["eu-west-1"]
    assert got["region"] == "eu-west-1"
    assert got["databases"]["auth"]["instances"] == "unknown"
    assert got["databases"]["auth"]["keys"] == eu["kms_key_month"] and got["databases"]["auth"]["secrets"] == eu["secret_month"]
    # alarms: 4 on the primary, 2 on each of the 2 replicas, at the eu-west-1 price of the table
    assert got["databases"]["auth"]["alarms"] == pytest.approx((4 + 2 * 2) * eu["alarm_month"])
    assert got["stack_wide"]["endpoints"] == "unknown"
    assert got["provenance"]["alarm_month"].startswith("offer-extract:")
    assert got["provenance"]["kms_key_month"].startswith("transcribed:")
    assert got["total"] == got["single_az_total"] == got["with_proxy_total"] == "unknown"
    assert any("db.r6g.large" in u for u in got["unknown"])


def test_unknown_class_and_unknown_region(prod_export):
    export = copy.deepcopy(prod_export)
    for r in export["deployment"]["resources"]:
        if r["type"] == cost.INSTANCE and r["inputs"]["tags"]["bulkhead:database"] == "worker":
            r["inputs"]["instanceClass"] = "db.x2iedn.32xlarge"
    got = cost.estimate(Plan.from_export(export), region="us-east-1")
    assert got["databases"]["worker"]["instances"] == "unknown" and got["databases"]["worker"]["total"] == "unknown"
    assert isinstance(got["databases"]["auth"]["total"], float)
    assert got["total"] == "unknown"
    assert "us-east-1: no price for instance class db.x2iedn.32xlarge" in got["unknown"]
    nowhere = cost.estimate(Plan.from_export(prod_export), region="ap-south-2")
    assert nowhere["total"] == "unknown" and nowhere["unknown"] == ["region ap-south-2: not in the price table"]


def test_plan_prints_and_carries_the_cost_and_check_json_has_it(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["plan", "--stack", "prod", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "estimated monthly cost (USD, eu-west-1; prices of " + PRICES["date"] in printed
    assert "single-AZ: unknown" in printed and "with proxy: unknown" in printed
    # a few reasons, the count of the rest, and which regions the table does price
    reasons = [line for line in printed.splitlines() if line.startswith("unknown: ")]
    export = json.loads(out.read_text())
    missing = export["bulkhead"]["cost"]["unknown"]
    assert len(missing) > 3 and reasons[:3] == [f"unknown: {r}" for r in missing[:3]]
    assert reasons[3] == f"unknown: ... and {len(missing) - 3} more (`check --json`: cost.unknown)"
    assert "the price table has instance prices for: us-east-1 (" in printed
    assert ("prices for eu-west-1: 1 from a published extract of an offer file; "
            "2 transcribed by hand from AWS pricing pages (aws_prices.json `provenance`)") in printed
    assert export["version"] == 3 and export["bulkhead"]["cost"]["region"] == "eu-west-1"
    main(["check", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["cost"] == export["bulkhead"]["cost"]
    # A `pulumi stack export` has no `bulkhead` key: check --json estimates from its resources.
    del export["bulkhead"]
    out.write_text(json.dumps(export))
    main(["check", str(out), "--json"])
    assert json.loads(capsys.readouterr().out)["cost"]["databases"].keys() == {"auth", "app", "worker"}


def test_dev_plans_have_no_cost(dev_export):
    from bulkhead.commands.check import cost_of

    assert cost_of(dev_export) == {}
