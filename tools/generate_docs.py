#!/usr/bin/env python3
"""Write the generated reference parts of docs/ and Pulumi.yaml's config descriptions.

Each generated part sits between `<!-- BEGIN GENERATED <name> -->` and
`<!-- END GENERATED -->` in a hand-written page, and comes from the code it documents:

- docs/configuration.md: the stack, database, server and tier key tables, from the
  pydantic models in components/catalogue/model.py (`Field(description=...)`, types,
  ranges and defaults as the models declare them);
- docs/policies.md: the policies table, from the pack's registry (`ALL_POLICIES`: name,
  description, enforcement level, kind and config schema as the pack defines them);
- docs/cli/<verb>.md: each verb's usage, from the CLI's argparse parser;
- docs/outputs.md: the stack outputs' keys, from the output types in components/outputs.py
  (`OutputKey`: name, platforms, secret, description);
- Pulumi.yaml: the `description:` of every `bulkhead:` config key, from the same
  `Field(description=...)` text (keys, types and the rest of the file untouched).

    python tools/generate_docs.py           rewrite what is stale
    python tools/generate_docs.py --check   write nothing; exit 1 naming each stale file
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "policies"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pydantic import BaseModel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402

from bulkhead import cli  # noqa: E402
from components import outputs  # noqa: E402
from components.catalogue import model  # noqa: E402

MARKER_RE = re.compile(r"(<!-- BEGIN GENERATED (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED -->)", re.S)
CONFIG_NAMESPACE = "bulkhead"
# argparse wraps help to the terminal's width (and Python 3.14 colours it): fixed while the
# usage is rendered, so it is the same on every machine.
USAGE_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "FORCE_COLOR": None}
# Policy module -> the "concern" column (the module names are the pack's grouping).
CONCERNS = {"separation": "separation", "security": "security", "resilience": "resilience",
            "dev": "dev hygiene", "boundary": "boundary"}


# ---------------------------------------------------------------- model -> text

def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):  # quoted where YAML would read it as something else ("16", "")
        return f'`"{value}"`' if value == "" or re.fullmatch(r"[0-9.]+", value) else f"`{value}`"
    if isinstance(value, dict) and not value:
        return "`{}`"
    return f"`{value}`"


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _base(info: FieldInfo) -> tuple[Any, list[Any]]:
    """The field's annotation without Optional/Annotated, and every constraint on it."""
    ann = _strip_optional(info.annotation)
    metadata = list(info.metadata)
    if typing.get_origin(ann) is typing.Annotated:
        for meta in ann.__metadata__:
            metadata += meta.metadata if isinstance(meta, FieldInfo) else [meta]
        ann = ann.__origin__
    return ann, metadata


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _range(metadata: list[Any]) -> str:
    """`, 1-35` / `, > 0 and <= 64` from the field's ge/gt/le constraints."""
    bounds = {attr: _number(getattr(meta, attr)) for meta in metadata for attr in ("ge", "gt", "le")
              if getattr(meta, attr, None) is not None}
    if not bounds:
        return ""
    if "ge" in bounds and "le" in bounds:
        return f", {bounds['ge']}-{bounds['le']}"
    low = f">= {bounds['ge']}" if "ge" in bounds else f"> {bounds['gt']}" if "gt" in bounds else ""
    high = f"<= {bounds['le']}" if "le" in bounds else ""
    return ", " + " and ".join(x for x in (low, high) if x)


def _extra(info: FieldInfo) -> dict:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _type(info: FieldInfo) -> str:
    """The field's type as a user writes it in YAML, read from the model."""
    if "doc_type" in _extra(info):
        return str(_extra(info)["doc_type"])
    ann, metadata = _base(info)
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in typing.get_args(ann))
    if origin is dict:
        _key, value = typing.get_args(ann)
        if isinstance(value, type) and issubclass(value, BaseModel):
            return f"map name -> {value.__name__.lower()}"
        return "map"
    if origin in (tuple, list):
        return "list of strings"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "`{" + ", ".join(ann.model_fields) + "}`"
    names = {str: "string", int: "integer", float: "number", bool: "bool"}
    return names.get(ann, getattr(ann, "__name__", str(ann))) + _range(metadata)


def _default(name: str, info: FieldInfo) -> str:
    """The default a user gets: the model's, or what the catalogue resolves where the model says None."""
    if "doc_default" in _extra(info):
        return str(_extra(info)["doc_default"])
    if info.is_required():
        return "required"
    if info.default is None and name == "connection_limit":
        return ", ".join(f"{limit} on {platform}" for platform, limit in model.DEFAULT_CONNECTION_LIMIT.items())
    if info.default is None and name in model.DEFAULT_ROLE_SETTINGS:
        return _code(model.DEFAULT_ROLE_SETTINGS[name])
    if info.default is None:
        return "none"
    return _code(info.default)


def _documented(cls: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    """The model's fields a user writes (those with a description), in declaration order."""
    return [(name, info) for name, info in cls.model_fields.items() if info.description]


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _platforms_of_stack_key(name: str) -> str:
    return ("docker" if name in model.DOCKER_ONLY_STACK_KEYS
            else "aws" if name in model.AWS_ONLY_STACK_KEYS else "both")


def stack_keys() -> str:
    rows = []
    for name, info in _documented(model.Catalogue):
        rows.append([f"`{CONFIG_NAMESPACE}:{name}`", _platforms_of_stack_key(name), _type(info),
                     _default(name, info), info.description])
    return _table(["key", "platforms", "type", "default", "meaning"], rows)


def database_keys() -> str:
    rows = []
    for name, info in _documented(model.Database):
        platforms = ("docker" if name in model.DOCKER_ONLY_DATABASE_KEYS
                     else "aws" if name in model.AWS_ONLY_DATABASE_KEYS else "both")
        rows.append([f"`{name}`", platforms, _type(info), _default(name, info), info.description])
    return _table(["key", "platforms", "type", "default", "meaning"], rows)


def server_keys() -> str:
    rows = [[f"`{name}`", _type(info), _default(name, info), info.description]
            for name, info in _documented(model.Server)]
    return _table(["key", "type", "default", "meaning"], rows)


def tier_keys() -> str:
    named = list(model.DEFAULT_TIERS)
    rows = []
    for name, info in _documented(model.Tier):
        row = [f"`{name}`", _type(info), _default(name, info)]
        row += [_code(model.DEFAULT_TIERS[t][name]) if name in model.DEFAULT_TIERS[t] else _default(name, info)
                for t in named]
        rows.append(row + [info.description])
    header = ["key", "type", "default (a tier of your own)"] + [f"`{t}`" for t in named] + ["meaning"]
    return _table(header, rows) + (
        "\nThe tiers " + ", ".join(f"`{t}`" for t in named) + " always exist; keys you give for them are "
        "merged over these defaults.\n")


# ---------------------------------------------------------------- the pack's registry

def policies() -> str:
    import bulkhead_policies  # the pack imports only itself and pulumi_policy
    from pulumi_policy import ResourceValidationPolicy

    concern_of = {}
    for module, concern in CONCERNS.items():
        for p in getattr(bulkhead_policies, module).POLICIES:
            concern_of[p.name] = concern
    rows = []
    for p in bulkhead_policies.ALL_POLICIES:
        props = (p.config_schema.properties if p.config_schema else None) or {}
        config = ", ".join(
            f"`{key}`" + (f" (default `{_json(spec['default'])}`)" if "default" in spec else "")
            for key, spec in props.items()) or "-"
        kind = "resource" if isinstance(p, ResourceValidationPolicy) else "stack"
        level = str(getattr(p.enforcement_level, "value", p.enforcement_level)).lower()
        rows.append([f"`{p.name}`", concern_of.get(p.name, "-"), p.description, level, kind, config])
    return _table(["policy", "concern", "what it checks", "default level", "kind", "config (default)"], rows)


def _json(value: Any) -> str:
    import json
    return json.dumps(value)


# ---------------------------------------------------------------- the output types

def output_table(keys: tuple) -> str:
    secret = {"": "no", outputs.BOTH: "yes", outputs.DOCKER: "on docker", outputs.AWS: "on aws"}
    rows = [[f"`{k.name}`", k.platforms, secret[k.secret], k.description] for k in keys]
    return _table(["key", "platforms", "secret", "meaning"], rows)


# ---------------------------------------------------------------- argparse

def usage(verb: str) -> str:
    """`python -m bulkhead <verb> --help`, from the CLI's own parser."""
    saved = {key: os.environ.get(key) for key in USAGE_ENV}
    try:
        for key, value in USAGE_ENV.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        parser = cli.build_parser(verb)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        text = sub.choices[verb].format_help().rstrip() + "\n"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return "```\n" + text + "```\n"


# ---------------------------------------------------------------- Pulumi.yaml

def _key_list(cls: type[BaseModel], names: Iterable[str]) -> str:
    out = []
    for key in names:
        default = _default(key, cls.model_fields[key]).replace("`", "")
        out.append(key if default == "none" else f"{key} ({default})")
    return ", ".join(out)


def _pulumi_description(name: str, info: FieldInfo) -> str:
    """A stack key's description in Pulumi.yaml: the same text, with its platform, keys and default."""
    parts = []
    only = _platforms_of_stack_key(name)
    if only != "both":
        parts.append(f"{'AWS' if only == 'aws' else 'Docker'} only.")
    text = info.description.rstrip(".")
    parts.append(text[0].upper() + text[1:] + ".")
    ann = _strip_optional(info.annotation)
    item = typing.get_args(ann)[1] if typing.get_origin(ann) is dict else ann
    if item is model.Database:
        fields = list(item.model_fields)
        docker = [k for k in fields if k in model.DOCKER_ONLY_DATABASE_KEYS]
        aws = [k for k in fields if k in model.AWS_ONLY_DATABASE_KEYS]
        both = [k for k in fields if k not in docker and k not in aws]
        parts.append(f"Keys: {_key_list(item, both)}; docker only: {_key_list(item, docker)}; "
                     f"aws only: {_key_list(item, aws)}.")
    elif isinstance(item, type) and issubclass(item, BaseModel):
        parts.append(f"Keys: {_key_list(item, item.model_fields)}.")
    default = _default(name, info).replace("`", "")
    parts.append("Required." if default == "required" else f"Default: {default}." if default != "none" else "")
    return " ".join(p for p in parts if p)


def pulumi_yaml(text: str) -> str:
    """Pulumi.yaml with each `bulkhead:` key's description rewritten; everything else kept."""
    fields = dict(_documented(model.Catalogue))
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    current = None
    while i < len(lines):
        line = lines[i]
        m = re.match(rf"^  {CONFIG_NAMESPACE}:([a-z_]+):\s*$", line)
        if m:
            current = m.group(1)
        elif not line.startswith("    "):
            current = None
        if current and re.match(r"^    description:", line):
            if current not in fields:
                raise SystemExit(f"Pulumi.yaml declares {CONFIG_NAMESPACE}:{current}, which the catalogue model "
                                 "does not document; add a Field(description=...) to Catalogue")
            i += 1
            while i < len(lines) and lines[i].startswith("      "):
                i += 1
            wrapped = textwrap.wrap(_pulumi_description(current, fields[current]), 110,
                                    break_long_words=False, break_on_hyphens=False)
            out.append("    description: >-")
            out += ["      " + w for w in wrapped]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


# ---------------------------------------------------------------- files

def sections() -> dict[str, Any]:
    out = {"stack-keys": stack_keys, "database-keys": database_keys, "server-keys": server_keys,
           "tier-keys": tier_keys, "policies": policies,
           "outputs-stack": lambda: output_table(outputs.STACK_OUTPUTS),
           "outputs-databases": lambda: output_table(outputs.DATABASE_OUTPUTS),
           "outputs-network": lambda: output_table(outputs.NETWORK_OUTPUTS),
           "outputs-services": lambda: output_table(outputs.SERVICE_OUTPUTS)}
    out.update({f"usage-{verb}": (lambda v=verb: usage(v)) for verb in cli.VERBS})
    return out


def render_markdown(text: str, where: str) -> str:
    gens = sections()

    def body(m: re.Match) -> str:
        name = m.group("name")
        if name not in gens:
            raise SystemExit(f"{where}: unknown generated section {name!r}")
        return m.group(1) + gens[name]() + m.group(4)

    return MARKER_RE.sub(body, text)


def targets() -> dict[Path, str]:
    """Each generated file -> its content as it should be."""
    files = [ROOT / "docs" / "configuration.md", ROOT / "docs" / "policies.md", ROOT / "docs" / "outputs.md"]
    files += [ROOT / "docs" / "cli" / f"{verb}.md" for verb in cli.VERBS]
    out = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        if not MARKER_RE.search(text):
            raise SystemExit(f"{path.relative_to(ROOT)} has no GENERATED markers")
        out[path] = render_markdown(text, str(path.relative_to(ROOT)))
    pulumi = ROOT / "Pulumi.yaml"
    out[pulumi] = pulumi_yaml(pulumi.read_text(encoding="utf-8"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale file")
    args = ap.parse_args(argv)
    stale = []
    for path, wanted in targets().items():
        if path.read_text(encoding="utf-8") != wanted:
            stale.append(path)
            if not args.check:
                path.write_text(wanted, encoding="utf-8")
    for path in stale:
        rel = path.relative_to(ROOT)
        print(f"{rel}: stale; run `python tools/generate_docs.py`" if args.check else f"wrote {rel}",
              file=sys.stderr if args.check else sys.stdout)
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
