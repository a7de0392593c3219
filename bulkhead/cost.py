"""What a plan costs a month, from the committed price table (components/catalogue/data/aws_prices.json).

Pure computation on a plan (bulkhead/planfile.py): no Pulumi, no network. Every figure is
USD per month of on-demand use at `hours_per_month`; a figure the table cannot give (a region
or instance class it does not list) is the string "unknown", never a guess, and so is every
total it goes into. Besides the plan as written, the same catalogue single-AZ and with a
proxy in front of every database, the two choices `multi_az` and `proxy` put a price on.

What is counted, per database (resources tagged `bulkhead:database`): the primary (x2 when
multi-AZ: RDS bills the standby's hours and storage, RDS User Guide "Multi-AZ DB instances",
USER_OnDemandDBInstances), its replicas, gp3 storage (replicas hold a copy of the primary's),
its RDS Proxy (per vCPU of the instance, with a minimum: RDS Proxy pricing), alarms, KMS keys,
secrets, and AWS Backup storage at its tier's retention. Stack-wide: interface VPC endpoints
(per endpoint per subnet/AZ hour: PrivateLink pricing), and the keys, secrets and alarms
tagged with no database. Not counted (stated in `assumptions`): data transfer and endpoint data
processing (usage), automated backups within the free allowance, Lambda invocations, logs.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Union

from bulkhead.planfile import Plan, props, tags_of
from policies.bulkhead_types import TAG_DATABASE, TAG_TIER

PRICES_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "components", "catalogue", "data", "aws_prices.json")
UNKNOWN = "unknown"
# The plan summary lists this many reasons for "unknown"; the plan file and `check --json` carry all.
UNKNOWN_SHOWN = 3
# AWS Backup keeps incremental snapshots: the first is a full copy, each later one what changed.
# 1% of the allocated storage per retained day is the assumption (stated in the output).
DAILY_CHANGE = 0.01

Money = Union[float, str]

INSTANCE = "aws:rds/instance:Instance"
PROXY = "aws:rds/proxy:Proxy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
BACKUP_PLAN = "aws:backup/plan:Plan"
TAG_ROLE = "bulkhead:role"

ASSUMPTIONS = (
    "on-demand prices, 730 hours a month, no free tier, no reservations",
    "AWS Backup storage: a full copy plus 1% of the allocated storage per retained day; "
    "DR copies priced like the primary region's backup storage plus the cross-region transfer of each day's change",
    "automated backups (PITR) within the free allowance (the provisioned storage)",
    "not counted: data transfer, endpoint data processing, Lambda, CloudWatch Logs, Performance Insights beyond 7 days",
    "not counted: SNS notifications and RDS event subscriptions (per message; a topic and a subscription cost nothing at rest)",
    "KMS keys at $1 a month, their first year: each yearly rotation's new key material adds $1 a month "
    "(AWS KMS pricing page), not counted",
)
# How each figure's provenance (aws_prices.json `provenance`, tools/generate_aws_prices.py) is named in `plan`.
PROVENANCE_NAMES = (("offer:", "from AWS Price List offer files"),
                    ("aws-price-data:", "from AWS's public price data"),
                    ("offer-extract:", "from a published extract of an offer file"),
                    ("transcribed:", "transcribed by hand from AWS pricing pages"))


def load_prices(path: str = PRICES_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _add(*values: Money) -> Money:
    if any(v == UNKNOWN for v in values):
        return UNKNOWN
    return round(sum(float(v) for v in values), 2)


def _times(rate: Any, *factors: float) -> Money:
    if rate is None:
        return UNKNOWN
    value = float(rate)
    for f in factors:
        value *= f
    return round(value, 2)


def region_of(plan: Plan) -> Optional[str]:
    """The stack's region where the plan shows it: the ARN of a primary instance."""
    for r in plan.of_type(INSTANCE):
        arn = (r.get("outputs") or {}).get("arn")
        if isinstance(arn, str) and arn.count(":") >= 4:
            return arn.split(":")[3] or None
    return None


def _database(resource: dict) -> Optional[str]:
    names = [n for n in (tags_of(resource).get(TAG_DATABASE) or "").split(",") if n]
    return names[0] if len(names) == 1 else None


def _tier_backups(plan: Plan) -> dict[str, tuple[int, bool]]:
    """tier -> (retention days, copied to the DR region) from the AWS Backup plans."""
    out = {}
    for r in plan.of_type(BACKUP_PLAN):
        tier = tags_of(r).get(TAG_TIER)
        rules = props(r).get("rules") or []
        if not tier or not rules:
            continue
        rule = rules[0]
        days = int(((rule.get("lifecycle") or {}).get("deleteAfter")) or 0)
        out[tier] = (days, bool(rule.get("copyActions")))
    return out


def estimate(plan: Plan, region: Optional[str] = None, prices: Optional[dict] = None) -> dict:
    """The monthly cost of `plan` in `region` (default: the region its ARNs name)."""
    prices = prices if prices is not None else load_prices()
    region = region or region_of(plan)
    rates = (prices.get("regions") or {}).get(region or "", {})
    hours = float(prices.get("hours_per_month", 730))
    missing: set[str] = set()
    if not rates:
        missing.add(f"region {region or '(none)'}: not in the price table")

    def rate(key: str) -> Any:
        value = rates.get(key)
        if value is None and rates:
            missing.add(f"{region}: no price for {key}")
        return value

    def instance_hour(cls: str, multi_az: bool) -> Any:
        row = (rates.get("rds_postgres_instance_hour") or {}).get(cls)
        if row is None:
            if rates:
                missing.add(f"{region}: no price for instance class {cls}")
            return None
        return row["multi_az" if multi_az else "single_az"]

    def vcpu(cls: str) -> Optional[int]:
        row = (rates.get("rds_postgres_instance_hour") or {}).get(cls)
        return row.get("vcpu") if row else None

    tiers = _tier_backups(plan)
    per_db: dict[str, dict[str, Any]] = {}

    def facts(name: str) -> dict[str, Any]:
        return per_db.setdefault(name, {"primary": None, "replicas": [], "proxies": 0, "alarms": 0,
                                        "keys": 0, "secrets": 0})

    stack = {"alarms": 0, "keys": 0, "secrets": 0, "endpoint_az": 0}
    for r in plan.resources:
        t = r["type"]
        if t not in (INSTANCE, PROXY, ALARM, KEY, SECRET, ENDPOINT):
            continue
        name = _database(r)
        p = props(r)
        if t == INSTANCE and name:
            if tags_of(r).get(TAG_ROLE) == "replica" or p.get("replicateSourceDb"):
                facts(name)["replicas"].append(str(p.get("instanceClass")))
            else:
                facts(name)["primary"] = {
                    "class": str(p.get("instanceClass")), "multi_az": bool(p.get("multiAz")),
                    "storage_gb": int(p.get("allocatedStorage") or 0), "tier": tags_of(r).get(TAG_TIER)}
        elif t == PROXY and name:
            facts(name)["proxies"] += 1
        elif t == ENDPOINT:
            if p.get("vpcEndpointType") == "Interface":
                stack["endpoint_az"] += len(p.get("subnetIds") or [])
        else:
            kind = {ALARM: "alarms", KEY: "keys", SECRET: "secrets"}[t]
            if name:
                facts(name)[kind] += 1
            else:
                stack[kind] += 1

    def database_cost(f: dict, single_az: bool = False, proxy: bool = False) -> dict[str, Money]:
        primary = f["primary"]
        out: dict[str, Money] = {}
        if primary is None:
            return {"total": 0.0}
        multi = primary["multi_az"] and not single_az
        gb = primary["storage_gb"]
        out["instances"] = _add(_times(instance_hour(primary["class"], multi), hours),
                                *(_times(instance_hour(c, False), hours) for c in f["replicas"]))
        storage = rates.get("rds_gp3_gb_month") or {}
        if not storage and rates:
            missing.add(f"{region}: no price for rds_gp3_gb_month")
        out["storage"] = _add(_times(storage.get("multi_az" if multi else "single_az"), gb),
                              *(_times(storage.get("single_az"), gb) for _ in f["replicas"]))
        proxies = max(f["proxies"], 1 if proxy else 0)
        cpus = vcpu(primary["class"])
        if proxies:
            out["proxy"] = (UNKNOWN if cpus is None else
                            _times(rate("proxy_vcpu_hour"), max(cpus, int(rates.get("proxy_min_vcpu") or 0)),
                                   hours, proxies))
        else:
            out["proxy"] = 0.0
        out["alarms"] = _times(rate("alarm_month"), f["alarms"]) if f["alarms"] else 0.0
        out["keys"] = _times(rate("kms_key_month"), f["keys"]) if f["keys"] else 0.0
        out["secrets"] = _times(rate("secret_month"), f["secrets"]) if f["secrets"] else 0.0
        days, copied = tiers.get(primary["tier"] or "", (0, False))
        stored = gb * (1 + DAILY_CHANGE * days) if days else 0.0
        backup = _times(rate("backup_gb_month"), stored) if stored else 0.0
        if copied and stored:
            transfer = _times(rate("cross_region_copy_gb"), gb * DAILY_CHANGE * 30)
            backup = _add(backup, _times(rate("backup_gb_month"), stored), transfer)
        out["backups"] = backup
        out["total"] = _add(*out.values())
        return out

    databases = {name: database_cost(f) for name, f in sorted(per_db.items())}
    stack_wide: dict[str, Money] = {
        "endpoints": _times(rate("interface_endpoint_az_hour"), stack["endpoint_az"], hours) if stack["endpoint_az"] else 0.0,
        "alarms": _times(rate("alarm_month"), stack["alarms"]) if stack["alarms"] else 0.0,
        "keys": _times(rate("kms_key_month"), stack["keys"]) if stack["keys"] else 0.0,
        "secrets": _times(rate("secret_month"), stack["secrets"]) if stack["secrets"] else 0.0,
    }
    stack_wide["total"] = _add(*stack_wide.values())

    def total(**variant) -> Money:
        return _add(stack_wide["total"], *(database_cost(f, **variant)["total"] for f in per_db.values()))

    result = {
        "currency": "USD",
        "period": "month",
        "region": region,
        "source": prices.get("source"),
        "date": prices.get("date"),
        "databases": databases,
        "stack_wide": stack_wide,
        "total": total(),
        "single_az_total": total(single_az=True),
        "with_proxy_total": total(proxy=True),
        "covers": {r: sorted((v.get("rds_postgres_instance_hour") or {})) for r, v in sorted((prices.get("regions") or {}).items())},
        "method": prices.get("method"),
        "provenance": {k.split(".", 1)[1]: v for k, v in sorted((prices.get("provenance") or {}).items())
                       if k.split(".", 1)[0] == region},
        "assumptions": list(ASSUMPTIONS),
        "unknown": sorted(missing),
    }
    return result


def _money(value: Money) -> str:
    return value if isinstance(value, str) else f"${value:,.2f}"


def render(cost: dict) -> str:
    """The `plan` summary's cost section."""
    cols = ("instances", "storage", "proxy", "backups", "alarms", "keys", "secrets", "total")
    rows = [(name, *(_money(c.get(k, 0.0)) for k in cols)) for name, c in cost["databases"].items()]
    sw = cost["stack_wide"]
    rows.append(("(stack-wide)", "-", "-", "-", "-", _money(sw["alarms"]), _money(sw["keys"]), _money(sw["secrets"]),
                 _money(sw["total"])))
    header = ("database", *cols)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [f"estimated monthly cost ({cost['currency']}, {cost['region'] or 'region unknown'}; prices of "
             f"{cost['date']}, components/catalogue/data/aws_prices.json):"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    lines.append(f"VPC endpoints: {_money(sw['endpoints'])}")
    lines.append(f"stack total: {_money(cost['total'])}   single-AZ: {_money(cost['single_az_total'])}   "
                 f"with proxy: {_money(cost['with_proxy_total'])}")
    origins = list((cost.get("provenance") or {}).values())
    counted = [f"{n} {name}" for prefix, name in PROVENANCE_NAMES
               if (n := sum(1 for o in origins if str(o).startswith(prefix)))]
    if counted:
        lines.append(f"prices for {cost['region']}: " + "; ".join(counted) + " (aws_prices.json `provenance`)")
    shown = cost["unknown"][:UNKNOWN_SHOWN]
    lines.extend(f"unknown: {reason}" for reason in shown)
    if len(cost["unknown"]) > len(shown):
        lines.append(f"unknown: ... and {len(cost['unknown']) - len(shown)} more (`check --json`: cost.unknown)")
    if cost["unknown"]:
        covered = ", ".join(r for r, classes in cost.get("covers", {}).items() if classes) or "none"
        lines.append(f"the price table has instance prices for: {covered} (docs/prod-stack.md, \"Cost at plan time\")")
    return "\n".join(lines)
