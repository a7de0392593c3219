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
