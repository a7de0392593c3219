"""Plan files written as `bulkhead plan` writes them, for byte-for-byte comparisons of two ways
of planning one catalogue (the offline SDK fast path on and off: tests/program/test_sdk_fast_path*.py;
serial against parallel: tests/program/test_parallel_plan.py)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import yaml

from bulkhead.commands.plan import build_plan, write_plan
from bulkhead.offline import sdk_fast_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def project_with(tmp_path, stack: str, config: dict) -> str:
    """A project dir with the program (symlinked) and `config` as Pulumi.<stack>.yaml."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("__main__.py", "Pulumi.yaml", "components"):
        (project / name).symlink_to(os.path.join(ROOT, name))
    (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return str(project)


def plan_bytes(project: str, stack: str, path, jobs: int = 1) -> bytes:
    """The plan file `bulkhead plan --stack <stack> --jobs <jobs>` writes, as bytes."""
    export, _ = build_plan(project, stack, jobs=jobs)
    write_plan(export, str(path))
    with open(path, "rb") as fh:
        return fh.read()


@contextmanager
def sdk_fast_path_off() -> Iterator[None]:
    """Runs inside take the SDK's own path, as with an SDK version the fast path was not verified on."""
    verified = sdk_fast_path.VERIFIED_SDK
    sdk_fast_path.VERIFIED_SDK = frozenset()
    try:
        yield
    finally:
        sdk_fast_path.VERIFIED_SDK = verified
