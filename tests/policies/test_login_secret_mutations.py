"""login-secret-owner-only on a real plan: the prod stack with `app` on `auth: password`, unmutated
(no violation) and with one unsafe change at a time to its login secret's policy (each caught)."""

from __future__ import annotations

import copy

import pytest

from bulkhead.commands.check import evaluate
from bulkhead.offline.mock_runtime import to_stack_export
from tests.support.mutations import PROD_CONFIG, policy_doc, set_policy_doc
from tests.support.program import run_stack

POLICY = "login-secret-owner-only"
LOGIN_POLICY = "app-login-secret-policy"


def _password(config):
    config["bulkhead:databases"]["app"]["auth"] = "password"
    config["bulkhead:owner_principals"] = {"app-service": ["arn:aws:iam::123456789012:role/svc/app-service-task"]}


@pytest.fixture(scope="module")
def export():
    return to_stack_export(run_stack("prod", edit=_password))


def _read_deny(doc: dict) -> dict:
    return next(s for s in doc["Statement"] if s["Action"] == ["secretsmanager:GetSecretValue"])


def m_read_not_denied(doc):
    """The policy as the stack wrote it before bulkhead:owner_principals: writes denied only."""
    doc["Statement"].remove(_read_deny(doc))


def m_every_role_exempt(doc):
    _read_deny(doc)["Condition"]["ArnNotLike"]["aws:PrincipalArn"].append("arn:aws:iam::123456789012:role/*")


def m_deny_narrowed_by_another_condition(doc):
    """An extra condition on a Deny narrows it: only requests from that VPC would be refused."""
    _read_deny(doc)["Condition"]["StringEquals"] = {"aws:SourceVpc": "vpc-0123abcd"}


def m_any_account_exempt(doc):
    _read_deny(doc)["Condition"]["ArnNotLike"]["aws:PrincipalArn"].append("arn:aws:iam::*:role/app-service-task")


MUTATIONS = [m_read_not_denied, m_every_role_exempt, m_deny_narrowed_by_another_condition, m_any_account_exempt]


def test_the_password_plan_passes_the_pack(export):
    result = evaluate(export, dict(PROD_CONFIG))
    assert [(v.policy, v.message) for v in result.violations] == []


@pytest.mark.parametrize("mutate", MUTATIONS, ids=[m.__name__ for m in MUTATIONS])
def test_each_unsafe_login_secret_policy_is_caught(export, mutate):
    mutated = copy.deepcopy(export)
    doc = policy_doc(mutated, LOGIN_POLICY)
    mutate(doc)
    set_policy_doc(mutated, LOGIN_POLICY, doc)
    found = [v for v in evaluate(mutated, dict(PROD_CONFIG)).violations if v.policy == POLICY]
    assert found, f"{mutate.__name__} not caught"
    assert all("app-login-secret" in v.message and v.message.endswith(".") for v in found), found
