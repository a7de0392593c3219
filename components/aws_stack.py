"""The prod stack: shared foundation and backups, a client group per service, an RdsPostgres per database."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .aws_backup import AwsBackup, AwsBackupArgs
from .aws_foundation import AwsFoundation, AwsFoundationArgs
from .catalog import Catalogue
from .lambda_archive import write_archive
from .rds_bootstrap import bootstrap_archive
from .rds_postgres import RdsPostgres, RdsPostgresArgs
from .service_client import ServiceClient, ServiceClientArgs


def build_aws_stack(catalogue: Catalogue, provider_settings: Optional[Mapping[str, Any]] = None,
                    build_dir: str = ".bulkhead/build") -> dict[str, dict]:
    """Build every database; return database name -> connection info.

    `provider_settings`: the stack's `aws:` provider config (profile, assume_roles, ...),
    for the second provider of the DR region. `build_dir`: where the bootstrap
    function's package is written (content-addressed; the deployment uploads it)."""
    # One package for every database's function: same code, each with its own role and secret.
    archive = bootstrap_archive()
    archive_path = write_archive(archive, build_dir, "bootstrap")
    foundation = AwsFoundation("foundation", AwsFoundationArgs(stack=catalogue.stack, network=catalogue.network))
    AwsBackup(
        "backup",
        AwsBackupArgs(
            stack=catalogue.stack,
            # Only tiers in use get a plan: an unused plan is noise in the console and in audits.
            tiers={t: catalogue.backup_tiers[t] for t in sorted({d.tier for d in catalogue.databases.values()})},
            dr_region=catalogue.dr_region,
            protect=catalogue.protect,
            dr_provider_settings=provider_settings or {},
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
            ),
        )
        for owner, names in catalogue.owners().items()
    }
    connections = {}
    for name, db in catalogue.databases.items():
        component = RdsPostgres(
            name,
            RdsPostgresArgs(
                stack=catalogue.stack,
                database=db,
                tier=catalogue.backup_tiers[db.tier],
                subnet_group_name=foundation.subnet_group_name,
                vpc_id=foundation.vpc_id,
                client_security_group_id=clients[db.owner].security_group_id,
                monitoring_role_arn=foundation.monitoring_role_arn,
                subnet_ids=foundation.subnet_ids,
                bootstrap_archive_path=archive_path,
                bootstrap_archive_hash=archive.sha256_b64,
                protect=catalogue.protect,
                interim_https_cidr=foundation.vpc_cidr,
            ),
        )
        connections[name] = component.connection
    return connections
