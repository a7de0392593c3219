"""Prod plans checked against AWS's published resource schemas and rules (cfn-lint), offline.

The plan of each stack is translated to CloudFormation (tests/support/cfn/) and validated with
cfn-lint's own Python API in the stack's region (the DR vault in the DR region), plus the
API constraints cfn-lint lacks (tests/support/cfn/api_rules.py). No error may remain; a warning
passes only if tests/support/cfn/lint.py ACCEPTED_WARNINGS says why it does not apply.
"""

from __future__ import annotations

import copy

import pytest

from bulkhead.offline.mock_runtime import to_stack_export
from tests.support.program import stack_config
from tests.support.cfn.stacks import LONG_DB, LONG_DB_2, LONG_OWNER, LONG_STACK, LONG_TIER, REGION, STACKS  # noqa: F401
from tests.support.cfn.lint import lint_plan, lint_resource, neighbourhood, templates_of, unaccepted

@pytest.fixture(scope="module")
def plans() -> dict:
    return {}


def _plan(plans: dict, name: str) -> dict:
    if name not in plans:
        plans[name] = to_stack_export(STACKS[name]())
    return plans[name]


def _report(findings) -> str:
    return "\n".join(str(f) for f in findings)


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_plan_conforms_to_aws_schemas_and_rules(plans, stack):
    plan = _plan(plans, stack)
    bad = unaccepted(lint_plan(plan, REGION))
    assert not bad, f"{stack}: CloudFormation/AWS findings:\n{_report(bad)}"


def test_generated_catalogue_has_replicas_and_is_checked_in_both_regions(plans):
    # The check must have seen what it claims to have seen: replicas, and the DR template.
    templates = templates_of(_plan(plans, "generated-20"), REGION)
    assert [t.region for t in templates] == [REGION, stack_config("prod")["bulkhead:dr_region"]]
    types = [r["Type"] for r in templates[0].body["Resources"].values()]
    replicas = [r for r in templates[0].body["Resources"].values()
                if r["Type"] == "AWS::RDS::DBInstance" and "SourceDBInstanceIdentifier" in r["Properties"]]
    assert types.count("AWS::RDS::DBInstance") == 20 + len(replicas) and len(replicas) >= 10


# --- the check's own negative cases: one defect injected into a copy of the prod plan --------------


def _edit(plan: dict, name: str, edit) -> dict:
    plan = copy.deepcopy(plan)
    hits = [r for r in plan["deployment"]["resources"] if r["urn"].endswith(f"::{name}")]
    assert len(hits) == 1, name
    edit(hits[0]["inputs"])
    return plan


def _set(key, value):
    return lambda inputs: inputs.__setitem__(key, value)


def _replica_with_key(plan: dict) -> dict:
    primary = next(r for r in plan["deployment"]["resources"] if r["urn"].endswith("::app-primary"))
    key = next(r for r in plan["deployment"]["resources"] if r["urn"].endswith("::app-key"))
    plan = _edit(plan, "app-replica-1", _set("kmsKeyId", primary["inputs"]["kmsKeyId"]))
    replica = next(r for r in plan["deployment"]["resources"] if r["urn"].endswith("::app-replica-1"))
    replica["propertyDependencies"]["kmsKeyId"] = [key["urn"]]
    return plan


NEGATIVE_CASES = [
    # (id, resource, edit of the plan, rule id, property path, words in the message)
    ("apostrophe-in-description", "app-db",
     lambda p: _edit(p, "app-db", _set("description", "Database app: admits only app-service's client group")),
     "E3031", "Properties.GroupDescription", "does not match"),
    ("64-character-identifier", "app-replica-1",
     lambda p: _edit(p, "app-replica-1", _set("identifier", "p" * 54 + "-replica-1")),
     "E3033", "Properties.DBInstanceIdentifier", "is longer than 63"),
    ("replica-with-kms-key", "app-replica-1", _replica_with_key,
     "API3", "Properties.KmsKeyId", "same-region read replica takes no KmsKeyId"),
    ("replica-with-storage-encrypted", "app-replica-1",
     lambda p: _edit(p, "app-replica-1", _set("storageEncrypted", True)),
     "E3020", "Properties.StorageEncrypted", "should not be included with 'SourceDBInstanceIdentifier'"),
    ("unknown-instance-class", "app-primary",
     lambda p: _edit(p, "app-primary", _set("instanceClass", "db.r6g.huge")),
     "E3025", "Properties.DBInstanceClass", "db.r6g.huge"),
    ("backup-rule-name-over-50", "backup-critical",
     lambda p: _edit(p, "backup-critical", lambda i: i["rules"][0].__setitem__("ruleName", "r" * 51)),
     "API2", "Properties.BackupPlan.BackupPlanRule.0.RuleName", "1-50"),
    ("vault-name-over-50", "backup-vault",
     lambda p: _edit(p, "backup-vault", _set("name", "v" * 51)),
     "E3031", "Properties.BackupVaultName", "does not match"),
    ("sg-rule-description-apostrophe", "app-db-from-owner",
     lambda p: _edit(p, "app-db-from-owner", _set("description", "PostgreSQL from app-service's tasks")),
     "API1", "Properties.Description", "EC2 rule description"),
    ("tag-value-over-256", "app-primary",
     lambda p: _edit(p, "app-primary", lambda i: i["tags"].__setitem__("bulkhead:owner", "a" * 257)),
     "E3033", "Properties.Tags", "is longer than 256"),
    ("iam-policy-tag-bad-character", "app-access",
     lambda p: _edit(p, "app-access", lambda i: i["tags"].__setitem__("bulkhead:owner", "app;service")),
     "API4", "Tags.bulkhead:owner", "may hold only letters"),
    ("tag-value-bad-character", "backup-role",
     lambda p: _edit(p, "backup-role", lambda i: i["tags"].__setitem__("bulkhead:stack", "prod;eu")),
     "E3031", "Properties.Tags", "does not match"),
]


@pytest.mark.parametrize("case", NEGATIVE_CASES, ids=[c[0] for c in NEGATIVE_CASES])
def test_injected_defect_is_reported_with_its_property_path(plans, case):
    _, resource, inject, rule, path, words = case
    plan = inject(_plan(plans, "prod"))
    urn = next(r["urn"] for r in plan["deployment"]["resources"] if r["urn"].endswith(f"::{resource}"))
    findings = unaccepted(lint_resource(plan, REGION, urn))
    hits = [f for f in findings if f.urn.endswith(f"::{resource}") and f.rule == rule and f.path.startswith(path)]
    assert hits, f"expected {rule} at {resource} {path}; got:\n{_report(findings)}"
    assert words in hits[0].message
    # Nothing else broke: the finding is the injected defect's alone.
    assert all(f.urn.endswith(f"::{resource}") for f in findings), _report(findings)


def test_a_resource_is_linted_with_what_it_references(plans):
    [template, _] = templates_of(_plan(plans, "prod"), REGION)
    replica = next(u for u in template.origins.values() if u.endswith("::app-replica-1"))
    part = neighbourhood(template, replica)
    types = sorted(r["Type"] for r in part.body["Resources"].values())
    # The replica, its primary (source), security group, parameter group and monitoring role,
    # and what those reference in turn (the primary's key, subnet group, ...).
    assert {"AWS::RDS::DBInstance", "AWS::EC2::SecurityGroup", "AWS::RDS::DBParameterGroup", "AWS::IAM::Role",
            "AWS::KMS::Key"} <= set(types)
    assert types.count("AWS::RDS::DBInstance") == 2 and len(types) < len(template.body["Resources"])


def test_unknown_input_or_type_fails_the_translation(plans):
    from tests.support.cfn.translate import TranslationError

    plan = _edit(_plan(plans, "prod"), "app-primary", _set("someNewArgument", True))
    with pytest.raises(TranslationError, match=r"app-primary inputs\.someNewArgument: pulumi-aws input with no CloudFormation mapping"):
        lint_plan(plan, REGION)
    plan = copy.deepcopy(_plan(plans, "prod"))
    plan["deployment"]["resources"].append(
        {"urn": "urn:pulumi:prod::bulkhead::aws:sqs/queue:Queue::alerts", "type": "aws:sqs/queue:Queue",
         "custom": True, "id": "alerts", "inputs": {}, "outputs": {}}
    )
    with pytest.raises(TranslationError, match=r"resource type aws:sqs/queue:Queue has no CloudFormation mapping"):
        lint_plan(plan, REGION)
