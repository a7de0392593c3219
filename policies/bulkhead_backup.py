"""Which RDS instances an AWS Backup selection covers: the one `selection_covers`, for the pack's
rds-in-backup-plan rule, `audit` (a live account) and `plan --mermaid` (a plan).

A top-level module of the pack directory like bulkhead_types.py, for the same reasons: the pack is
published alone, and importing this loads nothing else (`audit` stays light). Plain values only:
callers resolve unknowns (the pack raises CouldNotCheck first) and convert other shapes (audit turns
the Backup API's GetBackupSelection into this one).

The selection is in the shape of the pulumi-aws `aws.backup.Selection` inputs, as a plan holds them:
`resources`, `notResources`, `conditions` (a list of {stringEquals|stringNotEquals|stringLike|
stringNotLike: [{key, value}]}) and `selectionTags` ([{type, key, value}]). The rule (the pack's,
the strictest reading, so a selection counts only where every part of it agrees): the instance's ARN
matches one of `resources` if any are given; matches none of `notResources`; satisfies every
condition; carries one of `selectionTags` if any are given; and the selection names something.
Patterns are AWS's wildcards (`*`), matched with fnmatch like the pack's other ARN rules.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Mapping

RESOURCE_TAG_PREFIX = "aws:ResourceTag/"


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def arn_matches(pattern: str, arn: str) -> bool:
    return fnmatch.fnmatchcase(arn, pattern)


def condition_matches(condition: Any, tags: Mapping[str, Any]) -> bool:
    """One entry of `conditions`: every test in it holds for the instance's tags."""
    if not isinstance(condition, dict):
        return True
    for op, entries in condition.items():
        for entry in _as_list(entries):
            if not isinstance(entry, dict):
                continue
            key = str(entry.get("key", "")).removeprefix(RESOURCE_TAG_PREFIX)
            value, actual = entry.get("value"), tags.get(key)
            if op == "stringEquals" and actual != value:
                return False
            if op == "stringNotEquals" and actual == value:
                return False
            if op == "stringLike" and not (isinstance(actual, str) and arn_matches(str(value), actual)):
                return False
            if op == "stringNotLike" and isinstance(actual, str) and arn_matches(str(value), actual):
                return False
    return True


def selection_covers(selection: Mapping[str, Any], arn: str, tags: Mapping[str, Any]) -> bool:
    """True if the selection covers the instance with this ARN (or ARN pattern) and these tags."""
    resources = [str(x) for x in _as_list(selection.get("resources"))]
    if resources and not any(arn_matches(p, arn) or p == arn for p in resources):
        return False
    if any(arn_matches(str(p), arn) for p in _as_list(selection.get("notResources"))):
        return False
    conditions = _as_list(selection.get("conditions"))
    if not all(condition_matches(c, tags) for c in conditions):
        return False
    selection_tags = [t for t in _as_list(selection.get("selectionTags")) if isinstance(t, dict)]
    if selection_tags and not any(tags.get(t.get("key")) == t.get("value") for t in selection_tags):
        return False
    return bool(resources or selection_tags or conditions)


def instance_arn(arn: Any, identifier: str) -> str:
    """The instance's ARN, or while it is unknown (a plan), the pattern every ARN of it matches."""
    return arn if isinstance(arn, str) else f"arn:aws:rds:*:*:db:{identifier}"
