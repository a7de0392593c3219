"""cfn-lint's own validation (its Python API) over the templates of a plan."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from cfnlint import api as cfn_api
from cfnlint.config import ManualArgs

from .mappings import PULUMI_ONLY_TYPES, TYPE_MAPS
from .translate import Template, translate


@dataclass(frozen=True)
class Finding:
    rule: str  # cfn-lint rule id: E... error, W... warning, I... informational
    level: str
    region: str
    urn: str  # the plan resource it is about ("" for template-level findings)
    path: str  # property path inside the CloudFormation resource, e.g. Properties.GroupDescription
    message: str

    def __str__(self) -> str:
        return f"{self.rule} {self.urn or '(template)'} {self.path} [{self.region}]: {self.message}"


def templates_of(plan: Mapping[str, Any], region: str) -> list[Template]:
    return translate(plan, region, TYPE_MAPS, PULUMI_ONLY_TYPES)


def lint_template(template: Template) -> list[Finding]:
    matches = cfn_api.lint(
        json.dumps(template.body),
        regions=[template.region],
        config=ManualArgs(regions=[template.region]),
    )
    findings = []
    for m in matches:
        path = list(getattr(m, "path", None) or [])
        urn, inner = "", path
        if len(path) >= 2 and path[0] == "Resources":
            urn = template.origins.get(str(path[1]), str(path[1]))
            inner = path[2:]
        findings.append(Finding(
            rule=m.rule.id,
            level={"E": "error", "W": "warning", "I": "informational"}.get(m.rule.id[:1], m.rule.id[:1]),
            region=template.region,
            urn=urn,
            path=".".join(str(p) for p in inner),
            message=m.message,
        ))
    return findings


def lint_plan(plan: Mapping[str, Any], region: str) -> list[Finding]:
    """cfn-lint's findings and those of the API rules cfn-lint lacks (api_rules.py), per template."""
    from .api_rules import check_template

    findings = []
    for template in templates_of(plan, region):
        findings += lint_template(template)
        findings += check_template(template)
    return findings


def _referenced(value: Any) -> set[str]:
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return {value["Ref"]}
        if "Fn::GetAtt" in value and isinstance(value["Fn::GetAtt"], list):
            return {value["Fn::GetAtt"][0]}
        return set().union(*(_referenced(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_referenced(v) for v in value)) if value else set()
    return set()


def neighbourhood(template: Template, urn: str) -> Template:
    """The resources of `urn` and everything they reference, as a template of their own: a
    defect in one resource is found as in the whole template, at a fraction of the cost."""
    resources = template.body["Resources"]
    wanted = {logical for logical, origin in template.origins.items() if origin == urn}
    todo = list(wanted)
    while todo:
        for ref in _referenced(resources[todo.pop()]) - wanted:
            if ref in resources:
                wanted.add(ref)
                todo.append(ref)
    body = {**template.body, "Resources": {k: v for k, v in resources.items() if k in wanted}}
    return Template(template.region, body, {k: v for k, v in template.origins.items() if k in wanted})


def lint_resource(plan: Mapping[str, Any], region: str, urn: str) -> list[Finding]:
    """lint_plan for one plan resource (and what it references) only."""
    from .api_rules import check_template

    for template in templates_of(plan, region):
        if urn in template.origins.values():
            part = neighbourhood(template, urn)
            return lint_template(part) + check_template(part)
    raise KeyError(urn)


# Warnings that do not apply to a bulkhead plan, each with the reason. Any other warning, and
# every error, fails the conformance test.
ACCEPTED_WARNINGS: dict[str, tuple[Callable[[Finding], bool], str]] = {
    "W3691": (
        lambda f: re.search(r"Engine version '\d+' ", f.message) is not None,
        "a bare major (\"16\") is a version prefix RDS resolves to its current default minor (pulumi-aws "
        "`engine_version` docs: 'you can provide a prefix of the version'; AWS CDK's PostgresEngineVersion.VER_16 "
        "passes \"16\"); cfn-lint's deprecated list holds every bare major because DescribeDBEngineVersions "
        "never lists one. The catalogue checks that the major has minors RDS offers (components/catalogue/offerings.py).",
    ),
    "W2501": (
        lambda f: f.path == "Properties.MasterUserPassword",
        "the master password is a RandomPassword result passed as a Pulumi secret (components/prod/rds_postgres.py); "
        "the plan holds only its secret envelope, which the translator writes as a placeholder literal. A "
        "password typed into the program is refused by the policy pack's rds-managed-master-password, which "
        "follows the password's propertyDependencies to its RandomPassword.",
    ),
    "W3010": (
        lambda f: f.path == "Properties.AvailabilityZone",
        "the zones are not hard-coded: the program reads them from aws.get_availability_zones at deploy "
        "time; the plan shows the mock's answer",
    ),
}


# Errors about the translated *template* itself rather than any AWS resource or API: the plan is
# one template per region here, while a Pulumi stack has no such limit.
ACCEPTED_TEMPLATE_ERRORS: dict[str, tuple[Callable[[Finding], bool], str]] = {
    "E3010": (
        lambda f: not f.urn and "'Resources' has more than 500" in f.message,
        "CloudFormation's 500-resources-per-template quota; a Pulumi stack is not a CloudFormation stack "
        "and has no such limit (a 20-database plan has more than 500 resources)",
    ),
}


def unaccepted(findings: Iterable[Finding]) -> list[Finding]:
    """Findings that fail the check: every error but template-only ones, and warnings not in ACCEPTED_WARNINGS."""
    out = []
    for f in findings:
        if f.level == "informational":
            continue
        table = ACCEPTED_WARNINGS if f.level == "warning" else ACCEPTED_TEMPLATE_ERRORS
        accepted = table.get(f.rule)
        if accepted is not None and accepted[0](f):
            continue
        out.append(f)
    return out
