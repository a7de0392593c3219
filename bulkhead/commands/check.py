"""`bulkhead check`: run every policy of the pack on a plan or a `pulumi stack export`, offline.

The rules are the pack's own (policies/bulkhead_policies, imported by putting
`policies/` on sys.path); this module only plays the engine's part: it builds
pulumi_policy's argument objects from the file the way the analyzer server builds
them from the engine's requests (properties behind the unknown-checking proxy,
config merged over the defaults, enforcement levels from the pack config) and
collects the violations.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from bulkhead import PROJECT_DIR
from bulkhead.errors import UserError
from bulkhead.jsonfile import read_json
from bulkhead.planfile import SECRET_SIG, SECRET_SIG_KEY
from bulkhead.planfile import STACK_TYPE, Plan

POLICIES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "policies")

LEVELS = ("advisory", "mandatory", "remediate", "disabled")


@dataclass
class Violation:
    policy: str
    urn: str
    message: str
    enforcement: str
    database: str = ""

    def as_json(self) -> dict:
        return {"policy": self.policy, "urn": self.urn, "message": self.message, "enforcement": self.enforcement}


@dataclass
class CheckResult:
    violations: list[Violation]
    resources: int
    policies: int

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement == "mandatory"]

    def as_json(self) -> dict:
        return {"violations": [v.as_json() for v in self.violations], "resources": self.resources,
                "policies": self.policies}


def load_pack(policies_dir: str = POLICIES_DIR):
    """The pack's rule package, imported from `policies/` (the pack stays self-contained)."""
    if policies_dir not in sys.path:
        sys.path.insert(0, policies_dir)
    import bulkhead_policies  # noqa: PLC0415

    return bulkhead_policies


# --- turning a plan / stack export into what the engine would send -----------------------------

def policy_value(value: Any) -> Any:
    """Secret envelopes become the pack's placeholder (or their plaintext with --show-secrets)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            if "value" in value:
                return policy_value(value["value"])
            if isinstance(value.get("plaintext"), str):
                try:
                    return policy_value(json.loads(value["plaintext"]))
                except ValueError:
                    return value["plaintext"]
            return load_pack().SECRET_PLACEHOLDER
        if SECRET_SIG_KEY in value:  # assets, archives, resource references: keep a readable form
            return {k: policy_value(v) for k, v in value.items() if k != SECRET_SIG_KEY}
        return {k: policy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [policy_value(v) for v in value]
    return value


def _name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if "::" in urn else urn


def resource_props(resource: dict) -> dict:
    """What `Analyze` sees: the resource's inputs (outputs for a state without inputs)."""
    props = resource.get("inputs") or resource.get("outputs") or {}
    return policy_value(props) if isinstance(props, dict) else {}


def stack_props(resource: dict) -> dict:
    """What `AnalyzeStack` sees: the resource's state (outputs, with the inputs over them) and its id."""
    outputs = resource.get("outputs") if isinstance(resource.get("outputs"), dict) else {}
    inputs = resource.get("inputs") if isinstance(resource.get("inputs"), dict) else {}
    props = policy_value({**outputs, **inputs})
    if resource.get("id") and "id" not in props and resource.get("custom", True):
        props["id"] = str(resource["id"])
    return props


def _views(resource: dict) -> tuple[dict, dict]:
    """(resource_props(resource), stack_props(resource)) with each of inputs and outputs through
    policy_value once: the two views share their values (read-only for the rules)."""
    raw_inputs, raw_outputs = resource.get("inputs"), resource.get("outputs")
    inputs = policy_value(raw_inputs) if isinstance(raw_inputs, dict) else {}
    if (raw_inputs and isinstance(raw_outputs, dict) and isinstance(inputs, dict)
            and SECRET_SIG_KEY not in raw_inputs and SECRET_SIG_KEY not in raw_outputs):
        # {**outputs, **inputs} without converting the output values an input replaces (most of
        # them: a provider echoes its inputs): the same keys in the same order, the same values.
        state = {k: inputs[k] if k in inputs else policy_value(v) for k, v in raw_outputs.items()}
        state.update(inputs)
        view = inputs
    else:
        outputs = policy_value(raw_outputs) if isinstance(raw_outputs, dict) else {}
        # resource_props: the inputs, or the outputs for a state without inputs (`or` on the raw values).
        view = inputs if raw_inputs else outputs if raw_outputs else {}
        state = {**outputs, **inputs}
    if not isinstance(view, dict):
        view = {}
    if resource.get("id") and "id" not in state and resource.get("custom", True):
        state["id"] = str(resource["id"])
    return view, state


def lazy_unknown_checking_proxy(props: dict):
    """pulumi_policy's `unknown_checking_proxy`, wrapping a nested dict or list when it is read
    rather than all of them up front: the same proxy types (so `plain` and the rules see what
    they saw), the same UnknownValueError with the same property path on an unknown."""
    return _lazy_proxy_class()(props, [])


@functools.lru_cache(maxsize=None)
def _lazy_proxy_class():
    from pulumi_policy import proxy as _proxy  # noqa: PLC0415 (pulumi_policy is imported on first use)

    class _DictProxy(_proxy._DictProxy):  # the name pulumi_policy's own proxies have
        def __getitem__(self, key):
            if key == "__target":
                return self._DictProxy__target
            path = self._DictProxy__props_acc
            return _wrap(_proxy._raise_if_unknown(key, self._DictProxy__target[key], path), path, key)

    class _ListProxy(_proxy._ListProxy):
        def __getitem__(self, key):
            if key == "__target":
                return self._ListProxy__target
            path = self._ListProxy__props_acc
            if isinstance(key, slice):  # the eager proxy's slice: a plain list of wrapped items
                items = range(len(self._ListProxy__target))[key]
                return [_wrap(self._ListProxy__target[i], path, i) for i in items]
            return _wrap(_proxy._raise_if_unknown(key, self._ListProxy__target[key], path), path, key)

    def _wrap(value, path, key):
        if isinstance(value, dict):
            return _DictProxy(value, _proxy._append_prop(path, key))
        if isinstance(value, list):
            return _ListProxy(value, _proxy._append_prop(path, key))
        return value

    return _DictProxy


def _options(resource: dict):
    from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions

    opts = PolicyResourceOptions(
        bool(resource.get("protect", False)),
        list(resource.get("ignoreChanges") or []),
        resource.get("deleteBeforeReplace"),
        list(resource.get("aliases") or []),
        PolicyCustomTimeouts(0, 0, 0),
        list(resource.get("additionalSecretOutputs") or []),
        resource.get("parent") or None,
    )
    # Not part of the analyzer protocol; rules use it when present (dev-volume-retained).
    if "retainOnDelete" in resource:
        opts.retain_on_delete = bool(resource.get("retainOnDelete"))
    return opts


def analyzed_resources(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r.get("type") != STACK_TYPE and not r.get("delete")]


# --- pack config ----------------------------------------------------------------------------------

def normalize_config(config: Optional[dict], policy_names: Iterable[str]) -> dict[str, dict]:
    """`--policy-config` JSON -> {policy: {"enforcementLevel"?: level, **properties}}."""
    names = set(policy_names)
    out: dict[str, dict] = {}
    for key, value in (config or {}).items():
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, dict):
            raise UserError(f"policy config for {key!r} must be an enforcement level or an object, not {value!r}")
        level = value.get("enforcementLevel")
        if level is not None and level not in LEVELS:
            raise UserError(f"policy config for {key!r}: enforcementLevel must be one of {', '.join(LEVELS)}, not {level!r}")
        targets = sorted(names) if key == "all" else [key]
        if key != "all" and key not in names:
            raise UserError(f"policy config names {key!r}, which is not a policy of the pack; "
                            f"known policies: {', '.join(sorted(names))}")
        for name in targets:
            merged = dict(out.get(name, {}))
            if key == "all":
                if level is not None:
                    merged.setdefault("enforcementLevel", level)
            else:
                merged.update(value)
            out[name] = merged
    return out


def merge_configs(*configs: Optional[dict]) -> dict:
    out: dict[str, Any] = {}
    for config in configs:
        for key, value in (config or {}).items():
            if isinstance(value, str):
                value = {"enforcementLevel": value}
            out[key] = {**out.get(key, {}), **value} if isinstance(out.get(key), dict) else value
    return out


# --- evaluation -------------------------------------------------------------------------------------

def evaluate(export: dict, config: Optional[dict] = None, pack=None) -> CheckResult:
    """Every policy of the pack on a plan or stack export; violations in pack order."""
    # Tens of thousands of long-lived proxies and indexes: a cyclic-GC pass would re-walk
    # all of them again and again (most of the run); nothing here is garbage until the end.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _evaluate(export, config, pack)
    finally:
        if gc_was_enabled:
            gc.enable()


def _evaluate(export: dict, config: Optional[dict], pack) -> CheckResult:
    from pulumi_policy import (
        EnforcementLevel,
        PolicyResource,
        ResourceValidationArgs,
        ResourceValidationPolicy,
        StackValidationArgs,
        StackValidationPolicy,
    )
    from pulumi_policy.proxy import UnknownValueError

    pack = pack or load_pack()
    plan = Plan.from_export(export)
    resources = plan.resources
    analyzed = analyzed_resources(resources)
    policies = list(pack.ALL_POLICIES)
    cfg = normalize_config(config, [p.name for p in policies])

    # Stack resources once, linked as the analyzer server links them. Each resource's inputs and
    # outputs go through policy_value once (the stack view and the resource view share the
    # results; the rules only read them), its options are built once for both views, and the
    # props are wrapped by a lazy unknown-checking proxy (below) instead of pulumi_policy's
    # eager one, which built a proxy for every nested dict and list of every resource up front
    # (about a fifth of check at 1000 databases, bench/README.md "Fourth pass").
    stack_resources: list = []
    by_urn: dict[str, Any] = {}
    views: dict[str, tuple] = {}
    for r in resources:
        if r.get("delete"):
            continue
        resource_view, stack_view = _views(r)
        opts = _options(r)
        views[r["urn"]] = (opts, resource_view)
        pr = PolicyResource(r["type"], lazy_unknown_checking_proxy(stack_view), r["urn"], _name_of(r["urn"]),
                            opts, None, None, [], {})
        stack_resources.append(pr)
        by_urn[r["urn"]] = pr
    for r in resources:
        pr = by_urn.get(r["urn"])
        if pr is None:
            continue
        pr.parent = by_urn.get(r.get("parent") or "")
        pr.dependencies = [by_urn[d] for d in r.get("dependencies") or [] if d in by_urn]
        pr.property_dependencies = {k: [by_urn[d] for d in v or [] if d in by_urn]
                                    for k, v in (r.get("propertyDependencies") or {}).items()}

    # One props proxy per resource, shared by every resource policy (the rules only read it).
    resource_args_base = []
    for r in analyzed:
        opts, resource_view = views.get(r["urn"]) or (_options(r), resource_props(r))
        resource_args_base.append((r, opts, lazy_unknown_checking_proxy(resource_view)))
    # Positions of each type's resources: a pack policy that declares its types (resource_policy's
    # resource_types) returns at once for any other type, so it is handed only those, in plan order
    # (the violations' order). ~26 resource policies x every resource was most of check's time.
    positions_of_type: dict[str, list[int]] = {}
    for i, (r, _, _) in enumerate(resource_args_base):
        positions_of_type.setdefault(r["type"], []).append(i)
    violations: list[Violation] = []
    evaluated = 0
    for policy in policies:
        pcfg = dict(cfg.get(policy.name, {}))
        level = pcfg.pop("enforcementLevel", None)
        level = EnforcementLevel(level) if level else (policy.enforcement_level or EnforcementLevel.MANDATORY)
        if level == EnforcementLevel.DISABLED:
            continue
        if level == EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY
        evaluated += 1
        level_name = level.value

        # Called within this iteration only; the defaults bind this iteration's policy and level (bugbear B023).
        def report(urn_default: str, policy=policy, level_name: str = level_name):
            def report_violation(message: str, urn: Optional[str] = None) -> None:
                violations.append(Violation(policy.name, urn or urn_default, message, level_name))
            return report_violation

        def could_not_run(exc: Exception, urn: str, policy=policy) -> None:
            violations.append(Violation(
                policy.name, urn,
                f"can't run policy '{policy.name}' during preview: {getattr(exc, 'message', exc)}", "advisory"))

        if isinstance(policy, ResourceValidationPolicy):
            types = getattr(policy, "resource_types", ())
            subjects = resource_args_base if not types else [
                resource_args_base[i] for i in sorted(i for t in set(types) for i in positions_of_type.get(t, ()))]
            for r, opts, props in subjects:
                args = ResourceValidationArgs(r["type"], props, r["urn"],
                                              _name_of(r["urn"]), opts, None, pcfg or None, {})
                try:
                    policy.validate(args, report(r["urn"]))
                except UnknownValueError as exc:
                    could_not_run(exc, r["urn"])
                except Exception as exc:  # noqa: BLE001
                    if type(exc).__name__ == "_NotApplicableError":
                        continue
                    raise
        elif isinstance(policy, StackValidationPolicy):
            args = StackValidationArgs(stack_resources, pcfg or None, {})
            try:
                policy.validate(args, report(""))
            except UnknownValueError as exc:
                could_not_run(exc, "")
            except Exception as exc:  # noqa: BLE001
                if type(exc).__name__ != "_NotApplicableError":
                    raise
    _attach_databases(plan, violations)
    return CheckResult(violations, len(analyzed), evaluated)


def _attach_databases(plan: Plan, violations: list[Violation]) -> None:
    from bulkhead.planfile import database_names

    for v in violations:
        node = plan.by_urn.get(v.urn)
        name = ""
        seen = set()
        while node is not None and node["urn"] not in seen:
            seen.add(node["urn"])
            dbs = database_names(node)
            if dbs:
                name = ",".join(dbs)
                break
            node = plan.by_urn.get(node.get("parent") or "")
        v.database = name or "(stack-wide)"


# --- CLI -------------------------------------------------------------------------------------------

def add_parser(sub) -> None:
    p = sub.add_parser(
        "check",
        help="run the policy pack offline on a plan or `pulumi stack export` output",
        description="Evaluate every policy of the bulkhead pack on a plan (FILE, - for stdin, or --stack S to "
                    "plan the stack in-process) or on `pulumi stack export` output. Exit 0 clean or advisory "
                    "only, 1 on a mandatory violation, 2 on bad input.",
    )
    p.add_argument("file", nargs="?", help="plan or stack export JSON; - reads stdin")
    p.add_argument("--stack", help="plan this stack in-process (Pulumi.<stack>.yaml); also selects its pack defaults")
    p.add_argument("--json", action="store_true", help="print {violations, resources, policies} as JSON")
    p.add_argument("--policy-config", metavar="FILE",
                   help="pack config JSON, the same shape as `pulumi preview --policy-pack-config`")
    p.add_argument("--project-dir", default=PROJECT_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _stack_of(export: dict) -> Optional[str]:
    for r in (export.get("deployment") or {}).get("resources") or []:
        urn = r.get("urn", "") if isinstance(r, dict) else ""
        if isinstance(urn, str) and urn.startswith("urn:pulumi:"):
            return urn[len("urn:pulumi:"):].split("::", 1)[0]
    return None


def validate_export(export: dict, source: str) -> None:
    """Refuse what is not a plan or stack export with a message, never a traceback."""
    Plan.from_export(export, source)
    for i, r in enumerate(export["deployment"].get("resources") or []):
        where = f"{source}: deployment.resources[{i}]"
        if not isinstance(r.get("urn"), str) or not isinstance(r.get("type"), str):
            raise UserError(f"{where}: urn and type must be strings")
        for key in ("inputs", "outputs", "propertyDependencies"):
            if r.get(key) is not None and not isinstance(r.get(key), dict):
                raise UserError(f"{where}: {key} must be an object")
        for key in ("dependencies",):
            if r.get(key) is not None and not isinstance(r.get(key), list):
                raise UserError(f"{where}: {key} must be a list")


def defaults_for_stack(stack: Optional[str], pack) -> dict:
    """The pack config a stack gets before --policy-config: production stacks refuse shared servers."""
    if pack.thresholds.is_production_stack(stack):
        return dict(pack.PROD_POLICY_CONFIG)
    return {}


def cost_of(export: dict) -> dict:
    """`check --json`'s `cost` (aws plans): the plan file's own figures, else estimated from its resources
    (a `pulumi stack export`), so CI can gate on them."""
    from bulkhead.cost import INSTANCE, estimate

    carried = (export.get("bulkhead") or {}).get("cost") if isinstance(export.get("bulkhead"), dict) else None
    if isinstance(carried, dict):
        return {"cost": carried}
    plan = Plan.from_export(export)
    return {"cost": estimate(plan)} if plan.of_type(INSTANCE) else {}


def render(result: CheckResult, source: str) -> str:
    if not result.violations:
        return f"{source}: 0 violations, {result.resources} resources, {result.policies} policies"
    lines = []
    groups: dict[str, list[Violation]] = {}
    for v in result.violations:
        groups.setdefault(v.database, []).append(v)
    order = sorted(groups, key=lambda d: (d == "(stack-wide)", d))
    for database in order:
        lines.append(f"database {database}:" if database != "(stack-wide)" else "stack-wide:")
        for v in sorted(groups[database], key=lambda v: (v.enforcement != "mandatory", v.policy, v.urn)):
            lines.append(f"  [{v.enforcement}] {v.policy}: {v.message}")
            if v.urn:
                lines.append(f"      {v.urn}")
    mandatory = len(result.mandatory)
    lines.append("")
    lines.append(f"{source}: {len(result.violations)} violations ({mandatory} mandatory, "
                 f"{len(result.violations) - mandatory} advisory), {result.resources} resources, "
                 f"{result.policies} policies")
    return "\n".join(lines)


def run(args) -> int:
    started = time.perf_counter()
    if args.file and args.stack and args.file != "-" and not os.path.exists(args.file):
        raise UserError(f"{args.file} does not exist")
    if not args.file and not args.stack:
        raise UserError("give a plan or stack export file, - for stdin, or --stack S")
    if args.file:
        export = read_json(args.file, "plan", "write one with `python -m bulkhead plan --stack S --out FILE`, or pipe `pulumi stack export`")
        source = "stdin" if args.file == "-" else args.file
    else:
        from bulkhead.commands.plan import build_plan

        export, _ = build_plan(args.project_dir, args.stack)
        source = f"stack {args.stack}"
    if not isinstance(export, dict) or not isinstance(export.get("deployment"), dict):
        raise UserError(f"{source} is not a plan or `pulumi stack export` file: expected "
                        f"{{\"version\": 3, \"deployment\": {{\"resources\": [...]}}}}")
    validate_export(export, source)
    pack = load_pack()
    user_config = read_json(args.policy_config, "policy config") if args.policy_config else {}
    if not isinstance(user_config, dict):
        raise UserError(f"policy config {args.policy_config} must be a JSON object")
    stack = args.stack or _stack_of(export)
    config = merge_configs(defaults_for_stack(stack, pack), user_config)
    result = evaluate(export, config, pack)
    if args.json:
        print(json.dumps({**result.as_json(), **cost_of(export)}, indent=1))
    else:
        print(render(result, source))
        print(f"checked in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    return 1 if result.mandatory else 0
