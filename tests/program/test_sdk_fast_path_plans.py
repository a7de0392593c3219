"""The offline SDK fast path (bulkhead/offline/sdk_fast_path.py) writes the plan the SDK's own path
writes, byte for byte, for the bench's catalogues of 50 databases (the example stacks:
tests/program/test_offline_sdk_work.py), every response of theirs without a Struct round trip. In make
test-slow (tests/support/balance.py SLOW)."""

from __future__ import annotations

import pytest

from bench.catalogues import aws_config, docker_config
from tests.support.plans import plan_bytes, project_with, sdk_fast_path_off
from tests.support.program import run_stack


@pytest.mark.parametrize("platform", ["aws", "docker"])
def test_catalogue_of_50_same_plan_with_and_without_the_fast_path(platform, tmp_path):
    config = aws_config(50) if platform == "aws" else docker_config(50)
    project = project_with(tmp_path, "bench", config)
    with sdk_fast_path_off():
        sdk_own = plan_bytes(project, "bench", tmp_path / "sdk.json")
    fast = plan_bytes(project, "bench", tmp_path / "fast.json")
    assert b'"svc049"' in sdk_own  # the whole catalogue is in the plan
    assert fast == sdk_own


@pytest.mark.parametrize("platform", ["aws", "docker"])
def test_catalogue_of_50_every_response_plain_no_fallback(platform):
    # The bench's catalogues hold nothing the plain path hands back to the SDK: no registration's
    # outputs went through a response Struct (bulkhead/offline/sdk_fast_path.py PlainResponse).
    config = aws_config(50) if platform == "aws" else docker_config(50)
    run = run_stack("bench", config=config)
    fast = run.fast_path
    assert fast.active and fast.fallbacks == 0
    assert fast.plain_responses == len(run.resources) > 50
    assert fast.struct_reads >= len(run.resources)
