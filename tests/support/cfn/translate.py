"""A bulkhead plan (the `pulumi stack export` shape) as CloudFormation templates.

Test-side only: the program never needs it. Each pulumi-aws resource becomes the
CloudFormation resource that calls the same AWS API, each input the property that
carries the same API field (the mapping table is `mappings.py`), and a reference
between resources (an input whose value came from another resource's output, as
the plan's `propertyDependencies` record) becomes `Ref`/`Fn::GetAtt`, so that
cfn-lint checks the relationship too. One template per region: resources created
through a provider for another region (the DR vault) are checked in that region.

An input that has no mapping, or a resource type that is neither mapped nor on
the commented list of Pulumi-only types, is an error: a new argument or resource
cannot slip past the check.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from bulkhead.planfile import SECRET_SIG_KEY as SECRET_SIG
# A stand-in for a secret value (the plan holds only its envelope): letters and
# digits, as every password and secret-string pattern accepts.
SECRET_PLACEHOLDER = "SecretValueNotInThePlan0"
# terraform-plugin-sdk's id.PrefixedUniqueId appends 26 characters to a name prefix
# (helper/id: UniqueIDSuffixLength = 26: an 18-digit timestamp and an 8-digit hex counter).
NAME_PREFIX_TIMESTAMP = "202612012140000000"
_prefix_counter = itertools.count(1)


def name_from_prefix(prefix: str) -> str:
    """The name the provider makes from a prefix: as long as the real one, unique per resource."""
    return f"{prefix}{NAME_PREFIX_TIMESTAMP}{next(_prefix_counter):08x}"


class TranslationError(Exception):
    """The plan holds something the translator cannot map; the test fails with this message."""


@dataclass(frozen=True)
class Prop:
    """Where one pulumi-aws input goes: a CloudFormation property path (dotted for nesting)."""

    cfn: str
    convert: Optional[Callable[[Any, str], Any]] = None
    # A `namePrefix` input: the provider creates the name as prefix + 26 characters.
    prefix: bool = False


# Prop.cfn of a nested input whose keys become top-level properties (RDS restore_to_point_in_time).
FLATTEN = "*"


def _prop(spec: "Prop | str") -> Prop:
    return spec if isinstance(spec, Prop) else Prop(spec)


@dataclass(frozen=True)
class Struct:
    """A nested pulumi-aws input object (an `...Args` type), mapped key by key."""

    args: type  # the pulumi_aws Args class: tests check every key against it
    props: Mapping[str, "Prop | str"]
    pulumi_only: Mapping[str, str] = field(default_factory=dict)
    # Keys AWS takes but this CloudFormation type has no property for (reason given).
    no_cfn_property: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            return value
        return map_inputs(value, self.props, self.pulumi_only, self.no_cfn_property, path)


@dataclass(frozen=True)
class ListOf:
    """A list input whose items convert one by one."""

    item: Callable[[Any, str], Any]

    def __call__(self, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            return value
        return [self.item(v, f"{path}[{i}]") for i, v in enumerate(value)]


def set_path(out: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        out = out.setdefault(part, {})
    out[parts[-1]] = value


def map_inputs(inputs: Mapping[str, Any], props: Mapping[str, "Prop | str"], pulumi_only: Mapping[str, str],
               no_cfn_property: Mapping[str, str], path: str) -> dict:
    out: dict = {}
    for key in sorted(inputs):
        value = inputs[key]
        if value is None or key in pulumi_only or key in no_cfn_property:
            continue
        if key not in props:
            raise TranslationError(
                f"{path}.{key}: pulumi-aws input with no CloudFormation mapping; map it in tests/support/cfn/mappings.py "
                "(or list it as Pulumi-only with the reason)"
            )
        prop = _prop(props[key])
        if prop.prefix and isinstance(value, str):
            value = name_from_prefix(value)
        if prop.convert is not None:
            value = prop.convert(value, f"{path}.{key}")
        if prop.cfn == FLATTEN and isinstance(value, dict):
            out.update(value)  # a nested pulumi input that CloudFormation spreads over top-level properties
            continue
        set_path(out, prop.cfn, value)
    return out


@dataclass(frozen=True)
class Fold:
    """A pulumi-aws resource that CloudFormation expresses as properties of another resource
    (a role's policy attachment is `ManagedPolicyArns` of the role)."""

    via: str  # the input that references the target resource
    target_types: tuple[str, ...]  # pulumi types it may fold into


@dataclass(frozen=True)
class Companion:
    """An input the provider applies with a second API call that CloudFormation models as a
    resource of its own (a secret's inline `policy` is an AWS::SecretsManager::ResourcePolicy)."""

    cfn_type: str
    prop: Prop  # where the input's value goes in the companion
    target: str  # the companion's property that references the resource (Ref)


@dataclass(frozen=True)
class TypeMap:
    pulumi_type: str
    cfn_type: Optional[str]  # None when folded into another resource
    args: type  # the pulumi_aws ...Args class
    props: Mapping[str, "Prop | str"]
    pulumi_only: Mapping[str, str] = field(default_factory=dict)
    no_cfn_property: Mapping[str, str] = field(default_factory=dict)
    # How other resources refer to this one: pulumi output attribute -> Ref / GetAtt attribute.
    refs: Mapping[str, str] = field(default_factory=dict)
    fold: Optional[Fold] = None
    # Extra template attributes (DeletionPolicy, ...) from the inputs.
    attributes: Optional[Callable[[Mapping[str, Any]], dict]] = None
    companions: Mapping[str, Companion] = field(default_factory=dict)
    # Properties CloudFormation requires that the pulumi type implies (AWS::EC2::FlowLog's ResourceType).
    fixed_properties: Mapping[str, Any] = field(default_factory=dict)


REF = "Ref"


def ref_expression(logical: str, how: str) -> dict:
    if how == REF:
        return {"Ref": logical}
    return {"Fn::GetAtt": [logical, how]}


@dataclass
class Template:
    region: str
    body: dict
    # logical id -> urn of the plan resource (folded resources point at their target).
    origins: dict[str, str]


def _logical_id(urn: str, taken: set[str]) -> str:
    name = urn.rsplit("::", 1)[-1]
    base = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", name) if p) or "Resource"
    if not base[0].isalpha():
        base = "R" + base
    logical, n = base, 2
    while logical in taken:
        logical, n = f"{base}{n}", n + 1
    taken.add(logical)
    return logical


def _strip_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return SECRET_PLACEHOLDER
        return {k: _strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_secrets(v) for v in value]
    return value


def _replace_refs(value: Any, candidates: Mapping[str, dict]) -> Any:
    if isinstance(value, str):
        return candidates.get(value, value)
    if isinstance(value, dict):
        return {k: _replace_refs(v, candidates) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_refs(v, candidates) for v in value]
    return value


def _region_of(resource: dict, providers: Mapping[str, str], default_region: str) -> str:
    provider = resource.get("provider") or ""
    urn = provider.rsplit("::", 1)[0] if provider else ""
    return providers.get(urn, default_region)


def translate(plan: Mapping[str, Any], default_region: str, type_maps: Mapping[str, TypeMap],
              pulumi_only_types: Mapping[str, str]) -> list[Template]:
    """The plan's AWS resources as one template per region (the stack's region first)."""
    global _prefix_counter
    _prefix_counter = itertools.count(1)  # the same plan always gives the same templates
    resources = plan["deployment"]["resources"]
    providers = {
        r["urn"]: (r.get("inputs") or {}).get("region") or default_region
        for r in resources
        if r["type"] == "pulumi:providers:aws"
    }
    aws_resources = []
    for r in resources:
        typ = r["type"]
        if not typ.startswith("aws:") or typ in pulumi_only_types:
            continue
        if typ not in type_maps:
            raise TranslationError(
                f"{r['urn']}: resource type {typ} has no CloudFormation mapping; add it to tests/support/cfn/mappings.py "
                "(or to the Pulumi-only types with the reason)"
            )
        aws_resources.append(r)

    templates: dict[str, Template] = {}
    logical_of: dict[str, tuple[str, str]] = {}  # urn -> (region, logical id)
    taken: dict[str, set[str]] = {}
    for r in aws_resources:
        region = _region_of(r, providers, default_region)
        tm = type_maps[r["type"]]
        templates.setdefault(region, Template(region, {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}, {}))
        if tm.cfn_type is not None:
            logical_of[r["urn"]] = (region, _logical_id(r["urn"], taken.setdefault(region, set())))
    by_urn = {r["urn"]: r for r in aws_resources}

    def candidates(r: dict, key: str, region: str) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for dep in (r.get("propertyDependencies") or {}).get(key, []):
            if dep not in logical_of or logical_of[dep][0] != region:
                continue  # another region's resource, or not an AWS resource: stays a literal
            target = by_urn[dep]
            for attr, how in type_maps[target["type"]].refs.items():
                value = target.get("id") if attr == "id" else (target.get("outputs") or {}).get(attr)
                if isinstance(value, str) and value:
                    out.setdefault(value, ref_expression(logical_of[dep][1], how))
        return out

    folds: list[tuple[dict, str, dict]] = []
    for r in aws_resources:
        region = _region_of(r, providers, default_region)
        tm = type_maps[r["type"]]
        inputs = {}
        for key, value in (r.get("inputs") or {}).items():
            inputs[key] = _replace_refs(_strip_secrets(value), candidates(r, key, region))
        path = f"{r['urn']} inputs"
        if tm.fold is not None:
            target = inputs.get(tm.fold.via)
            body = {k: v for k, v in inputs.items() if k != tm.fold.via}
            folds.append((r, region, {"target": target, "props": map_inputs(body, tm.props, tm.pulumi_only, tm.no_cfn_property, path)}))
            continue
        own = {k: v for k, v in inputs.items() if k not in tm.companions}
        props = map_inputs(own, tm.props, tm.pulumi_only, tm.no_cfn_property, path)
        props.update(tm.fixed_properties)
        logical = logical_of[r["urn"]][1]
        entry = {"Type": tm.cfn_type, "Properties": props}
        # AWS fields the type has no property for ride along as metadata, for api_rules to check.
        unmodelled = {k: v for k, v in own.items() if k in tm.no_cfn_property and v is not None}
        if unmodelled:
            entry["Metadata"] = {"bulkhead:not-in-cloudformation": unmodelled}
        if tm.attributes is not None:
            entry.update(tm.attributes(r.get("inputs") or {}))
        templates[region].body["Resources"][logical] = entry
        templates[region].origins[logical] = r["urn"]
        for key, companion in tm.companions.items():
            if inputs.get(key) is None:
                continue
            extra = map_inputs({key: inputs[key]}, {key: companion.prop}, {}, {}, path)
            extra[companion.target] = {"Ref": logical}
            name = _logical_id(f"{r['urn']}-{key}", taken[region])
            templates[region].body["Resources"][name] = {"Type": companion.cfn_type, "Properties": extra}
            templates[region].origins[name] = r["urn"]

    for r, region, fold in folds:
        _apply_fold(r, region, fold, templates, logical_of, by_urn, type_maps)
    ordered = sorted(templates.values(), key=lambda t: (t.region != default_region, t.region))
    return ordered


def _apply_fold(r: dict, region: str, fold: dict, templates, logical_of, by_urn, type_maps) -> None:
    tm = type_maps[r["type"]]
    target = fold["target"]
    logical = None
    if isinstance(target, dict):
        logical = target.get("Ref") or (target.get("Fn::GetAtt") or [None])[0]
    urn = next((u for u, (reg, lid) in logical_of.items() if reg == region and lid == logical), None)
    if urn is None or by_urn[urn]["type"] not in tm.fold.target_types:
        raise TranslationError(
            f"{r['urn']}: its {tm.fold.via} does not reference a {' or '.join(tm.fold.target_types)} of this plan, "
            "so there is no CloudFormation resource to carry it"
        )
    props = templates[region].body["Resources"][logical]["Properties"]
    for key, value in fold["props"].items():
        if isinstance(value, list):
            props.setdefault(key, []).extend(value)
        elif key in props and isinstance(props[key], dict) and isinstance(value, dict):
            props[key].update(value)
        elif key in props:
            raise TranslationError(f"{r['urn']}: sets {key} of {urn}, which is already set")
        else:
            props[key] = value


# --- converters shared by the mapping table ------------------------------------------------


def tags_list(value: Any, path: str) -> Any:
    """Pulumi's tag map as CloudFormation's list of {Key, Value}."""
    if not isinstance(value, dict):
        return value
    return [{"Key": k, "Value": v} for k, v in sorted(value.items())]


def json_document(value: Any, path: str) -> Any:
    """A JSON string input (a policy) as the JSON object CloudFormation takes."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def as_string(value: Any, path: str) -> Any:
    """CloudFormation types some numbers as strings (RDS AllocatedStorage, Port)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
