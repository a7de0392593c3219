"""What RDS offers for PostgreSQL: engine versions and instance classes, per region.

Read from `data/rds_offerings.json`, a table generated from AWS's lists as cfn-lint ships
them (`tools/generate_rds_offerings.py`, which records the cfn-lint version). The
program reads the small table instead of cfn-lint itself: cfn-lint is a test dependency
of 30+ MB of schemas, and a deploy must not change its answer because a newer cfn-lint
happened to be installed. Refresh: upgrade the pin in requirements-dev.txt, run the script,
commit the table (the test suite fails while the table and the pinned cfn-lint disagree).

AWS publishes one engine-version list for all regions; instance classes differ by region
and by engine version (a class is offered for a major when some offered minor of it runs
on that class).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from functools import lru_cache

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rds_offerings.json")


@lru_cache(maxsize=1)
def _table() -> dict:
    with open(DATA) as fh:
        return json.load(fh)


def data_source() -> str:
    """Where the table comes from, for messages: `cfn-lint 1.58.0`."""
    return f"cfn-lint {_table()['cfn_lint_version']}"


def regions() -> list[str]:
    return sorted(_table()["instance_classes_by_region"])


def _known(region: str) -> None:
    if region not in _table()["instance_classes_by_region"]:
        raise KeyError(region)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def engine_versions(region: str) -> list[str]:
    """PostgreSQL `major.minor` versions RDS offers for new instances in `region`, oldest first.

    Raises KeyError for a region the table does not know."""
    _known(region)
    return list(_table()["engine_versions"])


def _major(version: str) -> str:
    return version.split(".")[0]


def offers_engine_version(region: str, version: str) -> bool:
    """A pinned minor must be offered; a bare major ("16") needs an offered minor of it."""
    offered = engine_versions(region)
    if "." in version:
        return version in offered
    return any(_major(v) == version for v in offered)


def nearest_engine_versions(region: str, version: str, n: int = 3) -> list[str]:
    """The offered versions closest to `version`: the same major's minors first, nearest minor first."""
    offered = engine_versions(region)
    wanted = version_key(version) + (0,)
    same_major = [v for v in offered if _major(v) == _major(version)]
    pool = same_major or offered
    return sorted(pool, key=lambda v: (abs(version_key(v)[0] - wanted[0]), abs(version_key(v)[1] - wanted[1]), version_key(v)))[:n]


def instance_classes(region: str, engine_version: str | None = None) -> list[str]:
    """Classes RDS offers for PostgreSQL in `region` (and, given a version, that it runs on)."""
    _known(region)
    classes = set(_table()["instance_classes_by_region"][region])
    if engine_version is not None:
        by_version = _table()["instance_classes_by_engine_version"]
        minors = [v for v in by_version if v == engine_version or ("." not in engine_version and _major(v) == engine_version)]
        if minors:
            classes &= set().union(*(by_version[v] for v in minors))
    return sorted(classes)


def nearest_instance_classes(region: str, instance_class: str, engine_version: str | None = None, n: int = 3) -> list[str]:
    """Offered classes that read most like `instance_class` (same family and size first)."""
    offered = instance_classes(region, engine_version)
    close = difflib.get_close_matches(instance_class, offered, n=n, cutoff=0.0)
    return close
