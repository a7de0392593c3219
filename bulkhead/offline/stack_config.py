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


def config_region(config: dict[str, Any]) -> Optional[str]:
    """The stack's `aws:region` (full-key config), None when unset or not a string."""
    region = config.get("aws:region")
    return region if isinstance(region, str) else None


class YamlFloat(float):
    """A float that remembers how the YAML file wrote it (`16.10`, which YAML reads as 16.1)."""

    yaml_text: str


# YAML 1.2's core schema booleans, which the Pulumi CLI's YAML library (go-yaml v3) reads: `on`,
# `yes`, `y` are strings there, not YAML 1.1's booleans (a database named `on` stays "on").
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


def _strict_loader():
    """yaml.SafeLoader as the Pulumi CLI reads a stack file: YAML 1.2 booleans, merge keys (`<<: *tuning`,
    which go-yaml v3 applies), and on top: duplicate keys (any depth) refused, the text of floats kept,
    and a map used whole through an alias (`parameters: *tuning`) recorded for a warning.

    PyYAML, like the Pulumi CLI's YAML library, keeps the last of two equal keys without a word;
    here each duplicate is recorded with both lines and `_load_yaml` refuses the file.
    """
    import yaml

    # libyaml's parser where PyYAML has it (CSafeLoader: the C scanner, parser and composer, the same
    # Python constructor and resolver, so the hooks below apply unchanged): ~5x faster on a stack file
    # of 500 databases (0.43 -> ~0.08 s, before any worker starts: bench/README.md).
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):
        yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:bool"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}

        def __init__(self, stream):
            super().__init__(stream)
            self.duplicates: list[str] = []
            self.aliased: list[str] = []
            self._values_seen: dict[int, int] = {}

        def construct_mapping(self, node, deep=False):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<`: merged by flatten_mapping, its keys may be overridden here
                if isinstance(value_node, yaml.MappingNode):
                    # An alias is the anchored node itself (PyYAML's composer): seen twice = used whole.
                    line = key_node.start_mark.line + 1
                    first = self._values_seen.setdefault(id(value_node), line)
                    if first != line:
                        self.aliased.append(
                            f"line {line}: `{key_node.value}` is the map of line {first} itself (an alias), not a "
                            f"copy with changes: nothing is merged. If you meant to start from it and change keys, "
                            f"write `{key_node.value}: {{<<: *anchor, key: value}}` (a merge key)")
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
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL_12, list("tTfF"))
    # Written back as the float it is, by whoever dumps a loaded config.
    yaml.SafeDumper.add_representer(YamlFloat, yaml.SafeDumper.represent_float)
    return Loader


_ALIASED: dict[str, list[str]] = {}  # path -> the loader's alias notes, for `stack_file_warnings`


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
    _ALIASED[path] = loader.aliased
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


def _other_stack_ports(project_dir: str, stack: str) -> dict[str, dict[int, str]]:
    """Dev ports of the project's other docker stack files (best effort: a file that does not load is skipped;
    its own plan reports it)."""
    from components.catalogue.checks import ports_of

    out = {}
    for name in sorted(os.listdir(project_dir)):
        other = name[len("Pulumi."):-len(".yaml")] if name.startswith("Pulumi.") and name.endswith(".yaml") else None
        if not other or other == stack or name == "Pulumi.yaml":
            continue
        try:
            keys = bulkhead_keys(load_stack_config(project_dir, other))
        except UserError:
            continue
        if keys.get("platform") == "docker":
            out[other] = ports_of(keys)
    return out


def stack_file_findings(project_dir: str, stack: str, config: dict[str, Any]) -> tuple[list, list]:
    """(errors, warnings) about the stack file as a whole: misspelt namespaces, maps used whole through
    an alias, dev ports another stack file of the project uses. As (path, message)."""
    from components.catalogue import checks

    stack_file = f"Pulumi.{stack}.yaml"
    errors = checks.misspelt_namespaces(config, stack_file)
    warnings = [(stack_file, note) for note in _ALIASED.get(os.path.join(project_dir, stack_file), [])]
    keys = bulkhead_keys(config)
    if keys.get("platform") == "docker":
        warnings += checks.ports_shared_with_other_stacks(checks.ports_of(keys), _other_stack_ports(project_dir, stack))
    return errors, warnings


def load_catalogue_for(project_dir: str, stack: str, config: Optional[dict[str, Any]] = None) -> "Catalogue":
    from components.catalogue.model import CatalogueError, Problem, load_catalogue

    config = config if config is not None else load_stack_config(project_dir, stack)
    errors, warnings = stack_file_findings(project_dir, stack, config)
    found = [Problem(path=p, message=m) for p, m in errors]
    try:
        catalogue = load_catalogue(bulkhead_keys(config), stack, region=config_region(config))
    except CatalogueError as exc:
        found += exc.problems
        catalogue = None
    if found:
        raise UserError(f"Pulumi.{stack}.yaml has {len(found)} problem(s); nothing was planned:\n"
                        f"{CatalogueError(found)}") from None
    extra = tuple(Problem(path=p, message=m) for p, m in warnings)
    return catalogue.model_copy(update={"warnings": catalogue.warnings + extra}) if extra else catalogue
