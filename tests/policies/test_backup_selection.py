"""One `selection_covers` (policies/bulkhead_backup.py) for the pack, `audit` and `plan --mermaid`.

Before, three implementations disagreed: audit took Resources OR ListOfTags (so a selection whose
Resources missed the instance still covered it through a tag), mermaid ignored NotResources and every
condition but stringEquals, the pack took all of them. Each caller is tested here on the cases where
they differed.
"""

from __future__ import annotations

import copy

import pytest

from bulkhead.commands.audit import plan_shaped_selection
from bulkhead.commands.audit import selection_covers as audit_covers
from bulkhead.mermaid import render_mermaid
from bulkhead.planfile import Plan
from policies.bulkhead_backup import instance_arn, selection_covers
from policies.bulkhead_types import BACKUP_SELECTION

ARN = "arn:aws:rds:eu-west-1:123456789012:db:bulkhead-prod-app"
TAGS = {"bulkhead:tier": "standard", "bulkhead:stack": "prod", "bulkhead:role": "primary"}
# What components/prod/backup.py creates: every RDS ARN, narrowed by tag conditions.
PROGRAM = {"resources": ["arn:aws:rds:*:*:db:*"], "conditions": [{"stringEquals": [
    {"key": "aws:ResourceTag/bulkhead:tier", "value": "standard"},
    {"key": "aws:ResourceTag/bulkhead:stack", "value": "prod"},
    {"key": "aws:ResourceTag/bulkhead:role", "value": "primary"}]}]}


@pytest.mark.parametrize("selection, covered", [
    (PROGRAM, True),
    ({**PROGRAM, "conditions": [{"stringEquals": [{"key": "aws:ResourceTag/bulkhead:tier", "value": "critical"}]}]}, False),
    ({**PROGRAM, "notResources": ["arn:aws:rds:*:*:db:bulkhead-prod-*"]}, False),
    ({"resources": [ARN]}, True),
    ({"resources": ["arn:aws:rds:*:*:db:other"]}, False),
    # both given: the ARN AND a tag (the audit used to take either)
    ({"resources": ["arn:aws:rds:*:*:db:other"], "selectionTags": [{"type": "STRINGEQUALS", "key": "bulkhead:tier", "value": "standard"}]}, False),
    ({"selectionTags": [{"type": "STRINGEQUALS", "key": "bulkhead:tier", "value": "standard"}]}, True),
    ({"conditions": [{"stringNotEquals": [{"key": "aws:ResourceTag/bulkhead:role", "value": "primary"}]}]}, False),
    ({"conditions": [{"stringLike": [{"key": "aws:ResourceTag/bulkhead:stack", "value": "pro*"}]}]}, True),
    ({"conditions": [{"stringNotLike": [{"key": "aws:ResourceTag/bulkhead:stack", "value": "pro*"}]}]}, False),
    ({}, False),  # a selection that names nothing covers nothing
])
def test_selection_covers(selection, covered):
    assert selection_covers(selection, ARN, TAGS) is covered


def test_an_unknown_arn_matches_as_a_pattern_of_the_identifier():
    assert instance_arn(None, "bulkhead-prod-app") == "arn:aws:rds:*:*:db:bulkhead-prod-app"
    assert selection_covers(PROGRAM, instance_arn(None, "bulkhead-prod-app"), TAGS)
    assert not selection_covers({"resources": ["arn:aws:rds:*:*:db:other"]}, instance_arn(None, "x"), TAGS)


# --- audit: the Backup API's shape --------------------------------------------------------------------

API_PROGRAM = {"Resources": ["arn:aws:rds:*:*:db:*"], "Conditions": {"StringEquals": [
    {"ConditionKey": "aws:ResourceTag/bulkhead:tier", "ConditionValue": "standard"},
    {"ConditionKey": "aws:ResourceTag/bulkhead:stack", "ConditionValue": "prod"},
    {"ConditionKey": "aws:ResourceTag/bulkhead:role", "ConditionValue": "primary"}]}}


def test_audit_reads_the_api_shape_as_the_plan_shape():
    assert plan_shaped_selection(API_PROGRAM) == {**PROGRAM, "notResources": [], "selectionTags": []}
    assert audit_covers(API_PROGRAM, ARN, TAGS)
    assert not audit_covers(API_PROGRAM, ARN, {**TAGS, "bulkhead:tier": "critical"})
    assert not audit_covers({**API_PROGRAM, "NotResources": [ARN]}, ARN, TAGS)


def test_audit_takes_resources_and_tags_together():
    """The old audit covered this through the tag alone; the pack (and now the audit) does not."""
    selection = {"Resources": ["arn:aws:rds:*:*:db:other"],
                 "ListOfTags": [{"ConditionType": "STRINGEQUALS", "ConditionKey": "bulkhead:tier", "ConditionValue": "standard"}]}
    assert not audit_covers(selection, ARN, TAGS)
    assert audit_covers({**selection, "Resources": [ARN]}, ARN, TAGS)


# --- mermaid: a plan ----------------------------------------------------------------------------------

def _backed_up(export) -> set[str]:
    return {line.split()[0] for line in render_mermaid(Plan.from_export(export)).splitlines() if "backed up" in line}


def test_mermaid_draws_what_the_rule_covers(prod_export):
    assert _backed_up(prod_export) == {"db_app", "db_auth", "db_worker"}


def test_mermaid_honours_not_resources(prod_export):
    """The old mermaid ignored notResources and drew an edge for an instance the selection excludes."""
    export = copy.deepcopy(prod_export)
    for r in export["deployment"]["resources"]:
        if r["type"] == BACKUP_SELECTION:
            r["inputs"]["notResources"] = ["arn:aws:rds:*:*:db:*"]
    assert _backed_up(export) == set()


def test_mermaid_honours_every_condition(prod_export):
    export = copy.deepcopy(prod_export)
    for r in export["deployment"]["resources"]:
        if r["type"] == BACKUP_SELECTION:
            r["inputs"]["conditions"] = [{"stringNotEquals": [{"key": "aws:ResourceTag/bulkhead:role", "value": "primary"}]}]
    assert _backed_up(export) == set()
