"""Every Docker input of the dev example stack, byte for byte, against a committed copy.

A change to a container's inputs (its start script, uploads, flags, labels) makes the
Docker provider replace that container on the next `up` (kreuzwerker/terraform-provider-docker
marks nearly every container attribute ForceNew), so it must be deliberate: regenerate the copy
with `BULKHEAD_UPDATE_GOLDEN=1 python -m pytest tests/program/test_golden.py` and say in
docs/upgrading.md which containers are replaced and why. Volumes are kept either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "dev-docker-inputs.json"


def _docker_inputs(export: dict) -> dict:
    return {r["urn"]: r["inputs"] for r in export["deployment"]["resources"] if r["type"].startswith("docker:")}


def test_dev_docker_inputs_are_the_committed_ones(dev_export) -> None:
    actual = _docker_inputs(dev_export)
    if os.environ.get("BULKHEAD_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(actual, indent=1, sort_keys=True))
    expected = json.loads(GOLDEN.read_text())
    assert sorted(actual) == sorted(expected), "the dev stack's Docker resources changed"
    changed = [urn for urn in expected if json.dumps(actual[urn], sort_keys=True) != json.dumps(expected[urn], sort_keys=True)]
    assert not changed, (f"inputs changed, so these are replaced on the next `up`: {changed}; if deliberate, "
                         f"regenerate {GOLDEN.name} (see this module's docstring) and note it in docs/upgrading.md")


def test_start_script_is_the_committed_one(dev_export) -> None:
    """The start wrapper in particular: the one upload every container runs first."""
    expected = json.loads(GOLDEN.read_text())
    for urn, inputs in _docker_inputs(dev_export).items():
        if "uploads" not in inputs:
            continue
        scripts = {u["file"]: u.get("content") for u in inputs["uploads"] if u["file"].endswith(".sh")}
        golden = {u["file"]: u.get("content") for u in expected[urn]["uploads"] if u["file"].endswith(".sh")}
        assert scripts == golden and scripts, urn
