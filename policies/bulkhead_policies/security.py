"""Security: encryption at rest and in transit, no public reachability, credentials out of state."""

from __future__ import annotations

import ipaddress
from typing import Iterable

from . import thresholds
from ._resources import (
    INGRESS_RULE,
    KMS_KEY,
    LEGACY_SG_RULE,
    MANDATORY,
    RDS_INSTANCE,
    RDS_PARAMETER_GROUP,
    SECRET,
    SECURITY_GROUP,
    UNKNOWN,
    CouldNotCheck,
    Index,
    Res,
    as_list,
    resource_policy,
    schema,
    stack_policy,
    truthy,
)


def _aws_managed_key(value) -> bool:
    return isinstance(value, str) and ("alias/aws/" in value)


# --- rds-storage-encrypted -----------------------------------------------------------------------
def _inherits_encryption(r: Res) -> bool:
    # A same-region read replica is encrypted with its source's key and takes neither setting
    # (CreateDBInstanceReadReplica); replica-matches-primary follows it to the primary.
    return r.is_replica and not r.is_set("storageEncrypted") and not r.is_set("kmsKeyId")


def check_rds_storage_encrypted(r: Res, cfg: dict) -> Iterable[str]:
    if _inherits_encryption(r):
        return
    value = truthy(r.need("storageEncrypted"))
    if value is not True:
        yield (f"{r.label} does not encrypt its storage; set storage_encrypted=True with the database's own "
               f"KMS key (kms_key_id), as the RdsPostgres component does.")


# --- rds-customer-managed-key ----------------------------------------------------------------------
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


# --- rds-not-public --------------------------------------------------------------------------------
def check_rds_not_public(r: Res, cfg: dict) -> Iterable[str]:
    if truthy(r.need("publiclyAccessible")) is True:
        yield (f"{r.label} is publicly accessible; set publicly_accessible=False so that the database has no "
               f"public endpoint and only its security group decides who connects.")


# --- rds-managed-master-password -------------------------------------------------------------------
def check_rds_managed_master_password(r: Res, cfg: dict) -> Iterable[str]:
    if r.is_set("password"):
        yield (f"{r.label} sets a master password, which Pulumi then keeps in the stack state; remove "
               f"`password` and set manage_master_user_password=True so that RDS generates and rotates it "
               f"in Secrets Manager.")
    if r.is_primary and truthy(r.need("manageMasterUserPassword")) is not True:
        yield (f"{r.label} does not let RDS manage its master password; set manage_master_user_password=True "
               f"(the secret lives in Secrets Manager under the database's own key, never in Pulumi state).")


# --- rds-iam-auth ----------------------------------------------------------------------------------
def check_rds_iam_auth(r: Res, cfg: dict) -> Iterable[str]:
    if truthy(r.need("iamDatabaseAuthenticationEnabled")) is not True:
        yield (f"{r.label} has IAM database authentication off; set iam_database_authentication_enabled=True "
               f"so that the owner's access policy (rds-db:connect) can grant exactly this database.")


# --- rds-current-ca --------------------------------------------------------------------------------
def check_rds_current_ca(r: Res, cfg: dict) -> Iterable[str]:
    allowed = [str(a) for a in as_list(cfg.get("allowedCaIdentifiers"))]
    ca = r.need("caCertIdentifier")
    if not ca:
        yield (f"{r.label} does not set ca_cert_identifier, so its certificate authority is whatever the "
               f"account default is; set it to one of {', '.join(allowed)}.")
    elif ca not in allowed:
        yield (f"{r.label} uses certificate authority {ca}, which is not current; set ca_cert_identifier to "
               f"one of {', '.join(allowed)} so that clients verifying the certificate keep connecting.")


# --- rds-custom-admin-username ---------------------------------------------------------------------
def check_rds_custom_admin_username(r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_primary:
        return
    forbidden = {str(u).lower() for u in as_list(cfg.get("forbiddenAdminUsernames"))}
    username = r.need("username")
    if not username:
        yield (f"{r.label} does not set an admin username; set username to a name of your own "
               f"(bulkhead uses bulkhead_admin), not a default such as postgres.")
    elif str(username).lower() in forbidden:
        yield (f"{r.label} uses the well-known admin username '{username}'; choose a name of your own "
               f"(bulkhead uses bulkhead_admin) so that password guessing must also guess the user.")


# --- kms-key-rotation ------------------------------------------------------------------------------
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


# --- secret-customer-managed-key -------------------------------------------------------------------
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


# --- rds-ssl-enforced (stack: follows the instance to its parameter group) -------------------------
def _force_ssl_value(group: Res):
    for p in as_list(group.need("parameters")):
        if isinstance(p, dict) and p.get("name") == "rds.force_ssl":
            return str(p.get("value"))
    return None


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


POLICIES = [
    resource_policy(
        "rds-storage-encrypted",
        "RDS instances encrypt their storage (and so their snapshots and replicas).",
        MANDATORY, [RDS_INSTANCE], check_rds_storage_encrypted,
    ),
    resource_policy(
        "rds-customer-managed-key",
        "RDS instances are encrypted with a customer-managed KMS key, not the AWS-managed default.",
        MANDATORY, [RDS_INSTANCE], check_rds_customer_managed_key,
    ),
    resource_policy(
        "rds-not-public",
        "RDS instances have no public endpoint.",
        MANDATORY, [RDS_INSTANCE], check_rds_not_public,
    ),
    stack_policy(
        "rds-ssl-enforced",
        "RDS instances use a parameter group of the stack that sets rds.force_ssl=1.",
        MANDATORY, [RDS_INSTANCE, RDS_PARAMETER_GROUP], check_rds_ssl_enforced,
    ),
    resource_policy(
        "rds-managed-master-password",
        "RDS generates and keeps the master password in Secrets Manager; no password in Pulumi state.",
        MANDATORY, [RDS_INSTANCE], check_rds_managed_master_password,
    ),
    resource_policy(
        "rds-iam-auth",
        "RDS instances accept IAM database authentication, so access is granted per database by IAM.",
        MANDATORY, [RDS_INSTANCE], check_rds_iam_auth,
    ),
    resource_policy(
        "rds-current-ca",
        "RDS instances use a current certificate authority.",
        MANDATORY, [RDS_INSTANCE], check_rds_current_ca,
        config_schema=schema({
            "allowedCaIdentifiers": {
                "type": "array", "items": {"type": "string"},
                "default": list(thresholds.ALLOWED_CA_IDENTIFIERS),
                "description": "CA identifiers accepted for ca_cert_identifier.",
            },
        }),
    ),
    resource_policy(
        "rds-custom-admin-username",
        "RDS primaries use an admin username of their own, not a well-known default.",
        MANDATORY, [RDS_INSTANCE], check_rds_custom_admin_username,
        config_schema=schema({
            "forbiddenAdminUsernames": {
                "type": "array", "items": {"type": "string"},
                "default": list(thresholds.FORBIDDEN_ADMIN_USERNAMES),
                "description": "Admin usernames that are refused (compared case-insensitively).",
            },
        }),
    ),
    resource_policy(
        "kms-key-rotation",
        "Symmetric KMS keys rotate their key material automatically.",
        MANDATORY, [KMS_KEY], check_kms_key_rotation,
    ),
    resource_policy(
        "sg-no-public-ingress",
        "No security group or rule admits traffic from a public CIDR range.",
        MANDATORY, [SECURITY_GROUP, INGRESS_RULE, LEGACY_SG_RULE], check_sg_no_public_ingress,
    ),
    resource_policy(
        "secret-customer-managed-key",
        "Database secrets (RDS master secrets and Secrets Manager secrets) are encrypted with a customer-managed key.",
        MANDATORY, [RDS_INSTANCE, SECRET], check_secret_customer_managed_key,
    ),
]
