#!/usr/bin/env python3
"""The price table bulkhead's `plan` prices a stack with: components/catalogue/data/aws_prices.json.

    .venv/bin/python tools/generate_aws_prices.py --check          # offline: exit 1 if the table is inconsistent
    .venv/bin/python tools/generate_aws_prices.py --from DIR        # rewrite figures from downloaded offer files

No installed package ships AWS prices: cfn-lint bundles RDS instance classes per region (which
tools/generate_rds_offerings.py reads) but no prices, and botocore has only the Pricing API's
model. The prices come from AWS's public Price List: the Bulk API's offer files
(https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<offer>/current/<region>/index.json,
"Getting price list files manually", AWS Billing User Guide), downloaded to
DIR/<offer>/<region>/index.json by whoever regenerates (the generator never downloads: CI
has no network to AWS). `--from` rewrites, for each offer and region found, the figures that
offer prices (OFFER_FIGURES), each with its provenance `offer:<offer>/<region> version <v>
published <date>`, keeping the other figures and their provenance.

Every figure carries its provenance in `provenance` ("<region>.<figure>" -> where it comes
from): an offer file (`offer:`), an extract of one published in a public repository
(`offer-extract:`), or a pricing page transcribed by hand (`transcribed:`). `method` says
"generated from AWS Price List offer files" only when every price is `offer:` (billing rules
such as the proxy's 2-vCPU minimum, RULE_KEYS, are on pricing pages only).

`--check` needs no network: the committed table's shape, every region and class in it offered
for PostgreSQL there (components/catalogue/data/rds_offerings.json, from cfn-lint), Multi-AZ
never cheaper than Single-AZ, a source and an ISO date, a provenance for every figure and a
`method` that matches them, and the file written as this tool writes it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "components", "catalogue", "data", "aws_prices.json")
OFFERINGS = os.path.join(ROOT, "components", "catalogue", "data", "rds_offerings.json")
# Region-level rates (USD): what each one is per.
RATE_KEYS = {
    "alarm_month": "standard-resolution CloudWatch metric alarm, per month",
    "backup_gb_month": "AWS Backup RDS snapshot (warm) storage, per GB-month",
    "cross_region_copy_gb": "data transfer of a copy to another region, per GB",
    "interface_endpoint_az_hour": "interface VPC endpoint, per endpoint per AZ per hour",
    "kms_key_month": "customer managed KMS key, per month",
    "proxy_min_vcpu": "RDS Proxy bills at least this many vCPUs",
    "proxy_vcpu_hour": "RDS Proxy, per vCPU of the target instance per hour",
    "secret_month": "Secrets Manager secret, per month",
}
TABLE_KEYS = {"rds_postgres_instance_hour", "rds_gp3_gb_month"}
PROVENANCE_KINDS = ("offer:", "offer-extract:", "transcribed:")
GENERATED = "generated from AWS Price List offer files"
# The scalar figures each offer prices: figure -> (usagetype suffix after the region prefix, how to
# pick among matches). Prefixes differ per offer ("EU-VpcEndpoint-Hours", "USE1-RDS:ProxyUsage",
# KMS: "eu-west-1-KMS-Keys"); the suffixes are those AWS bills under (Cost Explorer usage types,
# the same strings in the offer files' `usagetype`). Only the on-demand price of the first tier is
# taken. A suffix that matches nothing leaves the figure as it was, and --from reports it.
OFFER_FIGURES = {
    "AmazonVPC": {"interface_endpoint_az_hour": ("VpcEndpoint-Hours", "first")},
    "awskms": {"kms_key_month": ("KMS-Keys", "first")},
    "AWSSecretsManager": {"secret_month": ("AWSSecretsManager-Secrets", "first")},
    "AmazonCloudWatch": {"alarm_month": ("CW:AlarmMonitorUsage", "first")},
    # RDS Proxy: "$0.015 per hour per vCPU of the RDS PostgreSQL instances associated with an RDS
    # Proxy" (us-east-1). Backup storage: the RDS backup-storage rate, which AWS Backup's pricing
    # page also lists for RDS snapshots (warm storage).
    "AmazonRDS": {"proxy_vcpu_hour": ("RDS:ProxyUsage", "first"),
                  "backup_gb_month": ("RDS:ChargedBackupUsage", "first")},
    # Inter-region transfer out ("USE1-EUC1-AWS-Out-Bytes"): the DR region is the stack's choice,
    # so the dearest destination is taken.
    "AWSDataTransfer": {"cross_region_copy_gb": ("AWS-Out-Bytes", "max")},
}
# Figures that are billing rules, not prices (the proxy's 2-vCPU minimum: RDS Proxy pricing
# page), so no offer file carries them: a generated table may keep them transcribed.
RULE_KEYS = {"proxy_min_vcpu"}


def dump(table: dict) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def problems(table: dict, offerings: dict) -> list[str]:
    out = []
    for key in ("generated_by", "source", "date", "hours_per_month", "regions", "method", "provenance"):
        if key not in table:
            out.append(f"missing top-level key {key}")
    try:
        datetime.date.fromisoformat(str(table.get("date")))
    except ValueError:
        out.append(f"date {table.get('date')!r} is not an ISO date")
    if table.get("hours_per_month") != 730:
        out.append("hours_per_month must be 730 (AWS's monthly estimate: 24 x 365 / 12)")
    offered = offerings.get("instance_classes_by_region") or {}
    for region, rates in (table.get("regions") or {}).items():
        if region not in offered:
            out.append(f"{region}: not a region RDS offers PostgreSQL in (rds_offerings.json)")
        for key, value in rates.items():
            if key in TABLE_KEYS:
                continue
            if key not in RATE_KEYS:
                out.append(f"{region}.{key}: unknown rate (known: {', '.join(sorted(set(RATE_KEYS) | TABLE_KEYS))})")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                out.append(f"{region}.{key}: {value!r} is not a price")
        storage = rates.get("rds_gp3_gb_month")
        if storage is not None and not (0 < storage.get("single_az", 0) <= storage.get("multi_az", 0)):
            out.append(f"{region}.rds_gp3_gb_month: needs single_az > 0 and multi_az >= single_az")
        for cls, row in (rates.get("rds_postgres_instance_hour") or {}).items():
            where = f"{region}.rds_postgres_instance_hour.{cls}"
            if cls not in offered.get(region, []):
                out.append(f"{where}: RDS does not offer {cls} for PostgreSQL in {region}")
            if set(row) != {"single_az", "multi_az", "vcpu"}:
                out.append(f"{where}: needs exactly single_az, multi_az and vcpu")
                continue
            if not (0 < row["single_az"] <= row["multi_az"]):
                out.append(f"{where}: needs single_az > 0 and multi_az >= single_az")
            if not isinstance(row["vcpu"], int) or row["vcpu"] < 1:
                out.append(f"{where}: vcpu must be a positive integer")
    out.extend(provenance_problems(table))
    return out


def figures(table: dict) -> list[str]:
    """Every figure of the table as "<region>.<key>" (an instance-class table counts as one)."""
    return sorted(f"{region}.{key}" for region, rates in (table.get("regions") or {}).items() for key in rates)


def _all_offer(prov: dict) -> bool:
    prices = {k: v for k, v in prov.items() if k.split(".", 1)[-1] not in RULE_KEYS}
    return bool(prices) and all(str(v).startswith("offer:") for v in prices.values())


def provenance_problems(table: dict) -> list[str]:
    out = []
    prov = table.get("provenance") or {}
    for fig in figures(table):
        where = prov.get(fig)
        if not where:
            out.append(f"{fig}: no provenance (where does this price come from?)")
        elif not str(where).startswith(PROVENANCE_KINDS):
            out.append(f"{fig}: provenance {where!r} must start with one of {', '.join(PROVENANCE_KINDS)}")
    for fig in sorted(set(prov) - set(figures(table))):
        out.append(f"provenance {fig}: no such figure in the table")
    all_offer = _all_offer(prov)
    method = str(table.get("method") or "")
    if method.startswith(GENERATED) and not all_offer:
        out.append(f"method says {GENERATED!r} but not every figure's provenance is an offer file")
    if all_offer and not method.startswith(GENERATED):
        out.append(f"every figure comes from an offer file: method must start with {GENERATED!r}")
    return out


def _on_demand_usd(terms: dict, sku: str) -> float | None:
    for term in (terms.get("OnDemand") or {}).get(sku, {}).values():
        for dim in term.get("priceDimensions", {}).values():
            usd = dim.get("pricePerUnit", {}).get("USD")
            if usd is not None:
                return float(usd)
    return None


def rds_rows(offer: dict) -> tuple[dict, dict, str | None]:
    """(class -> {single_az, multi_az, vcpu}, gp3 {single_az, multi_az}, publication date) of one
    AmazonRDS regional offer file: PostgreSQL, on-demand."""
    classes: dict[str, dict] = {}
    storage: dict[str, float] = {}
    terms = offer.get("terms") or {}
    for sku, product in (offer.get("products") or {}).items():
        a = product.get("attributes") or {}
        deployment = {"Single-AZ": "single_az", "Multi-AZ": "multi_az"}.get(a.get("deploymentOption", ""))
        if deployment is None or a.get("databaseEngine") not in ("PostgreSQL",):
            continue
        price = _on_demand_usd(terms, sku)
        if price is None:
            continue
        if product.get("productFamily") == "Database Instance" and a.get("instanceType"):
            row = classes.setdefault(a["instanceType"], {})
            row[deployment] = price
            row["vcpu"] = int(a.get("vcpu") or 0)
        elif product.get("productFamily") == "Database Storage" and a.get("volumeType") == "General Purpose-GP3":
            storage[deployment] = price
    complete = {c: r for c, r in classes.items() if {"single_az", "multi_az"} <= set(r) and r["vcpu"] > 0}
    return complete, storage, (offer.get("publicationDate") or "")[:10] or None


def usage_price(offer: dict, suffix: str, pick: str = "first") -> float | None:
    """The on-demand USD price of the products whose `usagetype` is `suffix` after a region prefix;
    where products name a database engine, PostgreSQL's (else the engine-neutral "Any")."""
    terms = offer.get("terms") or {}
    found: dict[str, list[float]] = {}
    for sku, product in sorted((offer.get("products") or {}).items()):
        attrs = product.get("attributes") or {}
        usage = str(attrs.get("usagetype") or "")
        if usage == suffix or usage.endswith("-" + suffix):
            price = _on_demand_usd(terms, sku)
            if price is not None:
                found.setdefault(str(attrs.get("databaseEngine") or ""), []).append(price)
    for engine in ("PostgreSQL", "Any", ""):
        if found.get(engine):
            return max(found[engine]) if pick == "max" else found[engine][0]
    return None


def _offer_files(source_dir: str, offer: str):
    base = os.path.join(source_dir, offer)
    if not os.path.isdir(base):
        return
    for region in sorted(os.listdir(base)):
        path = os.path.join(base, region, "index.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                yield region, json.load(fh)


def _provenance(offer_code: str, region: str, offer: dict) -> str:
    return (f"offer:{offer_code}/{region} version {offer.get('version') or '?'} "
            f"published {offer.get('publicationDate') or '?'}")


def regenerate(table: dict, source_dir: str, report=None, offerings: dict | None = None) -> dict:
    """`table` with every figure the offer files under `source_dir` price rewritten. With
    `offerings` (rds_offerings.json), only the classes RDS offers for PostgreSQL in the region."""
    prov = table.setdefault("provenance", {})
    dates = []
    offered = (offerings or {}).get("instance_classes_by_region")
    for region, offer in _offer_files(source_dir, "AmazonRDS"):
        classes, storage, date = rds_rows(offer)
        if offered is not None:
            dropped = sorted(c for c in classes if c not in offered.get(region, []))
            classes = {c: r for c, r in classes.items() if c not in dropped}
            if dropped and report:
                report(f"AmazonRDS/{region}: {len(dropped)} priced classes not offered for PostgreSQL there "
                       f"(rds_offerings.json), left out: {', '.join(dropped[:5])}{' ...' if len(dropped) > 5 else ''}")
        rates = table["regions"].setdefault(region, {})
        if classes:
            rates["rds_postgres_instance_hour"] = dict(sorted(classes.items()))
            prov[f"{region}.rds_postgres_instance_hour"] = _provenance("AmazonRDS", region, offer)
        if storage:
            rates["rds_gp3_gb_month"] = storage
            prov[f"{region}.rds_gp3_gb_month"] = _provenance("AmazonRDS", region, offer)
        if date:
            dates.append(date)
    for offer_code, wanted in OFFER_FIGURES.items():
        for region, offer in _offer_files(source_dir, offer_code):
            for key, (suffix, pick) in wanted.items():
                price = usage_price(offer, suffix, pick)
                if price is None:
                    if report:
                        report(f"{offer_code}/{region}: no on-demand product with usagetype *{suffix}: {key} unchanged")
                    continue
                table["regions"].setdefault(region, {})[key] = price
                prov[f"{region}.{key}"] = _provenance(offer_code, region, offer)
                if offer.get("publicationDate"):
                    dates.append(str(offer["publicationDate"])[:10])
    if dates:
        table["date"] = max(dates)
    if _all_offer(prov):
        table["method"] = f"{GENERATED} by tools/generate_aws_prices.py --from"
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--from", dest="source_dir",
                        help="a directory holding <offer>/<region>/index.json (AmazonRDS, AmazonVPC, awskms, "
                             "AWSSecretsManager, AmazonCloudWatch, AWSDataTransfer)")
    args = parser.parse_args(argv)
    with open(OUT, encoding="utf-8") as fh:
        text = fh.read()
    table = json.loads(text)
    with open(OFFERINGS, encoding="utf-8") as fh:
        offerings = json.load(fh)
    if args.source_dir:
        table = regenerate(table, args.source_dir, report=lambda m: print(f"--from: {m}", file=sys.stderr),
                           offerings=offerings)
    found = problems(table, offerings)
    if args.check:
        if dump(table) != text:
            found.append(f"{os.path.relpath(OUT, ROOT)} is not written as this tool writes it: run it without --check")
        for p in found:
            print(f"aws_prices.json: {p}", file=sys.stderr)
        return 1 if found else 0
    if found:
        for p in found:
            print(f"aws_prices.json: {p}", file=sys.stderr)
        return 1
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(dump(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
