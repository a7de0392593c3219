"""`proxy: true` (issue 24 item 3): the RDS Proxy, its groups, the access matrix and the policy."""

from __future__ import annotations

import copy
import json

import pytest

from bulkhead.access import access_matrix
from bulkhead.commands.check import evaluate, load_pack
from bulkhead.commands.env import env_for_service
from bulkhead.offline.mock_runtime import to_stack_export
from bulkhead.planfile import Plan
from bulkhead.errors import UserError
from tests.support.mutations import PROXY_MUTATIONS
from tests.support.program import run_stack, stack_config

PROXY = "aws:rds/proxy:Proxy"


def _with_proxy(config):
    config["bulkhead:databases"]["worker"]["proxy"] = True


@pytest.fixture(scope="module")
def proxied() -> dict:
    return to_stack_export(run_stack("prod", edit=_with_proxy))


def _res(export, type_, name):
    return next(r for r in export["deployment"]["resources"] if r["type"] == type_ and r["urn"].endswith("::" + name))


def _by_id(export, value):
    return next(r for r in export["deployment"]["resources"] if r.get("id") == value)


def test_proxy_resources_and_inputs(proxied, prod_export):
    inputs = _res(proxied, PROXY, "worker-proxy")["inputs"]
    assert inputs["engineFamily"] == "POSTGRESQL" and inputs["requireTls"] is True
    assert inputs["defaultAuthScheme"] == "IAM_AUTH" and "auths" not in inputs  # end-to-end IAM, no secret
    assert inputs["debugLogging"] is False
    target = _res(proxied, "aws:rds/proxyTarget:ProxyTarget", "worker-proxy-target")["inputs"]
    assert target["dbInstanceIdentifier"] == "prod-worker" and target["targetGroupName"] == "default"
    # Only the proxied database gains resources: 10 of them (group, 4 rules, role, role policy, proxy,
    # target group, target); prod without proxies has none.
    count = lambda e: sum(1 for r in e["deployment"]["resources"] if r.get("custom"))  # noqa: E731
    assert count(proxied) - count(prod_export) == 10
    assert not any(r["type"] == PROXY for r in prod_export["deployment"]["resources"])


def test_proxy_role_connects_as_the_login_role_only(proxied):
    doc = json.loads(_res(proxied, "aws:iam/rolePolicy:RolePolicy", "worker-proxy-connect")["inputs"]["policy"])
    [statement] = doc["Statement"]
    primary = _res(proxied, "aws:rds/instance:Instance", "worker-primary")
    assert statement["Action"] == "rds-db:connect"
    assert statement["Resource"].endswith(f":dbuser:{primary['outputs']['resourceId']}/worker")
    role = _res(proxied, "aws:iam/role:Role", "worker-proxy")["inputs"]
    assert json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "rds.amazonaws.com"}


def test_service_may_connect_through_the_proxy_and_outputs_name_it(proxied):
    proxy = _res(proxied, PROXY, "worker-proxy")
    prx = proxy["outputs"]["arn"].rsplit(":", 1)[-1]
    access = json.loads(_res(proxied, "aws:iam/policy:Policy", "worker-access")["inputs"]["policy"])
    assert any(r.endswith(f":dbuser:{prx}/worker") for r in access["Statement"][0]["Resource"])
    outputs = Plan.from_export(proxied).stack_outputs()
    assert outputs["databases"]["worker"]["proxy_host"] == proxy["outputs"]["endpoint"]
    assert "proxy_host" not in outputs["databases"]["app"]
    env = dict(env_for_service(outputs, "worker-service"))
    assert env["WORKER_DATABASE_PROXY_URL"].startswith(f"postgresql://worker@{proxy['outputs']['endpoint']}:")
    assert "sslmode=verify-full" in env["WORKER_DATABASE_PROXY_URL"]


def test_proxy_group_admits_only_the_owner_and_the_database_admits_the_proxy(proxied):
    group = _res(proxied, "aws:ec2/securityGroup:SecurityGroup", "worker-proxy")
    assert _res(proxied, PROXY, "worker-proxy")["inputs"]["vpcSecurityGroupIds"] == [group["id"]]
    into_proxy = [r for r in proxied["deployment"]["resources"]
                  if r["type"].endswith("SecurityGroupIngressRule") and r["inputs"]["securityGroupId"] == group["id"]]
    assert len(into_proxy) == 1
    source = _by_id(proxied, into_proxy[0]["inputs"]["referencedSecurityGroupId"])
    assert source["inputs"]["tags"]["bulkhead:owner"] == "worker-service" and source["inputs"]["tags"]["bulkhead:role"] == "client"
    db_rule = _res(proxied, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "worker-db-from-proxy")["inputs"]
    assert db_rule["referencedSecurityGroupId"] == group["id"] and db_rule["fromPort"] == db_rule["toPort"] == 5432


def test_access_matrix_the_proxy_and_its_owner_only(proxied):
    matrix = access_matrix(Plan.from_export(proxied))
    assert matrix.reaches("worker-service", "worker") == {"network", "credentials"}
    assert matrix.reaches("app-service", "worker") == set()
    assert "worker-proxy" not in matrix.services


def _admit_app_into_worker_proxy(export):
    e = copy.deepcopy(export)
    app_client = _res(e, "aws:ec2/securityGroup:SecurityGroup", "client-app-service-client")["id"]
    _res(e, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "worker-proxy-from-owner")["inputs"][
        "referencedSecurityGroupId"] = app_client
    return e


def _violations(export, policy):
    pack = load_pack()
    return [v for v in evaluate(export, dict(pack.PROD_POLICY_CONFIG), pack).violations if v.policy == policy]


def test_policy_passes_the_generated_proxy(proxied):
    assert _violations(proxied, "rds-proxy-owner-only") == []


def test_policy_refuses_another_service_in_the_proxy_and_the_matrix_shows_it(proxied):
    """The attack: app-service's tasks admitted into worker's proxy reach worker's database through it,
    although the database's own group admits only worker-service and the proxy."""
    e = _admit_app_into_worker_proxy(proxied)
    assert access_matrix(Plan.from_export(e)).reaches("app-service", "worker") == {"network"}
    found = _violations(e, "rds-proxy-owner-only")
    assert found and found[0].enforcement == "mandatory" and "app-service" in found[0].message
    # db-ingress-owner-only alone does not see it: the database group still admits only the proxy.
    assert _violations(e, "db-ingress-owner-only") == []


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r["inputs"].__setitem__("cidrIpv4", "10.0.0.0/8"), "address range"),
    (lambda r: r["inputs"].update(fromPort=0, toPort=65535), "more than tcp 5432"),
])
def test_policy_refuses_ranges_and_ports(proxied, mutate, expected):
    e = copy.deepcopy(proxied)
    mutate(_res(e, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "worker-proxy-from-owner"))
    assert any(expected in v.message for v in _violations(e, "rds-proxy-owner-only"))


def test_policy_refuses_a_proxy_without_tls(proxied):
    e = copy.deepcopy(proxied)
    _res(e, PROXY, "worker-proxy")["inputs"]["requireTls"] = False
    assert any("without TLS" in v.message for v in _violations(e, "rds-proxy-owner-only"))


def test_catalogue_proxy_needs_iam_auth():
    config = stack_config("prod")
    config["bulkhead:databases"]["worker"].update(proxy=True, auth="password")
    from bulkhead.offline.stack_config import load_catalogue_for
    from tests.support.program import ROOT

    with pytest.raises(UserError) as err:
        load_catalogue_for(ROOT, "prod", config)
    assert "bulkhead:databases.worker.proxy" in str(err.value) and "auth: iam" in str(err.value)


def test_proxy_role_trust_admits_rds_for_this_account_s_proxies_only(proxied):
    """Review of issue 24 (o-fix): the proxy role's trust policy admitted rds.amazonaws.com on behalf of
    anyone (no confused-deputy condition). Evaluated per principal: RDS acting for a proxy of another
    account (or for another resource type of this one) was admitted before and is refused now; RDS for a
    proxy of this account and region, and RDS sending no source keys at all (undocumented for proxies:
    components/prod/proxy.py proxy_trust_policy), still assume it; nobody else ever did."""
    from tests.support.iam_eval import Caller, decide

    account, other = "123456789012", "999988887777"
    trust = json.loads(_res(proxied, "aws:iam/role:Role", "worker-proxy")["inputs"]["assumeRolePolicy"])
    before = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

    def rds(source_account=None, source_arn=None):
        context = {k: v for k, v in (("aws:SourceAccount", source_account), ("aws:SourceArn", source_arn)) if v}
        return Caller(None, account, service="rds.amazonaws.com", context=context)

    own = rds(account, f"arn:aws:rds:eu-west-1:{account}:db-proxy:prx-0123456789abcdef0")
    foreign = rds(other, f"arn:aws:rds:eu-west-1:{other}:db-proxy:prx-0fedcba9876543210")
    other_region = rds(account, f"arn:aws:rds:us-east-1:{account}:db-proxy:prx-0123456789abcdef0")
    not_a_proxy = rds(account, f"arn:aws:rds:eu-west-1:{account}:db:prod-app")
    silent = rds()
    role = Caller(f"arn:aws:iam::{account}:role/app-service", account, identity_allows=("sts:*",))
    lambda_service = Caller(None, account, service="lambda.amazonaws.com",
                            context={"aws:SourceAccount": account})
    # A role's trust policy must allow the caller whatever its identity policies say, as a key policy must
    # (IAM User Guide, "Policy evaluation logic": role trust policies), hence key_policy=True.
    # The attack succeeds against the old trust policy:
    assert decide(before, foreign, "sts:AssumeRole", key_policy=True) == "allow"
    verdicts = {name: decide(trust, caller, "sts:AssumeRole", key_policy=True) for name, caller in {
        "own": own, "foreign": foreign, "other_region": other_region, "not_a_proxy": not_a_proxy,
        "silent": silent, "role": role, "lambda": lambda_service}.items()}
    assert verdicts == {"own": "allow", "foreign": "deny", "other_region": "deny", "not_a_proxy": "deny",
                        "silent": "allow", "role": "deny", "lambda": "deny"}


@pytest.mark.parametrize("mutation_id, mutate, expected", [(m[0], m[1], m[2]) for m in PROXY_MUTATIONS],
                         ids=[m[0] for m in PROXY_MUTATIONS])
def test_proxy_target_and_role_mutations_are_caught(proxied, mutation_id, mutate, expected):
    """Review of issue 24 (o-fix): rds-proxy-owner-only judged the proxy's groups only; a target naming another
    service's instance, or a proxy role allowed another database's login or secret, passed."""
    e = copy.deepcopy(proxied)
    mutate(e)
    found = _violations(e, "rds-proxy-owner-only")
    assert any(expected in v.message and v.enforcement == "mandatory" for v in found), \
        (mutation_id, [v.message for v in found])
