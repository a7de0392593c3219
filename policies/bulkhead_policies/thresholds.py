"""Default thresholds of the bulkhead policy pack.

Every value here is also a config-schema default of the policy that uses it, so a
team can override it with `pulumi preview --policy-config` or
`python -m bulkhead check --policy-config`. Other tools (`bulkhead audit`) import
these names; keep them stable.
"""

from __future__ import annotations

# RDS CA certificates that are current (rds-ca-2019 expired in August 2024).
ALLOWED_CA_IDENTIFIERS: tuple[str, ...] = (
    "rds-ca-rsa2048-g1",
    "rds-ca-rsa4096-g1",
    "rds-ca-ecc384-g1",
)

# Minimum RDS automated-backup (point-in-time recovery) retention in days, per tier.
MIN_RETENTION_DAYS_BY_TIER: dict[str, int] = {
    "critical": 14,
    "standard": 7,
}
# For a tier not listed above.
DEFAULT_MIN_RETENTION_DAYS: int = 7

# Minimum AWS Backup recovery-point retention (plan lifecycle delete_after), per tier.
MIN_BACKUP_PLAN_RETENTION_DAYS_BY_TIER: dict[str, int] = {
    "critical": 30,
    "standard": 7,
}
DEFAULT_MIN_BACKUP_PLAN_RETENTION_DAYS: int = 7

# Admin usernames every scanner tries first; RDS also reserves some of them.
FORBIDDEN_ADMIN_USERNAMES: tuple[str, ...] = (
    "postgres",
    "admin",
    "administrator",
    "root",
    "master",
    "rdsadmin",
    "rdsrepladmin",
    "sa",
    "superuser",
    "user",
    "test",
    "guest",
)

# CIDR ranges that mean "the internet".
PUBLIC_CIDRS: tuple[str, ...] = ("0.0.0.0/0", "::/0")

# Host IPs a dev container may publish a port on.
LOOPBACK_IPS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")

# Image tags that float (never pinned).
FLOATING_IMAGE_TAGS: tuple[str, ...] = ("latest", "alpine", "bookworm", "bullseye", "")

# RDS log exports a PostgreSQL instance must publish.
REQUIRED_LOG_EXPORTS: tuple[str, ...] = ("postgresql", "upgrade")

# Enhanced monitoring: the largest acceptable interval in seconds (0 = off).
MAX_MONITORING_INTERVAL: int = 60

# Dev hygiene: container limits.
MAX_DEV_MEMORY_MB: int = 4096
MIN_DEV_MEMORY_MB: int = 128

# Shared dev servers (several databases in one container) are allowed by default;
# `bulkhead check --stack prod` and the prod policy config make the rule mandatory.
ALLOW_SHARED_DEV_SERVERS: bool = True

# The platform each stack name implies (platform-matches-stack): a stack whose name is
# a key, or starts or ends with it after/before a separator (`prod-eu`, `shop-prod`).
# Stacks matching no key are not constrained.
PLATFORM_BY_STACK_PREFIX: dict[str, str] = {
    "prod": "aws",
    "production": "aws",
    "staging": "aws",
    "dev": "docker",
    "local": "docker",
}

# Stack names (or prefixes) that are production: `bulkhead check` gives them the prod
# pack config (PROD_POLICY_CONFIG) before any --policy-config.
PRODUCTION_STACK_PREFIXES: tuple[str, ...] = ("prod", "production")

# What may follow a prefix in a stack name: `prod-eu`, `prod_eu`, `prod.eu` (not `productionx`).
STACK_NAME_SEPARATORS: tuple[str, ...] = ("-", "_", ".")


def stack_keys(stack: str, keys) -> "list[str]":
    """The `keys` that `stack` is, starts with or ends with (joined by a separator): `prod`, `prod-eu`, `shop-prod`."""
    if not stack:
        return []
    return [key for key in keys if stack == key
            or any(stack.startswith(key + sep) or stack.endswith(sep + key) for sep in STACK_NAME_SEPARATORS)]


def expected_platform(stack: str, mapping: "dict[str, str] | None" = None) -> "str | None":
    """The platform a stack's name implies (PLATFORM_BY_STACK_PREFIX or `mapping`); None if unconstrained.

    A name may say two things (`dev-prod`): then aws wins, so that a production name never runs on docker.
    """
    mapping = PLATFORM_BY_STACK_PREFIX if mapping is None else mapping
    platforms = {mapping[key] for key in stack_keys(stack, mapping)}
    if len(platforms) > 1:
        return "aws" if "aws" in platforms else sorted(platforms)[0]
    return platforms.pop() if platforms else None


def is_production_stack(stack: "str | None") -> bool:
    """`prod`, `production`, `prod-*`, `*-prod`, `prod_*`, `*_prod`, `prod.*`, ...; not `productionx`."""
    return bool(stack_keys(stack or "", PRODUCTION_STACK_PREFIXES))
