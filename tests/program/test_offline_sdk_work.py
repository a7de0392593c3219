"""Per-registration SDK work the offline run skips (issue 23): the stack trace the SDK
captures for every resource (pulumi/runtime/resource.py `_get_stack_trace`) only feeds
the engine's diagnostics; the recording monitor never reads it."""

from __future__ import annotations

from pulumi.runtime import resource as sdk_resource

from tests.support.program import run_stack


def test_run_program_captures_no_stack_traces_and_restores_the_sdk(monkeypatch):
    calls = []
    original = sdk_resource._get_stack_trace

    def counting():
        calls.append(1)
        return original()

    monkeypatch.setattr(sdk_resource, "_get_stack_trace", counting)
    run = run_stack("dev")
    assert len(run.resources) > 10
    assert calls == []  # one per registration before
    assert sdk_resource._get_stack_trace is counting  # put back after the run


# --- the fast path (bulkhead/offline/sdk_fast_path.py): the thread hop per RPC, the mock's async
# response serialization, and narrowly scoped SDK short-cuts, on the verified SDK only ----------

import asyncio  # noqa: E402
import threading  # noqa: E402

import pytest  # noqa: E402
from pulumi import _types, log
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from bulkhead.offline import sdk_fast_path  # noqa: E402
from bulkhead.offline.mock_runtime import RecordingMocks, RecordingMonitor  # noqa: E402
from tests.support.plans import ROOT, plan_bytes, sdk_fast_path_off  # noqa: E402

PATCHED = [(rpc, "transfer_properties"), (sdk_resource, "create_urn"), (_types, "unwrap_type"),
           (rpc, "serialize_property"), (rpc, "deserialize_properties"), (rpc, "translate_output_properties"),
           (log, "debug")]


def test_the_installed_sdk_is_the_verified_one():
    # Fails on an SDK upgrade: the fast path then stays off (the plan is the same, only slower).
    # Re-read the functions sdk_fast_path.py names for the new version, run this file and
    # tests/program/test_sdk_fast_path_plans.py, then add the version to VERIFIED_SDK.
    assert sdk_fast_path.sdk_version() in sdk_fast_path.VERIFIED_SDK


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_example_stacks_same_plan_with_and_without_the_fast_path(stack, tmp_path):
    with sdk_fast_path_off():
        sdk_own = plan_bytes(ROOT, stack, tmp_path / "sdk.json")
    fast = plan_bytes(ROOT, stack, tmp_path / "fast.json")
    assert fast == sdk_own


def _count_calls(monkeypatch, targets) -> dict:
    """Each (owner, name) of `targets` wrapped to count the calls that reach it: name -> count."""
    calls: dict = {name: 0 for _, name in targets}
    for owner, name in targets:
        original = getattr(owner, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counting)
    return calls


def _count_hops(monkeypatch) -> dict:
    """asyncio's executor hop (base_events.py run_in_executor -> futures.wrap_future ->
    call_soon_threadsafe), counted at the class and module the loop calls them through."""
    from asyncio import base_events, futures

    return _count_calls(monkeypatch, ((base_events.BaseEventLoop, "call_soon_threadsafe"), (futures, "wrap_future")))


def test_the_fast_path_is_on_and_skips_the_work(monkeypatch):
    # Each SDK function the fast path replaces counts the calls that still reach it.
    calls = _count_calls(monkeypatch, PATCHED)
    hops = _count_hops(monkeypatch)
    with sdk_fast_path_off():
        run_stack("prod")
    sdk_own, sdk_hops = dict(calls), dict(hops)
    calls.update({name: 0 for name in calls})
    hops.update({name: 0 for name in hops})
    threads_before = {t.ident for t in threading.enumerate()}
    run = run_stack("prod")
    fast = run.fast_path
    assert fast.active and fast.sdk in sdk_fast_path.VERIFIED_SDK
    # Every registration and invoke ran on the loop's thread, through the inline executor,
    # and reached the loop without a concurrent future or a thread-safe callback.
    assert fast.inline_calls >= len(run.resources) > 100
    assert sdk_hops["wrap_future"] >= len(run.resources) and sdk_hops["call_soon_threadsafe"] >= len(run.resources)
    assert hops == {"call_soon_threadsafe": 0, "wrap_future": 0}
    assert fast.fallbacks == 0  # every response serialized without the event loop
    # No Struct round trip for a response: each registration's outputs reached resolve_outputs as
    # plain values; the requests' inputs (and invoke results) read by struct_properties.
    assert fast.plain_responses == len(run.resources)
    assert fast.struct_reads >= len(run.resources)
    assert sdk_own["deserialize_properties"] > 2 * len(run.resources) and calls["deserialize_properties"] == 0
    assert calls["translate_output_properties"] * 4 < sdk_own["translate_output_properties"]  # not str/bool/float
    assert {t.ident for t in threading.enumerate()} <= threads_before  # no executor threads started
    # Replaced outright: only the stack resource set_mocks registers before the run reaches them.
    assert sdk_own["transfer_properties"] > 100 and calls["transfer_properties"] <= 1
    assert sdk_own["create_urn"] > 100 and calls["create_urn"] == 0
    assert sdk_own["debug"] > 100 and calls["debug"] <= 1
    # Short-cuts: the SDK's own function only for what they do not cover.
    assert calls["unwrap_type"] < 100 < sdk_own["unwrap_type"]  # once per distinct type
    assert calls["serialize_property"] * 3 < sdk_own["serialize_property"]  # not for str/int/bool/None
    # Put back after the run.
    assert all(getattr(module, name).__name__ == "counting" for module, name in PATCHED)
    assert asyncio.get_event_loop()._default_executor is not fast.executor
    assert "run_in_executor" not in asyncio.get_event_loop().__dict__


def test_on_an_sdk_not_verified_the_run_is_the_sdks_own(monkeypatch):
    with sdk_fast_path_off():
        originals = {name: getattr(module, name) for module, name in PATCHED}
        seen = []
        original_transfer = rpc.transfer_properties

        def counting(*args, **kwargs):
            seen.append(1)
            return original_transfer(*args, **kwargs)

        monkeypatch.setattr(rpc, "transfer_properties", counting)
        originals["transfer_properties"] = counting
        run = run_stack("prod")
    fast = run.fast_path
    assert not fast.active and fast.inline_calls == 0 and fast.fallbacks == 0
    assert fast.plain_responses == 0 and fast.struct_reads == 0
    assert len(seen) > 100  # the SDK's own transfer_properties ran, once per resource
    assert all(getattr(module, name) is originals[name] for module, name in PATCHED)
    assert "run_in_executor" not in asyncio.get_event_loop().__dict__  # the loop's own method
    assert sdk_fast_path.activate(asyncio.new_event_loop(), None, version="3.999.0").active is False


class _Text(str):
    """A str subclass: not a plain value for wire(); the SDK serializes it."""


PLAIN_STATES = [
    {"a": "x", "n": 5432, "f": 1.5, "b": True, "none": None, "nested": {"k": None, "l": [1, "2", None, {"z": []}]}},
    {"t": ("a", "b"), "empty": {}, "list": [], "secret": {rpc._special_sig_key: rpc._special_secret_sig, "value": "pw"}},
    {"asset": sdk_fast_path.pulumi.StringAsset("body"), "file": sdk_fast_path.pulumi.FileArchive("/tmp/a.zip"),
     "archive": sdk_fast_path.pulumi.AssetArchive({"x": sdk_fast_path.pulumi.FileAsset("/tmp/x")})},
]


@pytest.mark.parametrize("state", PLAIN_STATES)
def test_wire_struct_is_what_the_sdk_serializes(state):
    assert sdk_fast_path.wire_struct(state) == _sync_await(rpc.serialize_properties(state, {}))


def test_a_value_wire_refuses_goes_the_sdks_way_on_and_off_the_loop():
    state = {"name": _Text("x"), "n": 1}
    with pytest.raises(sdk_fast_path.NotPlain):
        sdk_fast_path.wire_struct(state)
    expected = _sync_await(rpc.serialize_properties(state, {}))
    monitor = RecordingMonitor(RecordingMocks(stack="t"), fast=sdk_fast_path.FastPath(active=True, sdk="x"))
    assert monitor._serialize(state) == expected  # no running loop: _sync_await
    assert monitor.fast.fallbacks == 1

    async def on_the_loop():  # as under the inline executor: a helper thread with its own loop
        return monitor._serialize(state)

    assert asyncio.new_event_loop().run_until_complete(on_the_loop()) == expected
    assert monitor.fast.fallbacks == 2


def test_activate_leaves_nothing_half_installed(monkeypatch):
    class Refuses:
        x = 1

        def __setattr__(self, name, value):
            raise RuntimeError("read-only")

    before = rpc.transfer_properties
    monkeypatch.setattr(sdk_fast_path, "_patches", lambda logger, fast: [(rpc, "transfer_properties", object()),
                                                                          (Refuses(), "x", 2)])
    loop = asyncio.new_event_loop()
    with pytest.raises(RuntimeError):
        sdk_fast_path.activate(loop, None)
    assert rpc.transfer_properties is before
    assert loop._default_executor is None


# --- the Struct round trip: plain values in place of a response Struct, a request's Struct read
# directly; each the value the SDK's deserialize_properties gives, key order included ------------

from pulumi.output import Unknown  # noqa: E402

SECRET = rpc._special_sig_key


def _secret(value):
    return {SECRET: rpc._special_secret_sig, "value": value}


# Every kind of value a mock's state can hold, and the keys' order on the way (many keys).
STATES = PLAIN_STATES + [
    {"unknown": rpc.UNKNOWN, "nested": {"u": rpc.UNKNOWN, "l": [rpc.UNKNOWN, 1]}, "n": -7, "big": 2**60 + 1},
    {"l": [1, _secret("x"), None], "m": {"a": _secret("y"), "b": 2}, "top": _secret({"k": [1, 2]}),
     "twice": _secret(_secret("z")), "deep": {"x": {"y": [{"s": _secret(1.5)}]}}},
    {"__internal": 1, "__provider": "p", "_one": {"__inner": 2, "b": None}, "empty": "", "zero": 0, "f": False},
    {f"key{i:02d}": {f"inner{j}": j for j in range(i % 7)} for i in range(40)},
    {"text": "caf\u00e9 \u2603", "remote": sdk_fast_path.pulumi.RemoteAsset("https://x/y"),
     "rarchive": sdk_fast_path.pulumi.RemoteArchive("https://x/z.zip"),
     "secret_asset": _secret(sdk_fast_path.pulumi.StringAsset("s"))},
]


def _same(a, b) -> bool:
    """Equal, of the same types all the way down, dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (sdk_fast_path.pulumi.Asset, sdk_fast_path.pulumi.Archive)):
        return vars(a).keys() == vars(b).keys() and all(_same(vars(a)[k], vars(b)[k]) for k in vars(a))
    if isinstance(a, (Unknown, sdk_fast_path.Output, sdk_fast_path.pulumi.Resource)):
        return True  # built afresh by each call: the same kind of object
    return a == b


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("keep_unknowns, keep_internal", [(True, True), (None, True), (False, False)])
def test_plain_values_deserialize_as_the_sdk_does(state, keep_unknowns, keep_internal):
    struct = sdk_fast_path.wire_struct(state)
    sdk_own = rpc.deserialize_properties(struct, keep_unknowns, keep_internal)
    plain = sdk_fast_path.plain_properties(sdk_fast_path.wire_values(state), keep_unknowns, keep_internal)
    read = sdk_fast_path.struct_properties(struct, keep_unknowns, keep_internal)
    assert _same(plain, sdk_own) and _same(read, sdk_own)


def test_the_struct_key_order_is_worked_out_per_key_sequence():
    import random

    rng = random.Random(23)
    names = [f"k{i}" for i in range(60)] + ["engine", "tags", "arn", "id", "name", "port"]
    for _ in range(300):
        keys = rng.sample(names, rng.randint(2, 40))
        values = {k: rng.choice([1, "x", None, {"a": 1, "b": 2, "c": 3}]) for k in keys}
        assert list(sdk_fast_path.plain_properties(values, True, True)) == \
            list(rpc.deserialize_properties(sdk_fast_path._struct_of(values), True))


# What plain_properties does not rebuild: a resource reference, an output value, an unknown
# signature, a secret without its value, an asset whose path is not a string, an archive of
# something else than assets. The SDK's deserialize_properties answers (or raises) for them.
NOT_REBUILT = [
    {"ref": {SECRET: rpc._special_resource_sig, "urn": "urn:pulumi:s::p::aws:s3/bucket:Bucket::b", "id": "b"}},
    {"out": {SECRET: rpc._special_output_value_sig, "value": "v", "secret": True}},
    {"odd": {SECRET: "0000", "value": 1}},
    {"bare": {SECRET: rpc._special_secret_sig}},
    {"asset": {SECRET: rpc._special_asset_sig, "path": 5}},
    {"archive": {SECRET: rpc._special_archive_sig, "assets": {"a": "not an asset"}}},
    {SECRET: rpc._special_secret_sig, "value": "a top-level special value"},
]


def _same_outcome(fn, sdk_own) -> bool:
    """`fn()` returns what `sdk_own()` returns (_same), or raises what it raises."""
    outcomes = []
    for call in (fn, sdk_own):
        try:
            outcomes.append(("value", call()))
        except Exception as exc:  # noqa: BLE001 - compared with the SDK's own outcome
            outcomes.append(("raised", (type(exc), str(exc))))
    (kind, got), (expected_kind, expected) = outcomes
    return kind == expected_kind and (_same(got, expected) if kind == "value" else got == expected)


@pytest.mark.parametrize("state", NOT_REBUILT)
def test_a_value_the_plain_path_does_not_rebuild_goes_the_sdks_way(state):
    fast = sdk_fast_path.FastPath(active=True, sdk="x")
    deserialize = sdk_fast_path._make_deserialize_properties(rpc.deserialize_properties, fast)
    values = sdk_fast_path.wire_values(state)  # plain on the way out: only rebuilding refuses
    with pytest.raises(sdk_fast_path.NotPlain):
        sdk_fast_path.plain_properties(values, True, True)
    struct = sdk_fast_path.wire_struct(state)
    with pytest.raises(sdk_fast_path.NotPlain):
        sdk_fast_path.struct_properties(struct)
    sdk_own = lambda: rpc.deserialize_properties(struct, True)  # noqa: E731
    assert _same_outcome(lambda: deserialize(sdk_fast_path.PlainStruct(values), True), sdk_own)
    assert _same_outcome(lambda: deserialize(struct, True), sdk_own)
    assert fast.fallbacks == 2 and fast.plain_responses == 0 and fast.struct_reads == 0


def test_a_state_wire_refuses_gets_the_sdk_mocks_protobuf_response():
    monitor = RecordingMonitor(RecordingMocks(stack="t"), fast=sdk_fast_path.FastPath(active=True, sdk="x"))
    plain = monitor._register_response("urn:a", "id-1", {"n": 1, "s": "x"})
    assert isinstance(plain, sdk_fast_path.PlainResponse) and plain.object.values == {"n": 1, "s": "x"}
    assert plain.result == sdk_fast_path.resource_pb2.Result.SUCCESS
    # What a Struct cannot hold the SDK's serializer is given, to answer or raise as it does.
    for state in ({"name": _Text("x")}, {"bad": "\udc80"}, {"big": 10**400}, {"m": {1: "int key"}}):
        sdk_own = lambda state=state: _sync_await(rpc.serialize_properties(state, {}))  # noqa: E731
        assert _same_outcome(lambda state=state: monitor._register_response("urn:b", "id-2", state).object, sdk_own)
    assert monitor.fast.fallbacks == 4


def test_a_property_leaves_the_tracked_outputs_as_it_resolves_and_stays_if_it_fails():
    # Output._track's bookkeeping without a done callback per property (sdk_fast_path._transfer_properties).
    from pulumi.runtime import settings

    class Res:
        pass

    async def resolve_two():
        res = Res()
        resolvers = sdk_fast_path._transfer_properties(res, {"a": 1, "b": 2, "id": 3}, custom=True)
        tracked = settings.SETTINGS.outputs
        a, b = res.a._data, res.b._data
        assert a in tracked and b in tracked and "id" not in resolvers
        resolvers["a"]("x", True, False, None, None)
        resolvers["b"](None, False, False, None, RuntimeError("failed"))
        assert a not in tracked  # at once, not a loop turn later
        assert b in tracked  # for wait_for_rpcs to report at exit
        assert await res.a.future() == "x"
        with pytest.raises(RuntimeError):
            await res.b.future()
        tracked.discard(b)

    asyncio.new_event_loop().run_until_complete(resolve_two())
