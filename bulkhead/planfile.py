"""A plan or `pulumi stack export` file, indexed for the summary, check and diagrams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from policies.bulkhead_types import STACK as STACK_TYPE
from policies.bulkhead_types import TAG_DATABASE, TAG_OWNER, TAG_TIER  # noqa: F401 (re-exported to the CLI)

from .errors import UserError

# The engine's secret envelope: how a secret appears in plans and stack exports. The one definition
# outside the Pulumi SDK (whose values these are: sdk/python/lib/pulumi/runtime/rpc.py
# _special_sig_key and _special_secret_sig; tests/cli/test_check_cli.py checks they still are).
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SECRET_ENVELOPE = {SECRET_SIG_KEY: SECRET_SIG}


@dataclass
class Plan:
    resources: list[dict]

    def __post_init__(self) -> None:
        self.by_urn = {r["urn"]: r for r in self.resources}
        self.by_id: dict[str, dict] = {}
        for r in self.resources:
            if r.get("id"):
                self.by_id.setdefault(str(r["id"]), r)

    @classmethod
    def from_export(cls, data: Any, source: str = "plan") -> "Plan":
        if not isinstance(data, dict) or not isinstance(data.get("deployment"), dict):
            raise UserError(f"{source} is not a plan or `pulumi stack export` file: expected {{\"version\": 3, \"deployment\": {{...}}}}")
        resources = data["deployment"].get("resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, dict) and "urn" in r and "type" in r for r in resources):
            raise UserError(f"{source}: deployment.resources must be a list of resources with urn and type")
        return cls(resources)

    def of_type(self, *types: str) -> list[dict]:
        return [r for r in self.resources if r["type"] in types]

    def stack_outputs(self) -> dict:
        for r in self.resources:
            if r["type"] == STACK_TYPE:
                return r.get("outputs") or {}
        return {}


def props(resource: dict) -> dict:
    """Inputs where present (what the engine and policies see), else outputs."""
    return resource.get("inputs") or resource.get("outputs") or {}


def tags_of(resource: dict) -> dict[str, str]:
    """AWS tags or Docker labels as a flat dict."""
    p = props(resource)
    tags = p.get("tags")
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    labels = p.get("labels")
    if isinstance(labels, list):
        return {str(l.get("label")): str(l.get("value")) for l in labels if isinstance(l, dict)}
    return {}


def split_tag(value: Optional[str]) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def database_names(resource: dict) -> list[str]:
    return split_tag(tags_of(resource).get(TAG_DATABASE))


def is_secret_envelope(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def plain(values: Iterable[Any]) -> list[Any]:
    return [v for v in values if not is_secret_envelope(v)]
