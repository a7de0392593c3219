"""Day-2 changes, each planned on top of the previous plan (the first run's recorded inputs), with
its outcome asserted: no instance, key, secret, vault, log group or access policy is replaced
(issue 19, Build 5). Replacement is judged by URN and by the inputs the provider marks ForceNew."""

from __future__ import annotations

import pytest

from tests.support.program import run_stack, shared_run

RDS = "aws:rds/instance:Instance"
PARAMS = "aws:rds/parameterGroup:ParameterGroup"
POLICY = "aws:iam/policy:Policy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
# Inputs whose change replaces the resource (ForceNew in terraform-provider-aws: rds/instance.go,
# kms/key.go, secretsmanager/secret.go, backup/vault.go, iam/policy.go, logs/group.go).
FORCE_NEW = {
    RDS: ("identifier", "kmsKeyId", "username", "dbName", "storageEncrypted", "engine", "dbSubnetGroupName"),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"),
    "aws:secretsmanager/secret:Secret": ("name", "namePrefix"),
    "aws:backup/vault:Vault": ("name", "kmsKeyArn"),
    POLICY: ("name", "namePrefix", "description", "path"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix"),
}


@pytest.fixture(scope="module")
def before():
    return shared_run("prod")


def _data(run) -> dict[str, dict]:
    return {r.urn: {k: r.inputs.get(k) for k in FORCE_NEW[r.type]} for r in run.resources if r.type in FORCE_NEW}


def _assert_nothing_replaced(before, after, may_go=()):
    b, a = _data(before), _data(after)
    gone = sorted(u for u in set(b) - set(a) if not any(m in u for m in may_go))
    assert not gone, f"data resources removed: {gone}"
    replaced = sorted(u for u in b if u in a and b[u] != a[u])
    assert not replaced, f"ForceNew inputs changed (replacement): {replaced}"


def _set(name, **changes):
    return lambda c: c["bulkhead:databases"][name].update(changes)


def _by_name(run, typ):
    return {r.name: r for r in run.by_type(typ)}


def test_add_a_replica(before):
    after = run_stack("prod", edit=_set("worker", replicas=1))
    _assert_nothing_replaced(before, after)
    assert "worker-replica-1" in _by_name(after, RDS) and "worker-replica-1" not in _by_name(before, RDS)


def test_remove_a_replica(before):
    after = run_stack("prod", edit=_set("auth", replicas=1))
    # a replica holds no data of its own: only it goes
    _assert_nothing_replaced(before, after, may_go=("auth-replica-2", "auth-log-replica-2"))
    assert "auth-replica-2" not in _by_name(after, RDS)


def test_raise_master_password_version(before):
    after = run_stack("prod", edit=_set("worker", master_password_version=2))
    _assert_nothing_replaced(before, after)


@pytest.mark.parametrize("edit", [
    _set("worker", parameters={"work_mem": "65536"}),
    _set("worker", instance_class="db.m7g.large"),
    _set("worker", tier="critical"),
    _set("worker", temp_file_limit="8GB"),
], ids=["parameter", "instance-class", "tier", "temp-file-limit"])
def test_in_place_changes(before, edit):
    after = run_stack("prod", edit=edit)
    _assert_nothing_replaced(before, after)


def test_add_a_database(before):
    after = run_stack("prod", edit=lambda c: c["bulkhead:databases"].update(search={"owner": "search-service"}))
    _assert_nothing_replaced(before, after)


def test_change_owner_keeps_the_access_policy_and_moves_the_network_path(before):
    after = run_stack("prod", edit=_set("worker", owner="jobs-service"))
    _assert_nothing_replaced(before, after)
    old_policy, new_policy = _by_name(before, POLICY)["worker-access"], _by_name(after, POLICY)["worker-access"]
    # the description used to name the owner, and is ForceNew: the policy was replaced while still
    # attached to the old owner's task role (DeleteConflict)
    assert old_policy.inputs["description"] == new_policy.inputs["description"]
    assert "worker-service" not in new_policy.inputs["description"]
    assert "description" in new_policy.ignore_changes
    # the old owner loses its path to the database in the same `up`: only the new client group is admitted
    groups = {g.name: g.id for g in after.by_type("aws:ec2/securityGroup:SecurityGroup")}
    (rule,) = [r for r in after.by_type(INGRESS) if r.name == "worker-db-from-owner"]
    assert rule.inputs["referencedSecurityGroupId"] == groups["client-jobs-service-client"]
    assert "client-worker-service-client" not in groups


def test_major_version_upgrade(before):
    # the runbook's middle step: replicas already at 0 (docs/prod-stack.md, "Major version upgrades")
    before = run_stack("prod", edit=_set("app", replicas=0))
    after = run_stack("prod", edit=_set("app", engine_version="17", allow_major_upgrade_to=17, replicas=0))
    _assert_nothing_replaced(before, after)
    primary = _by_name(after, RDS)["app-primary"]
    assert primary.inputs["engineVersion"] == "17"
    # ModifyDBInstance refuses another major without it: it was False, so the upgrade could never succeed
    assert primary.inputs["allowMajorVersionUpgrade"] is True
    # applied while the `up` waits, so the old group is free to delete after the modify
    assert primary.inputs["applyImmediately"] is True
    assert _by_name(before, RDS)["app-primary"].inputs["applyImmediately"] is False
    old_group, new_group = _by_name(before, PARAMS)["app-params"], _by_name(after, PARAMS)["app-params"]
    assert (old_group.inputs["family"], new_group.inputs["family"]) == ("postgres16", "postgres17")
    # a new group (family is ForceNew) under a new name: created first, the old one deleted after the modify
    assert "pg17" in new_group.inputs["namePrefix"] and new_group.inputs["namePrefix"] != old_group.inputs["namePrefix"]
    assert not new_group.delete_before_replace
    assert primary.inputs["parameterGroupName"] == new_group.outputs["name"]
    for replica in [r for n, r in _by_name(after, RDS).items() if n.startswith("app-replica")]:
        assert replica.inputs["parameterGroupName"] == new_group.outputs["name"]


def test_a_major_change_without_the_key_arms_nothing(before):
    # a typo ("17" for "16") must not upgrade prod in place: the flag stays false, RDS refuses the modify
    # ("AllowMajorVersionUpgrade ... must be set to true", ModifyDBInstance) and nothing is upgraded
    after = run_stack("prod", edit=_set("app", engine_version="17"))
    primary = _by_name(after, RDS)["app-primary"]
    assert primary.inputs["engineVersion"] == "17"
    assert primary.inputs["allowMajorVersionUpgrade"] is False
    assert primary.inputs["applyImmediately"] is False
    assert _by_name(before, RDS)["app-primary"].inputs["allowMajorVersionUpgrade"] is False


def test_a_major_upgrade_with_replicas_is_refused_before_anything_is_registered():
    with pytest.raises(Exception) as caught:
        run_stack("prod", edit=_set("app", engine_version="17", allow_major_upgrade_to=17))
    text = str(caught.value)
    assert "bulkhead:databases.app.allow_major_upgrade_to" in text and "replicas: 0" in text
    assert "nothing was created" in text


def test_an_owner_change_that_empties_an_owner_leaves_its_client_group_inert(before):
    """worker was worker-service's only database: the owner change removes worker-service's client group
    from the program. Its tasks still wear it, so EC2 refuses DeleteSecurityGroup (DependencyViolation)
    and the `up` failed after the provider's delete timeout. The group is retained (not deleted), and
    everything that let it reach anything is deleted in the same `up`."""
    after = run_stack("prod", edit=_set("worker", owner="jobs-service"))
    groups = {g.name: g for g in before.by_type("aws:ec2/securityGroup:SecurityGroup")}
    old = groups["client-worker-service-client"]
    assert old.retain_on_delete, "the emptied owner's client group would be deleted while its tasks use it"
    gone = {r.urn for r in before.resources} - {r.urn for r in after.resources}
    gone_resources = [r for r in before.resources if r.urn in gone]
    # what made the old group useful goes: its egress rules and the rules that admit it (database, endpoints)
    rules = [r for r in gone_resources if r.type in (INGRESS, EGRESS)]
    assert rules and all(not r.retain_on_delete for r in rules)
    referencing = [r for r in after.by_type(INGRESS) + after.by_type(EGRESS)
                   if old.id in (r.inputs.get("securityGroupId"), r.inputs.get("referencedSecurityGroupId"))]
    assert not referencing, [r.name for r in referencing]
    # nothing else that goes is retained: only client groups are
    retained = [r.name for r in gone_resources if r.retain_on_delete]
    assert retained == ["client-worker-service-client"], retained
