"""Security: encryption at rest and in transit, no public reachability, credentials out of state."""

from __future__ import annotations

import ipaddress
from typing import Iterable

from bulkhead_types import ADMIN_USER

from . import thresholds
from ._resources import (
    INGRESS_RULE,
    KMS_KEY,
    LEGACY_SG_RULE,
    MANDATORY,
    RANDOM_PASSWORD,
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    SECRET,
    SECURITY_GROUP,
    UNKNOWN,
    CouldNotCheck,
    Index,
    Res,
    as_list,
    resource_rule,
    schema,
    string_list,
    stack_rule,
    truthy,
)

# Filled by @resource_rule / @stack_rule where each check is defined, in definition order.
POLICIES: list = []


def _aws_managed_key(value) -> bool:
    return isinstance(value, str) and ("alias/aws/" in value)


# --- rds-storage-encrypted -----------------------------------------------------------------------
def _inherits_encryption(r: Res) -> bool:
    # A same-region read replica is encrypted with its source's key and takes neither setting
    # (CreateDBInstanceReadReplica); replica-matches-primary follows it to the primary.
    return r.is_replica and not r.is_set("storageEncrypted") and not r.is_set("kmsKeyId")


@resource_rule(POLICIES, "rds-storage-encrypted",
    "RDS instances encrypt their storage (and so their snapshots and replicas).",
    MANDATORY, [RDS_INSTANCE],
)
def check_rds_storage_encrypted(r: Res, cfg: dict) -> Iterable[str]:
    if _inherits_encryption(r):
        return
    value = truthy(r.need("storageEncrypted"))
    if value is not True:
        yield (f"{r.label} does not encrypt its storage; set storage_encrypted=True with the database's own "
               f"KMS key (kms_key_id), as the RdsPostgres component does.")


@resource_rule(POLICIES, "rds-customer-managed-key",
    "RDS instances are encrypted with a customer-managed KMS key, not the AWS-managed default.",
    MANDATORY, [RDS_INSTANCE],
)
def check_rds_customer_managed_key(r: Res, cfg: dict) -> Iterable[str]:
    if _inherits_encryption(r):
        return
    key = r.get("kmsKeyId")
    if key is UNKNOWN:
        return  # a reference to a key created by this stack: a customer-managed key
    if not key:
        yield (f"{r.label} is encrypted with the AWS-managed default key (no kms_key_id); give it its own "
               f"customer-managed KMS key so that revoking or auditing access touches this database only.")
    elif _aws_managed_key(key):
        yield (f"{r.label} uses the AWS-managed key {key}; set kms_key_id to the database's own "
               f"customer-managed KMS key.")


@resource_rule(POLICIES, "rds-not-public",
    "RDS instances have no public endpoint.",
    MANDATORY, [RDS_INSTANCE],
)
def check_rds_not_public(r: Res, cfg: dict) -> Iterable[str]:
    if truthy(r.need("publiclyAccessible")) is True:
        yield (f"{r.label} is publicly accessible; set publicly_accessible=False so that the database has no "
               f"public endpoint and only its security group decides who connects.")


# --- rds-ssl-enforced (stack: follows the instance to its parameter group) -------------------------
def _force_ssl_value(group: Res):
    for p in as_list(group.need("parameters")):
        if isinstance(p, dict) and p.get("name") == "rds.force_ssl":
            return str(p.get("value"))
    return None


@stack_rule(POLICIES, "rds-ssl-enforced",
    "RDS instances use a parameter group of the stack that sets rds.force_ssl=1.",
    MANDATORY, [RDS_INSTANCE, RDS_PARAMETER_GROUP],
)
def check_rds_ssl_enforced(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == RDS_PARAMETER_GROUP:
        value = _force_ssl_value(r)
        if value is not None and value != "1":
            yield (f"{r.label} sets rds.force_ssl={value}; set it to 1 so that the server refuses "
                   f"connections without TLS.")
        return
    raw = r.get("parameterGroupName")
    groups, unresolved, unknown = index.refs(r, "parameterGroupName", RDS_PARAMETER_GROUP)
    if groups:
        for group in groups:
            if _force_ssl_value(group) != "1":
                yield (f"{r.label} uses parameter group {group.name}, which does not set rds.force_ssl=1; "
                       f"add it so that connections without TLS are refused.")
        return
    if unknown:
        raise CouldNotCheck(r, "parameterGroupName")
    if not raw:
        yield (f"{r.label} uses the default parameter group, which does not force SSL; give it a parameter "
               f"group of its own with rds.force_ssl=1.")
    else:
        yield (f"{r.label} uses parameter group {raw}, which is not managed by this stack, so SSL enforcement "
               f"cannot be verified; use the database's own parameter group with rds.force_ssl=1.")


# --- rds-managed-master-password -------------------------------------------------------------------
# The name is kept (product surface); what it demands changed with replicas: RDS refuses a
# read replica of an instance whose master password it manages in Secrets Manager (RDS User
# Guide, "Limitations for Secrets Manager integration"). So the master password is either
# RDS-managed on a primary without replicas, or generated by a RandomPassword (whether it
# is generated is read from the password's propertyDependencies, never from its visibility).
def _replicas_of(index: Index, primary: Res) -> list[Res]:
    return [i for i in index.referrers(primary, (RDS_INSTANCE,), "replicateSourceDb") if i.is_replica]


@stack_rule(POLICIES, "rds-managed-master-password",
    "The master password is never typed in: generated by a RandomPassword (kept as a secret) or, on a "
    "primary without read replicas, managed by RDS in Secrets Manager; a primary with replicas is never "
    "RDS-managed, since RDS cannot create replicas of it.",
    MANDATORY, [RDS_INSTANCE],
)
def check_rds_managed_master_password(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_primary:
        if r.is_set("password") or truthy(r.get("manageMasterUserPassword")) is True:
            yield (f"{r.label} is a read replica with a master password setting of its own; remove it, a "
                   f"replica takes its primary's master.")
        return
    managed = truthy(r.need("manageMasterUserPassword")) is True
    if managed and _replicas_of(index, r):
        yield (f"{r.label} lets RDS manage its master password in Secrets Manager but has read replicas, which "
               f"RDS refuses to create for such an instance; generate the master password with RandomPassword "
               f"and keep it in a Secrets Manager secret of the database (as RdsPostgres does).")
    if r.is_set("password") or r.is_set("passwordWo"):
        key = "password" if r.is_set("password") else "passwordWo"
        generated = [u for u in r.deps.get(key, []) if getattr(index.by_urn.get(u), "type", None) == RANDOM_PASSWORD]
        if not generated:
            yield (f"{r.label} sets a master password that no RandomPassword generated, so it is typed into the "
                   f"program or its config and readable there; generate it with RandomPassword and pass it as a "
                   f"Pulumi secret.")
    elif not managed:
        yield (f"{r.label} has no master password source; generate one with RandomPassword (password) or, "
               f"without replicas, set manage_master_user_password=True.")


@resource_rule(POLICIES, "rds-iam-auth",
    "RDS instances accept IAM database authentication, so access is granted per database by IAM.",
    MANDATORY, [RDS_INSTANCE],
)
def check_rds_iam_auth(r: Res, cfg: dict) -> Iterable[str]:
    if truthy(r.need("iamDatabaseAuthenticationEnabled")) is not True:
        yield (f"{r.label} has IAM database authentication off; set iam_database_authentication_enabled=True "
               f"so that the owner's access policy (rds-db:connect) can grant exactly this database.")


@resource_rule(POLICIES, "rds-current-ca",
    "RDS instances use a current certificate authority.",
    MANDATORY, [RDS_INSTANCE],
    config_schema=schema({"allowedCaIdentifiers": string_list(thresholds.ALLOWED_CA_IDENTIFIERS,
                                                              "CA identifiers accepted for ca_cert_identifier.")}),
)
def check_rds_current_ca(r: Res, cfg: dict) -> Iterable[str]:
    allowed = [str(a) for a in as_list(cfg.get("allowedCaIdentifiers"))]
    ca = r.need("caCertIdentifier")
    if not ca:
        yield (f"{r.label} does not set ca_cert_identifier, so its certificate authority is whatever the "
               f"account default is; set it to one of {', '.join(allowed)}.")
    elif ca not in allowed:
        yield (f"{r.label} uses certificate authority {ca}, which is not current; set ca_cert_identifier to "
               f"one of {', '.join(allowed)} so that clients verifying the certificate keep connecting.")


@resource_rule(POLICIES, "rds-custom-admin-username",
    "RDS primaries use an admin username of their own, not a well-known default.",
    MANDATORY, [RDS_INSTANCE],
    config_schema=schema({"forbiddenAdminUsernames": string_list(
        thresholds.FORBIDDEN_ADMIN_USERNAMES, "Admin usernames that are refused (compared case-insensitively).")}),
)
def check_rds_custom_admin_username(r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_primary:
        return
    forbidden = {str(u).lower() for u in as_list(cfg.get("forbiddenAdminUsernames"))}
    username = r.need("username")
    if not username:
        yield (f"{r.label} does not set an admin username; set username to a name of your own "
               f"(bulkhead uses {ADMIN_USER}), not a default such as postgres.")
    elif str(username).lower() in forbidden:
        yield (f"{r.label} uses the well-known admin username '{username}'; choose a name of your own "
               f"(bulkhead uses {ADMIN_USER}) so that password guessing must also guess the user.")


@resource_rule(POLICIES, "kms-key-rotation",
    "Symmetric KMS keys rotate their key material automatically.",
    MANDATORY, [KMS_KEY],
)
def check_kms_key_rotation(r: Res, cfg: dict) -> Iterable[str]:
    spec = r.get("customerMasterKeySpec") or r.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec is not UNKNOWN and spec != "SYMMETRIC_DEFAULT":
        return  # AWS rotates only symmetric keys
    if truthy(r.need("enableKeyRotation")) is not True:
        yield (f"{r.label} has automatic rotation off; set enable_key_rotation=True so that its key material "
               f"is rotated yearly.")


# --- sg-no-public-ingress --------------------------------------------------------------------------
def _public(cidr) -> bool:
    if not isinstance(cidr, str):
        return False
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return False
    return not (net.is_private or net.is_loopback or net.is_link_local)


@resource_rule(POLICIES, "sg-no-public-ingress",
    "No security group or rule admits traffic from a public CIDR range.",
    MANDATORY, [SECURITY_GROUP, INGRESS_RULE, LEGACY_SG_RULE],
)
def check_sg_no_public_ingress(r: Res, cfg: dict) -> Iterable[str]:
    cidrs: list = []
    if r.type == INGRESS_RULE:
        cidrs = [r.need("cidrIpv4"), r.need("cidrIpv6")]
    elif r.type == LEGACY_SG_RULE:
        if r.need("type") != "ingress":
            return
        cidrs = as_list(r.need("cidrBlocks")) + as_list(r.need("ipv6CidrBlocks"))
    elif r.type == SECURITY_GROUP:
        for block in as_list(r.need("ingress")):
            if isinstance(block, dict):
                cidrs += as_list(block.get("cidrBlocks")) + as_list(block.get("ipv6CidrBlocks"))
    public = sorted({c for c in cidrs if _public(c)})
    if public:
        yield (f"{r.label} admits traffic from the internet ({', '.join(public)}); remove it and admit only "
               f"the owning service's client security group.")


@resource_rule(POLICIES, "secret-customer-managed-key",
    "Database secrets (RDS master secrets and Secrets Manager secrets) are encrypted with a customer-managed key.",
    MANDATORY, [RDS_INSTANCE, SECRET],
)
def check_secret_customer_managed_key(r: Res, cfg: dict) -> Iterable[str]:
    if r.type == RDS_INSTANCE:
        if not r.is_primary or truthy(r.get("manageMasterUserPassword")) is not True:
            return
        key = r.get("masterUserSecretKmsKeyId")
        if key is UNKNOWN:
            return
        if not key or _aws_managed_key(key):
            yield (f"{r.label} keeps its master secret under the AWS-managed Secrets Manager key; set "
                   f"master_user_secret_kms_key_id to the database's own KMS key.")
    elif r.type == SECRET:
        key = r.get("kmsKeyId")
        if key is UNKNOWN:
            return
        if not key or _aws_managed_key(key):
            yield (f"{r.label} is encrypted with the AWS-managed key; set kms_key_id to the owning database's "
                   f"customer-managed KMS key.")
