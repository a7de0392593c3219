"""Who deploys: identity A then a listed identity B plan the same stack; an unlisted caller or a
key_admins list without the caller is refused before anything is registered (issue 19, findings 1-2)."""

from __future__ import annotations

import json

import pytest

from bulkhead.offline.mock_runtime import run_program
from components.catalogue.deployers import check_caller, covers, parse_caller
from components.catalogue.model import CatalogueError, load_catalogue
from components.prod import key_policies
from tests.support.program import ROOT, run_stack, stack_config

ACCOUNT = "123456789012"
PERSON = f"arn:aws:sts::{ACCOUNT}:assumed-role/bulkhead-deployer/alice@example.com"
CI = f"arn:aws:sts::{ACCOUNT}:assumed-role/bulkhead-ci/github-actions-1234"  # role/ci/bulkhead-ci: path not in a session ARN
OUTSIDER = f"arn:aws:sts::{ACCOUNT}:assumed-role/AdministratorAccess/bob"
POLICY_TYPES = ("aws:secretsmanager/secretPolicy:SecretPolicy", "aws:kms/key:Key", "aws:backup/vaultPolicy:VaultPolicy")


def _inputs(run) -> dict[str, dict]:
    return {r.urn: r.inputs for r in run.resources}


def test_a_second_listed_identity_plans_the_same_stack():
    first = run_stack("prod", caller_arn=PERSON)
    second = run_stack("prod", caller_arn=CI)
    a, b = _inputs(first), _inputs(second)
    assert set(a) == set(b), "no resource added or removed"
    changed = sorted(urn for urn in a if a[urn] != b[urn])
    assert not changed, f"the second identity's `up` would change {changed[:3]}"
    policies = [r for r in first.resources if r.type in POLICY_TYPES]
    assert len(policies) >= 3 + 3 + 2
    # and each names the configured deployers, not the session that ran the plan
    for r in policies:
        text = r.inputs.get("policy")
        assert "alice" not in text and "assumed-role" not in text, r.urn


def test_policies_do_not_follow_the_caller():
    """Without `bulkhead:deployers` the secret policies named the caller of the moment: a plan by
    another identity changed every secret policy (the first run's policy then denied that identity)."""
    run = run_stack("prod", caller_arn=PERSON)
    for policy in run.by_type("aws:secretsmanager/secretPolicy:SecretPolicy"):
        doc = json.loads(policy.inputs["policy"])
        exempt = {p for s in doc["Statement"] for p in s["Condition"]["ArnNotLike"]["aws:PrincipalArn"]}
        listed = key_policies.deployer_principals(stack_config("prod")["bulkhead:deployers"])
        assert set(listed) <= exempt
        assert not [p for p in exempt if "bulkhead-deployer" in p and p not in listed]


def _refused(caller: str, edit=None) -> tuple[str, list]:
    config = stack_config("prod")
    if edit:
        edit(config)
    run = run_program(ROOT, "prod", config, caller_arn=caller)
    assert run.error is not None, "the deploy must be refused"
    return str(run.error), [r for r in run.resources if r.custom]


def test_unlisted_caller_is_refused_before_anything_is_registered():
    message, registered = _refused(OUTSIDER)
    assert "bulkhead:deployers: does not list the identity running this deploy" in message
    assert f"add arn:aws:iam::{ACCOUNT}:role/AdministratorAccess to bulkhead:deployers" in message
    assert not registered, "nothing is registered"


def test_missing_deployers_is_refused_with_the_caller_to_list():
    message, registered = _refused(PERSON, edit=lambda c: c.pop("bulkhead:deployers"))
    assert "bulkhead:deployers: is required on platform aws" in message
    assert f"[arn:aws:iam::{ACCOUNT}:role/bulkhead-deployer]" in message
    assert not registered


def test_key_admins_without_the_caller_is_refused():
    admins = [f"arn:aws:iam::{ACCOUNT}:role/security-team", f"arn:aws:iam::{ACCOUNT}:role/ci/bulkhead-ci"]

    def edit(config):
        config["bulkhead:key_admins"] = admins
        config["bulkhead:deployers"] = [f"arn:aws:iam::{ACCOUNT}:role/ci/bulkhead-ci"]

    # deploying as the listed CI role works ...
    run_stack("prod", edit=edit, caller_arn=CI)
    # ... an admin who is not in key_admins would lock itself out of every key
    edit2 = lambda c: (edit(c), c.__setitem__("bulkhead:deployers", [*c["bulkhead:deployers"],  # noqa: E731
                                                                       f"arn:aws:iam::{ACCOUNT}:role/bulkhead-deployer"]))
    with pytest.raises(Exception) as err:
        run_stack("prod", edit=edit2, caller_arn=PERSON)
    assert "bulkhead:deployers.1: arn:aws:iam::123456789012:role/bulkhead-deployer is not in bulkhead:key_admins" in str(err.value)
    # the caller known at run time only: an identity in neither list gets both errors
    message, registered = _refused(OUTSIDER, edit=edit)
    assert "bulkhead:deployers: does not list the identity running this deploy" in message
    assert "bulkhead:key_admins: does not include the identity running this deploy" in message
    assert "KMS refuses a key policy its caller could not change later" in message
    assert not registered


def test_account_root_in_key_admins_delegates_to_iam():
    errors, _ = check_caller(PERSON, [f"arn:aws:iam::{ACCOUNT}:role/bulkhead-deployer"], [f"arn:aws:iam::{ACCOUNT}:root"])
    assert not errors


@pytest.mark.parametrize("principal,caller,root_delegates,expected", [
    (f"arn:aws:iam::{ACCOUNT}:role/ci/bulkhead-ci", CI, False, True),           # a role with a path: any session
    (f"arn:aws:iam::{ACCOUNT}:role/bulkhead-ci", PERSON, False, False),
    (f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:user/alice", False, True),
    (f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:sts::{ACCOUNT}:assumed-role/alice/x", False, False),
    (f"arn:aws:iam::{ACCOUNT}:root", PERSON, False, False),                     # aws:PrincipalArn: the root user only
    (f"arn:aws:iam::{ACCOUNT}:root", PERSON, True, True),                      # a key policy's root: IAM decides
    ("arn:aws:iam::210987654321:role/bulkhead-deployer", PERSON, False, False),  # another account
    (f"arn:aws:iam::{ACCOUNT}:role/bulkhead-deployer", f"arn:aws:sts::{ACCOUNT}:federated-user/bob", False, False),
])
def test_who_a_listed_principal_covers(principal, caller, root_delegates, expected):
    assert covers(principal, parse_caller(caller), root_delegates=root_delegates) is expected


def test_a_session_of_a_shared_role_is_warned():
    sso = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DatabaseAdmins_0123456789abcdef/carol"
    listed = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_DatabaseAdmins_0123456789abcdef"
    errors, warnings = check_caller(sso, [listed], [])
    assert not errors
    (warning,) = warnings
    assert "every session of it (an IAM Identity Center permission set: everyone assigned it)" in warning[1]
    assert check_caller(f"arn:aws:iam::{ACCOUNT}:user/ci", [f"arn:aws:iam::{ACCOUNT}:user/ci"], []) == ([], [])


def test_deployers_must_be_key_admins_in_the_catalogue():
    raw = {"platform": "aws", "databases": {"app": {"owner": "app-service"}},
           "key_admins": [f"arn:aws:iam::{ACCOUNT}:role/security-team"],
           "deployers": [f"arn:aws:iam::{ACCOUNT}:role/ci/bulkhead-ci"]}
    with pytest.raises(CatalogueError) as err:
        load_catalogue(raw, "prod", region="eu-west-1")
    assert [p.path for p in err.value.problems] == ["bulkhead:deployers.0"]
    raw["key_admins"].append(f"arn:aws:iam::{ACCOUNT}:role/ci/bulkhead-ci")
    assert load_catalogue(raw, "prod", region="eu-west-1").deployers == (f"arn:aws:iam::{ACCOUNT}:role/ci/bulkhead-ci",)
    raw["deployers"] = ["bulkhead-ci"]
    with pytest.raises(CatalogueError) as err:
        load_catalogue(raw, "prod", region="eu-west-1")
    assert [p.path for p in err.value.problems] == ["bulkhead:deployers.0"]
