"""Issue 24 under Pulumi's mock runtime: alarms and RDS events to the stack's encrypted topic, the
subscribers of `bulkhead:alerts`, staggered windows, and the advisory policy that wants them."""

from __future__ import annotations

import copy
import json

import pytest

from bulkhead.commands.check import evaluate
from bulkhead.offline.mock_runtime import to_stack_export
from components.catalogue.checks import rds_memory_gib
from components.prod import windows
from components.prod.alarms import EVENT_CATEGORIES, PUBLISHERS
from policies.bulkhead_types import (KMS_KEY, METRIC_ALARM, RDS_EVENT_SUBSCRIPTION, RDS_INSTANCE, SNS_TOPIC,
                                     SNS_TOPIC_POLICY, SNS_TOPIC_SUBSCRIPTION)
from tests.support.mutations import PROD_CONFIG
from tests.support.program import run_stack, stack_config

GIB = 1024 ** 3
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ops-alerts"


def _named(run, typ, name):
    [r] = [r for r in run.by_type(typ) if r.name == name]
    return r


def _alarms(run, database):
    return {r.name.removeprefix(f"{database}-alarms-"): r for r in run.by_type(METRIC_ALARM)
            if r.inputs["tags"]["bulkhead:database"] == database}


def _with(edit):
    config = copy.deepcopy(stack_config("prod"))
    edit(config)
    return config


@pytest.fixture(scope="module")
def custom_run():
    """Prod with subscribers, a new owner's database with its own windows, and app's alarms tuned."""
    def edit(config):
        config["bulkhead:alerts"] = {"emails": ["dba@example.com"], "https": ["https://hooks.example.com/bulkhead"]}
        dbs = config["bulkhead:databases"]
        dbs["billing"] = {"owner": "billing-service", "backup_window": "02:15-02:45", "maintenance_window": "wed:03:15-wed:03:45"}
        dbs["app"]["alarms"] = {"cpu_percent": 95, "freeable_memory_percent": None}
        dbs["worker"]["alarms"] = False
    return run_stack("prod", _with(edit))


def test_every_primary_has_its_alarms_with_thresholds_from_its_tier(prod_run):
    config = stack_config("prod")["bulkhead:databases"]
    topic = _named(prod_run, SNS_TOPIC, "alerts-topic").outputs["arn"]
    app, auth = _alarms(prod_run, "app"), _alarms(prod_run, "auth")
    assert sorted(app) == ["connections", "cpu", "memory", "replica-1-cpu", "replica-1-lag", "storage"]
    assert sorted(auth) == ["connections", "cpu", "memory", "replica-1-cpu", "replica-1-lag", "replica-2-cpu",
                            "replica-2-lag", "storage"]
    # standard (app) and critical (auth) thresholds
    assert (app["cpu"].inputs["threshold"], auth["cpu"].inputs["threshold"]) == (80, 70)
    assert app["storage"].inputs["threshold"] == config["app"]["storage_gb"] * GIB // 10
    assert auth["storage"].inputs["threshold"] == config["auth"]["storage_gb"] * GIB * 20 // 100
    assert app["connections"].inputs["threshold"] == 80 and auth["connections"].inputs["threshold"] == 70
    assert app["memory"].inputs["threshold"] == int(rds_memory_gib("db.r6g.xlarge") * GIB * 10 / 100)
    assert (app["replica-1-lag"].inputs["threshold"], auth["replica-1-lag"].inputs["threshold"]) == (300, 60)
    for alarm in [*app.values(), *auth.values()]:
        i = alarm.inputs
        assert i["namespace"] == "AWS/RDS" and i["alarmActions"] == [topic] and i["okActions"] == [topic]
        assert i["name"].startswith("bulkhead-prod-") and i["period"] == 300
    assert app["cpu"].inputs["dimensions"] == {"DBInstanceIdentifier": "prod-app"}
    assert app["replica-1-lag"].inputs["dimensions"] == {"DBInstanceIdentifier": "prod-app-replica-1"}
    assert app["replica-1-lag"].inputs["metricName"] == "ReplicaLag"
    # an alarm of an instance waits for it
    primary = _named(prod_run, RDS_INSTANCE, "app-primary")
    assert primary.urn in app["cpu"].dependencies


def test_the_topic_is_encrypted_with_a_stack_key_the_publishers_may_use(prod_run):
    topic = _named(prod_run, SNS_TOPIC, "alerts-topic")
    key = _named(prod_run, KMS_KEY, "alerts-key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"] and topic.inputs["name"] == "bulkhead-prod-alerts"
    assert key.protect and key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    [publish] = [s for s in statements if s.get("Sid") == "AlarmsAndRdsEventsPublish"]
    assert sorted(publish["Principal"]["Service"]) == sorted(PUBLISHERS)
    assert publish["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]
    # the account uses the key through SNS only
    [use] = [s for s in statements if s.get("Sid") == "UseThroughAwsServices"]
    assert use["Condition"]["StringEquals"]["kms:ViaService"] == ["sns.eu-west-1.amazonaws.com"]
    policy = json.loads(_named(prod_run, SNS_TOPIC_POLICY, "alerts-topic-policy").inputs["policy"])
    by_service = {s["Principal"]["Service"]: s for s in policy["Statement"] if s["Effect"] == "Allow"}
    assert set(by_service) == set(PUBLISHERS)
    for s in by_service.values():
        assert s["Action"] == "sns:Publish" and s["Resource"] == topic.outputs["arn"]
        assert s["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert by_service["cloudwatch.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":alarm:bulkhead-prod-*")
    # Pulumi.prod.yaml's bulkhead:alerts: one email subscriber
    assert [(r.inputs["protocol"], r.inputs["endpoint"], r.inputs["topic"]) for r in prod_run.by_type(SNS_TOPIC_SUBSCRIPTION)] == [
        ("email", "dba@example.com", topic.outputs["arn"])]


def test_one_event_subscription_covers_every_instance(prod_run):
    [sub] = prod_run.by_type(RDS_EVENT_SUBSCRIPTION)
    idents = sorted(r.inputs["identifier"] for r in prod_run.by_type(RDS_INSTANCE))
    assert sub.inputs["sourceIds"] == idents and len(idents) == 6
    assert sub.inputs["sourceType"] == "db-instance" and sub.inputs["snsTopic"] == _named(prod_run, SNS_TOPIC, "alerts-topic").outputs["arn"]
    assert {"failover", "failure", "maintenance", "configuration change", "low storage"} <= set(sub.inputs["eventCategories"])
    assert sub.inputs["eventCategories"] == list(EVENT_CATEGORIES)
    assert {r.urn for r in prod_run.by_type(RDS_INSTANCE)} <= set(sub.dependencies)


def test_subscribers_tuned_thresholds_and_alarms_off(custom_run):
    subs = {r.inputs["protocol"]: r.inputs["endpoint"] for r in custom_run.by_type(SNS_TOPIC_SUBSCRIPTION)}
    assert subs == {"email": "dba@example.com", "https": "https://hooks.example.com/bulkhead"}
    app = _alarms(custom_run, "app")
    assert app["cpu"].inputs["threshold"] == 95 and "memory" not in app and app["storage"].inputs["threshold"] > 0
    assert _alarms(custom_run, "worker") == {}
    assert sorted(_alarms(custom_run, "billing")) == ["connections", "cpu", "memory", "storage"]


def test_an_existing_topic_is_used_instead_of_one_of_the_stack():
    run = run_stack("prod", _with(lambda c: c.update({"bulkhead:alerts": {"topic_arn": TOPIC}})))
    assert not run.by_type(SNS_TOPIC) and not [k for k in run.by_type(KMS_KEY) if k.name == "alerts-key"]
    assert {a.inputs["alarmActions"][0] for a in run.by_type(METRIC_ALARM)} == {TOPIC}
    assert run.by_type(RDS_EVENT_SUBSCRIPTION)[0].inputs["snsTopic"] == TOPIC


# --- windows ---------------------------------------------------------------------------------------

def _windows(run) -> dict:
    return {r.name.removesuffix("-primary"): (r.inputs["backupWindow"], r.inputs["maintenanceWindow"])
            for r in run.by_type(RDS_INSTANCE) if r.name.endswith("-primary")}


def test_windows_are_staggered_stable_and_kept_when_another_owner_adds_a_database(prod_run, custom_run):
    before = _windows(prod_run)
    assert len({b for b, _ in before.values()}) >= 2 and len({m for _, m in before.values()}) == 3
    for backup, maintenance in before.values():
        assert not windows.windows_overlap(backup, maintenance)
        assert backup not in ("03:00-04:00",)  # no longer the one constant of every database
    after = _windows(custom_run)
    assert {n: after[n] for n in before} == before  # billing (a new owner) moved nobody
    assert after["billing"] == ("02:15-02:45", "wed:03:15-wed:03:45")  # its own overrides
    # replicas have no backups (retention 0) and take no window of their own
    replica = _named(prod_run, RDS_INSTANCE, "app-replica-1")
    assert "backupWindow" not in replica.inputs and "maintenanceWindow" not in replica.inputs


def test_window_derivation_0_keeps_the_old_windows():
    run = run_stack("prod", _with(lambda c: c.update({"bulkhead:window_derivation": 0})))
    assert set(_windows(run).values()) == {("03:00-04:00", "sun:05:00-sun:06:00")}


# --- the advisory policy ------------------------------------------------------------------------------

def _violations(export):
    return [(v.policy, v.urn.rsplit("::", 1)[1], v.message) for v in evaluate(export, dict(PROD_CONFIG)).violations
            if v.policy == "database-alarms-and-events"]


def test_policy_passes_with_alarms_and_fails_when_a_database_turns_them_off(prod_export, custom_run):
    assert _violations(prod_export) == []
    found = {n: m for _, n, m in _violations(to_stack_export(custom_run))}
    # worker turned every alarm off, app its memory alarm: advisory findings, not errors
    assert sorted(found) == ["app-primary", "worker-primary"]
    assert "no alarm with an action on FreeableMemory:" in found["app-primary"]
    assert "on CPUUtilization, FreeStorageSpace, DatabaseConnections, FreeableMemory:" in found["worker-primary"]


def test_removing_a_subscriber_leaves_the_others_subscriptions_alone():
    """Review of issue 24 (rev-ops): a subscription's `endpoint` is ForceNew (terraform-provider-aws
    internal/service/sns/topic_subscription.go), so a subscription named by its place in the list was
    replaced when an address before it was removed: that person's confirmed subscription was
    unsubscribed and a new one waited for confirmation, no alert meanwhile. Named after the endpoint,
    the remaining subscriptions keep their names (no replacement); a repeated address is subscribed once."""
    def subs(emails):
        run = run_stack("prod", _with(lambda c: c.update({"bulkhead:alerts": {"emails": emails}})))
        return {r.inputs["endpoint"]: r.name for r in run.by_type(SNS_TOPIC_SUBSCRIPTION)}

    before = subs(["first@example.com", "oncall@example.com", "oncall@example.com"])
    after = subs(["oncall@example.com"])
    assert sorted(before) == ["first@example.com", "oncall@example.com"]
    assert after == {"oncall@example.com": before["oncall@example.com"]}
    assert "oncall" not in before["oncall@example.com"]


def test_another_services_role_can_neither_publish_to_nor_subscribe_to_nor_change_the_alert_topic(prod_run):
    """Review of issue 24 (rev-ops): the topic policy allowed the two publishing services only, but in one
    account an identity policy allowing sns:* is enough without the topic's Allow (IAM "Policy evaluation
    logic"): another service's role could publish fake alerts (an "OK" over a real alarm), subscribe its
    own endpoint to every database's alerts, or rewrite the policy. Now a Deny leaves that to the
    deployers and break-glass (the account root here); CloudWatch alarms and RDS events of the stack
    still publish, and the deployers still manage the topic."""
    from tests.support.iam_eval import Caller, decide

    topic = _named(prod_run, SNS_TOPIC, "alerts-topic").outputs["arn"]
    policy = json.loads(_named(prod_run, SNS_TOPIC_POLICY, "alerts-topic-policy").inputs["policy"])
    account = "123456789012"
    user = {"aws:PrincipalIsAWSService": "false"}
    other = Caller(f"arn:aws:iam::{account}:role/billing-service", account, identity_allows=("sns:*",), context=user)
    deployer = Caller(f"arn:aws:iam::{account}:role/ci/bulkhead-ci", account, identity_allows=("sns:*",), context=user)
    alarm = Caller(None, account, service="cloudwatch.amazonaws.com", context={
        "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": account,
        "aws:SourceArn": f"arn:aws:cloudwatch:eu-west-1:{account}:alarm:bulkhead-prod-app-cpu"})
    rds = Caller(None, account, service="events.rds.amazonaws.com", context={
        "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": account,
        "aws:SourceArn": f"arn:aws:rds:eu-west-1:{account}:db:prod-app"})
    guarded = ("sns:Publish", "sns:Subscribe", "sns:SetTopicAttributes", "sns:DeleteTopic")
    assert {a: decide(policy, other, a, key_policy=False) for a in guarded} == dict.fromkeys(guarded, "deny")
    assert {a: decide(policy, deployer, a, key_policy=False) for a in guarded} == dict.fromkeys(guarded, "allow")
    assert decide(policy, alarm, "sns:Publish", key_policy=False) == "allow"
    assert decide(policy, rds, "sns:Publish", key_policy=False) == "allow"
    assert topic.startswith("arn:")


@pytest.fixture(scope="module")
def password_run():
    def edit(config):
        config["bulkhead:databases"]["worker"]["auth"] = "password"
        config.setdefault("bulkhead:owner_principals", {})["worker-service"] = [
            "arn:aws:iam::123456789012:role/worker-service-task"]
    return run_stack("prod", _with(edit))


@pytest.mark.parametrize("database", ["app", "worker"])
def test_a_service_role_can_neither_spoof_nor_silence_the_stack_s_alarms(prod_run, password_run, database):
    """Review of issue 24 (o-fix): the topic admits CloudWatch for any alarm named with the stack's prefix. A
    service role allowed cloudwatch:* (its own policies: dashboards, its own alarms) could create
    `bulkhead-prod-<anything>` with the topic as action, and CloudWatch published its fake alarm or fake OK to
    everyone; SetAlarmState OK, DisableAlarmActions, DeleteAlarms or an overwriting PutMetricAlarm silenced a real
    one. Every access policy, which a service's role attaches to reach its database, now denies these actions on
    the stack's alarm names; the role's other alarms are untouched."""
    from components.prod.alarms import alarm_guard_statement
    from tests.support.iam_eval import Caller, decide, decide_identity

    account, region = "123456789012", "eu-west-1"
    run = prod_run if database == "app" else password_run  # auth iam / auth password
    access = json.loads(_named(run, "aws:iam/policy:Policy", f"{database}-access").inputs["policy"])
    before = {**access, "Statement": [s for s in access["Statement"] if s != alarm_guard_statement(
        "aws", region, account, "prod")]}
    assert before != access  # the guard is there, in both the iam (app) and password (worker) variants
    own = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cloudwatch:*", "Resource": "*"}]}
    fake = f"arn:aws:cloudwatch:{region}:{account}:alarm:bulkhead-prod-app-cpu-fake"
    real = f"arn:aws:cloudwatch:{region}:{account}:alarm:bulkhead-prod-app-cpu"
    theirs = f"arn:aws:cloudwatch:{region}:{account}:alarm:{database}-service-latency"
    # 1. the fake alarm would be admitted to the topic once it exists
    topic = json.loads(_named(prod_run, SNS_TOPIC_POLICY, "alerts-topic-policy").inputs["policy"])
    cloudwatch = Caller(None, account, service="cloudwatch.amazonaws.com", context={
        "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": account, "aws:SourceArn": fake})
    assert decide(topic, cloudwatch, "sns:Publish", key_policy=False) == "allow"
    attacks = [("cloudwatch:PutMetricAlarm", fake), ("cloudwatch:PutMetricAlarm", real),
               ("cloudwatch:SetAlarmState", real), ("cloudwatch:DisableAlarmActions", real),
               ("cloudwatch:DeleteAlarms", real), ("cloudwatch:PutCompositeAlarm", fake)]
    # 2. without the guard the service role creates it (and silences the real ones) ...
    assert {a: decide_identity([own, before], *a) for a in attacks} == dict.fromkeys(attacks, "allow")
    # 3. ... with it, never; its own alarms stay its own
    assert {a: decide_identity([own, access], *a) for a in attacks} == dict.fromkeys(attacks, "deny")
    assert decide_identity([own, access], "cloudwatch:PutMetricAlarm", theirs) == "allow"
    assert decide_identity([own, access], "cloudwatch:SetAlarmState", theirs) == "allow"


@pytest.mark.parametrize("database", ["app", "worker"])
def test_the_guard_also_covers_mute_rules_the_event_subscription_and_neighbouring_stacks(prod_run, password_run, database):
    """Review rev-ops2 of the alarm guard. With only the eight alarm actions on `alarm:bulkhead-<stack>-*`, a
    service role allowed cloudwatch:* and rds:* (its own alarms, its own instances' events) could still
    (1) mute every bulkhead alarm with an alarm mute rule (PutAlarmMuteRule is authorised on each targeted
    alarm: CloudWatch API reference), (2) delete, disable or narrow the stack's RDS event subscription, and
    (3) from a neighbouring stack `prod-eu`, whose guard covered `bulkhead-prod-eu-*` only, create
    `bulkhead-prod-<anything>`, which stack `prod`'s topic admits. Each is denied now."""
    from components.prod.alarms import ALARM_GUARDED_ACTIONS, event_subscription_name, topic_policy
    from tests.support.iam_eval import Caller, decide, decide_identity

    account, region = "123456789012", "eu-west-1"
    run = prod_run if database == "app" else password_run
    access = json.loads(_named(run, "aws:iam/policy:Policy", f"{database}-access").inputs["policy"])
    own = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["cloudwatch:*", "rds:*"], "Resource": "*"}]}
    # what the guard was before this review: the alarm actions on this stack's prefix only
    old_guard = {"Effect": "Deny", "Action": [a for a in ALARM_GUARDED_ACTIONS if a != "cloudwatch:PutAlarmMuteRule"],
                 "Resource": f"arn:aws:cloudwatch:{region}:{account}:alarm:bulkhead-prod-*"}
    before = {**access, "Statement": [s for s in access["Statement"] if s.get("Sid") != "NeverTheStacksAlarms"]
              + [old_guard]}
    real = f"arn:aws:cloudwatch:{region}:{account}:alarm:bulkhead-prod-app-cpu"
    events = f"arn:aws:rds:{region}:{account}:es:{event_subscription_name('prod')}"
    attacks = [("cloudwatch:PutAlarmMuteRule", real), ("rds:DeleteEventSubscription", events),
               ("rds:ModifyEventSubscription", events), ("rds:RemoveSourceIdentifierFromSubscription", events)]
    assert {a: decide_identity([own, before], *a) for a in attacks} == dict.fromkeys(attacks, "allow")
    assert {a: decide_identity([own, access], *a) for a in attacks} == dict.fromkeys(attacks, "deny")
    # (3) a neighbouring stack: `prod`'s topic admits an alarm a `prod-eu` service names bulkhead-prod-...
    fake = f"arn:aws:cloudwatch:{region}:{account}:alarm:bulkhead-prod-app-cpu-fake"
    topic = topic_policy(f"arn:aws:sns:{region}:{account}:bulkhead-prod-alerts", "aws", region, account, "prod")
    cloudwatch = Caller(None, account, service="cloudwatch.amazonaws.com", context={
        "aws:PrincipalIsAWSService": "true", "aws:SourceAccount": account, "aws:SourceArn": fake})
    assert decide(topic, cloudwatch, "sns:Publish", key_policy=False) == "allow"
    neighbour_before = {"Statement": [{**old_guard, "Resource": old_guard["Resource"].replace("bulkhead-prod-", "bulkhead-prod-eu-")}]}
    from components.prod.alarms import alarm_guard_statement
    neighbour = {"Statement": [alarm_guard_statement("aws", region, account, "prod-eu")]}
    assert decide_identity([own, neighbour_before], "cloudwatch:PutMetricAlarm", fake) == "allow"
    assert decide_identity([own, neighbour], "cloudwatch:PutMetricAlarm", fake) == "deny"
    # the role's own alarms and event subscriptions stay its own
    assert decide_identity([own, access], "cloudwatch:PutAlarmMuteRule",
                           f"arn:aws:cloudwatch:{region}:{account}:alarm:{database}-service-latency") == "allow"
    assert decide_identity([own, access], "rds:DeleteEventSubscription",
                           f"arn:aws:rds:{region}:{account}:es:{database}-service-events") == "allow"
