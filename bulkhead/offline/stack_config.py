"""Read a stack's config the way the Pulumi CLI would: Pulumi.yaml defaults, then Pulumi.<stack>.yaml."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Optional

from bulkhead.errors import UserError

if TYPE_CHECKING:
    from components.catalogue.model import Catalogue

# yaml and components.catalogue.model (pydantic) are imported where they are used: the CLI
# imports this module's users on every start-up.

STACK_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class YamlFloat(float):
    """A float that remembers how the YAML file wrote it (`16.10`, which YAML reads as 16.1)."""

    yaml_text: str


def _strict_loader():
    """yaml.SafeLoader that refuses duplicate keys (any depth) and keeps the text of floats.

    PyYAML, like the Pulumi CLI's YAML library, keeps the last of two equal keys without a word;
    here each duplicate is recorded with both lines and `_load_yaml` refuses the file.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        def __init__(self, stream):
            super().__init__(stream)
            self.duplicates: list[str] = []

        def construct_mapping(self, node, deep=False):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: construct_mapping reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    self.duplicates.append(f"line {line}: key {key!r} is already defined at line {first} of the "
                                           f"same map; YAML would keep only the last one, so remove or rename one")
                else:
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    def _number(kind):
        def construct(loader, node):
            wrapped = kind(yaml.SafeLoader.construct_yaml_float(loader, node))
            wrapped.yaml_text = node.value
            return wrapped
        return construct

    Loader.add_constructor("tag:yaml.org,2002:float", _number(YamlFloat))
    # Written back as the float it is, by whoever dumps a loaded config.
    yaml.SafeDumper.add_representer(YamlFloat, yaml.SafeDumper.represent_float)
    return Loader


def _load_yaml(path: str) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            loader = _strict_loader()(fh)
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from None
    if loader.duplicates:
        raise UserError(f"{path} has {len(loader.duplicates)} duplicate key(s); nothing was planned:\n"
                        + "\n".join(f"{path}: {d}" for d in loader.duplicates))
    return {} if data is None else data


def _load_map(path: str, what: str) -> dict:
    """A YAML file whose top level must be a map (an empty file is an empty map)."""
    data = _load_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a map ({what}), not a {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    """A YAML value's kind, for messages (never the value: it could be a secret)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def _project(project_dir: str) -> dict:
    return _load_map(os.path.join(project_dir, "Pulumi.yaml"), "name: ..., runtime: ..., config: ...")


def project_name(project_dir: str) -> str:
    return str(_project(project_dir).get("name", "bulkhead"))


def load_stack_config(project_dir: str, stack: str) -> dict[str, Any]:
    """Full-key config (`bulkhead:databases`, `aws:region`, ...) for `stack`."""
    if not STACK_RE.match(stack or ""):
        raise UserError(f"--stack {stack!r} is not a stack name (letters, digits, '-', '_', '.')")
    project = _project(project_dir)
    project_config = project.get("config")
    project_config = {} if project_config is None else project_config
    if not isinstance(project_config, dict):
        raise UserError(f"{os.path.join(project_dir, 'Pulumi.yaml')}: `config:` must be a map of key: "
                        f"{{default: ...}}, not a {_kind(project_config)}")
    config: dict[str, Any] = {}
    for key, spec in project_config.items():
        if not isinstance(key, str):
            raise UserError(f"{os.path.join(project_dir, 'Pulumi.yaml')}: config key {key!r} is not a string")
        if isinstance(spec, dict) and "default" in spec:
            config[key] = spec["default"]
        elif not isinstance(spec, dict):
            config[key] = spec
    stack_file = os.path.join(project_dir, f"Pulumi.{stack}.yaml")
    if not os.path.exists(stack_file):
        known = sorted(f[len("Pulumi."):-len(".yaml")] for f in os.listdir(project_dir)
                       if f.startswith("Pulumi.") and f.endswith(".yaml") and f != "Pulumi.yaml")
        raise UserError(f"no stack file {stack_file}; known stacks: {', '.join(known) or 'none'}")
    stack_config = _load_map(stack_file, "config: {bulkhead:databases: ..., ...}").get("config")
    stack_config = {} if stack_config is None else stack_config
    if not isinstance(stack_config, dict):
        raise UserError(f"{stack_file}: `config:` must be a map of key: value (e.g. `bulkhead:platform: docker`), "
                        f"not a {_kind(stack_config)}")
    for key, value in stack_config.items():
        if not isinstance(key, str):
            raise UserError(f"{stack_file}: config key {key!r} is not a string (`bulkhead:<key>: value`)")
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise UserError(f"{stack_file}: {key} is an encrypted value; bulkhead keys must be plain config")
        full = key if ":" in key else f"{project.get('name', 'bulkhead')}:{key}"
        config[full] = value
    return config


def bulkhead_keys(config: dict[str, Any]) -> dict[str, Any]:
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("bulkhead:")}


def load_catalogue_for(project_dir: str, stack: str, config: Optional[dict[str, Any]] = None) -> "Catalogue":
    from components.catalogue.model import CatalogueError, load_catalogue

    config = config if config is not None else load_stack_config(project_dir, stack)
    region = config.get("aws:region")
    try:
        return load_catalogue(bulkhead_keys(config), stack, region=region if isinstance(region, str) else None)
    except CatalogueError as exc:
        raise UserError(f"Pulumi.{stack}.yaml has {len(exc.problems)} problem(s); nothing was planned:\n{exc}") from None
