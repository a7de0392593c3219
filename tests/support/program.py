"""Run the real `__main__.py` under the recording mock runtime, fresh per stack."""

from __future__ import annotations

import copy
import os
import sys
from typing import Any, Callable, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bulkhead.offline.mock_runtime import ProgramRun, run_program  # noqa: E402
from bulkhead.offline.stack_config import load_stack_config  # noqa: E402

def stack_config(stack: str) -> dict[str, Any]:
    """Full-key config of a repo stack (Pulumi.yaml defaults + Pulumi.<stack>.yaml)."""
    return load_stack_config(ROOT, stack)


def run_stack(stack: str, config: Optional[dict[str, Any]] = None,
              edit: Optional[Callable[[dict], None]] = None, stack_name: Optional[str] = None,
              caller_arn: Optional[str] = None) -> ProgramRun:
    """Run __main__.py fresh for `stack` (or `config`), after `edit(config)` if given.

    `caller_arn`: who deploys (GetCallerIdentity); default a session of the first deployer.
    Raises the program's error, so a test sees a failed run as a failure.
    """
    config = copy.deepcopy(config if config is not None else stack_config(stack))
    if edit:
        edit(config)
    run = run_program(ROOT, stack_name or stack, config, caller_arn=caller_arn)
    if run.error is not None:
        raise run.error
    return run


_SHARED: dict[str, ProgramRun] = {}


def shared_run(stack: str) -> ProgramRun:
    """The run of a repo stack with its own config, planned once per test process and shared
    (tests/conftest.py's dev_run/prod_run and the module fixtures that plan the unchanged stack).
    Read it, never change it; a test that needs a run of its own calls run_stack."""
    if stack not in _SHARED:
        _SHARED[stack] = run_stack(stack)
    return _SHARED[stack]
