"""Issue 24, item 5: `restore_from` under Pulumi's mock runtime. A new database starts from a snapshot
(copied under its own key first) or a point in time; its key, groups, secret, bootstrap and role are
those of every database; a later change or removal of `restore_from` replaces nothing."""

from __future__ import annotations

import copy

import pytest

from policies.bulkhead_types import (LAMBDA_INVOCATION, RDS_INSTANCE, RDS_SNAPSHOT_COPY, SECRET, SECURITY_GROUP)
from tests.support.program import run_stack, stack_config

SNAPSHOT = "arn:aws:rds:eu-west-1:123456789012:snapshot:billing-before-migration"
# The ForceNew inputs of aws_db_instance (terraform-provider-aws internal/service/rds/instance.go).
FORCE_NEW = ("identifier", "kmsKeyId", "username", "dbName", "storageEncrypted", "engine", "dbSubnetGroupName",
             "snapshotIdentifier", "restoreToPointInTime")


def _config(restore):
    config = copy.deepcopy(stack_config("prod"))
    dbs = config["bulkhead:databases"]
    dbs["billing"] = {"owner": "billing-service"}
    if restore is not None:
        # The runbook's shape (docs/prod-stack.md "Restoring"): the source's db_name, next to the source.
        dbs["billing_0942"] = {"owner": "billing-service", "db_name": "billing", "restore_from": restore,
                               "env_var": "BILLING_0942_DATABASE_URL"}
    return config


def _primary(run, name):
    [r] = [r for r in run.by_type(RDS_INSTANCE) if r.name == f"{name}-primary"]
    return r


@pytest.fixture(scope="module")
def from_snapshot():
    return run_stack("prod", _config({"snapshot": SNAPSHOT}))


@pytest.fixture(scope="module")
def from_point_in_time():
    return run_stack("prod", _config({"point_in_time": {"source": "prod-billing", "time": "2026-12-06T10:42:00Z"}}))


def test_a_snapshot_is_copied_under_the_database_s_own_key_and_restored(from_snapshot):
    [copy_] = from_snapshot.by_type(RDS_SNAPSHOT_COPY)
    key = [r for r in from_snapshot.resources if r.name == "billing_0942-key"][0]
    assert copy_.inputs["sourceDbSnapshotIdentifier"] == SNAPSHOT and copy_.inputs["kmsKeyId"] == key.outputs["arn"]
    assert copy_.retain_on_delete
    primary = _primary(from_snapshot, "billing_0942")
    assert primary.inputs["snapshotIdentifier"] == copy_.outputs["dbSnapshotArn"]
    assert primary.inputs["kmsKeyId"] == key.outputs["arn"] and primary.inputs["storageEncrypted"] is True
    assert "restoreToPointInTime" not in primary.inputs
    assert set(primary.ignore_changes) >= {"snapshotIdentifier", "restoreToPointInTime", "username", "dbName"}
    assert "kmsKeyId" in primary.ignore_changes  # every primary's (the copy carries this database's key)
    assert primary.protect


def test_everything_else_is_as_for_every_database(from_snapshot):
    names = {r.name for r in from_snapshot.resources}
    for suffix in ("-db", "-master-secret", "-bootstrap-run", "-access", "-params"):
        assert f"billing_0942{suffix}" in names, suffix
    assert [r for r in from_snapshot.by_type(SECURITY_GROUP) if r.name == "billing_0942-db"]
    assert [r for r in from_snapshot.by_type(SECRET) if r.name == "billing_0942-master-secret"]
    [run] = [r for r in from_snapshot.by_type(LAMBDA_INVOCATION) if r.name == "billing_0942-bootstrap-run"]
    assert _primary(from_snapshot, "billing_0942").urn in run.dependencies or run.dependencies
    # a database without restore_from is untouched by it
    assert "snapshotIdentifier" not in _primary(from_snapshot, "billing").inputs


def test_a_point_in_time_restores_from_the_source(from_point_in_time):
    primary = _primary(from_point_in_time, "billing_0942")
    assert primary.inputs["restoreToPointInTime"] == {"sourceDbInstanceIdentifier": "prod-billing",
                                                      "restoreTime": "2026-12-06T10:42:00Z"}
    assert not from_point_in_time.by_type(RDS_SNAPSHOT_COPY)
    # RestoreDBInstanceToPointInTime keeps the source's key: read back, never a replacement
    assert "kmsKeyId" in primary.ignore_changes


def _replaced(before, after) -> list[str]:
    """ForceNew inputs that differ, less those the resource ignores (the engine would not diff them)."""
    out = []
    b = {r.urn: r for r in before.by_type(RDS_INSTANCE)}
    for r in after.by_type(RDS_INSTANCE):
        if r.urn in b:
            changed = [k for k in FORCE_NEW if b[r.urn].inputs.get(k) != r.inputs.get(k) and k not in r.ignore_changes]
            if changed:
                out.append(f"{r.name}: {changed}")
    return out


@pytest.mark.parametrize("later", [
    pytest.param(None, id="removed"),
    pytest.param({"snapshot": SNAPSHOT.replace("before-migration", "other")}, id="other-snapshot"),
    pytest.param({"point_in_time": {"source": "prod-billing", "time": "latest"}}, id="changed-to-point-in-time"),
])
def test_a_later_change_or_removal_replaces_nothing(from_snapshot, later):
    config = _config({"snapshot": SNAPSHOT})
    db = config["bulkhead:databases"]["billing_0942"]
    if later is None:
        del db["restore_from"]
    else:
        db["restore_from"] = later
    after = run_stack("prod", config)
    assert _replaced(from_snapshot, after) == []
    assert _primary(after, "billing_0942").protect


def test_adding_restore_from_to_an_existing_database_replaces_nothing(from_snapshot):
    config = _config({"snapshot": SNAPSHOT})
    config["bulkhead:databases"]["billing"].update(db_name="billing", restore_from={"snapshot": SNAPSHOT})
    assert _replaced(from_snapshot, run_stack("prod", config)) == []


def test_without_ignore_changes_the_change_would_replace(from_snapshot):
    # The guard above is real: the inputs do change, so only ignore_changes keeps the instance.
    config = _config({"point_in_time": {"source": "prod-billing", "time": "latest"}})
    after = run_stack("prod", config)
    b, a = _primary(from_snapshot, "billing_0942"), _primary(after, "billing_0942")
    assert b.inputs.get("snapshotIdentifier") != a.inputs.get("snapshotIdentifier")
    assert b.inputs.get("restoreToPointInTime") != a.inputs.get("restoreToPointInTime")


def test_the_pack_accepts_a_restored_database_next_to_its_source(from_snapshot):
    # Two instances each holding a database `billing` with its own role `billing`: separate instances,
    # groups and keys, so every separation rule still holds.
    from bulkhead.commands.check import evaluate
    from bulkhead.offline.mock_runtime import to_stack_export
    from tests.support.mutations import PROD_CONFIG

    result = evaluate(to_stack_export(from_snapshot), dict(PROD_CONFIG))
    assert [(v.policy, v.urn.rsplit("::", 1)[1]) for v in result.violations] == []


def test_removing_a_point_in_time_restore_later_still_replaces_nothing(from_point_in_time):
    """Review of issue 24 (rev-ops): RestoreDBInstanceToPointInTime keeps the source's key and the provider
    reads it back as kms_key_id (ForceNew; terraform-provider-aws internal/service/rds/instance.go: the
    point-in-time input carries no KmsKeyId, resourceInstanceRead sets kms_key_id from the instance).
    kmsKeyId was ignored only while `restore_from` was there: removing it (docs: "changes nothing") made
    the state's source key differ from this database's key, a replacement of the restored database.
    Every primary now ignores kmsKeyId: an instance's key never changes in place anyway."""
    config = _config({"point_in_time": {"source": "prod-billing", "time": "2026-12-06T10:42:00Z"}})
    del config["bulkhead:databases"]["billing_0942"]["restore_from"]
    after = _primary(run_stack("prod", config), "billing_0942")
    assert "kmsKeyId" in after.ignore_changes and "kmsKeyId" in _primary(from_point_in_time, "billing_0942").ignore_changes


def _copy_replaced(before, after) -> list[str]:
    """The copy's ForceNew inputs that differ, less those it ignores: what would copy the data again."""
    from components.prod.rds_postgres import SNAPSHOT_COPY_FORCE_NEW

    b = {r.urn: r for r in before.by_type(RDS_SNAPSHOT_COPY)}
    return [f"{r.name}: {k}" for r in after.by_type(RDS_SNAPSHOT_COPY) if r.urn in b
            for k in SNAPSHOT_COPY_FORCE_NEW
            if b[r.urn].inputs.get(k) != r.inputs.get(k) and k not in r.ignore_changes]


def test_the_copy_is_named_anew_for_every_creation_of_the_database(from_snapshot):
    """Review of issue 24 (o-fix): the copy was named `<identifier>-restore-source` and retained on delete, so
    creating the database again (after `destroy`, or removed and added back) failed with
    DBSnapshotAlreadyExists. Its name now carries a RandomId created and deleted with the database's resources
    (so a new one for each creation), with no keeper that a later `restore_from` change would renew."""
    [copy_] = from_snapshot.by_type(RDS_SNAPSHOT_COPY)
    [suffix] = [r for r in from_snapshot.resources if r.name == "billing_0942-restore-source-suffix"]
    target = copy_.inputs["targetDbSnapshotIdentifier"]
    assert target != "prod-billing-0942-restore-source" and target.startswith("prod-billing-0942-restore-")
    assert target == f"prod-billing-0942-restore-{suffix.outputs['hex']}"
    assert suffix.urn in copy_.dependencies and not suffix.inputs.get("keepers")
    assert suffix.parent == _primary(from_snapshot, "billing_0942").parent  # goes with the database


@pytest.mark.parametrize("later", [
    pytest.param({"snapshot": SNAPSHOT.replace("before-migration", "other")}, id="other-snapshot"),
    pytest.param({"snapshot": "arn:aws:rds:eu-west-1:210987654321:snapshot:shared-copy"}, id="other-account"),
])
def test_a_later_change_copies_nothing_again_and_replaces_nothing(from_snapshot, later):
    config = _config({"snapshot": SNAPSHOT})
    config["bulkhead:databases"]["billing_0942"]["restore_from"] = later
    after = run_stack("prod", config)
    assert _copy_replaced(from_snapshot, after) == [] and _replaced(from_snapshot, after) == []
    # the guard is real: the copy's ForceNew source input does change
    [b], [a] = from_snapshot.by_type(RDS_SNAPSHOT_COPY), after.by_type(RDS_SNAPSHOT_COPY)
    assert b.inputs["sourceDbSnapshotIdentifier"] != a.inputs["sourceDbSnapshotIdentifier"]
    assert "sourceDbSnapshotIdentifier" in a.ignore_changes
