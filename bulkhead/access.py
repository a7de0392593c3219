"""Who can reach which database, derived from the plan's resources (not from names).

AWS: a service reaches a database over the network when the database's security
group admits the service's client group, and holds credentials when an IAM policy
of that service grants the database's secret. Docker: a service holds a
database's credentials when the stack exports them to it (`services` output).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policies.bulkhead_types import IAM_POLICY, INGRESS_RULE, SECURITY_GROUP
from policies.bulkhead_types import TAG_ROLE as ROLE_TAG

from .planfile import TAG_OWNER, Plan, database_names, props, split_tag, tags_of


@dataclass
class AccessMatrix:
    services: list[str]
    databases: list[str]
    # (service, database) -> set of paths: "network", "credentials"
    paths: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def reaches(self, service: str, database: str) -> set[str]:
        return self.paths.get((service, database), set())


def _sg_ref(plan: Plan, value) -> dict | None:
    return plan.by_id.get(str(value)) if value else None


def access_matrix(plan: Plan) -> AccessMatrix:
    outputs = plan.stack_outputs()
    dbs = outputs.get("databases") if isinstance(outputs.get("databases"), dict) else {}
    services = outputs.get("services") if isinstance(outputs.get("services"), dict) else {}
    matrix = AccessMatrix(services=sorted(services), databases=sorted(dbs))
    platform = next((d.get("platform") for d in dbs.values() if isinstance(d, dict)), None)

    def add(service: str, database: str, path: str) -> None:
        if service not in matrix.services:
            matrix.services.append(service)
        matrix.paths.setdefault((service, database), set()).add(path)

    if platform == "aws":
        db_group_of = {}
        for sg in plan.of_type(SECURITY_GROUP):
            tags = tags_of(sg)
            # An RDS Proxy's group (`proxy: true`) leads to its database as the database's own group does.
            if tags.get(ROLE_TAG) in ("database", "proxy"):
                db_group_of[sg.get("id")] = database_names(sg)
        for rule in plan.of_type(INGRESS_RULE):
            p = props(rule)
            target = db_group_of.get(p.get("securityGroupId"))
            source = _sg_ref(plan, p.get("referencedSecurityGroupId"))
            if not target or not source:
                continue
            if tags_of(source).get(ROLE_TAG) == "proxy":
                continue  # the proxy reaches the database: who reaches the proxy is counted on its own group
            for owner in split_tag(tags_of(source).get(TAG_OWNER)):
                for db in target:
                    add(owner, db, "network")
        for policy in plan.of_type(IAM_POLICY):
            tags = tags_of(policy)
            for owner in split_tag(tags.get(TAG_OWNER)):
                for db in database_names(policy):
                    add(owner, db, "credentials")
    else:
        for service, info in services.items():
            for db in (info or {}).get("databases", []) if isinstance(info, dict) else []:
                add(service, db, "credentials")
                add(service, db, "network")
    matrix.services.sort()
    return matrix


def render_matrix(matrix: AccessMatrix) -> str:
    if not matrix.databases:
        return "(no databases)"
    width = max([len(s) for s in matrix.services] + [7])
    cols = [max(len(d), 4) for d in matrix.databases]
    lines = [("service".ljust(width) + "  " + "  ".join(d.ljust(c) for d, c in zip(matrix.databases, cols, strict=True))).rstrip()]
    for service in matrix.services:
        cells = []
        for db, c in zip(matrix.databases, cols, strict=True):
            paths = matrix.reaches(service, db)
            mark = "yes" if paths == {"network", "credentials"} else ("PART" if paths else "-")
            cells.append(mark.ljust(c))
        lines.append((service.ljust(width) + "  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)
