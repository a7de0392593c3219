"""The plan file's text and order (bulkhead/commands/plan.py plan_text, mock_runtime.to_stack_export):
ujson writes what `json.dumps(export, indent=1)` writes, but for the two spellings plan_text
documents; the records' maps are sorted where they are recorded, so the export needs no second sort;
the dependency order is the smallest ready URN first."""

from __future__ import annotations

import heapq
import json
import random

import pytest

from bulkhead.commands.plan import plan_text
from bulkhead.offline.mock_runtime import RecordedResource, _dependency_order, _envelope


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_text_is_jsons_indent_1(stack, dev_export, prod_export):
    export = {"dev": dev_export, "prod": prod_export}[stack]
    assert plan_text(export) == json.dumps(export, indent=1)


VALUES = [
    "".join(chr(i) for i in range(0x7F)) + "é😀\u2028\U0010ffff",  # controls, quotes, backslash, non-ASCII
    "a/b</script>&'",
    [0.1, 2.0, -0.0, 1e22, 1e16, 5e-324, 1.7976931348623157e308, 123456789.12345679, 0.0001, 3.14159],
    [0, -1, 2**63, -(2**63), 2**64 - 1, 2**70, True, False, None],
    {"": [], "a": {}, "b": [[]], "c": [{}], 1: "int key", None: "null key"},
    {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_plan_text_equals_json_on_edge_values(value):
    assert plan_text(value) == json.dumps(value, indent=1)


def test_plan_text_documented_differences():
    # If ujson changes these, plan_text's docstring is wrong: re-read and update it.
    assert plan_text([1e-7, 1e-5]) == "[\n 1e-7,\n 1e-5\n]"
    assert json.dumps([1e-7, 1e-5], indent=1) == "[\n 1e-07,\n 1e-05\n]"
    assert plan_text("\x7f") == '"\x7f"'
    assert json.dumps("\x7f") == '"\\u007f"'
    assert json.loads(plan_text([1e-7, "\x7f"])) == [1e-7, "\x7f"]


def _sorted_everywhere(value) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(_sorted_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(_sorted_everywhere(v) for v in value)
    return True


def test_recorded_maps_sorted_at_every_level(prod_run, dev_run):
    """to_stack_export writes the records' inputs and outputs as recorded: sorted there."""
    runs = [prod_run, dev_run]
    assert all(_sorted_everywhere(r.inputs) and _sorted_everywhere(r.outputs) for run in runs for r in run.resources)
    # and the fixture has maps to sort: unsorted input is sorted by _envelope, nested too
    assert list(_envelope({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": 2}})) == ["a", "b"]
    assert _envelope({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": 2}}) == {"a": {"c": 2, "d": [{"y": 2, "z": 1}]}, "b": 1}
    assert list(_envelope({"b": 1, "a": 2}, {"b"})) == ["a", "b"]


def _reference_order(resources: list[RecordedResource]) -> list[str]:
    """The definition: repeatedly the smallest URN whose parent and dependencies are all out."""
    by_urn = {r.urn: r for r in resources}
    waits = {r.urn: {u for u in [r.parent, *r.dependencies, *(u for us in r.property_dependencies.values() for u in us)]
                     if u in by_urn and u != r.urn} for r in resources}
    out: list[str] = []
    ready = [u for u, w in waits.items() if not w]
    heapq.heapify(ready)
    while ready:
        u = heapq.heappop(ready)
        out.append(u)
        for v, w in waits.items():
            if u in w:
                w.discard(u)
                if not w:
                    heapq.heappush(ready, v)
    return out + sorted(u for u in by_urn if u not in out)


def _resource(urn: str, parent: str, deps: list[str], prop_deps: dict) -> RecordedResource:
    return RecordedResource(urn=urn, type="t", name=urn, custom=True, id="", inputs={}, outputs={}, parent=parent,
                            dependencies=deps, property_dependencies=prop_deps, protect=False, retain_on_delete=False,
                            provider="")


def test_dependency_order_is_smallest_ready_urn_first(prod_run):
    assert [r.urn for r in _dependency_order(prod_run.resources)] == _reference_order(prod_run.resources)
    rng = random.Random(23)
    for _ in range(50):
        urns = [f"urn:{rng.randrange(10**6):06d}" for _ in range(40)]
        urns = list(dict.fromkeys(urns))
        rank = {u: i for i, u in enumerate(rng.sample(urns, len(urns)))}  # a hidden DAG order
        resources = []
        for u in urns:
            earlier = [v for v in urns if rank[v] < rank[u]]
            pick = lambda k, earlier=earlier: rng.sample(earlier, min(k, len(earlier)))  # noqa: E731
            resources.append(_resource(u, (pick(1) or [""])[0], pick(2) + ["urn:elsewhere", u],
                                       {"p": pick(2), "q": pick(1)}))
        rng.shuffle(resources)
        assert [r.urn for r in _dependency_order(resources)] == _reference_order(resources)


def test_dependency_order_keeps_a_cycle():
    a, b, c = _resource("a", "b", [], {}), _resource("b", "a", [], {}), _resource("c", "", [], {})
    assert [r.urn for r in _dependency_order([b, a, c])] == ["c", "a", "b"]
