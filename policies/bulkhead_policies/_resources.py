"""Plumbing shared by the rules: resource views, reference following, unknowns, policy factories.

Rules never look at a resource's *name* to decide who owns what: they follow the
references the engine gives them (ids, ARNs and names that resolve to resources of
the stack, and `propertyDependencies` when those values are still unknown at
preview) and the `bulkhead:` tags (AWS) / labels (Docker).

Unknown values (`pulumi preview` of resources not created yet) are never guessed:
a rule that needs one raises `CouldNotCheck`, a subclass of pulumi_policy's own
`UnknownValueError`, so the engine reports "can't run policy ... during preview"
as an advisory diagnostic naming the resource, exactly as it does for a rule that
touched an unknown through the property proxy. Stack rules catch it per resource,
finish checking every other resource, and raise it once at the end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterable, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

# Type tokens and tag keys: the one definition is the pack's bulkhead_types (imported by name here,
# re-exported for the rules).
from bulkhead_types import (  # noqa: F401
    STACK,
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    SECURITY_GROUP,
    INGRESS_RULE,
    EGRESS_RULE,
    LEGACY_SG_RULE,
    KMS_KEY,
    KMS_ALIAS,
    IAM_POLICY_TYPES,
    SECRET,
    BACKUP_PLAN,
    BACKUP_SELECTION,
    BACKUP_VAULT,
    BACKUP_VAULT_POLICY,
    RESTORE_TESTING_PLAN,
    RESTORE_TESTING_SELECTION,
    SECRET_POLICY,
    LOG_GROUP,
    CONTAINER,
    VOLUME,
    NETWORK,
    REMOTE_IMAGE,
    RANDOM_PASSWORD,
    TAG_DATABASE,
    TAG_OWNER,
    TAG_STACK,
    TAG_TIER,
    TAG_ROLE,
)

POSTGRES_DATA_PATH = "/var/lib/postgresql/data"

# The value a secret has when its plaintext is not available (a plan or a stack export
# stores secrets as envelopes). Rules may see it wherever a secret was.
SECRET_PLACEHOLDER = "[secret]"

_UNKNOWN_SENTINELS = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)


class _Unknown:
    """A value that is not known yet (computed by a resource that does not exist yet)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"

    def __bool__(self) -> bool:
        return False


UNKNOWN = _Unknown()


def plain(value: Any) -> Any:
    """Plain dicts/lists from pulumi_policy's proxies, with unknown sentinels as UNKNOWN."""
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWN_SENTINELS else value
    # A proxy's target is plain JSON data: exact dicts, lists and scalars take the branches below
    # would give them (a dict or list is no proxy, a scalar has no `value`) without the abc
    # Mapping/Sequence checks, ~1M values per check at 1000 databases (bench/README.md).
    t = type(value)
    if t is dict:
        return {str(k): plain(v) for k, v in value.items()}
    if t is list:
        return [plain(v) for v in value]
    if t is int or t is bool or t is float or value is None:
        return value
    if isinstance(value, Mapping):
        target = _proxy_target(value)
        if target is not None:
            return plain(target)
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        target = _proxy_target(value)
        if target is not None:
            return plain(target)
        return [plain(v) for v in value]
    inner = getattr(value, "value", None)
    if type(value).__name__ == "Secret" and inner is not None:  # pulumi_policy.Secret
        return plain(inner)
    return value


def _proxy_target(value: Any) -> Any:
    if type(value).__name__ in ("_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy"):
        return value["__target"]
    return None


class CouldNotCheck(UnknownValueError):
    """A rule needed a value that is unknown during preview; the engine reports it as advisory."""

    def __init__(self, resource: "Res | str", what: str):
        label = resource.label if isinstance(resource, Res) else str(resource)
        super().__init__(UNKNOWN_STRING_VALUE, [what])
        self.resource = label
        self.message = (
            f"{label}: `{what}` is not known until the resource is created, so this check could not run; "
            f"it runs again on the next preview or update once the value is known."
        )

    def __str__(self) -> str:
        return self.message


class _CouldNotCheckMany(UnknownValueError):
    def __init__(self, problems: list[CouldNotCheck]):
        super().__init__(UNKNOWN_STRING_VALUE, [])
        self.problems = problems
        self.message = " ".join(p.message for p in problems)


def split_list(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def as_list(value: Any) -> list:
    if value is None or value is UNKNOWN:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool) or value is None or value is UNKNOWN:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def truthy(value: Any) -> Optional[bool]:
    """True/False for booleans and their string forms; None when absent; UNKNOWN stays UNKNOWN."""
    if value is UNKNOWN:
        return UNKNOWN  # type: ignore[return-value]
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    if isinstance(value, (int, float)):
        return bool(value)
    return None


def strings(value: Any) -> list[str]:
    """Every string leaf of a value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


_KIND_LABELS = {
    RDS_INSTANCE: "RDS instance",
    RDS_PARAMETER_GROUP: "RDS parameter group",
    SECURITY_GROUP: "security group",
    INGRESS_RULE: "security group ingress rule",
    EGRESS_RULE: "security group egress rule",
    LEGACY_SG_RULE: "security group rule",
    KMS_KEY: "KMS key",
    SECRET: "secret",
    BACKUP_PLAN: "backup plan",
    BACKUP_SELECTION: "backup selection",
    BACKUP_VAULT: "backup vault",
    BACKUP_VAULT_POLICY: "backup vault policy",
    RESTORE_TESTING_SELECTION: "restore testing selection",
    SECRET_POLICY: "secret policy",
    LOG_GROUP: "log group",
    CONTAINER: "container",
    VOLUME: "Docker volume",
    NETWORK: "Docker network",
    REMOTE_IMAGE: "Docker image",
    RANDOM_PASSWORD: "password",
}


class Res:
    """One resource as the rules see it: plain props, tags, options and references."""

    def __init__(self, type_: str, urn: str, name: str, props: Any, protect: Optional[bool] = None,
                 retain_on_delete: Optional[bool] = None, parent_urn: Optional[str] = None,
                 deps: Optional[dict[str, list[str]]] = None):
        self.type = type_
        self.urn = urn or ""
        self.name = name or (self.urn.rsplit("::", 1)[-1] if self.urn else "?")
        props = plain(props) if props is not None else {}
        self.props: dict = props if isinstance(props, dict) else {}
        self.protect = protect
        self.retain_on_delete = retain_on_delete
        self.parent_urn = parent_urn
        self.deps: dict[str, list[str]] = deps or {}

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_validation_args(cls, args) -> "Res":
        # Every policy of the pack sees the same resource; when a caller hands them the same
        # props object (bulkhead check does), unwrap it once and keep the result on that
        # object, so the cache lives exactly as long as the props do.
        cached = getattr(args.props, "_bulkhead_res", None)
        if cached is not None and cached.urn == (args.urn or ""):
            return cached
        opts = getattr(args, "opts", None)
        res = cls(args.resource_type, args.urn, args.name, args.props,
                  protect=getattr(opts, "protect", None),
                  retain_on_delete=getattr(opts, "retain_on_delete", None),
                  parent_urn=getattr(opts, "parent", None))
        try:
            args.props._bulkhead_res = res
        except AttributeError:  # a plain dict takes no attributes: no cache, same result
            pass
        return res

    @classmethod
    def from_policy_resource(cls, pr) -> "Res":
        opts = getattr(pr, "opts", None)
        deps = {k: [d.urn for d in v] for k, v in (pr.property_dependencies or {}).items()}
        parent = pr.parent.urn if getattr(pr, "parent", None) is not None else getattr(opts, "parent", None)
        return cls(pr.resource_type, pr.urn, pr.name, pr.props,
                   protect=getattr(opts, "protect", None),
                   retain_on_delete=getattr(opts, "retain_on_delete", None),
                   parent_urn=parent, deps=deps)

    # -- reading ----------------------------------------------------------------------------
    @property
    def label(self) -> str:
        kind = _KIND_LABELS.get(self.type, self.type)
        return f"{kind} '{self.name}'"

    def get(self, key: str, default: Any = None) -> Any:
        """A prop, or `default` when absent; UNKNOWN when unknown."""
        value = self.props.get(key, default)
        return default if value is None else value

    def need(self, key: str, default: Any = None) -> Any:
        """A prop that must be known for the check to run."""
        value = self.get(key, default)
        if contains_unknown(value):
            raise CouldNotCheck(self, key)
        return value

    def is_set(self, key: str) -> bool:
        """Present and non-empty, or unknown (a computed reference counts as set)."""
        value = self.props.get(key)
        if value is UNKNOWN:
            return True
        return value not in (None, "", [], {})

    @property
    def tags(self) -> dict[str, str]:
        # Read by most stack rules for every resource (333k times at 1000 databases): built once
        # per Res, which never changes its props once built; each caller gets its own copy.
        cached = self.__dict__.get("_tags")
        if cached is None:
            cached = self.__dict__["_tags"] = self._build_tags()
        return dict(cached)

    def _tag_list(self, key: str) -> list[str]:
        """split_list of one tag, split once per Res (owners, databases and tiers are read per rule)."""
        lists = self.__dict__.setdefault("_tag_lists", {})
        found = lists.get(key)
        if found is None:
            cached = self.__dict__.get("_tags")
            if cached is None:
                cached = self.__dict__["_tags"] = self._build_tags()
            found = lists[key] = tuple(split_list(cached.get(key)))
        return list(found)

    def _build_tags(self) -> dict[str, str]:
        tags = self.props.get("tags")
        if isinstance(tags, dict):
            return {str(k): v for k, v in tags.items() if isinstance(v, str)}
        labels = self.props.get("labels")
        if isinstance(labels, list):
            return {str(l.get("label")): l.get("value") for l in labels
                    if isinstance(l, dict) and isinstance(l.get("value"), str)}
        if isinstance(labels, dict):
            return {str(k): v for k, v in labels.items() if isinstance(v, str)}
        return {}

    def tags_unknown(self) -> bool:
        return self.props.get("tags") is UNKNOWN or self.props.get("labels") is UNKNOWN

    @property
    def owners(self) -> list[str]:
        return self._tag_list(TAG_OWNER)

    @property
    def databases(self) -> list[str]:
        return self._tag_list(TAG_DATABASE)

    @property
    def tiers(self) -> list[str]:
        return self._tag_list(TAG_TIER)

    @property
    def role(self) -> Optional[str]:
        cached = self.__dict__.get("_tags")
        if cached is None:
            cached = self.__dict__["_tags"] = self._build_tags()
        return cached.get(TAG_ROLE)

    @property
    def stack(self) -> Optional[str]:
        return stack_of_urn(self.urn)

    @property
    def is_replica(self) -> bool:
        return self.type == RDS_INSTANCE and self.is_set("replicateSourceDb")

    @property
    def is_primary(self) -> bool:
        return self.type == RDS_INSTANCE and not self.is_set("replicateSourceDb")

    def __repr__(self) -> str:
        return f"Res({self.type}, {self.name})"


def stack_of_urn(urn: str) -> Optional[str]:
    # urn:pulumi:<stack>::<project>::<type>::<name>
    if not urn or not urn.startswith("urn:pulumi:"):
        return None
    return urn[len("urn:pulumi:"):].split("::", 1)[0] or None


# Props whose values identify a resource when another resource refers to it.
_IDENTITY_KEYS = ("id", "arn", "name", "identifier", "keyId", "imageId", "repoDigest", "resourceId")


class Index:
    """All resources of a stack, with reference resolution by value and by propertyDependencies."""

    def __init__(self, resources: list[Res]):
        self.resources = resources
        self.by_urn: dict[str, Res] = {r.urn: r for r in resources}
        self._by_value: dict[str, list[Res]] = {}
        self._by_type: dict[str, list[Res]] = {}
        for r in resources:
            self._by_type.setdefault(r.type, []).append(r)
            for key in _IDENTITY_KEYS:
                value = r.props.get(key)
                if isinstance(value, str) and value and value != SECRET_PLACEHOLDER:
                    self._by_value.setdefault(value, []).append(r)
            if r.type == RDS_INSTANCE:
                for secret in as_list(r.props.get("masterUserSecrets")):
                    if isinstance(secret, dict) and isinstance(secret.get("secretArn"), str):
                        self._by_value.setdefault(secret["secretArn"], []).append(r)
        self.stack_outputs: dict = next((r.props for r in resources if r.type == STACK), {})

    @classmethod
    def from_stack_args(cls, args) -> "Index":
        cached = _INDEX_CACHE.get(id(args.resources))
        if cached is not None and cached[0] is args.resources:
            return cached[1]
        index = cls([Res.from_policy_resource(pr) for pr in args.resources])
        _INDEX_CACHE.clear()
        _INDEX_CACHE[id(args.resources)] = (args.resources, index)
        return index

    def of_type(self, *types: str) -> list[Res]:
        return [r for t in types for r in self._by_type.get(t, [])]

    def lookup(self, value: Any, *types: str) -> list[Res]:
        if not isinstance(value, str):
            return []
        found = self._by_value.get(value, [])
        if not found and value.startswith("arn:") and ":key/" in value:
            found = self._by_value.get(value.rsplit("/", 1)[-1], [])
        if not found and (value.startswith("alias/") or ":alias/" in value):
            alias_name = value[value.index("alias/"):]
            for alias in self._aliases_named(alias_name):
                    found = found + self.lookup(alias.get("targetKeyId"), KMS_KEY) + [
                        self.by_urn[u] for u in alias.deps.get("targetKeyId", []) if u in self.by_urn]
        return [r for r in found if not types or r.type in types]

    def refs(self, r: Res, key: str, *types: str, value: Any = None) -> tuple[list[Res], list[str], bool]:
        """Resources `r.key` refers to: (resolved, unresolved literal values, has_unknown).

        A reference resolves by its value (an id, ARN or name of a resource in the stack) or,
        when the value is unknown at preview, by the property's dependencies.
        """
        value = r.props.get(key) if value is None else value
        found: list[Res] = []
        unresolved: list[str] = []
        unknown = contains_unknown(value)
        for leaf in strings(value):
            hits = self.lookup(leaf, *types)
            if hits:
                found.extend(h for h in hits if h not in found)
            elif leaf != SECRET_PLACEHOLDER:
                unresolved.append(leaf)
        if unknown or not found:
            for urn in r.deps.get(key, []):
                dep = self.by_urn.get(urn)
                if dep is not None and (not types or dep.type in types) and dep not in found:
                    found.append(dep)
        return found, unresolved, unknown

    def attached(self, r: Res, key: str, *types: str) -> list[Res]:
        """What `r.key` refers to; when nothing resolves and the value is unknown at
        preview, the check cannot run (CouldNotCheck) rather than pass."""
        found, _, unknown = self.refs(r, key, *types)
        if not found and unknown:
            raise CouldNotCheck(r, key)
        return found

    def referrers(self, target: Res, types: Iterable[str], key: str) -> list[Res]:
        """Resources of `types` whose `key` refers to `target`, in the order of `of_type(*types)`.

        The reverse of `refs`, built once per (types, key, target type) for the whole stack:
        scanning every resource of `types` per target made a stack check quadratic in the
        number of databases (bench/README.md, "check")."""
        types = tuple(types)
        memo = self._memo("referrers", (types, key, target.type))
        if memo.get(None) is None:
            memo[None] = True
            for r in self.of_type(*types):
                for f in self.refs(r, key, target.type)[0]:
                    memo.setdefault(f.urn, []).append(r)
        return list(memo.get(target.urn, ()))

    def dependents(self, urn: str, *types: str) -> list[Res]:
        """Resources of `types` with `urn` among their propertyDependencies, in the order of
        `of_type(*types)`; built once per `types` (the reverse of `Res.deps`)."""
        memo = self._memo("dependents", types)
        if memo.get(None) is None:
            memo[None] = True
            for r in self.of_type(*types):
                seen: set[str] = set()
                for urns in r.deps.values():
                    for u in urns:
                        if u not in seen:
                            seen.add(u)
                            memo.setdefault(u, []).append(r)
        return list(memo.get(urn, ()))

    def named(self, name: str, *types: str) -> list[Res]:
        """Resources of `types` whose `name` prop is `name`, in the order of `of_type(*types)`."""
        memo = self._memo("named", types)
        if memo.get(None) is None:
            memo[None] = True
            for r in self.of_type(*types):
                value = r.get("name")
                if isinstance(value, str):
                    memo.setdefault(value, []).append(r)
        return list(memo.get(name, ()))

    def _aliases_named(self, name: str) -> list[Res]:
        return self.named(name, KMS_ALIAS)

    def _memo(self, kind: str, key: Any) -> dict:
        """A per-index table for the reverse lookups above (the index is immutable once built)."""
        memos = self.__dict__.setdefault("_reverse_memos", {})
        return memos.setdefault((kind, key), {})


_INDEX_CACHE: dict[int, tuple[Any, Index]] = {}


def rds_instances(index: Index) -> list[Res]:
    return index.of_type(RDS_INSTANCE)


def database_security_groups(index: Index) -> dict[str, list[Res]]:
    """Security groups that guard a database, found from the instances' references: sg urn -> instances."""
    out: dict[str, list[Res]] = {}
    for inst in rds_instances(index):
        groups, _, _ = index.refs(inst, "vpcSecurityGroupIds", SECURITY_GROUP)
        for group in groups:
            out.setdefault(group.urn, []).append(inst)
    return out


def owner_of(r: Res) -> Optional[str]:
    owners = r.owners
    return owners[0] if len(owners) == 1 else None


def policy_document(r: Res) -> Any:
    doc = r.get("policy")
    if isinstance(doc, str):
        try:
            return json.loads(doc)
        except ValueError:
            return None
    return doc if isinstance(doc, dict) else None


def statements(doc: Any) -> list[dict]:
    if not isinstance(doc, dict):
        return []
    st = doc.get("Statement")
    return [s for s in as_list(st) if isinstance(s, dict)]


# --- configuration ----------------------------------------------------------------------------

def merged_config(defaults: Optional[dict], given: Optional[Mapping]) -> dict:
    cfg = dict(defaults or {})
    for k, v in dict(given or {}).items():
        cfg[k] = plain(v)
    return cfg


def sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] if message else message


def _resource_validate(name: str, types: tuple[str, ...], check: Callable, defaults: Optional[dict]):
    def validate(args, report_violation) -> None:
        if types and args.resource_type not in types:
            return
        r = Res.from_validation_args(args)
        cfg = merged_config(defaults, args.get_config())
        for message in check(r, cfg) or ():
            report_violation(sentence(message), args.urn or None)

    validate.__name__ = f"validate_{name.replace('-', '_')}"
    return validate


def _stack_validate(name: str, types: tuple[str, ...], check: Callable, defaults: Optional[dict]):
    def validate(args, report_violation) -> None:
        index = Index.from_stack_args(args)
        cfg = merged_config(defaults, args.get_config())
        problems: list[CouldNotCheck] = []
        subjects = index.of_type(*types) if types else list(index.resources)
        for r in subjects:
            try:
                for message in check(index, r, cfg) or ():
                    report_violation(sentence(message), r.urn or None)
            except CouldNotCheck as exc:
                problems.append(exc)
        if problems:
            raise _CouldNotCheckMany(problems)

    validate.__name__ = f"validate_{name.replace('-', '_')}"
    return validate


def schema(properties: dict) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=properties)


def string_list(default: Iterable[str], description: str) -> dict:
    """A config property holding a list of strings."""
    return {"type": "array", "items": {"type": "string"}, "default": list(default), "description": description}


def _schema_defaults(config_schema: Optional[PolicyConfigSchema]) -> dict:
    """A policy's default config: the `default` of each property of its schema (one source)."""
    properties = (config_schema.properties or {}) if config_schema else {}
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}


def resource_policy(name: str, description: str, level: EnforcementLevel, types: Iterable[str],
                    check: Callable[[Res, dict], Iterable[str]], config_schema: Optional[PolicyConfigSchema] = None,
                    defaults: Optional[dict] = None, remediation: Optional[str] = None) -> ResourceValidationPolicy:
    policy = ResourceValidationPolicy(
        name=name, description=description, enforcement_level=level,
        validate=_resource_validate(name, tuple(types), check, {**_schema_defaults(config_schema), **(defaults or {})}),
        config_schema=config_schema, remediation_steps=remediation,
    )
    policy.check = check  # the plain rule function, for tests and tools
    # The types its validate looks at (empty: every type): bulkhead check hands it only those
    # resources, the rest return at once in _resource_validate (bulkhead/commands/check.py).
    policy.resource_types = tuple(types)
    return policy


def stack_policy(name: str, description: str, level: EnforcementLevel, types: Iterable[str],
                 check: Callable[[Index, Res, dict], Iterable[str]], config_schema: Optional[PolicyConfigSchema] = None,
                 defaults: Optional[dict] = None, remediation: Optional[str] = None) -> StackValidationPolicy:
    policy = StackValidationPolicy(
        name=name, description=description, enforcement_level=level,
        validate=_stack_validate(name, tuple(types), check, {**_schema_defaults(config_schema), **(defaults or {})}),
        config_schema=config_schema, remediation_steps=remediation,
    )
    policy.check = check
    return policy


# --- registration where the check is defined ----------------------------------------------------------
# Every policy built by @resource_rule/@stack_rule, in definition order: bulkhead_policies/__init__.py
# checks each of them reached ALL_POLICIES (a module that rebinds POLICIES after them would drop them).
DECORATED: list = []


def resource_rule(policies: list, name: str, description: str, level: EnforcementLevel, types: Iterable[str],
                  **options) -> Callable:
    """Decorator: the ResourceValidationPolicy of the check it decorates, built next to it and appended to
    `policies` (the module's POLICIES). The check is returned unchanged. Same arguments as resource_policy;
    a module may still list resource_policy(...) calls in POLICIES itself."""
    def register(check: Callable[[Res, dict], Iterable[str]]) -> Callable:
        policy = resource_policy(name, description, level, types, check, **options)
        policies.append(policy)
        DECORATED.append(policy)
        return check
    return register


def stack_rule(policies: list, name: str, description: str, level: EnforcementLevel, types: Iterable[str],
               **options) -> Callable:
    """Decorator: as resource_rule, for a StackValidationPolicy (stack_policy's arguments)."""
    def register(check: Callable[[Index, Res, dict], Iterable[str]]) -> Callable:
        policy = stack_policy(name, description, level, types, check, **options)
        policies.append(policy)
        DECORATED.append(policy)
        return check
    return register


def check_registered(all_policies: Sequence) -> None:
    """Every decorated policy is in the pack, once: a module that rebinds POLICIES (`POLICIES = [...]`
    after its decorated checks) would drop them without a word."""
    listed = {id(p) for p in all_policies}
    lost = [p.name for p in DECORATED if id(p) not in listed]
    if lost:
        raise RuntimeError(f"policies registered with @resource_rule/@stack_rule but not in ALL_POLICIES: "
                           f"{', '.join(lost)}; extend the module's POLICIES (POLICIES += [...]), never rebind it")
    names = [p.name for p in all_policies]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RuntimeError(f"policies registered twice: {', '.join(twice)}")
