"""Who is told when a database is in trouble (issue 24, item 1).

- AlertTopic: one SNS topic per stack, encrypted with a key of its own, and its subscribers
  (`bulkhead:alerts`: emails, HTTPS endpoints), or an existing topic (`alerts.topic_arn`) used
  instead, in which case nothing is created here.
- DatabaseAlarms: CloudWatch metric alarms per database, thresholds from its tier (catalogue
  `backup_tiers.<tier>.alarms`, the database's `alarms` over them): CPUUtilization of every
  instance, FreeStorageSpace, DatabaseConnections (against the login role's connection limit) and
  FreeableMemory (against the class's memory) of the primary, ReplicaLag of each replica.
- RdsEvents: one RDS event subscription per stack for every instance of the stack.

Metrics: namespace AWS/RDS, dimension DBInstanceIdentifier (RDS User Guide, "Amazon CloudWatch
metrics for Amazon RDS": CPUUtilization Percent, FreeStorageSpace Bytes, DatabaseConnections
Count, FreeableMemory Bytes, ReplicaLag Seconds). Resources: aws_cloudwatch_metric_alarm
(PutMetricAlarm), aws_sns_topic (CreateTopic, KmsMasterKeyId attribute), aws_sns_topic_policy
(SetTopicAttributes Policy), aws_sns_topic_subscription (Subscribe), aws_db_event_subscription
(CreateEventSubscription), all in hashicorp/terraform-provider-aws internal/service/{cloudwatch,
sns,rds}.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.catalogue.checks import rds_memory_gib
from components.catalogue.model import AlarmThresholds, Alerts
from components.prod import key_policies
from components.prod.context import AwsContext
from components.prod.naming import aws_name
from components.tags import TAG_ROLE, TAG_STACK

# Each alarm looks at 5-minute averages (RDS publishes these metrics every minute; 300 s periods
# keep one alarm at the standard-resolution price). CPU and connections must stay high for 3
# periods (15 minutes) so a burst does not page anyone; storage, memory and lag after 2.
PERIOD_SECONDS = 300
# RDS event categories of source type db-instance that mean trouble or a change an owner must
# know of (RDS User Guide, "Amazon RDS event categories and event messages", DB instance events;
# DescribeEventCategories lists them per source type). Not creation/backup/notification chatter.
EVENT_CATEGORIES = (
    "availability",
    "configuration change",
    "deletion",
    "failover",
    "failure",
    "low storage",
    "maintenance",
    "read replica",
    "recovery",
    "restoration",
)
GIB = 1024 ** 3
KMS_DELETION_WINDOW = 30
# Who publishes to the topic: CloudWatch alarms and RDS event notifications. An encrypted topic's
# key must let them generate a data key and decrypt: the AWS managed key alias/aws/sns cannot,
# so CloudWatch alarm actions fail with "not authorized to access the SNS topic's encryption key"
# (SNS Developer Guide, "Key management" > "Enable compatibility between event sources from AWS
# services and encrypted topics"; AWS re:Post knowledge center "cloudwatch-configure-alarm-sns").
PUBLISHERS = ("cloudwatch.amazonaws.com", "events.rds.amazonaws.com")


def topic_name(stack: str) -> str:
    # SNS topic names: 1-256 of letters, digits, hyphens and underscores (CreateTopic).
    return aws_name("bulkhead", stack, "alerts", max_length=256)


def alarm_prefix(stack: str) -> str:
    """Every alarm of the stack is named `<prefix>-<database>-<metric>`; the topic policy admits
    alarms of this prefix only."""
    return aws_name("bulkhead", stack)


# What a service's role must never do to the stack's alarms (review of issue 24, o-fix). The topic policy
# admits CloudWatch for any alarm of the stack's prefix (an SNS policy has no room for every alarm ARN of a
# large stack: 30 KB), so a role allowed cloudwatch:PutMetricAlarm could create `<prefix>-anything` with the
# topic as its action and page everyone with a fake alarm or a fake OK, or overwrite one of bulkhead's
# alarms ("When you update an existing alarm ... the update completely overwrites the previous
# configuration", PutMetricAlarm, CloudWatch API reference); SetAlarmState to OK, DisableAlarmActions or
# DeleteAlarms silence a real one. Each of these actions takes the alarm ARN as its resource
# (Service Authorization Reference, "Actions, resources, and condition keys for Amazon CloudWatch":
# resource type alarm, arn:${Partition}:cloudwatch:${Region}:${Account}:alarm:${AlarmName}).
# cloudwatch:PutAlarmMuteRule (review rev-ops2): an alarm mute rule mutes the actions of up to 100 alarms named
# in it, on a cron schedule or once, for up to 15 days a time, while they keep changing state; it is authorised on the
# mute rule AND on "each alarm that the rule targets" (CloudWatch API reference, PutAlarmMuteRule, Permissions), so a
# Deny on the alarm ARNs keeps a service's role from muting bulkhead's alarms for good.
ALARM_GUARDED_ACTIONS = ("cloudwatch:PutMetricAlarm", "cloudwatch:PutCompositeAlarm", "cloudwatch:DeleteAlarms",
                         "cloudwatch:SetAlarmState", "cloudwatch:DisableAlarmActions", "cloudwatch:EnableAlarmActions",
                         "cloudwatch:TagResource", "cloudwatch:UntagResource", "cloudwatch:PutAlarmMuteRule")
# The stack's RDS event subscription is the other half of "who is told" (failover, low storage, ...): deleting or
# disabling it, narrowing its categories or removing instances from it silences them until the next `up`. Each of
# these actions takes the subscription's ARN, resource type es (Service Authorization Reference, "Actions,
# resources, and condition keys for Amazon RDS": arn:${Partition}:rds:${Region}:${Account}:es:${SubscriptionName}).
EVENT_SUBSCRIPTION_GUARDED_ACTIONS = ("rds:DeleteEventSubscription", "rds:ModifyEventSubscription",
                                      "rds:RemoveSourceIdentifierFromSubscription")


def alarm_guard_statement(partition: str, region: str, account: str, stack: str) -> dict:
    """The Deny every access policy of the stack carries (components/prod/rds_postgres.py): a service's role,
    which attaches its access policy to reach its database, can then neither create an alarm in the stack's
    alarm namespace nor change, silence or delete bulkhead's alarms, whatever else its own policies allow
    (an explicit Deny wins: IAM User Guide, "Policy evaluation logic")."""
    # Every bulkhead stack's names, not this stack's only (review rev-ops2): the topic of stack `prod` admits alarms
    # named `bulkhead-prod-*`, which a service of stack `prod-eu` (or `prod.eu`: the same aws_name) could create
    # outside its own `bulkhead-prod-eu-*`. alarm_prefix and event_subscription_name always begin with `bulkhead-`.
    # (The Sid stays: audit and the tests find the guard by it.)
    del stack
    return {"Sid": "NeverTheStacksAlarms", "Effect": "Deny",
            "Action": [*ALARM_GUARDED_ACTIONS, *EVENT_SUBSCRIPTION_GUARDED_ACTIONS],
            "Resource": [f"arn:{partition}:cloudwatch:{region}:{account}:alarm:bulkhead-*",
                         f"arn:{partition}:rds:{region}:{account}:es:bulkhead-*"]}


def topic_key_policy(partition: str, region: str, account: str, admins: Sequence[str]) -> dict:
    """The stack key's policy: administered as every bulkhead key, used by the account through SNS
    only, and by the two publishing services for their data keys."""
    policy = key_policies.key_policy(partition=partition, region=region, account=account, admins=admins,
                                     services=("sns",))
    policy["Statement"].append({
        "Sid": "AlarmsAndRdsEventsPublish",
        "Effect": "Allow",
        "Principal": {"Service": list(PUBLISHERS)},
        # What SNS's guide lists for a publishing AWS service: kms:GenerateDataKey* and kms:Decrypt.
        # No aws:SourceAccount condition here: the services do not all pass it to KMS; the topic
        # policy (the only place this key is used) limits who may publish.
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": "*",
    })
    return policy


# What only the deployers and break-glass do to the topic: publish (an alert of its own: a fake "OK" or a
# storm), subscribe (every alert of every database of the stack), change its policy or delete it.
TOPIC_GUARDED_ACTIONS = ("sns:Publish", "sns:Subscribe", "sns:SetTopicAttributes", "sns:AddPermission",
                         "sns:RemovePermission", "sns:DeleteTopic", "sns:PutDataProtectionPolicy")


def topic_policy(topic_arn: str, partition: str, region: str, account: str, stack: str,
                 deployers: Sequence[str] = (), break_glass: Sequence[str] = ()) -> dict:
    """Only this account's alarms of this stack and RDS events of this stack's instances publish
    (SNS Developer Guide, "Example cases for Amazon SNS access control"; RDS User Guide, "Granting
    permissions to publish notifications to an Amazon SNS topic": events.rds.amazonaws.com with
    aws:SourceArn / aws:SourceAccount)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StackAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{alarm_prefix(stack)}-*"},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            },
            {
                "Sid": "StackRdsEventsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "events.rds.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    # The RDS guide's example names the source instances (db:<prefix>*); the
                    # subscription's own ARN is listed too. Both are this stack's only.
                    "ArnLike": {"aws:SourceArn": [f"arn:{partition}:rds:{region}:{account}:db:{aws_name(stack)}-*",
                                                  f"arn:{partition}:rds:{region}:{account}:es:{event_subscription_name(stack)}"]},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            },
            {
                # In one account an identity policy allowing sns:Publish or sns:Subscribe on * is enough
                # whatever the topic policy allows (IAM User Guide, "Policy evaluation logic"): only a Deny
                # keeps a service's role from spoofing or reading the stack's alerts. The two publishing
                # services are exempt (aws:PrincipalIsAWSService true; BoolIfExists as IAM's own example
                # "aws:PrincipalIsAWSService" in "AWS global condition context keys").
                "Sid": "OnlyDeployersAndBreakGlassPublishSubscribeOrChange",
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(TOPIC_GUARDED_ACTIONS),
                "Resource": topic_arn,
                "Condition": {
                    "ArnNotLike": {"aws:PrincipalArn": sorted({*deployers, *(list(break_glass) or
                                                                              [key_policies.account_root(partition, account)])})},
                    "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                },
            },
        ],
    }


def subscription_key(endpoint: str) -> str:
    """A subscription's resource name part: stable whatever the endpoint's place in `bulkhead:alerts`,
    and no address or URL in the URN."""
    return hashlib.sha256(endpoint.encode()).hexdigest()[:12]


def event_subscription_name(stack: str) -> str:
    # SubscriptionName: letters, digits and hyphens, under 255 characters (CreateEventSubscription).
    return aws_name("bulkhead", stack, "events", max_length=254)


@dataclass
class AlertTopicArgs:
    context: AwsContext
    alerts: Optional[Alerts]


class AlertTopic(pulumi.ComponentResource):
    """Outputs `topic_arn`: where the stack's alarms and RDS events go."""

    topic_arn: pulumi.Output

    def __init__(self, name: str, args: AlertTopicArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:AlertTopic", name, None, opts)
        self._name = name
        self._args = args
        self._tags = {TAG_STACK: args.context.stack}
        alerts = args.alerts
        if alerts is not None and alerts.topic_arn is not None:
            # An existing topic (the catalogue checked it is in the stack's region): its owner
            # manages its key, policy and subscribers.
            self.topic_arn = pulumi.Output.from_input(alerts.topic_arn)
            self.topic = None
        else:
            self.key = self._create_key()
            self.topic = self._create_topic()
            self.topic_arn = self.topic.arn
            for kind, endpoints in (("email", alerts.emails if alerts else []), ("https", alerts.https if alerts else [])):
                # Once each: SNS's Subscribe returns the existing subscription for the same endpoint, so two
                # resources would share one and deleting either would unsubscribe both.
                for endpoint in dict.fromkeys(endpoints):
                    self._subscribe(kind, endpoint)
        self.register_outputs({"topic_arn": self.topic_arn})

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_key(self) -> aws.kms.Key:
        c = self._args.context
        key = aws.kms.Key(
            f"{self._name}-key",
            description=f"bulkhead {c.stack}: the alerts topic",
            # KMS "Rotating keys": yearly automatic rotation; the key encrypts only messages in transit.
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW,
            policy=pulumi.Output.all(c.partition, c.region, c.account).apply(
                lambda v: key_policies.dumps(topic_key_policy(v[0], v[1], v[2], c.key_admins))),
            tags={**self._tags, TAG_ROLE: "alerts-key"},
            # Protected as every key of the stack (the pack's rds-protected-resource rule): a deleted key
            # leaves the topic unable to take a message until the next `up`.
            opts=self._opts(protect=c.protect),
        )
        aws.kms.Alias(
            f"{self._name}-key-alias",
            name=f"alias/bulkhead/{aws_name(c.stack)}/alerts",
            target_key_id=key.key_id,
            opts=self._opts(),
        )
        return key

    def _create_topic(self) -> aws.sns.Topic:
        c = self._args.context
        topic = aws.sns.Topic(
            f"{self._name}-topic",
            name=topic_name(c.stack),
            # aws_sns_topic kms_master_key_id -> the KmsMasterKeyId attribute (SNS server-side encryption).
            kms_master_key_id=self.key.arn,
            tags={**self._tags, TAG_ROLE: "alerts"},
            opts=self._opts(),
        )
        # aws_sns_topic_policy (SetTopicAttributes Policy): replaces SNS's default policy, which lets
        # every principal of the account publish; IAM still governs this account's own users.
        aws.sns.TopicPolicy(
            f"{self._name}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, c.partition, c.region, c.account, c.deployer_principals).apply(
                lambda v: json.dumps(topic_policy(v[0], v[1], v[2], v[3], c.stack, deployers=v[4],
                                                  break_glass=c.break_glass_principals))),
            opts=self._opts(),
        )
        return topic

    def _subscribe(self, protocol: str, endpoint: str) -> None:
        # aws_sns_topic_subscription (Subscribe): email and https endpoints stay "pending confirmation"
        # until their owner follows the link SNS sends; the provider does not wait for that unless
        # endpoint_auto_confirms is set (internal/service/sns/topic_subscription.go).
        # Named after the endpoint, not its place in the list: `endpoint` is ForceNew there, so with
        # index names removing the first address replaced every later subscription (Unsubscribe of a
        # confirmed one, a new pending one: those people got no alert until they confirmed again).
        aws.sns.TopicSubscription(
            f"{self._name}-{protocol}-{subscription_key(endpoint)}",
            topic=self.topic.arn,
            protocol=protocol,
            endpoint=endpoint,
            opts=self._opts(),
        )


@dataclass
class DatabaseAlarmsArgs:
    stack: str
    database: str  # catalogue name
    thresholds: AlarmThresholds
    instance_class: str
    storage_gb: int
    connection_limit: int
    primary_identifier: str
    replica_identifiers: Sequence[str]
    topic_arn: pulumi.Input[str]
    tags: dict
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm, as plain data (tests read these; the component turns them into resources)."""

    suffix: str
    identifier: str
    metric: str
    comparison: str
    threshold: float
    evaluation_periods: int
    description: str


def alarm_specs(a: DatabaseAlarmsArgs) -> list[AlarmSpec]:
    t = a.thresholds
    out: list[AlarmSpec] = []
    if t.cpu_percent is not None:
        for suffix, ident in [("cpu", a.primary_identifier)] + [(f"replica-{i + 1}-cpu", r) for i, r in enumerate(a.replica_identifiers)]:
            out.append(AlarmSpec(suffix, ident, "CPUUtilization", "GreaterThanThreshold", t.cpu_percent, 3,
                                 f"CPU of {ident} above {t.cpu_percent}% for 15 minutes"))
    if t.free_storage_percent is not None:
        threshold = a.storage_gb * GIB * t.free_storage_percent // 100
        out.append(AlarmSpec("storage", a.primary_identifier, "FreeStorageSpace", "LessThanThreshold", threshold, 2,
                             f"free storage of {a.primary_identifier} below {t.free_storage_percent}% of {a.storage_gb} GB "
                             "(storage autoscaling may already be adding space)"))
    if t.connections_percent is not None:
        threshold = max(1, math.ceil(a.connection_limit * t.connections_percent / 100))
        out.append(AlarmSpec("connections", a.primary_identifier, "DatabaseConnections", "GreaterThanOrEqualToThreshold",
                             threshold, 3, f"{a.primary_identifier} has {threshold} or more connections, "
                             f"{t.connections_percent}% of the service role's limit {a.connection_limit}"))
    memory = rds_memory_gib(a.instance_class)
    if t.freeable_memory_percent is not None and memory is not None:
        threshold = int(memory * GIB * t.freeable_memory_percent / 100)
        out.append(AlarmSpec("memory", a.primary_identifier, "FreeableMemory", "LessThanThreshold", threshold, 2,
                             f"freeable memory of {a.primary_identifier} below {t.freeable_memory_percent}% of the "
                             f"{memory:g} GiB of {a.instance_class}"))
    if t.replica_lag_seconds is not None:
        for i, ident in enumerate(a.replica_identifiers):
            out.append(AlarmSpec(f"replica-{i + 1}-lag", ident, "ReplicaLag", "GreaterThanThreshold", t.replica_lag_seconds, 2,
                                 f"{ident} is more than {t.replica_lag_seconds} s behind its primary"))
    return out


class DatabaseAlarms(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseAlarmsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:DatabaseAlarms", name, None, opts)
        self.alarms = []
        for spec in alarm_specs(args):
            self.alarms.append(aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.suffix}",
                # Alarm names: up to 255 characters, unique per account and region (PutMetricAlarm).
                name=f"{alarm_prefix(args.stack)}-{args.database}-{spec.suffix}",
                alarm_description=f"bulkhead {args.stack}/{args.database}: {spec.description}",
                namespace="AWS/RDS",
                metric_name=spec.metric,
                dimensions={"DBInstanceIdentifier": spec.identifier},
                statistic="Average",
                period=PERIOD_SECONDS,
                evaluation_periods=spec.evaluation_periods,
                comparison_operator=spec.comparison,
                threshold=spec.threshold,
                # No data (an instance being created, stopped or replaced) is not an alarm; RDS's own
                # events cover an instance that is down (availability, failure).
                treat_missing_data="missing",
                # Told when it fires and when it clears.
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                tags={**args.tags, TAG_ROLE: "alarm"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            ))
        self.register_outputs({})


@dataclass
class RdsEventsArgs:
    stack: str
    topic_arn: pulumi.Input[str]
    source_ids: Sequence[str]
    depends_on: Sequence[pulumi.Resource] = ()


class RdsEvents(pulumi.ComponentResource):
    """One RDS event subscription for every instance of the stack (RDS allows 20 subscriptions per
    account by default, RDS User Guide "Quotas in Amazon RDS": one per stack, not per database)."""

    def __init__(self, name: str, args: RdsEventsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:RdsEvents", name, None, opts)
        # aws_db_event_subscription: name is ForceNew, source_ids and event_categories are updated in
        # place (AddSourceIdentifierToSubscription / ModifyEventSubscription), so adding a database
        # does not replace the subscription. The instances must exist first (SourceNotFound).
        aws.rds.EventSubscription(
            f"{name}-subscription",
            name=event_subscription_name(args.stack),
            sns_topic=args.topic_arn,
            source_type="db-instance",
            source_ids=sorted(args.source_ids),
            event_categories=list(EVENT_CATEGORIES),
            enabled=True,
            tags={TAG_STACK: args.stack, TAG_ROLE: "events"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({})
