"""The `services` stack output, derived from each database's connection info."""

from __future__ import annotations

from typing import Mapping

from components.catalogue.model import Catalogue

LEGACY_ENV_VAR = "DATABASE_URL"


def services_output(catalogue: Catalogue, connections: Mapping[str, Mapping]) -> dict:
    """owner -> {databases, env}: each env var maps to its URL (secret where it has a password).

    `DATABASE_URL` is added for a service that owns exactly one database, for code
    written before the split; it never points at another service's data.
    """
    out = {}
    for owner, names in catalogue.owners().items():
        env = {catalogue.databases[n].env_var: connections[n]["url"] for n in names}
        if len(names) == 1 and LEGACY_ENV_VAR not in env:
            env[LEGACY_ENV_VAR] = connections[names[0]]["url"]
        out[owner] = {"databases": list(names), "env": env}
    return out


def stack_identity(stack: str, project: str) -> dict:
    """`stack` and `project` outputs: every output-reading verb refuses outputs whose stack is not
    its --stack (bulkhead/outputs_source.py check_stack)."""
    return {"stack": stack, "project": project}
