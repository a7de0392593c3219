"""The stack outputs are the ones components/outputs.py describes (docs/outputs.md is generated
from those descriptions): every key a planned stack exports is described for its platform,
every described key is exported, and a value is a Pulumi secret exactly where the description says."""

from __future__ import annotations

import copy

import pytest

from bulkhead.offline.mock_runtime import Secret
from components import outputs as o
from tests.support.program import run_stack


def _is_secret(value) -> bool:
    """A secret value, or a map whose every value is one (`services.<owner>.env`)."""
    if isinstance(value, dict) and value:
        return all(isinstance(v, Secret) for v in value.values())
    return isinstance(value, Secret)


def undescribed(exports: dict, platform: str) -> list[str]:
    """Each difference between `exports` and the described output types, as `path: problem`."""
    problems: list[str] = []

    def compare(path: str, value: dict, keys: tuple) -> None:
        value = value.value if isinstance(value, Secret) else value
        have = set(value)
        for name in sorted(have - o.output_keys(keys, platform)):
            problems.append(f"{path}.{name}: exported but not described in components/outputs.py")
        for name in sorted(o.output_keys(keys, platform, with_optional=False) - have):
            problems.append(f"{path}.{name}: described but not exported")
        for key in (k for k in keys if k.name in have):
            secret = _is_secret(value[key.name])
            if secret != o.is_secret(key, platform):
                problems.append(f"{path}.{key.name}: secret is {secret}, described as {o.is_secret(key, platform)}")

    compare("outputs", exports, o.STACK_OUTPUTS)
    for name, db in exports.get("databases", {}).items():
        compare(f"databases.{name}", db, o.DATABASE_OUTPUTS)
    if exports.get("network") is not None:
        compare("network", exports["network"], o.NETWORK_OUTPUTS)
    for owner, service in exports.get("services", {}).items():
        compare(f"services.{owner}", service, o.SERVICE_OUTPUTS)
    return problems


@pytest.mark.parametrize("fixture,platform", [("dev_run", "docker"), ("prod_run", "aws")])
def test_planned_outputs_are_exactly_the_described_ones(request, fixture, platform):
    exports = request.getfixturevalue(fixture).exports
    assert exports["databases"], "the stack plans no database"
    assert undescribed(exports, platform) == []


@pytest.mark.parametrize("stack,key,value,where", [
    ("dev", "bulkhead:admin_tcp", True, "admin"),
    ("prod", "proxy", True, "proxy_host"),
])
def test_optional_outputs_are_described_too(stack, key, value, where):
    """The outputs only some configurations export (the admin with admin_tcp, proxy_host with a proxy)."""
    def edit(config):
        if key.startswith("bulkhead:"):
            config[key] = value
        else:
            config["bulkhead:databases"]["worker"][key] = value

    exports = run_stack(stack, edit=edit).exports
    assert where in exports or any(where in db for db in exports["databases"].values())
    assert undescribed(exports, "docker" if stack == "dev" else "aws") == []


def test_an_undescribed_a_missing_and_a_non_secret_output_are_each_named(dev_run):
    exports = copy.copy(dev_run.exports)
    name, db = next(iter(exports["databases"].items()))
    db = dict(db)
    db["proxy_endpoint"] = "new"  # a key added without a description
    del db["internal_host"]  # a described key no longer exported
    db["internal_url"] = "postgresql://app:pw@x/app"  # a password-bearing URL no longer secret
    exports["databases"] = {**exports["databases"], name: db}
    assert undescribed(exports, "docker") == [
        f"databases.{name}.proxy_endpoint: exported but not described in components/outputs.py",
        f"databases.{name}.internal_host: described but not exported",
        f"databases.{name}.internal_url: secret is False, described as True",
    ]
