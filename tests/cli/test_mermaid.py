"""`plan --mermaid`: the diagram of both example stacks, derived from the plan's resources."""

from __future__ import annotations

import re

import pytest

from bulkhead.cli import main
from bulkhead.mermaid import node_id, render_mermaid
from bulkhead.planfile import Plan

EDGE = re.compile(r"^\s+(\w+) (-->|-\.->)(?:\|\"([^\"]*)\"\|)? (\w+)$")
NODE = re.compile(r"^\s+(\w+)(\(\[|\[\(|\[|\{\{)\"[^\"]*\"(\]\)|\)\]|\]|\}\})$")
SUBGRAPH = re.compile(r"^\s+subgraph (\w+)\[\"[^\"]*\"\]$")


def parse(text: str):
    """Check every line is a known Mermaid statement; return nodes and edges."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes, edges, depth = {}, [], 0
    for line in lines[1:]:
        if line.strip().startswith("%%"):
            continue
        if m := SUBGRAPH.match(line):
            depth += 1
            nodes[m.group(1)] = "subgraph"
            continue
        if line.strip() == "end":
            depth -= 1
            assert depth >= 0
            continue
        if m := NODE.match(line):
            assert m.group(1) not in nodes, f"declared twice: {m.group(1)}"
            nodes[m.group(1)] = line
            continue
        m = EDGE.match(line)
        assert m, f"not a Mermaid statement: {line!r}"
        edges.append((m.group(1), m.group(4), m.group(3) or "", m.group(2)))
    assert depth == 0
    for a, b, *_ in edges:
        assert a in nodes and b in nodes, f"edge to an undeclared node: {a} -> {b}"
    for nid in nodes:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", nid) and nid != "end"
    return nodes, edges


def reachable(edges, start, kinds=("-->",)):
    seen, todo = set(), [start]
    while todo:
        n = todo.pop()
        for a, b, _, arrow in edges:
            if a == n and arrow in kinds and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


@pytest.fixture(scope="module")
def dev_diagram(dev_export):
    return render_mermaid(Plan.from_export(dev_export))


@pytest.fixture(scope="module")
def prod_diagram(prod_export):
    return render_mermaid(Plan.from_export(prod_export))


def test_dev_diagram(dev_diagram, dev_run):
    nodes, edges = parse(dev_diagram)
    dbs = {k: v for k, v in _plain(dev_run.exports["databases"]).items()}
    services = {d["owner"] for d in dbs.values()}
    for s in services:
        assert node_id("svc", s) in nodes
    for name, d in dbs.items():
        assert node_id("db", name) in nodes
        assert f"tier {d['tier']}" in nodes[node_id("db", name)]
        assert node_id("net", d["network"]) in nodes
    # the only service -> database edges are owner -> own database, each over its own network
    svc_edges = [(a, b, label) for a, b, label, _ in edges if a.startswith("svc_")]
    assert sorted((a, b) for a, b, _ in svc_edges) == sorted(
        (node_id("svc", d["owner"]), node_id("db", n)) for n, d in dbs.items())
    for _a, b, label in svc_edges:
        name = b.removeprefix("db_")
        assert f"joins {dbs[name]['network']}" in label
    for s in services:
        own = {node_id("db", n) for n, d in dbs.items() if d["owner"] == s}
        assert reachable(edges, node_id("svc", s)) == own


def test_prod_diagram(prod_diagram, prod_run):
    nodes, edges = parse(prod_diagram)
    dbs = _plain(prod_run.exports["databases"])
    for name, d in dbs.items():
        svc, cg, db = node_id("svc", d["owner"]), node_id("cg", d["security_group_id"]), node_id("db", name)
        dbg = node_id("dbg", d["database_security_group_id"])
        assert {svc, cg, db, dbg} <= set(nodes)
        # the access path: service -> client group -> database group -> instances
        assert (svc, cg) in {(a, b) for a, b, *_ in edges}
        assert (cg, dbg, "tcp 5432") in {(a, b, lbl) for a, b, lbl, _ in edges}
        replicas = {node_id("rep", h.split(".")[0]) for h in d["reader_hosts"]}
        assert replicas <= set(nodes)
        assert reachable(edges, svc) == {cg, dbg, db} | replicas
        for rep in replicas:
            assert (db, rep, "replicates") in {(a, b, lbl) for a, b, lbl, _ in edges}
        # backup tier: the primary is backed up by its tier's plan
        tier = node_id("tier", d["tier"])
        assert (db, tier, "backed up") in {(a, b, lbl) for a, b, lbl, _ in edges}
        assert f"tier {d['tier']}" in prod_diagram
    # IAM credentials only owner -> own database
    creds = {(a, b) for a, b, lbl, _ in edges if lbl.startswith("IAM")}
    assert creds == {(node_id("svc", d["owner"]), node_id("db", n)) for n, d in dbs.items()}
    assert "cron(0 * * * ? *) · keep 30d · copy to DR" in prod_diagram
    assert "multi-AZ · PITR 14d" in nodes[node_id("db", "auth")]


def test_a_second_owner_rule_shows_up(prod_export):
    """Derived from resources: an extra ingress rule from another client group appears as an edge."""
    import copy

    export = copy.deepcopy(prod_export)
    res = export["deployment"]["resources"]
    rule = next(r for r in res if r["type"].endswith("SecurityGroupIngressRule") and r["urn"].endswith("auth-db-from-owner"))
    app_client = next(r["id"] for r in res if r["type"].endswith("securityGroup:SecurityGroup")
                      and r["inputs"]["tags"].get("bulkhead:role") == "client" and r["inputs"]["tags"]["bulkhead:owner"] == "app-service")
    extra = copy.deepcopy(rule)
    extra["urn"] += "-extra"
    extra["inputs"]["referencedSecurityGroupId"] = app_client
    res.append(extra)
    nodes, edges = parse(render_mermaid(Plan.from_export(export)))
    assert node_id("db", "auth") in reachable(edges, node_id("svc", "app-service"))


def test_ids_are_sanitized():
    assert node_id("svc", "a-b.c/d e") == "svc_a_b_c_d_e"


def test_cli_prints_the_diagram(capsys, tmp_path):
    assert main(["plan", "--stack", "prod", "--mermaid", "--out", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart LR") and "svc_auth_service" in out


def _plain(value):
    from bulkhead.offline.mock_runtime import exports_plain

    return exports_plain(value)
