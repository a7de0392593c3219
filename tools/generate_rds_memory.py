#!/usr/bin/env python3
"""Regenerate components/catalogue/data/rds_memory.json: the memory (GiB) of each RDS DB instance class.

    .venv/bin/python tools/generate_rds_memory.py --source Concepts.DBInstanceClass.md          # rewrite
    .venv/bin/python tools/generate_rds_memory.py --check [--source Concepts.DBInstanceClass.md]  # exit 1 if stale

Source: the table "Hardware specifications for DB instance classes" (column "Memory (GiB)") of the
Amazon RDS User Guide, page Concepts.DBInstanceClass, as AWS published it in the open-source
awsdocs/amazon-rds-user-guide repository (doc_source/Concepts.DBInstanceClass.md; the repository
stopped carrying the pages after SOURCE_COMMIT, 2023-05-30):

    git -C <clone of github.com/awsdocs/amazon-rds-user-guide> show \\
        b8cea0031fba95c12af4af13cea191abfc784364:doc_source/Concepts.DBInstanceClass.md > Concepts.DBInstanceClass.md

Neither cfn-lint (its RDS data: engine versions and classes per region, tools/generate_rds_offerings.py)
nor botocore ships instance memory. A class missing from the table (newer than the page: db.m8g,
db.r8g, ...) is "unknown" to the catalogue, which then checks nothing rather than guess.

--check without --source: the committed table is well-formed and names its source; with --source,
it is also exactly what that page gives.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "components", "catalogue", "data", "rds_memory.json")
SOURCE_URL = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.html#Concepts.DBInstanceClass.Summary"
SOURCE_REPO = "https://github.com/awsdocs/amazon-rds-user-guide"
SOURCE_PATH = "doc_source/Concepts.DBInstanceClass.md"
SOURCE_COMMIT = "b8cea0031fba95c12af4af13cea191abfc784364"
SECTION = '<a name="Concepts.DBInstanceClass.Summary"></a>'
CLASS_RE = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\", "") for c in line.strip().strip("|").split("|")]


def parse(markdown: str) -> dict[str, float]:
    """class -> GiB from the hardware table (the section after SECTION, header `| Instance class | ...`)."""
    start = markdown.find(SECTION)
    if start < 0:
        raise ValueError("the page has no 'Hardware specifications for DB instance classes' section")
    header, out = None, {}
    for line in markdown[start:].splitlines():
        if not line.startswith("|"):
            if header is not None and out:
                break
            continue
        cells = _cells(line)
        if header is None:
            if cells and cells[0] == "Instance class":
                header = cells
            continue
        name = cells[0].rstrip("*")
        if not CLASS_RE.match(name) or len(cells) < len(header):
            continue  # `| --- |` and the family rows (`| db.m6g – general-purpose ... |`)
        memory = cells[header.index("Memory (GiB)")].replace(",", "")
        out[name] = float(memory) if "." in memory else int(memory)
    if not out:
        raise ValueError("no rows found in the hardware table")
    return dict(sorted(out.items()))


def table(markdown: str) -> dict:
    return {
        "generated_by": "tools/generate_rds_memory.py",
        "source": SOURCE_URL,
        "source_file": f"{SOURCE_REPO}/blob/{SOURCE_COMMIT}/{SOURCE_PATH}",
        "memory_gib": parse(markdown),
    }


def well_formed(data: dict) -> list[str]:
    problems = []
    if data.get("source") != SOURCE_URL or SOURCE_COMMIT not in str(data.get("source_file")):
        problems.append("the table does not name its source")
    memory = data.get("memory_gib")
    if not isinstance(memory, dict) or not memory:
        return problems + ["memory_gib is missing or empty"]
    for name, gib in memory.items():
        if not CLASS_RE.match(name) or not isinstance(gib, (int, float)) or gib <= 0:
            problems.append(f"bad row {name!r}: {gib!r}")
    return problems


def render(data: dict) -> str:
    return json.dumps(data, indent=1) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="doc_source/Concepts.DBInstanceClass.md at SOURCE_COMMIT")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.check:
        with open(OUT, encoding="utf-8") as fh:
            committed = json.load(fh)
        problems = well_formed(committed)
        if args.source:
            with open(args.source, encoding="utf-8") as fh:
                if render(table(fh.read())) != render(committed):
                    problems.append(f"{OUT} is stale; run {sys.argv[0]} --source {args.source}")
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    if not args.source:
        parser.error("--source is required to regenerate (see the docstring)")
    with open(args.source, encoding="utf-8") as fh:
        data = table(fh.read())
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(render(data))
    print(f"wrote {OUT}: {len(data['memory_gib'])} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
