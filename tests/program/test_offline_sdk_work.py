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
           (rpc, "serialize_property"), (log, "debug")]


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


def _count_sdk_calls(monkeypatch) -> dict:
    calls: dict = {name: 0 for _, name in PATCHED}
    for module, name in PATCHED:
        original = getattr(module, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    return calls


def test_the_fast_path_is_on_and_skips_the_work(monkeypatch):
    # Each SDK function the fast path replaces counts the calls that still reach it.
    calls = _count_sdk_calls(monkeypatch)
    with sdk_fast_path_off():
        run_stack("prod")
    sdk_own = dict(calls)
    calls.update({name: 0 for name in calls})
    threads_before = {t.ident for t in threading.enumerate()}
    run = run_stack("prod")
    fast = run.fast_path
    assert fast.active and fast.sdk in sdk_fast_path.VERIFIED_SDK
    # Every registration and invoke ran on the loop's thread, through the inline executor.
    assert fast.inline_calls >= len(run.resources) > 100
    assert fast.fallbacks == 0  # every response serialized without the event loop
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
    assert len(seen) > 100  # the SDK's own transfer_properties ran, once per resource
    assert all(getattr(module, name) is originals[name] for module, name in PATCHED)
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
