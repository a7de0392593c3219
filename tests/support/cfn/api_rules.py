"""Constraints AWS's API reference documents that cfn-lint's schemas and rules do not carry.

Each rule names the API documentation it comes from. They run on the same
templates, after cfn-lint, and report findings of the same shape (rule ids
`API1`...), so a plan that breaks one fails the conformance test the same way.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Iterator

from .lint import Finding
from .translate import Template

# EC2 rule descriptions (IpRange/UserIdGroupPair/PrefixListId `Description`, EC2 API reference):
# up to 255 characters of a-zA-Z0-9, spaces and ._-:/()#,@[]+=&;{}!$*. The CloudFormation schemas
# of SecurityGroupIngress/Egress leave the pattern out (the group's own GroupDescription has it).
SG_RULE_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}$")
# AWS Backup API reference: BackupRule.RuleName and BackupSelection.SelectionName "must contain 1 to 50
# alphanumeric or '-_.' characters"; BackupPlan.BackupPlanName the same characters (1-50 in the console,
# which is where operators edit plans). The schemas give no length for any of the three.
BACKUP_NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,50}$")


def _is_literal(value: Any) -> bool:
    return isinstance(value, str)


def _sg_rule_descriptions(logical: str, resource: dict) -> Iterator[tuple[str, str, str]]:
    if resource["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        value = resource["Properties"].get("Description")
        if _is_literal(value) and not SG_RULE_DESCRIPTION.match(value):
            yield ("API1", "Properties.Description",
                   f"{value!r} does not match the EC2 rule description constraint (a-zA-Z0-9, space and "
                   "._-:/()#,@[]+=&;{}!$*, at most 255 characters)")


def _backup_names(logical: str, resource: dict) -> Iterator[tuple[str, str, str]]:
    props = resource["Properties"]
    candidates: list[tuple[str, Any]] = []
    if resource["Type"] == "AWS::Backup::BackupPlan":
        plan = props.get("BackupPlan") or {}
        candidates.append(("Properties.BackupPlan.BackupPlanName", plan.get("BackupPlanName")))
        for i, rule in enumerate(plan.get("BackupPlanRule") or []):
            candidates.append((f"Properties.BackupPlan.BackupPlanRule.{i}.RuleName", rule.get("RuleName")))
    elif resource["Type"] == "AWS::Backup::BackupSelection":
        candidates.append(("Properties.BackupSelection.SelectionName", (props.get("BackupSelection") or {}).get("SelectionName")))
    for path, value in candidates:
        if _is_literal(value) and not BACKUP_NAME.match(value):
            yield ("API2", path, f"{value!r} is not 1-50 alphanumeric or '-_.' characters (AWS Backup API)")


def _replica_key(logical: str, resource: dict) -> Iterator[tuple[str, str, str]]:
    # CreateDBInstanceReadReplica, KmsKeyId: "If you create an encrypted read replica in the same
    # Amazon Web Services Region as the source DB instance ..., don't specify a value for this
    # parameter"; the replica is encrypted with the source's key. A source given by Ref or by plain
    # identifier (not an ARN of another region) is in the template's region.
    if resource["Type"] != "AWS::RDS::DBInstance":
        return
    props = resource["Properties"]
    source = props.get("SourceDBInstanceIdentifier")
    if source is None or "KmsKeyId" not in props:
        return
    if isinstance(source, str) and source.startswith("arn:") and "SourceRegion" in props:
        return
    yield ("API3", "Properties.KmsKeyId",
           "a same-region read replica takes no KmsKeyId: RDS encrypts it with its source's key "
           "(CreateDBInstanceReadReplica); remove kms_key_id from the replica")


# Tags the API takes where the CloudFormation type has no Tags property: IAM (TagPolicy: keys 1-128,
# values 0-256 of Unicode letters, digits, whitespace and _.:/=+-@) and EC2 (CreateTags: keys up to
# 127, values up to 255 characters; no `aws:` prefix).
IAM_TAG = re.compile(r"^[\w\s.:/=+\-@]*$")
TAG_LIMITS = {"AWS::IAM::ManagedPolicy": (128, 256, IAM_TAG),
              "AWS::EC2::SecurityGroupIngress": (127, 255, None),
              "AWS::EC2::SecurityGroupEgress": (127, 255, None)}


def _unmodelled_tags(logical: str, resource: dict) -> Iterator[tuple[str, str, str]]:
    tags = ((resource.get("Metadata") or {}).get("bulkhead:not-in-cloudformation") or {}).get("tags")
    if not isinstance(tags, dict) or resource["Type"] not in TAG_LIMITS:
        return
    key_max, value_max, pattern = TAG_LIMITS[resource["Type"]]
    for key, value in tags.items():
        problems = []
        if not 1 <= len(key) <= key_max or key.lower().startswith("aws:"):
            problems.append(f"key {key!r} must be 1-{key_max} characters, not starting with aws:")
        if not isinstance(value, str) or len(value) > value_max:
            problems.append(f"value of {key} must be a string of at most {value_max} characters")
        elif pattern is not None and not (pattern.match(key) and pattern.match(value)):
            problems.append(f"{key}={value!r} may hold only letters, digits, whitespace and _.:/=+-@")
        for problem in problems:
            yield ("API4", f"Tags.{key}", f"tag {problem} (the API's tag rules; CloudFormation's type has no Tags)")


RULES: tuple[Callable[[str, dict], Iterable[tuple[str, str, str]]], ...] = (
    _sg_rule_descriptions, _backup_names, _replica_key, _unmodelled_tags,
)


def check_template(template: Template) -> list[Finding]:
    out = []
    for logical, resource in template.body["Resources"].items():
        for rule in RULES:
            for rule_id, path, message in rule(logical, resource):
                out.append(Finding(rule=rule_id, level="error", region=template.region,
                                   urn=template.origins.get(logical, logical), path=path, message=message))
    return out
