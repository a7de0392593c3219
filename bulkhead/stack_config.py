"""Read a stack's config the way the Pulumi CLI would: Pulumi.yaml defaults, then Pulumi.<stack>.yaml."""

from __future__ import annotations

import os
import re
from typing import Any, Optional

import yaml

from components.catalog import Catalogue, CatalogueError, load_catalogue

from .errors import UserError

STACK_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _load_yaml(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from None


def project_name(project_dir: str) -> str:
    return str(_load_yaml(os.path.join(project_dir, "Pulumi.yaml")).get("name", "bulkhead"))


def load_stack_config(project_dir: str, stack: str) -> dict[str, Any]:
    """Full-key config (`bulkhead:databases`, `aws:region`, ...) for `stack`."""
    if not STACK_RE.match(stack or ""):
        raise UserError(f"--stack {stack!r} is not a stack name (letters, digits, '-', '_', '.')")
    project = _load_yaml(os.path.join(project_dir, "Pulumi.yaml"))
    config: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        if isinstance(spec, dict) and "default" in spec:
            config[key] = spec["default"]
        elif not isinstance(spec, dict):
            config[key] = spec
    stack_file = os.path.join(project_dir, f"Pulumi.{stack}.yaml")
    if not os.path.exists(stack_file):
        known = sorted(f[len("Pulumi."):-len(".yaml")] for f in os.listdir(project_dir)
                       if f.startswith("Pulumi.") and f.endswith(".yaml") and f != "Pulumi.yaml")
        raise UserError(f"no stack file {stack_file}; known stacks: {', '.join(known) or 'none'}")
    stack_config = (_load_yaml(stack_file) or {}).get("config") or {}
    if not isinstance(stack_config, dict):
        raise UserError(f"{stack_file}: `config:` must be a map")
    for key, value in stack_config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise UserError(f"{stack_file}: {key} is an encrypted value; bulkhead keys must be plain config")
        full = key if ":" in key else f"{project.get('name', 'bulkhead')}:{key}"
        config[full] = value
    return config


def bulkhead_keys(config: dict[str, Any]) -> dict[str, Any]:
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("bulkhead:")}


def load_catalogue_for(project_dir: str, stack: str, config: Optional[dict[str, Any]] = None) -> Catalogue:
    config = config if config is not None else load_stack_config(project_dir, stack)
    region = config.get("aws:region")
    try:
        return load_catalogue(bulkhead_keys(config), stack, region=region if isinstance(region, str) else None)
    except CatalogueError as exc:
        raise UserError(f"Pulumi.{stack}.yaml has {len(exc.problems)} problem(s); nothing was planned:\n{exc}") from None
