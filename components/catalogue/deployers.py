"""Who may run `pulumi up` on a prod stack (`bulkhead:deployers`), checked against the key
administrators before anything is built, and against the identity actually running the deploy
(GetCallerIdentity) before any resource is registered.

Why configuration and not the caller of the moment: the master secret's and the backup vault's
policies deny everyone but the deployers (components/prod/key_policies.py). Computed from the
caller, a second identity (CI after a person, another SSO role) found itself denied by the policy
the first one wrote: `up` failed on PutResourcePolicy and `refresh` on GetSecretValue.

Why the checks: KMS refuses a key policy that would not let the caller change it later
(CreateKey / PutKeyPolicy "BypassPolicyLockoutSafetyCheck", KMS API reference;
terraform-provider-aws internal/service/kms/key.go never sets the bypass), so a `key_admins`
list without the deployer fails the first `up` for every key, and a deployer who is not a key
administrator fails the first day-2 change of a key policy (a replica added, a new database).
A deployer list without the caller locks the caller out of the secrets it has just written
(the provider reads every version back with GetSecretValue:
terraform-provider-aws secretsmanager/secret_version.go).

Plain functions, no Pulumi import: the catalogue tests call them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

# What `bulkhead:deployers` may list: roles and users (aws:PrincipalArn of a role session is the
# role's ARN, path included: IAM "AWS global condition context keys", aws:PrincipalArn).
DEPLOYER_ARN_RE = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]+$"
# IAM Identity Center permission sets become roles named AWSReservedSSO_<set>_<hash> under
# /aws-reserved/sso.amazonaws.com/ ("IAM Identity Center ... roles", IAM Identity Center guide).
SSO_ROLE_PREFIX = "AWSReservedSSO_"


@dataclass(frozen=True)
class Caller:
    """GetCallerIdentity's Arn, parsed: `kind` is root, user, role (an assumed-role session) or other."""

    arn: str
    partition: str
    account: str
    kind: str
    name: str  # user name or role name (without path); "" for root
    session: str = ""


def parse_caller(arn: str) -> Caller:
    m = re.fullmatch(r"arn:(aws[a-z-]*):sts::([0-9]{12}):assumed-role/([^/]+)/(.+)", arn)
    if m:
        return Caller(arn, m.group(1), m.group(2), "role", m.group(3), m.group(4))
    m = re.fullmatch(r"arn:(aws[a-z-]*):iam::([0-9]{12}):root", arn)
    if m:
        return Caller(arn, m.group(1), m.group(2), "root", "")
    m = re.fullmatch(r"arn:(aws[a-z-]*):iam::([0-9]{12}):user/(?:.*/)?([^/]+)", arn)
    if m:
        return Caller(arn, m.group(1), m.group(2), "user", m.group(3))
    m = re.fullmatch(r"arn:(aws[a-z-]*):(?:sts|iam)::([0-9]{12}):.*", arn)
    return Caller(arn, m.group(1) if m else "aws", m.group(2) if m else "", "other", "")


def _split(principal: str) -> tuple[str, str, str, str]:
    """(partition, account, kind, name-without-path) of an IAM principal ARN."""
    head, _, resource = principal.partition(":iam::")
    partition = head.split(":")[1] if ":" in head else "aws"
    account, _, rest = resource.partition(":")
    if rest == "root":
        return partition, account, "root", ""
    kind, _, path_name = rest.partition("/")
    return partition, account, kind, path_name.rsplit("/", 1)[-1]


def covers(principal: str, caller: Caller, *, root_delegates: bool) -> bool:
    """Does a policy naming `principal` match `caller`? A role ARN matches every session of the
    role (IAM "Policy elements: Principal", role sessions); an account root in a KMS key policy
    delegates to IAM (`root_delegates`: "Default key policy", KMS guide), while in an
    aws:PrincipalArn condition it is the root user only."""
    partition, account, kind, name = _split(principal)
    if partition != caller.partition or account != caller.account:
        return False
    if kind == "root":
        return root_delegates or caller.kind == "root"
    return kind == caller.kind and name == caller.name


def check_deployers_are_key_admins(deployers: Sequence[str], key_admins: Sequence[str]) -> list[tuple[str, str]]:
    """(path, message) for each deployer the key policies would not let change them: without
    `key_admins` the account root administers the keys (IAM decides), which covers everyone."""
    if not key_admins:
        return []
    problems = []
    for index, deployer in enumerate(deployers):
        partition, account, kind, name = _split(deployer)
        as_caller = Caller(deployer, partition, account, "role" if kind == "role" else kind, name)
        if not any(covers(admin, as_caller, root_delegates=True) for admin in key_admins):
            problems.append((f"bulkhead:deployers.{index}",
                             f"{deployer} is not in bulkhead:key_admins, so its next `up` that changes a key policy "
                             f"(a new replica or database) fails KMS's lockout check (PutKeyPolicy); add it to "
                             f"bulkhead:key_admins, or remove bulkhead:key_admins to let IAM decide"))
    return problems


def check_caller(caller_arn: str, deployers: Sequence[str], key_admins: Sequence[str]
                 ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(errors, warnings) as (path, message) for the identity running this deploy."""
    caller = parse_caller(caller_arn)
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    suggestion = principal_of(caller) or "the ARN of the role you deploy with"
    if not deployers:
        errors.append(("bulkhead:deployers", f"is required on platform aws: list the IAM roles that run `pulumi up` "
                       f"on this stack (CI and operators), e.g. [{suggestion}] (the identity running now); "
                       f"the master secrets and the backup vaults deny everyone else"))
    elif not any(covers(d, caller, root_delegates=False) for d in deployers):
        errors.append(("bulkhead:deployers", f"does not list the identity running this deploy ({caller_arn}): "
                       f"the master secret policies would deny it the secrets it writes and reads back, so `up` "
                       f"and `refresh` would fail; add {suggestion} to bulkhead:deployers, or deploy as a listed role"))
    if key_admins and not any(covers(a, caller, root_delegates=True) for a in key_admins):
        errors.append(("bulkhead:key_admins", f"does not include the identity running this deploy ({caller_arn}): "
                       f"KMS refuses a key policy its caller could not change later (lockout safety check), so "
                       f"every database and vault key would fail; add {suggestion} to bulkhead:key_admins, "
                       f"or remove bulkhead:key_admins to let IAM decide"))
    if caller.kind == "role" and not errors:
        shared = " (an IAM Identity Center permission set: everyone assigned it)" if caller.name.startswith(SSO_ROLE_PREFIX) else ""
        warnings.append(("bulkhead:deployers", f"you deploy as session {caller.session!r} of role {caller.name}: "
                         f"policies name the role, not the session, so every session of it{shared} has the "
                         f"deployers' access to the master secrets; list a role that only CI or a few operators "
                         f"can assume"))
    return errors, warnings


def principal_of(caller: Caller) -> Optional[str]:
    """The ARN to list for `caller` (a role's path is not in a session ARN: look it up in IAM)."""
    if caller.kind == "role":
        return f"arn:{caller.partition}:iam::{caller.account}:role/{caller.name}"
    if caller.kind in ("user", "root"):
        return caller.arn
    return None


def check_deployer_arns(deployers: Sequence[str]) -> list[tuple[str, str]]:
    """(key path, message) for each `bulkhead:deployers` entry that is not a role or user ARN: a
    session ARN (sts ... assumed-role) changes with every session and would lock out the next one."""
    problems = []
    for i, arn in enumerate(deployers):
        if not re.match(DEPLOYER_ARN_RE, arn):
            problems.append((f"bulkhead:deployers[{i}]",
                             f"{arn!r} is not an IAM role or user ARN; list the role itself "
                             f"(arn:aws:iam::<account>:role/<path/name>), not a session of it "
                             f"(arn:aws:sts::...:assumed-role/...), which changes with every session"))
    return problems
