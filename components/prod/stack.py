"""The prod stack: shared foundation and backups, a client group per service, an RdsPostgres per database."""

from __future__ import annotations

from typing import Any, Collection, Mapping, Optional

import pulumi
import pulumi_aws as aws

from components.prod import key_policies
from components.prod.backup import AwsBackup, AwsBackupArgs
from components.prod.context import AwsContext, AwsNetwork, BootstrapPackage
from components.prod.foundation import AwsFoundation, AwsFoundationArgs
from components.catalogue.model import Catalogue
from components.prod.lambda_archive import write_archive
from components.prod.rds_bootstrap import bootstrap_archive
from components.prod.rds_postgres import RdsPostgres, RdsPostgresArgs
from components.prod.restore_testing import RestoreTarget, RestoreTesting, RestoreTestingArgs
from components.prod.service_client import ServiceClient, ServiceClientArgs
from components.prod.vpc_endpoints import VpcEndpoints, VpcEndpointsArgs
from components.prod import windows as db_windows
from components.prod.alarms import (AlertTopic, AlertTopicArgs, DatabaseAlarms, DatabaseAlarmsArgs, RdsEvents,
                                    RdsEventsArgs)
from components.catalogue.model import alarm_thresholds
from components.tags import database_tags


def build_aws_stack(catalogue: Catalogue, provider_settings: Optional[Mapping[str, Any]] = None,
                    build_dir: str = ".bulkhead/build",
                    only: Optional[Collection[str]] = None) -> tuple[dict[str, dict], dict]:
    """Build every database; return (database name -> connection info, the `network` output).

    `only`: build just these databases' resources (and their owners' client groups) besides the
    stack-wide ones, which always see the whole catalogue. Only an offline `plan --jobs` worker
    passes it (bulkhead/offline/parallel.py merges the workers' plans); None = every database.

    `provider_settings`: the stack's `aws:` provider config (profile, assume_roles, ...),
    for the second provider of the DR region. `build_dir`: where the bootstrap
    function's package is written (content-addressed; the deployment uploads it)."""
    # One package for every database's function: same code, each with its own role and secret.
    archive = bootstrap_archive()
    archive_path = write_archive(archive, build_dir, "bootstrap")
    # Policies name ARNs of this account, partition and region, and the deploying identity.
    partition = aws.get_partition_output().partition
    region = aws.get_region_output().region
    account = aws.get_caller_identity_output().account_id
    # `bulkhead:deployers`, never the caller of the moment: another listed identity's `up`
    # must find the same policies (components/catalogue/deployers.py).
    deployers = key_policies.deployer_principals(catalogue.deployers)
    foundation = AwsFoundation("foundation", AwsFoundationArgs(
        stack=catalogue.stack, network=catalogue.network, flow_logs=catalogue.flow_logs,
        flow_log_retention_days=flow_log_retention_days(catalogue), partition=partition, region=region,
        account=account, key_admins=catalogue.key_admins, protect=catalogue.protect))
    endpoints = None
    if catalogue.network is not None and not catalogue.network.secretsmanager_endpoint_exists:
        endpoints = secrets_endpoint_in_given_network(catalogue, foundation, region, account, partition)
    elif catalogue.network is None:
        # The stack's own isolated VPC: without these nothing in it reaches an AWS API.
        endpoints = VpcEndpoints(
            "endpoints",
            VpcEndpointsArgs(
                stack=catalogue.stack,
                vpc_id=foundation.vpc_id,
                subnet_ids=foundation.subnet_ids,
                route_table_ids=foundation.route_table_ids,
                region=region,
                account=account,
                partition=partition,
            ),
        )
    endpoint_group = endpoints.security_group_id if endpoints is not None else None
    # The bootstrap's first call is GetSecretValue through this endpoint: it must be there first.
    secrets_endpoint = [endpoints.endpoints["secretsmanager"]] if endpoints is not None else []
    context = AwsContext(
        stack=catalogue.stack,
        protect=catalogue.protect,
        partition=partition,
        region=region,
        account=account,
        key_admins=catalogue.key_admins,
        break_glass_principals=catalogue.break_glass_principals,
        deployer_principals=deployers,
        network=AwsNetwork(
            vpc_id=foundation.vpc_id,
            subnet_ids=foundation.subnet_ids,
            subnet_group_name=foundation.subnet_group_name,
            vpc_cidr=foundation.vpc_cidr,
            endpoint_security_group_id=endpoint_group,
            secrets_endpoint=secrets_endpoint,
            secrets_endpoint_url=endpoints.secrets_endpoint_url if endpoints is not None else None,
        ),
        monitoring_role_arn=foundation.monitoring_role_arn,
        bootstrap=BootstrapPackage(path=archive_path, hash=archive.sha256_b64),
    )
    tiers_in_use = {t: catalogue.backup_tiers[t] for t in sorted({d.tier for d in catalogue.databases.values()})}
    backup = AwsBackup(
        "backup",
        AwsBackupArgs(
            context=context,
            # Only tiers in use get a plan: an unused plan is noise in the console and in audits.
            tiers=tiers_in_use,
            dr_region=catalogue.dr_region,
            dr_provider_settings=provider_settings or {},
            vault_lock=catalogue.backup_vault_lock,
        ),
    )
    clients = {
        owner: ServiceClient(
            f"client-{owner}",
            ServiceClientArgs(
                stack=catalogue.stack,
                owner=owner,
                databases={n: catalogue.databases[n] for n in names},
                vpc_id=foundation.vpc_id,
                endpoint_security_group_id=endpoint_group,
                s3_prefix_list_id=endpoints.s3_prefix_list_id if endpoints is not None else None,
            ),
        )
        for owner, names in catalogue.owners().items()
        if only is None or any(n in only for n in names)
    }
    connections = {}
    restore_targets = {}
    # Issue 24: windows staggered per database, alarms and RDS events to the stack's alert topic.
    windows = derive_windows(catalogue)
    alerts = AlertTopic("alerts", AlertTopicArgs(context=context, alerts=catalogue.alerts))
    instances, rds_components = [], []
    for name, db in catalogue.databases.items():
        if only is not None and name not in only:
            continue
        component = RdsPostgres(
            name,
            RdsPostgresArgs(
                context=context,
                database=db,
                tier=catalogue.backup_tiers[db.tier],
                client_security_group_id=clients[db.owner].security_group_id,
                owner_principals=catalogue.owner_principals.get(db.owner, ()),
                windows=windows[name],
            ),
        )
        instances += [component.primary, *component.replicas]
        rds_components.append(component)
        thresholds = alarm_thresholds(db, catalogue.backup_tiers[db.tier])
        if thresholds is not None:
            DatabaseAlarms(f"{name}-alarms", DatabaseAlarmsArgs(
                stack=catalogue.stack, database=name, thresholds=thresholds, instance_class=db.instance_class,
                storage_gb=db.storage_gb, connection_limit=db.connection_limit,
                primary_identifier=component.identifier, replica_identifiers=component.replica_identifiers,
                topic_arn=alerts.topic_arn, tags=database_tags(catalogue.stack, {name: db}),
                depends_on=[component.primary, *component.replicas]),
                # Under the database's component: its alarms are its resources (plan, audit, split).
                opts=pulumi.ResourceOptions(parent=component))
        connections[name] = component.connection
        restore_targets[name] = RestoreTarget(
            tier=db.tier,
            instance_arn=component.primary.arn,
            subnet_group_name=foundation.subnet_group_name,
            security_group_id=component.security_group.id,
        )
    RdsEvents("events", RdsEventsArgs(
        stack=catalogue.stack, topic_arn=alerts.topic_arn,
        source_ids=[ident for c in rds_components for ident in [c.identifier, *c.replica_identifiers]],
        depends_on=instances))
    RestoreTesting(
        "restore-testing",
        RestoreTestingArgs(
            stack=catalogue.stack,
            tiers=tiers_in_use,
            vault_arn=backup.vault_arn,
            role_arn=backup.role_arn,
            databases=restore_targets,
        ),
    )
    network = {
        "vpc_id": foundation.vpc_id,
        "subnet_ids": foundation.subnet_ids,
        # None with `bulkhead:network`: that network provides the path to the AWS APIs.
        "endpoint_security_group_id": endpoint_group,
    }
    return connections, network


# The windows derived for a catalogue object (frozen), kept with it: an offline `plan --jobs`
# parent derives them once before forking and its workers inherit them (bulkhead/offline/
# parallel.py; every database's windows: ~0.15 s CPU per worker at N=500).
_WINDOWS: dict[int, tuple[Catalogue, dict]] = {}


def derive_windows(catalogue: Catalogue) -> dict[str, db_windows.Windows]:
    """Every database's backup and maintenance windows (components/prod/windows.py)."""
    known = _WINDOWS.get(id(catalogue))
    if known is not None and known[0] is catalogue:
        return dict(known[1])
    windows = _derive_windows(catalogue)
    _WINDOWS.clear()
    _WINDOWS[id(catalogue)] = (catalogue, windows)
    return dict(windows)


def _derive_windows(catalogue: Catalogue) -> dict[str, db_windows.Windows]:
    return db_windows.derive({
        name: db_windows.WindowRequest(owner=db.owner, schedule=catalogue.backup_tiers[db.tier].schedule,
                                       backup_window=db.backup_window, maintenance_window=db.maintenance_window)
        for name, db in catalogue.databases.items()
    }, catalogue.window_derivation)


def flow_log_retention_days(catalogue: Catalogue) -> int:
    """The longest log retention of the tiers in use: flow logs serve the same investigations."""
    in_use = {d.tier for d in catalogue.databases.values()}
    return max((catalogue.backup_tiers[t].log_retention_days for t in in_use), default=30)


def secrets_endpoint_in_given_network(catalogue: Catalogue, foundation: AwsFoundation, region, account,
                                      partition) -> VpcEndpoints:
    """`bulkhead:network` with secretsmanager_endpoint_exists: false: the given VPC has no Secrets
    Manager endpoint, so the stack creates one (and its group) in the given subnets. Without it the
    bootstrap function's GetSecretValue has no route (the subnets have none to the internet, or
    the function's group allows HTTPS only inside the VPC) and every invocation times out. Not
    created when one exists: a second interface endpoint with private DNS for the same service
    in one VPC is refused (conflicting DNS domain; PrivateLink guide, "private DNS")."""
    return VpcEndpoints(
        "endpoints",
        VpcEndpointsArgs(
            stack=catalogue.stack,
            vpc_id=foundation.vpc_id,
            subnet_ids=foundation.subnet_ids,
            route_table_ids=[],
            region=region,
            interface_services=("secretsmanager",),
            gateway_services=(),
            # The same endpoint policy as the stack's own endpoints: this account's principals only.
            account=account,
            partition=partition,
            # Not the VPC's Secrets Manager name: the bootstrap function calls the endpoint by its own
            # name (AwsNetwork.secrets_endpoint_url), other workloads of the VPC keep their path.
            private_dns=False,
        ),
    )
