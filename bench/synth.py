"""Larger plans from a real one, for `check` at N = 1000 and 5000.

The unit of cloning is one owner: its ServiceClient component and all of its
databases' resources (an owner's client group is shared by its databases). Each
clone renames the database and owner names (in URNs, names, tags, identifiers,
env vars) and gives every id, ARN and digest the unit owns a new value of the
same shape, so that clones never share a security group, key or secret with
their original. Stack-wide resources (VPC, subnet group, monitoring role,
backups) stay single, as they would in a real stack of that size.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re

from bulkhead.planfile import SECRET_SIG, SECRET_SIG_KEY
from policies.bulkhead_types import STACK as STACK_TYPE

KEEP_TOKENS = {SECRET_SIG_KEY, SECRET_SIG, "123456789012"}
TOKEN_RE = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-f]{8,}|[0-9A-F]{16,})(?![0-9A-Za-z])|(?<=[-_])(?:[0-9a-f]{8,})(?![0-9a-z])")


def _database_of(resource: dict, by_urn: dict) -> str | None:
    """The catalogue database a resource belongs to: its top-level component's name."""
    node = resource
    while True:
        parent = by_urn.get(node.get("parent") or "")
        if parent is None or parent["type"] == STACK_TYPE:
            break
        node = parent
    if node["type"] == "bulkhead:index:RdsPostgres" or node["type"] == "bulkhead:index:DockerPostgres":
        return node["urn"].rsplit("::", 1)[1]
    return None


def _named_for(resource: dict, owner_of: dict) -> str | None:
    """A per-database resource kept outside the database's component (a stack-wide
    component's child named after it, e.g. restore-testing-<db>): the database named."""
    name = resource["urn"].rsplit("::", 1)[1]
    for db in owner_of:
        if name.endswith(f"-{db}"):
            return db
    return None


def _client_owner(resource: dict, by_urn: dict) -> str | None:
    node = resource
    while node is not None and node["type"] != "bulkhead:index:ServiceClient":
        node = by_urn.get(node.get("parent") or "")
    return node["urn"].rsplit("::", 1)[1][len("client-"):] if node is not None else None


def synthesise(export: dict, copies: int) -> dict:
    """`export` (an aws plan) with every owner's resources present `copies` times."""
    resources = export["deployment"]["resources"]
    by_urn = {r["urn"]: r for r in resources}
    stack = next(r for r in resources if r["type"] == STACK_TYPE)
    databases = stack["outputs"].get("databases") or {}
    owner_of = {name: d["owner"] for name, d in databases.items()}
    units: dict[str, list[dict]] = {}
    shared: list[dict] = []
    for r in resources:
        if r is stack:
            continue
        db = _database_of(r, by_urn) or _named_for(r, owner_of)
        owner = owner_of.get(db) if db else _client_owner(r, by_urn)
        (units.setdefault(owner, []) if owner else shared).append(r)
    shared_text = json.dumps(shared)
    out = [copy.deepcopy(stack)] + copy.deepcopy(shared)
    out_stack = out[0]
    for owner, members in units.items():
        names = sorted(n for n, o in owner_of.items() if o == owner)
        text = json.dumps(members)
        outputs_text = json.dumps({"databases": {n: databases[n] for n in names},
                                   "services": {owner: (stack["outputs"].get("services") or {}).get(owner)}})
        # Not a bare number (an alarm threshold in bytes, issue 24): renaming it would break the JSON.
        own_tokens = {t for t in TOKEN_RE.findall(text) if t not in KEEP_TOKENS and t not in shared_text and not t.isdigit()}
        out.extend(copy.deepcopy(members))
        for k in range(1, copies):
            renames = {t: hashlib.sha256(f"{t}/{k}".encode()).hexdigest()[:len(t)] for t in own_tokens}
            renames.update({t: v.upper() for t, v in renames.items() if t.isupper()})
            suffix = f"x{k:03d}"
            patterns = [(re.escape(owner) + r"(?![0-9a-z])", f"{owner}{suffix}")]
            for n in names:
                patterns.append((r"(?<![0-9a-z])" + re.escape(n) + r"(?![0-9a-z])", f"{n}{suffix}"))
                patterns.append((re.escape(n.upper()) + "_", f"{n.upper()}{suffix.upper()}_"))

            def rename(s: str, renames: dict = renames, patterns: list = patterns) -> str:
                s = TOKEN_RE.sub(lambda m: renames.get(m.group(0), m.group(0)), s)
                for pat, rep in patterns:
                    s = re.sub(pat, rep, s)
                return s

            out.extend(json.loads(rename(text)))
            extra = json.loads(rename(outputs_text))
            out_stack["outputs"].setdefault("databases", {}).update(extra["databases"])
            if extra["services"]:
                out_stack["outputs"].setdefault("services", {}).update({k2: v for k2, v in extra["services"].items() if v})
    # The stack's one RDS event subscription (issue 24) lists every instance: the clones too.
    idents = sorted({r["inputs"]["identifier"] for r in out if r["type"] == "aws:rds/instance:Instance"
                     and isinstance(r.get("inputs", {}).get("identifier"), str)})
    for r in out:
        if r["type"] == "aws:rds/eventSubscription:EventSubscription":
            for side in ("inputs", "outputs"):
                if isinstance(r.get(side), dict) and "sourceIds" in r[side]:
                    r[side]["sourceIds"] = idents
    result = copy.deepcopy({k: v for k, v in export.items() if k != "deployment"})
    result["deployment"] = {**{k: v for k, v in export["deployment"].items() if k != "resources"}, "resources": out}
    return result
