"""`bulkhead:owner_principals` (issue 20): who each owner runs as, required for `auth: password`."""

from __future__ import annotations

import pytest

from components.catalogue.model import CatalogueError, load_catalogue
from tests.support.catalogue import aws, ddb

DEPLOYERS = ["arn:aws:iam::123456789012:role/ci/bulkhead-ci"]
APP_ROLE = "arn:aws:iam::123456789012:role/svc/app-task"
TWO = {"app": {"owner": "app-service", "auth": "password"}, "worker": {"owner": "worker-service"}}


def _problems(raw):
    with pytest.raises(CatalogueError) as info:
        load_catalogue(raw, "test", region="eu-west-1")
    return [(p.path, p.message) for p in info.value.problems]


@pytest.mark.parametrize("raw, path, fragments", [
    pytest.param(aws(TWO, deployers=DEPLOYERS), "bulkhead:owner_principals.app-service",
                 ["is required", "bulkhead:databases.app has auth: password",
                  "{app-service: [arn:aws:iam::123456789012:role/app-service-task]}"], id="password-without-owner"),
    pytest.param(aws(TWO, deployers=DEPLOYERS, owner_principals={"app-service": []}),
                 "bulkhead:owner_principals.app-service", ["non-empty list of IAM role ARNs"], id="empty-list"),
    pytest.param(aws(TWO, deployers=DEPLOYERS, owner_principals={"app-servce": [APP_ROLE]}),
                 "bulkhead:owner_principals.app-servce", ["no database has owner 'app-servce'",
                                                           "app-service, worker-service"], id="typo-owner"),
    pytest.param(aws(TWO, deployers=DEPLOYERS, owner_principals={
        "app-service": ["arn:aws:sts::123456789012:assumed-role/app-task/session"]}),
                 "bulkhead:owner_principals.app-service.0", ["not an IAM role or user ARN", "not a session"], id="session"),
    pytest.param(aws(TWO, deployers=DEPLOYERS, owner_principals={
        "app-service": [APP_ROLE], "worker-service": [APP_ROLE]}),
                 "bulkhead:owner_principals.worker-service.0", ["also listed for app-service"], id="shared-role"),
    # The same IAM name under another path (or case): one role, since names are unique in an account
    # whatever the path, and the secret policy matches role/<name> and role/*/<name> (review finding).
    pytest.param(aws(TWO, deployers=DEPLOYERS, owner_principals={
        "app-service": [APP_ROLE], "worker-service": ["arn:aws:iam::123456789012:role/other/App-Task"]}),
                 "bulkhead:owner_principals.worker-service.0",
                 ["also listed for app-service (as arn:aws:iam::123456789012:role/svc/app-task", "whatever the path"],
                 id="shared-role-other-path"),
    pytest.param(aws(TWO, deployers=DEPLOYERS, owner_principals={
        "app-service": ["arn:aws:iam::999999999999:role/app-task"]}),
                 "bulkhead:owner_principals.app-service.0", ["account 999999999999", "kms:CallerAccount"], id="other-account"),
    pytest.param(aws(TWO, deployers=DEPLOYERS, owner_principals=["app-service"]),
                 "bulkhead:owner_principals", ["must be a map of owner"], id="not-a-map"),
    pytest.param(ddb(), "bulkhead:owner_principals", ["applies only to platform aws"], id="docker"),
])
def test_bad_owner_principals_name_the_key_and_the_fix(raw, path, fragments):
    if "platform" in raw and raw["platform"] == "docker":
        raw = {**raw, "owner_principals": {"app-service": [APP_ROLE]}}
    problems = _problems(raw)
    matching = [m for p, m in problems if p == path]
    assert matching, problems
    for fragment in fragments:
        assert any(fragment in m for m in matching), (fragment, matching)


def test_owner_principals_load_and_iam_databases_need_none():
    cat = load_catalogue(aws(TWO, deployers=DEPLOYERS, owner_principals={"app-service": [APP_ROLE]}), "test",
                         region="eu-west-1")
    assert cat.owner_principals == {"app-service": (APP_ROLE,)}
    cat = load_catalogue(aws({"app": {"owner": "app-service"}}, deployers=DEPLOYERS), "test", region="eu-west-1")
    assert cat.owner_principals == {}


def test_a_role_listed_under_another_path_reads_both_login_secrets():
    """Why shared-role-other-path is refused: the login secret policy exempts each listed ARN as
    role/<name> and role/*/<name>, so worker-service's entry role/other/app-task exempts
    app-service's real role (role/svc/app-task) from the read deny on worker-service's secret."""
    from components.prod import key_policies
    from tests.support.iam_eval import Caller, decide

    account = "123456789012"
    worker_secret = key_policies.login_secret_policy(
        partition="aws", account=account, readers=[f"arn:aws:iam::{account}:role/bootstrap"], break_glass=(),
        deployers=key_policies.deployer_principals(DEPLOYERS), owners=[f"arn:aws:iam::{account}:role/other/app-task"])
    app_task = Caller(arn=APP_ROLE, account=account, identity_allows=("secretsmanager:*",))
    assert decide(worker_secret, app_task, "secretsmanager:GetSecretValue", key_policy=False) == "allow"
