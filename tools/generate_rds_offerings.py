#!/usr/bin/env python3
"""Regenerate components/catalogue/data/rds_offerings.json from the installed cfn-lint's AWS data.

    .venv/bin/python tools/generate_rds_offerings.py          # rewrite the table
    .venv/bin/python tools/generate_rds_offerings.py --check  # exit 1 if it is stale

cfn-lint ships AWS's lists (gathered from the RDS and pricing APIs) as JSON schemas:
- `engine_version.json`: every PostgreSQL engine version RDS has listed (one list for all
  regions), `engine_version_deprecated.json` those no longer offered for new instances;
- `dbinstanceclass_enum.json`: per region, the instance classes offered for `postgres`;
- `db_instance_class.json`: per engine minor, the classes that minor runs on.
The table keeps only what the catalogue checks, so the program reads a small JSON file and
does not need cfn-lint (a test dependency) at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from importlib import resources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "components", "catalogue", "data", "rds_offerings.json")
ENGINE = "postgres"


def _load(name: str):
    import cfnlint.data.schemas.extensions.aws_rds_dbinstance as pkg

    return json.loads(resources.files(pkg).joinpath(name).read_text())


def _version_key(version: str):
    return tuple(int(p) for p in re.findall(r"\d+", version))


def _postgres_blocks(schema):
    for block in schema["allOf"]:
        props = block.get("if", {}).get("properties", {})
        if props.get("Engine", {}).get("const") == ENGINE:
            yield props, block.get("then")


def build() -> dict:
    import cfnlint.version

    listed = set()
    for _props, then in _postgres_blocks(_load("engine_version.json")):
        listed |= set(then["properties"]["EngineVersion"]["enum"])
    deprecated = set()
    for props, _then in _postgres_blocks(_load("engine_version_deprecated.json")):
        deprecated |= set(props["EngineVersion"]["enum"])
    # Plain major.minor releases only: bare majors are prefixes, `-rds.` are Extended Support builds.
    offered = sorted((v for v in listed - deprecated if re.fullmatch(r"\d+\.\d+", v)), key=_version_key)

    classes_by_minor: dict[str, list[str]] = {}
    for props, then in _postgres_blocks(_load("db_instance_class.json")):
        match = re.fullmatch(r"\^\((\d+)\\\.(\d+)\\\.\.\+\|\d+\\\.\d+\)\$", props["EngineVersion"].get("pattern", ""))
        if match:
            version = f"{int(match.group(1))}.{int(match.group(2))}"
            if version in offered:
                classes_by_minor[version] = sorted(then["properties"]["DBInstanceClass"]["enum"])

    regions = {}
    for region, schema in sorted(_load("dbinstanceclass_enum.json").items()):
        classes: set[str] = set()
        for props, then in _postgres_blocks(schema):
            if props.get("LicenseModel") is False:  # no license model given: the postgres default
                classes |= set(then["properties"]["DBInstanceClass"]["enum"])
        if classes:
            regions[region] = sorted(classes)

    return {
        "generated_by": "tools/generate_rds_offerings.py",
        "cfn_lint_version": cfnlint.version.__version__,
        "engine": ENGINE,
        "engine_versions": offered,
        "instance_classes_by_engine_version": dict(sorted(classes_by_minor.items(), key=lambda kv: _version_key(kv[0]))),
        "instance_classes_by_region": regions,
    }


def render(table: dict) -> str:
    """One line per key and per region/version, so a refresh diffs line by line."""
    lines = ["{"]
    items = list(table.items())
    for i, (key, value) in enumerate(items):
        end = "," if i < len(items) - 1 else ""
        if isinstance(value, dict):
            lines.append(f" {json.dumps(key)}: {{")
            inner = list(value.items())
            for j, (k, v) in enumerate(inner):
                lines.append(f"  {json.dumps(k)}: {json.dumps(v)}" + ("," if j < len(inner) - 1 else ""))
            lines.append(" }" + end)
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{end}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed table differs")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = open(OUT).read() if os.path.exists(OUT) else ""
        if current != text:
            print(f"{os.path.relpath(OUT, ROOT)} is stale for the installed cfn-lint; run {sys.argv[0]}", file=sys.stderr)
            return 1
        print(f"{os.path.relpath(OUT, ROOT)} matches cfn-lint {build()['cfn_lint_version']}")
        return 0
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        fh.write(text)
    print(f"wrote {os.path.relpath(OUT, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
