"""Who each owning service runs as (`bulkhead:owner_principals`): the IAM roles (or users) of its
tasks and functions, per owner. An `auth: password` login secret's resource policy denies
secretsmanager:GetSecretValue to every principal but these, the database's bootstrap role, the
deployers and break-glass (components/prod/key_policies.py, login_secret_policy).

Why a list of ARNs and not a tag condition (aws:PrincipalTag/bulkhead:owner): a principal tag is
whatever the principal's role carries *or the session was given*: anyone allowed sts:TagSession
on AssumeRole, or iam:TagRole on a role they can assume, can claim any owner ("Passing session
tags in AWS STS" and "Controlling access for IAM principals", IAM User Guide). aws:PrincipalArn
of a role session is the role's ARN, set by AWS, never by the caller ("AWS global condition
context keys", aws:PrincipalArn).

Why required for `auth: password`: without it the stack does not know the owner's roles, so the
secret's policy could deny reads to nobody, and any principal of the account with broad
secretsmanager:GetSecretValue on `*` (AWS's SecretsManagerReadWrite and PowerUserAccess managed
policies, any `secretsmanager:*`) reads another service's password.

Plain functions, no Pulumi import: the catalogue tests call them directly.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from components.catalogue.deployers import DEPLOYER_ARN_RE

EXAMPLE = "arn:aws:iam::123456789012:role/{owner}-task"


def _account(arn: str) -> str:
    return arn.split(":")[4]


def _identity(arn: str) -> tuple[str, str, str]:
    """(account, role|user, name) of an IAM ARN, path dropped and name lower-cased: the one IAM
    identity it can name. Names are unique in an account whatever the path and are "not
    distinguished by case" (IAM User Guide, "IAM identifiers"), and login_secret_policy matches
    each listed ARN as `role/<name>` and `role/*/<name>` (key_policies.deployer_principals), so
    `role/a/svc` and `role/b/svc` listed for two owners would let one role read both passwords."""
    kind, _, rest = arn.split(":", 5)[5].partition("/")
    return _account(arn), kind, rest.rsplit("/", 1)[-1].lower()


def check_owner_principals(value: Any, owners_of: Mapping[str, Sequence[tuple[str, str]]],
                           deployers: Sequence[str]) -> tuple[dict[str, tuple[str, ...]], list[tuple[str, str]]]:
    """(owner -> its principal ARNs, [(key path, message)]).

    `owners_of` maps each owner to its databases as (name, auth); `deployers` are the stack's
    `bulkhead:deployers`, whose account every owner principal must share (the database key's
    policy lets only this account use the key: kms:CallerAccount)."""
    problems: list[tuple[str, str]] = []
    good: dict[str, tuple[str, ...]] = {}
    if value is None:
        value = {}
    if not isinstance(value, dict):
        return {}, [("bulkhead:owner_principals", "must be a map of owner (a database's `owner`) to a list of IAM "
                     f"role ARNs, e.g. {{app-service: [{EXAMPLE.format(owner='app-service')}]}}")]
    accounts = {_account(d) for d in deployers if re.match(DEPLOYER_ARN_RE, d)}
    seen: dict[tuple[str, str, str], tuple[str, str]] = {}  # identity -> (owner, ARN as listed)
    for owner, arns in value.items():
        path = f"bulkhead:owner_principals.{owner}"
        if not isinstance(owner, str) or owner not in owners_of:
            known = ", ".join(sorted(owners_of)) or "none"
            problems.append((path, f"no database has owner {owner!r}; the owners of this stack are: {known}. "
                                   f"Fix the name or remove the entry"))
            continue
        if not isinstance(arns, list) or not arns:
            problems.append((path, f"must be a non-empty list of IAM role ARNs (path included), e.g. "
                                   f"[{EXAMPLE.format(owner=owner)}]"))
            continue
        kept = []
        for index, arn in enumerate(arns):
            where = f"{path}.{index}"
            if not isinstance(arn, str) or not re.match(DEPLOYER_ARN_RE, arn):
                problems.append((where, f"{arn!r} is not an IAM role or user ARN; list the role the service runs as "
                                        f"(its ECS task role, Lambda execution role, ...), path included, e.g. "
                                        f"{EXAMPLE.format(owner=owner)}; not a session (arn:aws:sts::...:assumed-role/...)"))
                continue
            if accounts and _account(arn) not in accounts:
                problems.append((where, f"{arn} is in account {_account(arn)}, not the stack's ({', '.join(sorted(accounts))}, "
                                        f"from bulkhead:deployers): the database's key is usable from its own account only "
                                        f"(kms:CallerAccount), so that role could never read the secret; use a role of this "
                                        f"account"))
                continue
            identity = _identity(arn)
            if identity in seen and seen[identity][0] != owner:
                other, listed = seen[identity]
                same = "" if listed == arn else f" (as {listed}: the same IAM name, whatever the path or case)"
                problems.append((where, f"{arn} is also listed for {other}{same}: one role reading two services' login "
                                        f"passwords is the path between services that this list closes; give each "
                                        f"service its own role"))
                continue
            if identity in seen:
                problems.append((where, f"{arn} is listed twice; remove one"))
                continue
            seen[identity] = (owner, arn)
            kept.append(arn)
        good[owner] = tuple(kept)
    for owner, dbs in sorted(owners_of.items()):
        password_dbs = [name for name, auth in dbs if auth == "password"]
        if password_dbs and owner not in value:
            listed = ", ".join(f"bulkhead:databases.{n}" for n in password_dbs)
            problems.append((f"bulkhead:owner_principals.{owner}",
                             f"is required: {listed} has auth: password, and its login secret denies reading to every "
                             f"principal but {owner}'s, the deployers, the bootstrap function and break-glass. Add the "
                             f"IAM role ARNs (path included) {owner} runs as, e.g. bulkhead:owner_principals: "
                             f"{{{owner}: [{EXAMPLE.format(owner=owner)}]}}"))
    return good, problems
