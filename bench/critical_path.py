"""The deploy's critical path: the longest chain of slow creates in the plan's dependency graph.

The engine starts a resource once everything it depends on exists: its
`dependencies` and `propertyDependencies` (a parent is not waited for). A chain
counts only the slow creates on it: RDS instances and replicas (10-40 minutes
each), or, in dev, containers that wait for their healthcheck.
"""

from __future__ import annotations


SLOW = {
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:rds/clusterInstance:ClusterInstance",
    "docker:index/container:Container",
}


def critical_path(export: dict) -> tuple[int, list[str]]:
    """(number of slow creates on the longest chain, the chain's URNs, first to last)."""
    resources = [r for r in export["deployment"]["resources"] if r.get("type") != "pulumi:pulumi:Stack"]
    by_urn = {r["urn"]: r for r in resources}
    deps: dict[str, set[str]] = {}
    for r in resources:
        d = set(r.get("dependencies") or [])
        for urns in (r.get("propertyDependencies") or {}).values():
            d.update(urns or [])
        deps[r["urn"]] = {u for u in d if u in by_urn and u != r["urn"]}

    best: dict[str, tuple[int, tuple[str, ...]]] = {}

    def longest(urn: str) -> tuple[int, tuple[str, ...]]:
        # iterative DFS: plans of thousands of resources would exceed the recursion limit
        stack = [(urn, False)]
        while stack:
            node, ready = stack.pop()
            if node in best:
                continue
            if not ready:
                stack.append((node, True))
                stack.extend((d, False) for d in deps[node] if d not in best)
                continue
            weight = 1 if by_urn[node]["type"] in SLOW else 0
            prev = max((best[d] for d in deps[node]), default=(0, ()), key=lambda x: x[0])
            best[node] = (prev[0] + weight, prev[1] + ((node,) if weight else ()))
        return best[urn]

    top = max((longest(u) for u in by_urn), default=(0, ()), key=lambda x: x[0])
    return top[0], list(top[1])
