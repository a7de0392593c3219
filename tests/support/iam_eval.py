"""A small evaluator of IAM resource policies in one account, limited to what bulkhead's key,
secret and vault policies use: Allow/Deny, Principal AWS (ARNs, account root, "*") and Service,
Action with wildcards, and the condition operators StringEquals, StringLike, ArnLike, ArnNotLike, Bool,
BoolIfExists, StringEqualsIfExists, ArnLikeIfExists
(IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements: Condition operators";
KMS Developer Guide, "Key policies": a key policy must allow, IAM alone never does).

principalmapper 1.1.5 would evaluate these too, but needs collections.Mapping patched on Python
3.11 and is unmaintained since 2021; this evaluator is tested on AWS's documented examples
(tests/policy_eval/test_iam_eval.py)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class Caller:
    arn: Optional[str]  # aws:PrincipalArn (None for a service principal)
    account: str
    service: Optional[str] = None  # e.g. logs.eu-west-1.amazonaws.com
    # what the caller's own IAM policies allow: action patterns (["*"] for an administrator)
    identity_allows: tuple[str, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _action_matches(patterns, action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _list(patterns))


def _principal_matches(principal, caller: Caller) -> tuple[bool, bool]:
    """(matches, through the account root): a root principal delegates to IAM."""
    if principal == "*":
        return True, False
    if "Service" in principal:
        return caller.service is not None and caller.service in _list(principal["Service"]), False
    for arn in _list(principal.get("AWS", [])):
        if arn == "*":
            return True, False
        if caller.arn is None:
            continue
        if arn == f"arn:aws:iam::{caller.account}:root" or arn == caller.account:
            return True, True
        if arn == caller.arn:
            return True, False
    return False, False


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], caller: Caller) -> bool:
    context = dict(caller.context)
    if caller.arn is not None:
        context.setdefault("aws:PrincipalArn", caller.arn)
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            present = key in context
            values = [str(v) for v in _list(context.get(key))]
            wanted = [str(w) for w in _list(wanted)]
            if operator == "StringEquals":
                ok = present and any(v in wanted for v in values)
            elif operator == "StringLike":
                ok = present and any(fnmatch.fnmatchcase(v, w) for v in values for w in wanted)
            elif operator == "ArnLike":
                ok = present and any(fnmatch.fnmatchcase(v, w) for v in values for w in wanted)
            elif operator == "ArnNotLike":
                # a negated operator matches when the key is absent ("Condition operators")
                ok = not present or not any(fnmatch.fnmatchcase(v, w) for v in values for w in wanted)
            elif operator in ("StringEqualsIfExists", "ArnLikeIfExists"):
                # ...IfExists: true when the key is absent ("Condition operators", IfExists)
                if operator == "StringEqualsIfExists":
                    ok = not present or any(v in wanted for v in values)
                else:
                    ok = not present or any(fnmatch.fnmatchcase(v, w) for v in values for w in wanted)
            elif operator == "Bool":
                ok = present and any(v.lower() == w.lower() for v in values for w in wanted)
            elif operator == "BoolIfExists":
                # ...IfExists: true when the key is absent ("Condition operators", IfExists)
                ok = not present or any(v.lower() == w.lower() for v in values for w in wanted)
            else:
                raise NotImplementedError(operator)
            if not ok:
                return False
    return True


def decide(document: Mapping[str, Any], caller: Caller, action: str, *, key_policy: bool) -> str:
    """"allow" or "deny" for `caller` calling `action` on a resource with this policy, same account."""
    direct_allow = root_allow = False
    for statement in document["Statement"]:
        if not _action_matches(statement["Action"], action):
            continue
        matches, via_root = _principal_matches(statement.get("Principal", {}), caller)
        if not matches or not _condition_holds(statement.get("Condition", {}), caller):
            continue
        if statement["Effect"] == "Deny":
            return "deny"  # an explicit deny wins
        if via_root:
            root_allow = True
        else:
            direct_allow = True
    identity = caller.service is None and _action_matches(list(caller.identity_allows) or ["-"], action)
    if direct_allow:
        return "allow"
    if key_policy:
        # KMS: IAM policies count only where the key policy names the account ("Key policies")
        return "allow" if root_allow and identity else "deny"
    return "allow" if identity or root_allow and identity else "deny"


def _resource_matches(patterns, resource: str) -> bool:
    return any(fnmatch.fnmatchcase(resource, p) for p in _list(patterns))


def decide_identity(documents, action: str, resource: str, context: Optional[Mapping[str, Any]] = None) -> str:
    """"allow" or "deny" for one principal's identity policies (no resource policy): an explicit Deny in
    any of them wins, else an Allow of any, else the implicit deny (IAM User Guide, "Policy evaluation
    logic"). Action/NotAction, Resource/NotResource with wildcards, and the conditions above."""
    caller = Caller(None, "", context=context or {})
    allowed = False
    for document in documents:
        for statement in _list(document["Statement"]):
            if "Action" in statement and not _action_matches(statement["Action"], action):
                continue
            if "NotAction" in statement and _action_matches(statement["NotAction"], action):
                continue
            if "Resource" in statement and not _resource_matches(statement["Resource"], resource):
                continue
            if "NotResource" in statement and _resource_matches(statement["NotResource"], resource):
                continue
            if not _condition_holds(statement.get("Condition", {}), caller):
                continue
            if statement["Effect"] == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "deny"
