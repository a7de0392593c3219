"""Issue 20's catalogue keys: `auth`, `password_version`, `bulkhead:flow_logs`, tiers' `master_max_age_days`."""

from __future__ import annotations

import pytest

from components.catalogue.model import CatalogueError, load_catalogue
from tests.support.catalogue import adb, aws, ddb, docker


def _problems(raw, region="eu-west-1"):
    with pytest.raises(CatalogueError) as info:
        load_catalogue(raw, "test", region=region)
    return [(p.path, p.message) for p in info.value.problems]


@pytest.mark.parametrize("raw, path, fragment", [
    pytest.param(adb(auth="md5"), "bulkhead:databases.app.auth", "'iam' or 'password'", id="auth-unknown"),
    pytest.param(ddb(auth="password"), "bulkhead:databases.app.auth", "applies only to platform aws", id="auth-on-docker"),
    pytest.param(adb(password_version=0), "bulkhead:databases.app.password_version", "", id="password-version-0"),
    pytest.param(aws(flow_logs="SOME"), "bulkhead:flow_logs", "not one of REJECT, ALL, none", id="flow-logs-bad"),
    pytest.param(docker(flow_logs="ALL"), "bulkhead:flow_logs", "applies only to platform aws", id="flow-logs-docker"),
    pytest.param(aws(flow_logs="ALL", network={"vpc_id": "vpc-0123abcd", "subnet_ids": ["subnet-0123abcd", "subnet-4567abcd"]}),
                 "bulkhead:flow_logs", "with bulkhead:network the network's owner runs its flow logs", id="flow-logs-network"),
    pytest.param(aws(backup_tiers={"standard": {"schedule": "cron(0 * * * ? *)", "retention_days": 7, "pitr_days": 7,
                                                "master_max_age_days": 0}}),
                 "bulkhead:backup_tiers.standard.master_max_age_days", "", id="max-age-0"),
])
def test_bad_values_name_the_key_and_the_fix(raw, path, fragment):
    problems = _problems(raw)
    matching = [m for p, m in problems if p == path]
    assert matching, problems
    assert any(fragment in m for m in matching), matching


def test_defaults_iam_reject_and_90_days():
    cat = load_catalogue(adb(), "test", region="eu-west-1")
    assert cat.databases["app"].auth == "iam" and cat.databases["app"].password_version == 1
    assert cat.flow_logs == "REJECT" and cat.backup_tiers["standard"].master_max_age_days == 90
    cat = load_catalogue(aws({"app": {"owner": "app-service", "auth": "password", "password_version": 3}},
                             flow_logs="none", owner_principals={"app-service": ["arn:aws:iam::123456789012:role/app"]}),
                         "test", region="eu-west-1")
    assert cat.databases["app"].auth == "password" and cat.databases["app"].password_version == 3
    assert cat.flow_logs == "none"
