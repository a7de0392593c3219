"""Operations (issue 24): somebody is told when a database is in trouble."""

from __future__ import annotations

from typing import Iterable

from ._resources import ADVISORY, RDS_INSTANCE, Index, Res, as_list, stack_rule
from bulkhead_types import METRIC_ALARM, RDS_EVENT_SUBSCRIPTION

POLICIES: list = []

# The metrics bulkhead alarms on for every primary (components/prod/alarms.py; RDS User Guide,
# "Amazon CloudWatch metrics for Amazon RDS").
PRIMARY_METRICS = ("CPUUtilization", "FreeStorageSpace", "DatabaseConnections", "FreeableMemory")


def _alarmed_metrics(index: Index, identifier: str) -> set[str]:
    # Built once per stack (instance identifier -> metrics with an action): check stays linear.
    table = index._memo("alarmed-metrics", None)
    if not table:
        table["built"] = True
        for alarm in index.of_type(METRIC_ALARM):
            dims = alarm.get("dimensions")
            if not isinstance(dims, dict) or not isinstance(dims.get("DBInstanceIdentifier"), str):
                continue
            if alarm.get("namespace") != "AWS/RDS" or not as_list(alarm.get("alarmActions")):
                continue  # an alarm that tells nobody tells nobody
            if alarm.get("actionsEnabled") is False:
                continue
            table.setdefault(dims["DBInstanceIdentifier"], set()).add(alarm.get("metricName"))
    return table.get(identifier, set())


def _subscribed(index: Index, identifier: str) -> bool:
    table = index._memo("event-sources", None)
    if not table:
        table["ids"] = set()
        table["all"] = False
        for sub in index.of_type(RDS_EVENT_SUBSCRIPTION):
            if sub.get("enabled") is False or sub.get("sourceType") != "db-instance" or not sub.is_set("snsTopic"):
                continue
            ids = as_list(sub.get("sourceIds"))
            if not ids:
                table["all"] = True  # no source ids: every instance of the account and region
            table["ids"].update(i for i in ids if isinstance(i, str))
    return table["all"] or identifier in table["ids"]


@stack_rule(
    POLICIES, "database-alarms-and-events",
    "Every RDS primary has CloudWatch alarms (CPU, free storage, connections, freeable memory) with an action, and an "
    "RDS event subscription covers it (advisory: a team may watch its databases otherwise).",
    ADVISORY, [RDS_INSTANCE],
)
def check_database_alarms_and_events(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_primary:
        return
    identifier = r.need("identifier")
    if not isinstance(identifier, str):
        return
    missing = [m for m in PRIMARY_METRICS if m not in _alarmed_metrics(index, identifier)]
    if missing:
        yield (f"{r.label} has no alarm with an action on {', '.join(missing)}: nobody is told when it runs out of "
               f"CPU, storage, connections or memory; keep bulkhead's alarms on (databases.<name>.alarms) or add your own.")
    if not _subscribed(index, identifier):
        yield (f"{r.label} is in no RDS event subscription of source type db-instance: failovers, maintenance, "
               f"configuration changes and low storage go unnoticed; keep bulkhead's event subscription.")
