"""The `bulkhead:` tags (AWS) and labels (Docker) that tie a resource to its database.

The policy pack and `audit` follow these, so every resource that belongs to a
database carries all four keys (docs/contract.md section 4).
"""

from __future__ import annotations

from typing import Mapping

from components.catalogue.model import Database
# The keys are defined once, in the pack that follows them (policies/bulkhead_types.py: a module with
# no imports, so the program loads nothing of the pack's rules).
from policies.bulkhead_types import TAG_DATABASE, TAG_OWNER, TAG_ROLE, TAG_STACK, TAG_TIER  # noqa: F401


def _joined(values) -> str:
    return ",".join(sorted(set(values)))


def database_tags(stack: str, databases: Mapping[str, Database]) -> dict[str, str]:
    """Tags for resources of one database, or of a shared server (comma-separated, sorted)."""
    return {
        TAG_DATABASE: _joined(databases),
        TAG_OWNER: _joined(db.owner for db in databases.values()),
        TAG_STACK: stack,
        TAG_TIER: _joined(db.tier for db in databases.values()),
    }


def docker_labels(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """Docker providers take labels as a list of {label, value}."""
    return [{"label": key, "value": value} for key, value in sorted(tags.items())]
