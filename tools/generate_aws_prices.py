#!/usr/bin/env python3
"""The price table bulkhead's `plan` prices a stack with: components/catalogue/data/aws_prices.json.

    .venv/bin/python tools/generate_aws_prices.py                  # regenerate the table from the committed extract
    .venv/bin/python tools/generate_aws_prices.py --check          # offline: exit 1 unless it is what the extract gives
    .venv/bin/python tools/generate_aws_prices.py --from-watcher DIR --commit SHA --committed DATE
                                                                   # rewrite the extract from an aws-price-watcher checkout
    .venv/bin/python tools/generate_aws_prices.py --from DIR        # rewrite figures from Price List offer files

Where the prices come from: AWS's public price data. Two readers:
- the JSON AWS's pricing pages load (https://b0.p.awsstatic.com/pricing/2.0/meteredUnitMaps/...),
  as github.com/QuinnyPig/aws-price-watcher commits it daily (see WATCHER below): `--from-watcher`
  keeps the prices this table uses, verbatim, in components/catalogue/data/aws_price_extract.json
  (committed; the full files are tens of MB), and the table is generated from that extract. This
  is how the committed table is made (its `method` says so, with the commit);
- the Price List Bulk API's offer files (https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/
  <offer>/current/<region>/index.json, "Getting price list files manually", AWS Billing User
  Guide), downloaded to DIR/<offer>/<region>/index.json by whoever regenerates: `--from` rewrites
  the figures those offers price (OFFER_FIGURES), each with its provenance `offer:<offer>/<region>
  version <v> published <date>`. The generator never downloads: CI has no network to AWS.

Every figure carries its provenance in `provenance` ("<region>.<figure>" -> where it comes from):
AWS's price data read by this tool (`aws-price-data:`, `offer:`), an offer file's figure published
elsewhere (`offer-extract:`), or a page copied by hand (`transcribed:`). `method` starts with
"generated from" only when every price was read by this tool (billing rules such as the proxy's
2-vCPU minimum, RULE_KEYS, are on pricing pages only). No installed package ships AWS prices
(cfn-lint bundles RDS instance classes per region, read by tools/generate_rds_offerings.py, but no
prices; botocore has only the Pricing API's model).

`--check` needs no network: the table is what the committed extract gives, byte for byte; its
shape; every region and class in it offered for PostgreSQL there (components/catalogue/data/
rds_offerings.json, from cfn-lint); Multi-AZ never cheaper than Single-AZ; a source and an ISO
date; a provenance for every figure and a `method` that matches them.
"""

from __future__ import annotations

import argparse
import datetime
from collections import Counter
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "components", "catalogue", "data", "aws_prices.json")
OFFERINGS = os.path.join(ROOT, "components", "catalogue", "data", "rds_offerings.json")
# Region-level rates (USD): what each one is per.
RATE_KEYS = {
    "alarm_month": "standard-resolution CloudWatch metric alarm, per month",
    "backup_gb_month": "RDS backup (snapshot) storage beyond the free allowance, per GB-month",
    "cross_region_copy_gb": "data transfer of a copy to another region, per GB",
    "interface_endpoint_az_hour": "interface VPC endpoint, per endpoint per AZ per hour",
    "kms_key_month": "customer managed KMS key, per month",
    "proxy_min_vcpu": "RDS Proxy bills at least this many vCPUs",
    "proxy_vcpu_hour": "RDS Proxy, per vCPU of the target instance per hour",
    "secret_month": "Secrets Manager secret, per month",
}
TABLE_KEYS = {"rds_postgres_instance_hour", "rds_gp3_gb_month"}
PROVENANCE_KINDS = ("offer:", "aws-price-data:", "offer-extract:", "transcribed:")
# Provenances of figures read by this tool from AWS's own price data (not copied by a person).
GENERATED_KINDS = ("offer:", "aws-price-data:")
GENERATED_PREFIX = "generated from"
GENERATED = "generated from AWS Price List offer files"
EXTRACT = os.path.join(ROOT, "components", "catalogue", "data", "aws_price_extract.json")
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
            if not {"single_az", "multi_az"} <= set(row) <= {"single_az", "multi_az", "vcpu"}:
                out.append(f"{where}: needs single_az and multi_az (and vcpu where known), nothing else")
                continue
            if not (0 < row["single_az"] <= row["multi_az"]):
                out.append(f"{where}: needs single_az > 0 and multi_az >= single_az")
            if "vcpu" in row and (not isinstance(row["vcpu"], int) or row["vcpu"] < 1):
                out.append(f"{where}: vcpu must be a positive integer")
    out.extend(provenance_problems(table))
    return out


def figures(table: dict) -> list[str]:
    """Every figure of the table as "<region>.<key>" (an instance-class table counts as one)."""
    return sorted(f"{region}.{key}" for region, rates in (table.get("regions") or {}).items() for key in rates)


def _all_offer(prov: dict, kinds: tuple[str, ...] = GENERATED_KINDS) -> bool:
    prices = {k: v for k, v in prov.items() if k.split(".", 1)[-1] not in RULE_KEYS}
    return bool(prices) and all(str(v).startswith(kinds) for v in prices.values())


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
    all_generated = _all_offer(prov)
    method = str(table.get("method") or "")
    if method.startswith(GENERATED_PREFIX) and not all_generated:
        out.append(f"method says {method[:40]!r}... but not every price's provenance is AWS price data read by this tool "
                   f"({', '.join(GENERATED_KINDS)})")
    if all_generated and not method.startswith(GENERATED_PREFIX):
        out.append(f"every price comes from AWS price data read by this tool: method must start with {GENERATED_PREFIX!r}")
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
    if _all_offer(prov, ("offer:",)):
        table["method"] = f"{GENERATED} by tools/generate_aws_prices.py --from"
    return table


# --- AWS's public price data as the pricing pages load it, committed by aws-price-watcher ---------
#
# AWS's pricing pages (aws.amazon.com/<service>/pricing/) and the Pricing Calculator read JSON
# "metered unit maps" from https://b0.p.awsstatic.com/pricing/2.0/meteredUnitMaps/<service>/USD/
# current/<file>.json: per AWS location, per price, the Price List rate code (SKU.term.rate, the
# same codes as the Bulk API's offer files) and the USD price, with a manifest carrying AWS's
# publication date. github.com/QuinnyPig/aws-price-watcher commits those files daily (raw/<file>.json
# as AWS serves them, processed/<file>.json keyed by price name, location -> price). No AWS offer
# file was reachable where this table was made; that repository was (a snapshot, `fetch`), so the
# table is generated from it, through a reduced extract committed beside the table
# (components/catalogue/data/aws_price_extract.json: the prices used, verbatim, for the regions
# covered). `--from-watcher DIR` (DIR a checkout of aws-price-watcher) rewrites the extract; without
# options the tool regenerates the table from the extract; `--check` insists on the same bytes.
WATCHER = "QuinnyPig/aws-price-watcher"
# Regions covered, with AWS's location names (the names the price data uses; Price List
# attribute `location`). Kept to a few so the table stays readable; add a line to cover another.
LOCATIONS = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-central-1": "EU (Frankfurt)",
}
# figure -> (file, price name). gp3 storage and backup (snapshot) storage: "Database Storage ...
# General Purpose-GP3" and "Storage Snapshot" of rds-storage (RDS backup storage beyond the free
# allowance; AWS Backup bills RDS snapshots at this rate under RDS). The proxy: "RDSProxy" (RDS, not
# Aurora: per vCPU-hour of the instance).
WATCHER_FIGURES = {
    "rds_gp3_gb_month.single_az": ("rds-storage", "Database Storage Single AZ General Purpose-GP3"),
    "rds_gp3_gb_month.multi_az": ("rds-storage", "Database Storage Multi AZ General Purpose-GP3"),
    "backup_gb_month": ("rds-storage", "Storage Snapshot"),
    "proxy_vcpu_hour": ("rds-proxy", "RDSProxy"),
    "interface_endpoint_az_hour": ("vpc", "Hourly charge for VPC Endpoints per Hrs"),
    "kms_key_month": ("kms", "Encryption Key"),
    "secret_month": ("secretsmanager", "Secret"),
    "alarm_month": ("cloudwatch", "Alarm Standard"),
}
INSTANCE_FILE = "rds-postgresql-ondemand"
# "Database Instance PostgreSQL No license required db t4g.medium General purpose Multi-AZ Current
# Generation"; "Multi-AZ readable standbys" (Multi-AZ DB clusters) is another product and not matched.
INSTANCE_NAME = re.compile(r"^Database Instance PostgreSQL No license required db (\S+) .*?"
                           r"(Single-AZ|Multi-AZ) (?:Current|Previous) Generation$")
TRANSFER_FILE = "datatransfer"
TRANSFER_PREFIX = "DataTransfer InterRegion Outbound to "
# The proxy's 2-vCPU minimum is a billing rule stated on https://aws.amazon.com/rds/proxy/pricing/
# ("Minimum Charge: 2 vCPUs" for provisioned instances), not a price in the data.
PROXY_MIN_VCPU = (2, "transcribed: https://aws.amazon.com/rds/proxy/pricing/ (\"Minimum Charge: 2 vCPUs\", "
                     "provisioned instances): a billing rule, not a price in AWS's price data")
# Instance prices are listed per "<location> (Instance Type: db.x, Memory: .., vCPU: N, ...)":
# the vCPUs (which the proxy is billed by) come from there.
INSTANCE_LOCATION = " (Instance Type: "
VCPU = re.compile(r"\bvCPU: (\d+)\b")


def _load(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def extract_from_watcher(watcher_dir: str, commit: str, committed: str) -> dict:
    """The prices this table uses, verbatim, from a checkout of aws-price-watcher at `commit`."""
    locations = set(LOCATIONS.values())
    files: dict[str, dict] = {}

    def entry(name: str) -> dict:
        if name not in files:
            raw = _load(os.path.join(watcher_dir, "raw", f"{name}.json")) or {}
            files[name] = {"path": f"processed/{name}.json",
                           "published": (raw.get("manifest") or {}).get("hawkFilePublicationDate"),
                           "prices": {}}
        return files[name]

    def processed(name: str) -> dict:
        data = _load(os.path.join(watcher_dir, "processed", f"{name}.json"))
        if data is None:
            raise SystemExit(f"--from-watcher: no readable processed/{name}.json under {watcher_dir}")
        return data

    for name, price in sorted(set(WATCHER_FIGURES.values())):
        by_location = processed(name).get(price) or {}
        entry(name)["prices"][price] = {loc: v for loc, v in sorted(by_location.items()) if loc in locations}
    for price, by_location in sorted(processed(INSTANCE_FILE).items()):
        if INSTANCE_NAME.match(price):
            kept = {k: v for k, v in sorted(by_location.items()) if k.split(INSTANCE_LOCATION)[0] in locations}
            if kept:
                entry(INSTANCE_FILE)["prices"][price] = kept
    for price, by_location in sorted(processed(TRANSFER_FILE).items()):
        if price.startswith(TRANSFER_PREFIX):
            kept = {k: v for k, v in sorted(by_location.items()) if k.split(" (To Location: ")[0] in locations}
            if kept:
                entry(TRANSFER_FILE)["prices"][price] = kept
    return {"source": {"repository": WATCHER, "commit": commit, "committed": committed,
                       "data": "https://b0.p.awsstatic.com/pricing/2.0/meteredUnitMaps/<service>/USD/current/<file>.json"},
            "files": dict(sorted(files.items()))}


def _price(value: str) -> float:
    return round(float(value), 10)


def table_from_extract(extract: dict, offerings: dict) -> dict:
    """aws_prices.json from the extract: every figure for every covered region, with provenance."""
    src = extract["source"]
    files = extract["files"]
    at = f"{src['repository']}@{src['commit'][:12]}"
    offered = offerings.get("instance_classes_by_region") or {}
    regions: dict[str, dict] = {}
    prov: dict[str, str] = {}

    def cite(name: str, price: str, location: str) -> str:
        published = files[name].get("published")
        return (f"aws-price-data: {at} {files[name]['path']} \"{price}\" / {location}"
                + (f" (AWS publication {published})" if published else ""))

    for region, location in sorted(LOCATIONS.items()):
        rates: dict = {}
        for figure, (name, price) in WATCHER_FIGURES.items():
            value = (files.get(name, {}).get("prices", {}).get(price) or {}).get(location)
            if value is None:
                continue
            key, _, sub = figure.partition(".")
            if sub:
                rates.setdefault(key, {})[sub] = _price(value)
            else:
                rates[key] = _price(value)
                prov[f"{region}.{key}"] = cite(name, price, location)
        if "rds_gp3_gb_month" in rates and set(rates["rds_gp3_gb_month"]) != {"single_az", "multi_az"}:
            del rates["rds_gp3_gb_month"]
            prov.pop(f"{region}.rds_gp3_gb_month", None)
        elif "rds_gp3_gb_month" in rates:
            prov[f"{region}.rds_gp3_gb_month"] = cite("rds-storage", "Database Storage {Single,Multi} AZ General Purpose-GP3", location)
        # The DR region is the stack's choice: the rate most destinations have (a few cost more or less).
        transfer = Counter(_price(v) for price, by in (files.get(TRANSFER_FILE, {}).get("prices") or {}).items()
                           for k, v in by.items() if k.split(" (To Location: ")[0] == location)
        if transfer:
            rate, count = sorted(transfer.items(), key=lambda kv: (-kv[1], -kv[0]))[0]
            rates["cross_region_copy_gb"] = rate
            prov[f"{region}.cross_region_copy_gb"] = cite(TRANSFER_FILE, f"{TRANSFER_PREFIX}<region>", location) + \
                f": the rate of {count} of {sum(transfer.values())} destinations"
        classes: dict[str, dict] = {}
        for price, by_location in (files.get(INSTANCE_FILE, {}).get("prices") or {}).items():
            match = INSTANCE_NAME.match(price)
            cls = "db." + match.group(1) if match else None
            if cls is None or cls not in offered.get(region, []):
                continue
            for where, value in by_location.items():
                if where.split(INSTANCE_LOCATION)[0] != location:
                    continue
                row = classes.setdefault(cls, {})
                row["single_az" if match.group(2) == "Single-AZ" else "multi_az"] = _price(value)
                cpus = VCPU.search(where)
                if cpus:
                    row["vcpu"] = int(cpus.group(1))
        rows = {}
        for cls, row in sorted(classes.items()):
            if not {"single_az", "multi_az"} <= set(row) or not 0 < row["single_az"] <= row["multi_az"]:
                continue
            rows[cls] = row
        if rows:
            rates["rds_postgres_instance_hour"] = rows
            prov[f"{region}.rds_postgres_instance_hour"] = cite(
                INSTANCE_FILE, "Database Instance PostgreSQL No license required db <class> ... <Single-AZ|Multi-AZ> ... Generation",
                location)
        if "proxy_vcpu_hour" in rates:
            rates["proxy_min_vcpu"] = PROXY_MIN_VCPU[0]
            prov[f"{region}.proxy_min_vcpu"] = PROXY_MIN_VCPU[1]
        if rates:
            regions[region] = rates
    published = sorted(f["published"] for f in files.values() if f.get("published"))
    date = (published[-1] if published else src["committed"])[:10]
    return {
        "date": date,
        "generated_by": "tools/generate_aws_prices.py",
        "hours_per_month": 730,
        "method": (f"{GENERATED_PREFIX} AWS's public price data (the JSON AWS's pricing pages load, {src['data']}) as "
                   f"committed in github.com/{src['repository']} at {src['commit']} ({src['committed']}), through the "
                   f"extract components/catalogue/data/aws_price_extract.json; newest AWS publication date in it: {date}"),
        "provenance": dict(sorted(prov.items())),
        "regions": regions,
        "source": (f"AWS public prices, on-demand, USD: AWS's price data for the pricing pages "
                   f"({src['data']}), files {', '.join(f['path'] for f in files.values())} of github.com/{src['repository']} "
                   f"at {src['commit']}"),
    }


def from_extract_matches(table: dict) -> bool:
    """Whether the table says it is generated from the extract (then --check regenerates it)."""
    return "aws_price_extract.json" in str(table.get("method") or "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="offline: exit 1 unless the committed table is what the committed extract gives")
    parser.add_argument("--from-watcher", dest="watcher_dir",
                        help="a checkout of github.com/QuinnyPig/aws-price-watcher: rewrite the extract from it")
    parser.add_argument("--commit", help="with --from-watcher: the checkout's commit (40 hex digits)")
    parser.add_argument("--committed", help="with --from-watcher: that commit's date (ISO 8601)")
    parser.add_argument("--from", dest="source_dir",
                        help="a directory holding <offer>/<region>/index.json (AmazonRDS, AmazonVPC, awskms, "
                             "AWSSecretsManager, AmazonCloudWatch, AWSDataTransfer): Price List offer files")
    args = parser.parse_args(argv)
    with open(OUT, encoding="utf-8") as fh:
        text = fh.read()
    committed_table = json.loads(text)
    with open(OFFERINGS, encoding="utf-8") as fh:
        offerings = json.load(fh)
    if args.watcher_dir:
        if not (args.commit and re.fullmatch(r"[0-9a-f]{40}", args.commit) and args.committed):
            parser.error("--from-watcher needs --commit <40 hex digits> and --committed <date>")
        with open(EXTRACT, "w", encoding="utf-8") as fh:
            fh.write(dump(extract_from_watcher(args.watcher_dir, args.commit, args.committed)))
    extract = _load(EXTRACT)
    if args.check:
        table = (table_from_extract(extract, offerings) if extract and from_extract_matches(committed_table)
                 else committed_table)
        found = problems(table, offerings)
        if dump(table) != text:
            found.append(f"{os.path.relpath(OUT, ROOT)} is not what this tool writes from "
                         f"{os.path.relpath(EXTRACT, ROOT)}: run it without --check")
        for p in found:
            print(f"aws_prices.json: {p}", file=sys.stderr)
        return 1 if found else 0
    table = table_from_extract(extract, offerings) if extract else committed_table
    if args.source_dir:
        table = regenerate(table, args.source_dir, report=lambda m: print(f"--from: {m}", file=sys.stderr),
                           offerings=offerings)
    found = problems(table, offerings)
    if found:
        for p in found:
            print(f"aws_prices.json: {p}", file=sys.stderr)
        return 1
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(dump(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
