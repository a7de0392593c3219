"""`check` does its per-resource preparation once (issue 23, bench/README.md "Fourth pass").

Each test counts the calls of one piece of shared work and fails if it is redone per
policy or per resource: the props of a resource go through policy_value once for the
stack and resource views together, a resource's tags are built once per Res, the
platform a stack's name implies is computed once per policy run; and the lazy
unknown-checking proxy behaves as pulumi_policy's eager one (same values, same
UnknownValueError path), so the rules see what they saw.
"""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from bulkhead.commands import check as check_mod
from bulkhead.commands.check import defaults_for_stack, evaluate, lazy_unknown_checking_proxy, load_pack, merge_configs


def _prod_config(pack):
    return merge_configs(defaults_for_stack("prod", pack), {})


def test_props_are_prepared_once_per_resource(prod_export, monkeypatch):
    pack = load_pack()
    config = _prod_config(pack)
    calls: list[int] = []
    monkeypatch.setattr(check_mod, "_views", _counting_views(calls))
    result = evaluate(prod_export, config, pack)
    resources = [r for r in prod_export["deployment"]["resources"] if not r.get("delete")]
    assert result.violations == []
    # Once per resource for both views: the stack view and the resource view were built apart
    # (two policy_value walks of the inputs per resource) before.
    assert len(calls) == len(resources), (len(calls), len(resources))


def _counting_views(calls):
    real = check_mod._views

    def views(resource):
        calls.append(1)
        return real(resource)
    return views


def test_views_match_resource_and_stack_props(prod_export):
    for r in prod_export["deployment"]["resources"]:
        view, state = check_mod._views(r)
        assert view == check_mod.resource_props(r)
        assert state == check_mod.stack_props(r)


def test_tags_are_built_once_per_resource(prod_export, monkeypatch):
    pack = load_pack()
    from bulkhead_policies import _resources

    built: list[int] = []
    real = _resources.Res._build_tags

    def counting(self):
        built.append(id(self))
        return real(self)

    monkeypatch.setattr(_resources.Res, "_build_tags", counting)
    evaluate(prod_export, _prod_config(pack), pack)
    assert built, "no rule read a tag: the count below proves nothing"
    assert len(built) == len(set(built)), "a Res built its tags more than once"


def test_tag_lists_are_copies(prod_export):
    load_pack()
    from bulkhead_policies._resources import TAG_OWNER, Res

    r = Res("aws:rds/instance:Instance", "urn:pulumi:prod::p::aws:rds/instance:Instance::a", "a",
            {"tags": {TAG_OWNER: "svc-a, svc-b"}})
    owners = r.owners
    owners.append("intruder")
    r.tags["x"] = "y"
    assert r.owners == ["svc-a", "svc-b"] and "x" not in r.tags


def test_expected_platform_once_per_stack_and_policy_run(prod_export, monkeypatch):
    pack = load_pack()
    from bulkhead_policies import thresholds

    calls: list[str] = []
    real = thresholds.expected_platform

    def counting(stack, mapping=None):
        calls.append(stack)
        return real(stack, mapping)

    monkeypatch.setattr(thresholds, "expected_platform", counting)
    result = evaluate(prod_export, _prod_config(pack), pack)
    assert result.violations == []
    # platform-matches-stack asks it for every aws/docker resource; the stack's name is one.
    assert calls and len(calls) == len(set(calls)) == 1, calls


PROPS = {"a": {"b": [1, {"c": UNKNOWN_STRING_VALUE}], "d": "x"}, "e": [UNKNOWN_STRING_VALUE, [2, 3]]}


@pytest.mark.parametrize("path", [("a", "b", 1, "c"), ("e", 0)])
def test_lazy_proxy_raises_as_the_eager_one(path):
    errors = []
    for proxy in (unknown_checking_proxy(PROPS), lazy_unknown_checking_proxy(PROPS)):
        value = proxy
        with pytest.raises(UnknownValueError) as exc:
            for key in path:
                value = value[key]
        errors.append((exc.value.props, exc.value.message))
    assert errors[0] == errors[1]


def test_lazy_proxy_reads_as_the_eager_one():
    from bulkhead_policies._resources import plain

    eager, lazy = unknown_checking_proxy(PROPS), lazy_unknown_checking_proxy(PROPS)
    assert plain(eager) == plain(lazy)
    assert type(lazy).__name__ == type(eager).__name__ and type(lazy["a"]["b"]).__name__ == "_ListProxy"
    assert lazy["a"]["d"] == eager["a"]["d"] == "x"
    assert list(lazy["e"][1]) == list(eager["e"][1]) == [2, 3]
    assert [plain(v) for v in lazy["a"]["b"][0:1]] == [plain(v) for v in eager["a"]["b"][0:1]] == [1]


def test_output_values_an_input_replaces_are_not_converted(monkeypatch):
    # The stack view is {**outputs, **inputs}: an output value an input replaces is never read,
    # so it is not walked (most outputs echo an input). Still the same views (test above).
    walked: list[int] = []
    real = check_mod.policy_value

    def counting(value):
        walked.append(id(value))
        return real(value)

    monkeypatch.setattr(check_mod, "policy_value", counting)
    outputs = {"a": {"x": [1, 2]}, "b": ["y"], "arn": {"z": "only an output"}}
    resource = {"urn": "urn:pulumi:s::p::t::n", "type": "t", "id": "n-id",
                "inputs": {"a": {"x": [1, 2]}, "b": ["y"]}, "outputs": outputs}
    view, state = check_mod._views(resource)
    assert id(outputs["a"]) not in walked and id(outputs["b"]) not in walked
    assert id(outputs["arn"]) in walked
    assert list(state) == ["a", "b", "arn", "id"] and state["arn"] == {"z": "only an output"}
    assert (view, state) == (check_mod.resource_props(resource), check_mod.stack_props(resource))


def test_plain_data_skips_the_proxy_checks(monkeypatch):
    # The pack's `plain` on a proxy's target (exact dicts, lists, scalars) asks no value whether it
    # is a proxy: that check (abc Mapping/Sequence, type names) ran for ~1M values at 1000 databases.
    load_pack()
    from bulkhead_policies import _resources

    asked: list[object] = []
    real = _resources._proxy_target

    def counting(value):
        asked.append(value)
        return real(value)

    monkeypatch.setattr(_resources, "_proxy_target", counting)
    data = {"a": [1, 2.5, True, None, {"b": "x", 3: UNKNOWN_STRING_VALUE}], "c": {}}
    assert _resources.plain(data) == {"a": [1, 2.5, True, None, {"b": "x", "3": _resources.UNKNOWN}], "c": {}}
    assert asked == []
    # A proxy still unwraps to its target, and its nested values as plain data.
    assert _resources.plain(lazy_unknown_checking_proxy(data)) == _resources.plain(data)
    assert len(asked) == 1
