"""`plan --mermaid`: a Mermaid flowchart of who reaches what, derived from the plan's resources.

dev (docker): service -> database, labelled with the network the service joins;
each network is a box around the databases whose container sits on it.
prod (aws): service -> its client security group -> the database's security group
(an edge per ingress rule) -> the primary and its replicas; dotted edges show the
IAM access policy (credentials), replication and the backup plan whose selection
covers the primary (with schedule, retention and the instance's PITR days).
Edges come from the resources (tags, ingress rules, vpcSecurityGroupIds, backup
selections) and bulkhead/access.py's matrix, never from names.
"""

from __future__ import annotations

import re

from policies.bulkhead_backup import instance_arn, selection_covers
from policies.bulkhead_types import BACKUP_PLAN, BACKUP_SELECTION, INGRESS_RULE, RDS_INSTANCE, SECURITY_GROUP
from policies.bulkhead_types import CONTAINER as DOCKER_CONTAINER
from policies.bulkhead_types import TAG_ROLE as ROLE_TAG

from .access import access_matrix
from .planfile import TAG_OWNER, TAG_TIER, Plan, database_names, props, split_tag, tags_of


def node_id(prefix: str, raw: str) -> str:
    """A Mermaid-safe id: letters, digits and underscores, with a kind prefix (never `end`)."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', str(raw))}"


def label(text: str) -> str:
    """A quoted Mermaid label; `<br/>` is kept for line breaks, quotes are entity-escaped."""
    return '"' + str(text).replace('"', "#quot;") + '"'


class _Graph:
    def __init__(self, title: str):
        self.lines = ["flowchart LR", f"  %% {title}"]
        self.declared: set[str] = set()

    def node(self, nid: str, shape: str, text: str, indent: str = "  ") -> str:
        if nid not in self.declared:
            self.declared.add(nid)
            opening, closing = {"service": ("([", "])"), "db": ("[(", ")]"), "box": ("[", "]"),
                                "tier": ("{{", "}}")}[shape]
            self.lines.append(f"{indent}{nid}{opening}{label(text)}{closing}")
        return nid

    def edge(self, a: str, b: str, text: str = "", dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        self.lines.append(f"  {a} {arrow}|{label(text)}| {b}" if text else f"  {a} {arrow} {b}")

    def raw(self, line: str) -> None:
        self.lines.append(line)


def render_mermaid(plan: Plan) -> str:
    outputs = plan.stack_outputs()
    dbs = outputs.get("databases") if isinstance(outputs.get("databases"), dict) else {}
    platform = next((d.get("platform") for d in dbs.values() if isinstance(d, dict)), None)
    if platform == "aws" or plan.of_type(RDS_INSTANCE):
        return _render_aws(plan, dbs)
    return _render_docker(plan, dbs)


def _tier_of(name: str, dbs: dict, resource: dict | None = None) -> str:
    db = dbs.get(name)
    if isinstance(db, dict) and isinstance(db.get("tier"), str):
        return db["tier"]
    return tags_of(resource).get(TAG_TIER, "?") if resource else "?"


def _render_docker(plan: Plan, dbs: dict) -> str:
    g = _Graph("bulkhead dev: each service joins only its own database's network and holds only its role")
    matrix = access_matrix(plan)
    network_of: dict[str, str] = {}
    by_network: dict[str, list[tuple[str, dict]]] = {}
    for container in plan.of_type(DOCKER_CONTAINER):
        names = database_names(container)
        nets = [n.get("name") for n in props(container).get("networksAdvanced") or [] if isinstance(n, dict)]
        for db in names:
            # A shared server joins one network per tenant (named ...-<database>): each database is on its own.
            own = [n for n in nets if str(n).endswith(f"-{db}")]
            network_of[db] = str((own or nets or ["(default)"])[0])
            by_network.setdefault(network_of[db], []).append((db, container))
    g.raw("  subgraph services[\"services\"]")
    for service in matrix.services:
        g.node(node_id("svc", service), "service", service, indent="    ")
    g.raw("  end")
    for net, members in sorted(by_network.items()):
        shared = len({id(c) for _, c in members}) == 1 and len(members) > 1
        title = f"network {net}" + (" · shared dev server, one role per database" if shared else "")
        g.raw(f"  subgraph {node_id('net', net)}[{label(title)}]")
        for db, container in sorted(members, key=lambda m: m[0]):
            g.node(node_id("db", db), "db", f"{db}<br/>tier {_tier_of(db, dbs, container)}", indent="    ")
        g.raw("  end")
    for service in matrix.services:
        for db in matrix.databases:
            paths = matrix.reaches(service, db)
            if not paths:
                continue
            parts = []
            if "network" in paths:
                parts.append(f"joins {network_of.get(db, '?')}")
            if "credentials" in paths:
                parts.append(f"role {(dbs.get(db) or {}).get('username', db)}")
            g.edge(node_id("svc", service), node_id("db", db), " · ".join(parts), dotted=paths != {"network", "credentials"})
    return "\n".join(g.lines)


def _selection_covers(selection: dict, instance: dict) -> bool:
    """The pack's rule (policies/bulkhead_backup.py) on a planned selection and instance."""
    p = props(instance)
    arn = instance_arn((instance.get("outputs") or {}).get("arn") or p.get("arn"),
                       p.get("identifier") or instance["urn"].rsplit("::", 1)[1])
    return selection_covers(props(selection), arn, tags_of(instance))


def _render_aws(plan: Plan, dbs: dict) -> str:
    g = _Graph("bulkhead prod: service -> its client group -> the database's group -> instances")
    matrix = access_matrix(plan)
    groups = {sg.get("id"): sg for sg in plan.of_type(SECURITY_GROUP)}
    instances = plan.of_type(RDS_INSTANCE)
    primaries = [i for i in instances if not props(i).get("replicateSourceDb")]
    replicas = [i for i in instances if props(i).get("replicateSourceDb")]

    g.raw("  subgraph services[\"services\"]")
    for service in matrix.services:
        g.node(node_id("svc", service), "service", service, indent="    ")
    g.raw("  end")

    # Client groups: the service (owner tag) wears its group.
    for sg_id, sg in sorted(groups.items(), key=lambda kv: str(kv[0])):
        tags = tags_of(sg)
        if tags.get(ROLE_TAG) != "client":
            continue
        cg = g.node(node_id("cg", sg_id), "box", f"client group<br/>{sg_id}")
        for owner in split_tag(tags.get(TAG_OWNER)):
            g.edge(node_id("svc", owner), cg, "wears")

    # One box per database: its group, primary and replicas.
    for primary in sorted(primaries, key=lambda r: ",".join(database_names(r))):
        p = props(primary)
        names = database_names(primary) or [str(p.get("identifier"))]
        name = names[0]
        tier = _tier_of(name, dbs, primary)
        g.raw(f"  subgraph {node_id('box', name)}[{label(f'database {name} · tier {tier}')}]")
        for sg_id in p.get("vpcSecurityGroupIds") or []:
            g.node(node_id("dbg", sg_id), "box", f"database group<br/>{sg_id}", indent="    ")
        features = ["multi-AZ" if p.get("multiAz") else "single-AZ", f"PITR {p.get('backupRetentionPeriod', '?')}d"]
        g.node(node_id("db", name), "db", f"{name} primary<br/>{p.get('identifier', '')}<br/>{' · '.join(features)}",
               indent="    ")
        own_replicas = [r for r in replicas if props(r).get("replicateSourceDb") in (p.get("identifier"), primary.get("id"))]
        for rep in sorted(own_replicas, key=lambda r: str(props(r).get("identifier"))):
            rid = props(rep).get("identifier") or rep.get("id")
            g.node(node_id("rep", rid), "db", f"replica<br/>{rid}", indent="    ")
        g.raw("  end")
        for sg_id in p.get("vpcSecurityGroupIds") or []:
            g.edge(node_id("dbg", sg_id), node_id("db", name))
            for rep in own_replicas:
                if sg_id in (props(rep).get("vpcSecurityGroupIds") or []):
                    g.edge(node_id("dbg", sg_id), node_id("rep", props(rep).get("identifier") or rep.get("id")))
        for rep in own_replicas:
            g.edge(node_id("db", name), node_id("rep", props(rep).get("identifier") or rep.get("id")), "replicates", dotted=True)

    # Network path: the ingress rules of database groups.
    for rule in plan.of_type(INGRESS_RULE):
        rp = props(rule)
        target = groups.get(rp.get("securityGroupId"))
        if not target or tags_of(target).get(ROLE_TAG) != "database":
            continue
        port = rp.get("fromPort")
        port_text = f"tcp {port}" if port == rp.get("toPort") else f"tcp {port}-{rp.get('toPort')}"
        if rp.get("referencedSecurityGroupId"):
            src = rp["referencedSecurityGroupId"]
            src_node = node_id("cg", src) if src in groups and tags_of(groups[src]).get(ROLE_TAG) == "client" else \
                g.node(node_id("sg", src), "box", f"group {src}")
            g.edge(src_node, node_id("dbg", rp["securityGroupId"]), port_text)
        else:
            cidr = rp.get("cidrIpv4") or rp.get("cidrIpv6") or rp.get("prefixListId") or "?"
            src_node = g.node(node_id("cidr", cidr), "box", f"CIDR {cidr}")
            g.edge(src_node, node_id("dbg", rp["securityGroupId"]), port_text)

    # Credentials: each IAM access policy, as the access matrix reads it.
    for service in matrix.services:
        for db in matrix.databases:
            if "credentials" in matrix.reaches(service, db):
                g.edge(node_id("svc", service), node_id("db", db), "IAM: secret + rds-db:connect", dotted=True)

    # Backup tiers: each plan, and the primaries its selection covers.
    selections = plan.of_type(BACKUP_SELECTION)
    for bp in sorted(plan.of_type(BACKUP_PLAN), key=lambda r: r["urn"]):
        bpp = props(bp)
        tier = tags_of(bp).get(TAG_TIER, bp["urn"].rsplit("::", 1)[1])
        rules = bpp.get("rules") or []
        rule = rules[0] if rules else {}
        days = (rule.get("lifecycle") or {}).get("deleteAfter", "?")
        dr = " · copy to DR" if rule.get("copyActions") else ""
        tnode = g.node(node_id("tier", tier), "tier", f"backup tier {tier}<br/>{rule.get('schedule', '?')} · keep {days}d{dr}")
        for sel in selections:
            if props(sel).get("planId") != bp.get("id"):
                continue
            for primary in primaries:
                if _selection_covers(sel, primary):
                    names = database_names(primary)
                    if names:
                        g.edge(node_id("db", names[0]), tnode, "backed up", dotted=True)
    return "\n".join(g.lines)
