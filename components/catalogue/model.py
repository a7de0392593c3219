"""The typed catalogue of service databases (docs/contract.md section 3).

`load_catalogue` turns the raw `bulkhead:` config into a validated `Catalogue`,
or raises `CatalogueError` listing *every* problem at once, each with its key
path and the fix, so a user fixes their stack file in one pass. Nothing here
touches Pulumi: the program calls it before registering any resource.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Annotated, Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from components.catalogue import checks
from components.catalogue import offerings as aws_offerings
from components.catalogue import pack_agreement
from components.catalogue import parameters as pg_parameters
from components.catalogue import settings as pg_settings
from components.dev import container as postgres_init
from components.reserved import is_reserved_name
from components.dev.forms import cpus_round_trips, cpus_string
from components.prod.naming import aws_name
from components.prod import windows
from components.catalogue.deployers import check_deployer_arns, check_deployers_are_key_admins
from components.catalogue.major_upgrade import major_upgrade_findings
from components.catalogue.owner_principals import check_owner_principals

PLATFORMS = ("docker", "aws")
NAME_RE = postgres_init.NAME_RE.pattern
OWNER_RE = r"^[a-z][a-z0-9-]{0,62}$"
ENV_VAR_RE = postgres_init.ENV_VAR_RE.pattern
ENGINE_RE = r"^(1[3-7])(\.[0-9]{1,2})?$"
INSTANCE_CLASS_RE = r"^db\.[a-z0-9]+\.[a-z0-9]+$"
REGION_RE = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$"
SCHEDULE_RE = r"^(cron|rate)\(.+\)$"
PARAMETER_RE = postgres_init.PARAMETER_RE.pattern

# Names PostgreSQL, RDS or bulkhead keep for themselves: one rule (components/reserved.py) with the
# init SQL, so the catalogue refuses exactly what the container would refuse.
DOCKER_ONLY_STACK_KEYS = ("servers", "keep_volumes", "admin_tcp")
AWS_ONLY_STACK_KEYS = ("network", "dr_region", "key_admins", "break_glass_principals", "backup_vault_lock", "flow_logs",
                       "deployers", "owner_principals", "dr_endpoints", "alerts",
                       "window_derivation")
# Docker's default address pools (moby libnetwork/ipamutils: 172.17.0.0/16 ... 172.31.0.0/16 as /16s,
# 192.168.0.0/16 as /20s): 15 + 16 = 31 bridge networks, the default `bridge` taking one. `plan`
# warns well before: other projects on the machine use the same pools.
DOCKER_DEFAULT_POOL_NETWORKS = 30
DOCKER_NETWORKS_WARN_ABOVE = 20
ADMIN_TCP_WARNING = (
    "true: every dev container's admin, a superuser over every database it serves, accepts its password over "
    "TLS on its published 127.0.0.1 port (and from containers on its networks); anyone who reads the `admin` "
    "output or the stack's state is superuser there. Keep it false unless a GUI needs it, and turn it off after"
)
DOCKER_ONLY_DATABASE_KEYS = ("port", "server", "memory_mb", "cpus")
AWS_ONLY_DATABASE_KEYS = (
    "instance_class",
    "storage_gb",
    "max_storage_gb",
    "multi_az",
    "replicas",
    "replica_instance_class",
    "deletion_protection",
    "master_password_version",
    "auth",
    "password_version",
    "allow_major_upgrade_to",
    "proxy",
    "alarms",
    "backup_window",
    "maintenance_window",
    "restore_from",
)
# `proxy: true` with `auth: password` (components/prod/proxy.py): end-to-end IAM is the only proxy
# auth bulkhead builds; the Secrets Manager mode would need the proxy to read the login secret.
PROXY_NEEDS_IAM = ("needs `auth: iam`: the proxy logs in to the database with IAM (end-to-end IAM authentication); "
                   "remove `proxy: true` or set `auth: iam`")
# Settings bulkhead owns: letting the catalogue override them would undo SSL,
# loopback binding or the pg_hba that keeps roles apart.
MANAGED_PARAMETERS = pg_parameters.MANAGED
DEFAULT_TIERS: dict[str, dict[str, Any]] = {
    "critical": {
        "schedule": "cron(0 * * * ? *)",
        "retention_days": 30,
        "pitr_days": 14,
        "copy_to_dr": True,
        "restore_test_schedule": "cron(0 6 ? * SUN *)",  # weekly
        "log_retention_days": 30,
        "master_max_age_days": 90,
        # Stricter than standard: told earlier (components/prod/alarms.py).
        "alarms": {"cpu_percent": 70, "free_storage_percent": 20, "connections_percent": 70,
                   "freeable_memory_percent": 15, "replica_lag_seconds": 60},
    },
    "standard": {
        "schedule": "cron(0 */6 * * ? *)",
        "retention_days": 7,
        "pitr_days": 7,
        "copy_to_dr": False,
        "restore_test_schedule": "cron(0 6 1 * ? *)",  # monthly
        "log_retention_days": 30,
        "master_max_age_days": 90,
        "alarms": {"cpu_percent": 80, "free_storage_percent": 10, "connections_percent": 80,
                   "freeable_memory_percent": 10, "replica_lag_seconds": 300},
    },
}

ParameterValue = Union[bool, int, float, str]

# Per-tenant limits (components/postgres/role_sql.py applies them to the database's login role).
# connection_limit: the role's CONNECTION LIMIT. Dev servers are small (PostgreSQL's default
# max_connections is 100, and a shared server hosts several tenants); an RDS instance has one.
DEFAULT_CONNECTION_LIMIT = {"docker": 20, "aws": 100}
# Role-level settings, set by the admin. A service may still lower or raise the two timeouts
# in its own session (they are defaults that stop runaway work); temp_file_limit is
# superuser-only, so a tenant cannot raise it.
DEFAULT_ROLE_SETTINGS = {
    "statement_timeout": "5min",
    "idle_in_transaction_session_timeout": "10min",
    "temp_file_limit": "2GB",
}
ROLE_SETTING_KEYS = tuple(DEFAULT_ROLE_SETTINGS)
_DURATION_RE = r"^[0-9]{1,9}(us|ms|s|min|h|d)?$"
_SIZE_RE = r"^(-1|[0-9]{1,12}(kB|MB|GB|TB)?)$"
# PostgreSQL's defaults for the slots only superusers (and pg_use_reserved_connections) may use.
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_SUPERUSER_RESERVED = 3


def _duration(value: Any, key: str) -> Any:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not re.fullmatch(_DURATION_RE, text):
        raise ValueError(
            f"{value!r} is not a duration; use milliseconds or a number with a unit (us, ms, s, min, h, d),"
            f' e.g. {DEFAULT_ROLE_SETTINGS[key]!r}, or 0 for no limit'
        )
    return text


def _size(value: Any) -> Any:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not re.fullmatch(_SIZE_RE, text):
        raise ValueError(
            f"{value!r} is not a size; use kilobytes or a number with a unit (kB, MB, GB, TB), e.g. '2GB', or -1 for no limit"
        )
    return text


class _Strict(BaseModel):
    # Unknown keys are refused, never ignored: a typo must not silently drop a setting.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _normalise_parameters(value: Mapping[str, ParameterValue]) -> dict[str, str]:
    # Names, managed settings and values are checked per key by pg_parameters (load_catalogue),
    # so that every problem is reported under its own key path.
    out: dict[str, str] = {}
    for key, raw in value.items():
        if isinstance(raw, bool):
            out[key] = "on" if raw else "off"
        else:
            text = str(raw)
            if not text or any(c in text for c in "\n\r\x00"):
                raise ValueError(f"parameter {key!r} needs a non-empty single-line value")
            out[key] = text
    return dict(sorted(out.items()))


# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy API reference).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
# Principals in key and resource policies: an IAM role/user ARN or an account root.
PRINCIPAL_ARN_RE = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/[A-Za-z0-9+=,.@_/-]+|user/[A-Za-z0-9+=,.@_/-]+)$"


class AlarmThresholds(_Strict):
    """CloudWatch alarm thresholds of a tier (components/prod/alarms.py); null turns one alarm off."""

    cpu_percent: Optional[Annotated[int, Field(ge=1, le=100)]] = Field(
        80, description="CPUUtilization above this percent for 15 minutes (each instance)")
    free_storage_percent: Optional[Annotated[int, Field(ge=1, le=99)]] = Field(
        10, description="FreeStorageSpace below this percent of `storage_gb` (primary)")
    connections_percent: Optional[Annotated[int, Field(ge=1, le=100)]] = Field(
        80, description="DatabaseConnections above this percent of the login role's `connection_limit` (primary)")
    freeable_memory_percent: Optional[Annotated[int, Field(ge=1, le=99)]] = Field(
        10, description="FreeableMemory below this percent of the instance class's memory (primary)")
    replica_lag_seconds: Optional[Annotated[int, Field(ge=1, le=86400)]] = Field(
        300, description="ReplicaLag above this many seconds (each read replica)")


class DatabaseAlarms(_Strict):
    """A database's own alarm thresholds over its tier's: only the keys given replace the tier's."""

    enabled: bool = True
    cpu_percent: Optional[Annotated[int, Field(ge=1, le=100)]] = None
    free_storage_percent: Optional[Annotated[int, Field(ge=1, le=99)]] = None
    connections_percent: Optional[Annotated[int, Field(ge=1, le=100)]] = None
    freeable_memory_percent: Optional[Annotated[int, Field(ge=1, le=99)]] = None
    replica_lag_seconds: Optional[Annotated[int, Field(ge=1, le=86400)]] = None


SNAPSHOT_ARN_RE = r"arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:snapshot:[A-Za-z][A-Za-z0-9:-]{0,254}"


class PointInTime(_Strict):
    source: Annotated[str, Field(pattern=r"^([a-z][a-z0-9-]{0,62}|arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:db:[a-z][a-z0-9-]{0,62})$")] = Field(
        description="the DB instance identifier (or ARN) whose automated backups to restore from")
    time: str = Field(description="UTC time `2026-12-06T10:42:00Z`, or `latest` (the latest restorable time)")

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: str) -> str:
        # RestoreDBInstanceToPointInTime RestoreTime: a UTC timestamp; provider verify.ValidUTCTimestamp (RFC 3339).
        if value != "latest" and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", value):
            raise ValueError(f"{value!r} is not a UTC time; write it like 2026-12-06T10:42:00Z, or latest")
        return value


class RestoreFrom(_Strict):
    snapshot: Optional[str] = Field(None, description="ARN of a DB snapshot (manual or automated) to start from")
    point_in_time: Optional[PointInTime] = Field(None, description="`{source, time}`: restore another instance to a point in time")

    @field_validator("snapshot")
    @classmethod
    def _check_snapshot(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not re.fullmatch(SNAPSHOT_ARN_RE, value):
            raise ValueError(f"{value!r} is not a DB snapshot ARN; use arn:aws:rds:<region>:<account>:snapshot:<name> "
                             "(the snapshot's ARN, so the account and region are explicit)")
        return value


class Tier(_Strict):
    schedule: Annotated[str, Field(pattern=SCHEDULE_RE)] = Field(
        description="AWS Backup cron (or rate) expression of the tier's backups",
    )
    retention_days: Annotated[int, Field(ge=1, le=36500)] = Field(
        description="how long AWS Backup keeps the tier's recovery points (lifecycle); at least `pitr_days`",
    )
    pitr_days: Annotated[int, Field(ge=1, le=35)] = Field(
        description="RDS automated backup retention (point-in-time recovery), in days",
    )
    copy_to_dr: bool = Field(False, description="copy the tier's recovery points to `bulkhead:dr_region`")
    # AWS Backup restore testing: the latest recovery point is restored on this schedule (monthly by default).
    restore_test_schedule: Annotated[str, Field(pattern=SCHEDULE_RE)] = Field(
        "cron(0 6 1 * ? *)",
        description=(
            "AWS Backup cron of the tier's restore tests (the latest recovery point restored into the "
            "database's own subnet and security group, then deleted)"
        ),
    )
    # RDS log groups (query text) are kept this long.
    log_retention_days: int = Field(
        30,
        description=(
            "how long the RDS log groups keep statement text; one of CloudWatch Logs' periods 1, 3, 5, 7, 14,"
            " 30, 60, 90, ..."
        ),
    )
    master_max_age_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        90,
        description=(
            "`bulkhead audit` flags a master password (and an `auth: password` login password) older than "
            "this; Secrets Manager does not rotate them (docs/prod-stack.md). 90 is Security Hub's default for "
            "SecretsManager.4"
        ),
    )
    alarms: AlarmThresholds = Field(
        default_factory=AlarmThresholds,
        json_schema_extra={"doc_default": "critical 70/20/70/15/60, others 80/10/80/10/300"},
        description=(
            "CloudWatch alarm thresholds of the tier's databases: `cpu_percent`, `free_storage_percent`, "
            "`connections_percent`, `freeable_memory_percent`, `replica_lag_seconds`; null turns one off "
            "(docs/prod-stack.md \"Alarms and events\"). Critical: 70/20/70/15/60, standard: 80/10/80/10/300"
        ),
    )

    @field_validator("log_retention_days")
    @classmethod
    def _check_log_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period; use one of "
                             f"{', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value


class VaultLock(_Strict):
    """AWS Backup Vault Lock. With changeable_for_days it is compliance mode: after that many
    days nobody, not even the account root, can remove the lock or shorten retention."""

    min_retention_days: Annotated[int, Field(ge=1, le=36500)]
    max_retention_days: Optional[Annotated[int, Field(ge=1, le=36500)]] = None
    # Compliance mode's grace time; at least 3 days (VaultLockConfiguration API reference).
    changeable_for_days: Optional[Annotated[int, Field(ge=3, le=36500)]] = None


class Server(_Strict):
    port: Annotated[int, Field(ge=1024, le=65535)] = Field(description="host port, bound to 127.0.0.1 only")
    memory_mb: Annotated[int, Field(ge=128, le=65536)] = Field(512, description="container memory limit, in MB")
    cpus: Annotated[float, Field(gt=0, le=64)] = Field(
        1.0,
        description="container CPU limit; a value the Docker provider reads back unchanged (0.5, 1.25; not 0.05)",
    )
    engine_version: Annotated[str, Field(pattern=ENGINE_RE)] = Field(
        "16",
        description="PostgreSQL major (`\"16\"`) or major.minor (`\"16.4\"`) of the server, for every database on it",
    )
    parameters: dict[str, str] = Field(
        {},
        description="PostgreSQL settings of the server, checked as a database's `parameters` are",
    )

    @field_validator("parameters", mode="before")
    @classmethod
    def _check_parameters(cls, value: Any) -> Any:
        return _params_before(value)

    @field_validator("cpus")
    @classmethod
    def _check_cpus(cls, value: float) -> float:
        return _cpus_read_back_safe(value)

    @property
    def major(self) -> int:
        return int(self.engine_version.split(".")[0])


def _cpus_read_back_safe(value: float) -> float:
    # The Docker provider reads cpus back through nanoInt64ToDecimalString, which turns some
    # values into others (0.05 -> "0.1"); `cpus` is ForceNew, so those would replace the
    # container on every `up`.
    if value > 0 and not cpus_round_trips(value):
        raise ValueError(
            f"{value:g} is read back by the Docker provider as {cpus_string(value)!r} and would replace the container"
            " on every up; use a value with one significant decimal such as 0.5, or one like 1.25"
        )
    return value


def _params_before(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("parameters must be a map of setting name to value, e.g. {work_mem: 4MB}")
    for key, raw in value.items():
        if not isinstance(key, str):
            raise ValueError(f"parameter name {key!r} must be a string")
        if not isinstance(raw, (bool, int, float, str)):
            raise ValueError(f"parameter {key!r} must be a string, number or boolean")
    return _normalise_parameters(value)


class Database(_Strict):
    owner: Annotated[str, Field(pattern=OWNER_RE)] = Field(
        description="the one service that owns it, `^[a-z][a-z0-9-]{0,62}$`",
    )
    db_name: Optional[Annotated[str, Field(pattern=NAME_RE)]] = Field(
        None,
        description="PostgreSQL database name (and the name of its login role)",
        json_schema_extra={"doc_default": "the map key"},
    )
    engine_version: Annotated[str, Field(pattern=ENGINE_RE)] = Field(
        "16",
        description=(
            "major (`\"16\"`) or major.minor (`\"16.4\"`); majors 13-17. On aws a pinned minor turns RDS auto "
            "minor upgrades off (else RDS would upgrade it and the next `up` would try to go back)"
        ),
    )
    tier: str = Field("standard", description="a key of `backup_tiers`")
    env_var: Optional[Annotated[str, Field(pattern=ENV_VAR_RE)]] = Field(
        None,
        description="variable name services read",
        json_schema_extra={"doc_default": "`<NAME>_DATABASE_URL`"},
    )
    parameters: dict[str, str] = Field(
        {},
        description=(
            "PostgreSQL settings, e.g. `work_mem: 4MB` (SSL, hba, port and `rds.force_ssl` are managed and "
            "refused); checked per major, see [PostgreSQL "
            "settings](#postgresql-settings-versions-and-stack-names)"
        ),
    )
    # docker
    port: Optional[Annotated[int, Field(ge=1024, le=65535)]] = Field(
        None,
        description="host port, bound to 127.0.0.1 only",
        json_schema_extra={"doc_default": "required unless `server`"},
    )
    server: Optional[str] = Field(None, description="name in `bulkhead:servers`; then no `port`")
    memory_mb: Annotated[int, Field(ge=128, le=65536)] = Field(512, description="container memory limit, in MB")
    cpus: Annotated[float, Field(gt=0, le=64)] = Field(
        1.0,
        description="container CPU limit; a value the Docker provider reads back unchanged (0.5, 1.25; not 0.05)",
    )
    # aws
    instance_class: Annotated[str, Field(pattern=INSTANCE_CLASS_RE)] = Field(
        "db.t4g.medium",
        description="RDS instance class; must be offered for the engine major in `aws:region`",
    )
    storage_gb: Annotated[int, Field(ge=20, le=65536)] = Field(20, description="allocated gp3 storage, in GB")
    max_storage_gb: Annotated[int, Field(ge=20, le=65536)] = Field(
        100,
        description="storage autoscaling limit, in GB; at least `storage_gb`",
    )
    multi_az: bool = Field(True, description="a standby in a second availability zone")
    replicas: Annotated[int, Field(ge=0, le=5)] = Field(0, description="read replicas")
    replica_instance_class: Optional[Annotated[str, Field(pattern=INSTANCE_CLASS_RE)]] = Field(
        None,
        description="instance class of the read replicas",
        json_schema_extra={"doc_default": "`instance_class`"},
    )
    deletion_protection: bool = Field(True, description="RDS deletion protection on the primary")
    # Raise it to rotate the master password on the next `up` (a new RandomPassword).
    master_password_version: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        1,
        description=(
            "raise it (whole number >= 1) to rotate the master password on the next `up`: a new generated "
            "password, written to the instance, its secret, and the bootstrap function runs again"
        ),
    )
    auth: Literal["iam", "password"] = Field(
        "iam",
        description=(
            "how the service's login role logs in: `iam` (IAM tokens, 15 minutes each) or `password` (its own "
            "generated password in a secret of its own, for clients that cannot sign a token per connection: "
            "docs/prod-stack.md)"
        ),
    )
    password_version: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        1, description="`auth: password` only: raise it to rotate the login password on the next `up`"
    )
    allow_major_upgrade_to: Optional[Annotated[int, Field(ge=13, le=99)]] = Field(
        None,
        description=(
            "the major an in-place RDS major upgrade may go to (this round): it must equal `engine_version`'s "
            "major, else a catalogue error; without it RDS refuses a new major, so a typo cannot upgrade prod. "
            "Refused with `replicas` > 0; remove it after the upgrade (docs/prod-stack.md, \"Major version upgrades\")"
        ),
    )
    proxy: bool = Field(
        False,
        description=(
            "an RDS Proxy in front of the primary (connection pooling): IAM auth from the service to the proxy and "
            "from the proxy to the database, TLS required, admitting only the owner's client group; its endpoint "
            "is the output `proxy_host`. `auth: iam` only (docs/prod-stack.md, \"RDS Proxy\")"
        ),
    )
    alarms: DatabaseAlarms = Field(
        default_factory=DatabaseAlarms,
        json_schema_extra={"doc_default": "its tier's `alarms`"},
        description=(
            "`false` turns this database's CloudWatch alarms off; a map replaces some of its tier's `alarms` "
            "thresholds (null turns one off)"
        ),
    )
    backup_window: Optional[str] = Field(
        None,
        description=(
            "RDS daily backup window `hh24:mi-hh24:mi` UTC, at least 30 minutes; must not meet `maintenance_window`"
        ),
        json_schema_extra={"doc_default": "derived from the name (`bulkhead:window_derivation`)"},
    )
    maintenance_window: Optional[str] = Field(
        None,
        description="RDS weekly maintenance window `ddd:hh24:mi-ddd:hh24:mi` UTC, days in lower case, at least 30 minutes",
        json_schema_extra={"doc_default": "derived from the name (`bulkhead:window_derivation`)"},
    )
    restore_from: Optional[RestoreFrom] = Field(
        None,
        description=(
            "a new database starts from `snapshot: <DB snapshot ARN>` or `point_in_time: {source, time}`; read "
            "once, at creation: changing or removing it later changes nothing (docs/prod-stack.md \"Restoring\")"
        ),
    )
    # both platforms: per-tenant limits (None: the platform's default, resolved by load_catalogue)
    connection_limit: Optional[Annotated[int, Field(ge=1, le=10000)]] = Field(
        None,
        description=(
            "the login role's `CONNECTION LIMIT`; on docker a server's `max_connections` (default 100) must "
            "be at least the sum of its databases' limits plus the reserved slots "
            "(`superuser_reserved_connections`, default 3, + `reserved_connections`), else a catalogue error"
        ),
    )
    # a number (milliseconds / kilobytes) or a string with a unit; kept as the string
    statement_timeout: Optional[str] = Field(
        None,
        description=(
            "role-level default set by the admin (milliseconds or a value with a unit `us ms s min h d`; `0` "
            "= none); a service may change it in its own session"
        ),
    )
    idle_in_transaction_session_timeout: Optional[str] = Field(
        None,
        description=(
            "role-level default set by the admin (milliseconds or a value with a unit `us ms s min h d`; `0` "
            "= none); a service may change it in its own session"
        ),
    )
    temp_file_limit: Optional[str] = Field(
        None,
        description=(
            "role-level, set by the admin (kilobytes or `kB MB GB TB`; `-1` = none); superuser-only, so a "
            "service cannot raise it. On aws it belongs in the instance's parameter group (the RDS master may"
            " not set it per role)"
        ),
    )

    @field_validator("parameters", mode="before")
    @classmethod
    def _check_parameters(cls, value: Any) -> Any:
        return _params_before(value)

    @field_validator("cpus")
    @classmethod
    def _check_cpus(cls, value: float) -> float:
        return _cpus_read_back_safe(value)

    @field_validator("alarms", mode="before")
    @classmethod
    def _alarms_shorthand(cls, value: Any) -> Any:
        # `alarms: false` / `alarms: true` as shorthand for {enabled: false} / the tier's thresholds.
        return {"enabled": value} if isinstance(value, bool) else value

    @field_validator("backup_window")
    @classmethod
    def _check_backup_window(cls, value: Optional[str]) -> Optional[str]:
        problem = None if value is None else windows.backup_window_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("maintenance_window")
    @classmethod
    def _check_maintenance_window(cls, value: Optional[str]) -> Optional[str]:
        problem = None if value is None else windows.maintenance_window_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("restore_from")
    @classmethod
    def _check_restore_from(cls, value: Optional[RestoreFrom]) -> Optional[RestoreFrom]:
        if value is not None and (value.snapshot is None) == (value.point_in_time is None):
            raise ValueError("give exactly one of snapshot: <DB snapshot ARN> or point_in_time: {source, time}")
        return value

    @field_validator("statement_timeout", "idle_in_transaction_session_timeout", mode="before")
    @classmethod
    def _check_duration(cls, value: Any, info) -> Any:
        return None if value is None else _duration(value, info.field_name)

    @field_validator("temp_file_limit", mode="before")
    @classmethod
    def _check_size(cls, value: Any) -> Any:
        return None if value is None else _size(value)

    @property
    def major(self) -> int:
        return int(self.engine_version.split(".")[0])

    def role_settings(self) -> dict[str, str]:
        """Role-level settings of this database's login role (resolved: never None after load_catalogue)."""
        return {key: str(getattr(self, key)) for key in ROLE_SETTING_KEYS}


class Network(_Strict):
    # EC2 ids carry 8 or 17 hex digits (`AWS::EC2::VPC.Id` / `AWS::EC2::Subnet.Id` formats in cfn-lint's schemas).
    vpc_id: Annotated[str, Field(pattern=r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")]
    subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")]], Field(min_length=2)]
    # The bootstrap functions read their master secret from these subnets, which must
    # reach Secrets Manager. true: the VPC already has a Secrets Manager interface
    # endpoint (private DNS on) that admits them, so bulkhead creates none; false (the default):
    # bulkhead creates one, with its group, in these subnets (components/prod/stack.py).
    secretsmanager_endpoint_exists: bool = False


EMAIL_RE = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
HTTPS_RE = r"^https://[^\s/]+(/\S*)?$"
SNS_TOPIC_ARN_RE = r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):[0-9]{12}:[A-Za-z0-9_-]{1,256}$"


class Alerts(_Strict):
    """`bulkhead:alerts`: who is told (components/prod/alarms.py)."""

    emails: list[Annotated[str, Field(pattern=EMAIL_RE)]] = Field([], description="email addresses (each confirms once)")
    https: list[Annotated[str, Field(pattern=HTTPS_RE)]] = Field([], description="HTTPS endpoints (each confirms once)")
    topic_arn: Optional[Annotated[str, Field(pattern=SNS_TOPIC_ARN_RE)]] = Field(
        None, description="an existing SNS topic of the stack's region to publish to instead of a topic of the stack")


class Catalogue(BaseModel):
    """A validated stack: every database resolved with its platform's defaults."""

    model_config = ConfigDict(frozen=True)

    stack: str
    platform: Literal["docker", "aws"] = Field(description="where databases live: `docker` (dev) or `aws` (prod)")
    databases: dict[str, Database] = Field(description="the catalogue: database name -> its settings; at least one")
    servers: dict[str, Server] = Field(
        description="shared dev servers: several databases in one container, kept apart by roles",
        json_schema_extra={"doc_default": "`{}`"},
    )
    backup_tiers: dict[str, Tier] = Field(
        description="backup policy per tier, merged over the defaults",
        json_schema_extra={"doc_default": "`critical`, `standard`"},
    )
    network: Optional[Network] = Field(
        None,
        description=(
            "an existing VPC's id and private subnets (at least two) to place the databases in; without it an"
            " isolated VPC is created (3 private subnets, no internet gateway). The subnets must reach "
            "Secrets Manager (the bootstrap functions read their master secret there): "
            "`secretsmanager_endpoint_exists: true` (default false) says the VPC already has a Secrets "
            "Manager interface endpoint with private DNS that admits HTTPS from the subnets, so bulkhead "
            "creates none; with false bulkhead creates one without private DNS (the VPC's other workloads keep "
            "their path) and its bootstrap functions call it by its own name"
        ),
    )
    region: Optional[str] = None
    dr_region: Optional[str] = Field(
        None,
        description="a second region; backups of `copy_to_dr` tiers are copied there",
    )
    protect: bool = Field(
        description=(
            "Pulumi `protect` on resources that hold data (RDS primaries, KMS keys, backup vaults; Docker "
            "volumes, not containers)"
        ),
        json_schema_extra={"doc_default": "true on aws, false on docker"},
    )
    keep_volumes: bool = Field(
        description="volumes survive `pulumi destroy` (retainOnDelete)",
        json_schema_extra={"doc_default": "true"},
    )
    admin_tcp: bool = Field(
        False,
        description=(
            "the admin (a superuser) also logs in with its password over TLS through each "
            "container's published port on 127.0.0.1 (pg_hba `hostssl all admin samenet`: the host through the "
            "port, and containers on the database's network, never the LAN), e.g. for a GUI; the `admin` stack "
            "output then holds each container's admin URL (secret). Off: the admin only through the socket "
            "inside the container (`psql --admin`)"
        ),
    )
    # Advisory findings `plan` prints (advisory policies, memory tuning, unchecked settings).
    warnings: tuple["Problem", ...] = ()
    # aws: who administers the KMS keys, who may break glass (master secret, recovery points), vault lock.
    key_admins: tuple[str, ...] = Field(
        (),
        description=(
            "who administers the stack's KMS keys: key-administration actions only, never "
            "Decrypt/Encrypt/GenerateDataKey/CreateGrant. List the identity that runs `pulumi up` too, or it "
            "cannot update the keys"
        ),
        json_schema_extra={"doc_default": "the account root (IAM decides)", "doc_type": "list of IAM principal ARNs"},
    )
    break_glass_principals: tuple[str, ...] = Field(
        (),
        description=(
            "who may read a master secret, delete recovery points or shorten their lifecycle, start a "
            "restore, and change the backup vault's policy"
        ),
        json_schema_extra={"doc_default": "none = the account root user only", "doc_type": "list of IAM principal ARNs"},
    )
    backup_vault_lock: Optional[VaultLock] = Field(
        None,
        description=(
            "AWS Backup Vault Lock on the stack's vaults. Without `changeable_for_days`: governance mode (a "
            "privileged user can remove it). With it: compliance mode, **irreversible** once "
            "`changeable_for_days` (>= 3) have passed: nobody, not even the root user, can then remove the "
            "lock, shorten retention or delete the vault before its recovery points expire. The tiers in use "
            "must keep `retention_days` inside the lock's range"
        ),
        json_schema_extra={"doc_default": "off"},
    )
    flow_logs: Literal["REJECT", "ALL", "none"] = Field(
        "REJECT",
        description=(
            "a stack-created VPC only: which traffic its VPC flow log records (REJECT: refused connections; ALL; "
            "none turns it off), into an encrypted log group kept as long as the longest tier retention in use"
        ),
    )
    deployers: tuple[str, ...] = Field(
        (),
        description=(
            "required on aws: IAM role (or user) ARNs, path included, that run `pulumi up` and `refresh` on this "
            "stack; the master secrets and backup vaults deny everyone else, so list every identity that deploys "
            "(CI and operators); each must be in `key_admins` when that is set. The identity running the deploy is "
            "checked against this list before anything is created (components/catalogue/deployers.py)"
        ),
        json_schema_extra={"doc_type": "list of IAM principal ARNs"},
    )
    dr_endpoints: Optional[tuple[dict[str, str], ...]] = Field(
        None,
        description=(
            "(this round) the DR region's provider's custom endpoints, in `aws:endpoints`' shape (a list of "
            "`{service: url}` maps); `[]` for AWS's public endpoints of `dr_region`. Required when `aws:endpoints` "
            "is set and `dr_region` is: those endpoints are the stack region's, and the DR provider does not "
            "copy them (components/prod/provider_settings.py)"
        ),
        json_schema_extra={"doc_type": "list of maps", "doc_default": "none"},
    )
    owner_principals: dict[str, tuple[str, ...]] = Field(
        {},
        description=(
            "owner (a database's `owner`) -> the IAM role ARNs, path included, that service runs as (ECS task "
            "role, Lambda execution role). Required for every owner of an `auth: password` database: its login "
            "secret denies reading to every principal but these, the deployers, the database's bootstrap function "
            "and break-glass, and the database key denies decrypting it likewise. A role may serve one owner only. "
            "No effect on `auth: iam` databases (their access is the `access_policy_arn` you attach)"
        ),
        json_schema_extra={"doc_default": "`{}`", "doc_type": "map of owner to list of IAM role ARNs"},
    )

    alerts: Optional[Alerts] = Field(
        None,
        description=(
            "who is told when a database is in trouble: `emails`, `https` endpoints (subscribed to the stack's "
            "encrypted SNS topic), or `topic_arn`, an existing topic of the stack's region used instead (its key "
            "and policy must let cloudwatch.amazonaws.com and events.rds.amazonaws.com publish)"
        ),
        json_schema_extra={"doc_default": "a topic with no subscriber (a warning)"},
    )
    window_derivation: Literal[0, 1] = Field(
        1,
        description=(
            "how databases without `backup_window`/`maintenance_window` get them: 1 staggers them across the "
            "night from each name; 0 keeps the pre-issue-24 constants 03:00-04:00 and sun:05:00-sun:06:00 "
            "(docs/upgrading.md)"
        ),
    )

    def owners(self) -> dict[str, list[str]]:
        """owner -> sorted names of the databases it owns."""
        out: dict[str, list[str]] = defaultdict(list)
        for name, db in sorted(self.databases.items()):
            out[db.owner].append(name)
        return dict(sorted(out.items()))

    def databases_on(self, server: str) -> dict[str, Database]:
        return {n: d for n, d in sorted(self.databases.items()) if d.server == server}


class Problem(BaseModel):
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


Catalogue.model_rebuild()  # its `warnings` are Problems, defined just above


class CatalogueError(Exception):
    """Every problem found in one pass; nothing was created."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


_STACK_KEYS = (
    "platform",
    "databases",
    "servers",
    "backup_tiers",
    "network",
    "dr_region",
    "protect",
    "keep_volumes",
    "key_admins",
    "break_glass_principals",
    "backup_vault_lock",
    "flow_logs",
    "deployers",
    "dr_endpoints",
    "owner_principals",
    "admin_tcp",
    "alerts",
    "window_derivation",
)
STACK_KEYS = _STACK_KEYS  # the keys __main__.py reads from the stack config: exactly those accepted here


def _path(*parts: Any) -> str:
    head, *rest = parts
    out = f"bulkhead:{head}"
    for part in rest:
        out += f".{part}"
    return out


def _translate(err: dict[str, Any], model: type[BaseModel]) -> str:
    """A pydantic error as a sentence that says how to fix it."""
    kind = err["type"]
    field = err["loc"][0] if err["loc"] else None
    if kind == "extra_forbidden":
        valid = ", ".join(model.model_fields)
        return f"unknown key; valid keys are: {valid}"
    if kind == "missing":
        return "is required; add it"
    ctx = err.get("ctx") or {}
    if field == "engine_version" and isinstance(err.get("input"), (int, float)) and not isinstance(err["input"], bool):
        return _number_version_message(err["input"])
    if kind == "string_pattern_mismatch" and field in ("db_name", "owner") and len(str(err["input"])) > checks.MAX_NAME:
        return checks.name_problem(err["input"], field, NAME_RE if field == "db_name" else OWNER_RE)
    if kind == "int_type" and isinstance(err.get("input"), str) and err["input"].strip().isdigit():
        return (f'is the string "{err["input"]}" (in quotes), not a number; write it without quotes: '
                f'{field}: {err["input"].strip()}')
    if kind == "string_pattern_mismatch":
        hints = {
            "owner": "a service name like app-service (lower case, digits, dashes)",
            "db_name": "lower case, digits and underscores, starting with a letter",
            "engine_version": 'a PostgreSQL major 13-17, optionally with a minor, quoted: "16" or "16.4"',
            "env_var": "an upper-case environment variable name like APP_DATABASE_URL",
            "instance_class": "an RDS class of the form db.<family>.<size>, e.g. db.t4g.medium",
            "replica_instance_class": "an RDS class of the form db.<family>.<size>, e.g. db.r6g.large",
            "schedule": "an AWS Backup expression, e.g. cron(0 * * * ? *)",
            "restore_test_schedule": "an AWS Backup expression, e.g. cron(0 6 ? * SUN *)",
            "vpc_id": "a VPC id like vpc-0abc1234",
            "emails": "an email address like dba@example.com",
            "https": "an https:// URL",
            "topic_arn": "an SNS topic ARN like arn:aws:sns:eu-west-1:123456789012:ops-alerts",
            "snapshot": "a DB snapshot ARN like arn:aws:rds:eu-west-1:123456789012:snapshot:billing-before",
            "source": "a DB instance identifier like bulkhead-prod-billing, or its ARN",
            "time": "a UTC time like 2026-12-06T10:42:00Z, or latest",
            "subnet_ids": "subnet ids like subnet-0abc1234",
        }
        return f"{err['input']!r} is not valid; use {hints.get(field, ctx.get('pattern'))}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{err['input']!r} is out of range: {err['msg'].lower()}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind.endswith("_type") or kind.endswith("_parsing"):
        expected = kind.replace("_type", "").replace("_parsing", "")
        words = {"int": "a whole number", "bool": "true or false", "float": "a number",
                 "string": "a string", "dict": "a map", "list": "a list"}
        return f"{err['input']!r} is not {words.get(expected, expected)}; {err['msg'].lower()}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} entries"
    return err["msg"]


def _number_version_message(value: Any) -> str:
    # YAML reads an unquoted 16.10 as the float 16.1; stack_config keeps the text it came from.
    written = getattr(value, "yaml_text", None)
    if written and written != repr(value):
        return (f'is {written} (YAML read it as the number {value!r}), not a version string; '
                f'quote it: engine_version: "{written}"')
    text = repr(value)
    if isinstance(value, float) and re.fullmatch(r"1[3-7]\.[1-9]", text):
        # Through `pulumi config` the text is gone: 16.1 may have been written 16.10.
        return (f'is the number {text}, not a version string; quote it: engine_version: "{text}" '
                f'(or "{text}0" if you wrote {text}0: YAML drops the trailing zero)')
    return f'is the number {text}, not a version string; quote it: engine_version: "{text}"'


def _validate(model: type[BaseModel], raw: Any, path: tuple, problems: list[Problem]):
    if not isinstance(raw, dict):
        problems.append(Problem(path=_path(*path), message=f"must be a map of keys to values, got {type(raw).__name__}"))
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            # Dict keys are reported by pydantic as `[key-name]` suffixes; keep the path readable.
            loc = [p for p in loc if p != "[key]"]
            problems.append(Problem(path=_path(*path, *loc), message=_translate(err, model)))
        return None


def _map_section(raw: dict, key: str, problems: list[Problem], name_re: str, what: str) -> dict:
    section = raw.get(key, {})
    if section is None:
        section = {}
    if not isinstance(section, dict):
        problems.append(Problem(path=_path(key), message=f"must be a map of {what} name to settings"))
        return {}
    good = {}
    for name, value in section.items():
        if not isinstance(name, str) or not re.fullmatch(name_re, name):
            problems.append(Problem(path=_path(key, name), message=checks.name_problem(name, what, name_re)))
            continue
        good[name] = value
    return good


def load_catalogue(raw: Mapping[str, Any], stack: str, region: Optional[str] = None) -> Catalogue:
    """Validate the raw `bulkhead:` config of `stack`; raise CatalogueError on any problem.

    `raw` maps keys without the `bulkhead:` prefix (`platform`, `databases`, ...).
    `region` is the stack's `aws:region`, used to refuse a DR region equal to it.
    """
    problems: list[Problem] = []
    if not isinstance(raw, Mapping):
        raise CatalogueError([Problem(path="bulkhead", message="config must be a map of bulkhead: keys")])
    raw = dict(raw)
    for key in raw:
        if key not in _STACK_KEYS:
            problems.append(Problem(path=_path(key), message=f"unknown key; valid keys are: {', '.join(_STACK_KEYS)}"))

    platform = raw.get("platform")
    if platform not in PLATFORMS:
        problems.append(
            Problem(
                path=_path("platform"),
                message=f"{platform!r} is not a platform; set it to docker (dev) or aws (prod)"
                if platform is not None
                else "is required; set it to docker (dev) or aws (prod)",
            )
        )
        platform = None

    _check_platform_keys(raw, platform, problems)
    tiers, merged_tiers = _load_tiers(raw, problems)

    servers: dict[str, Server] = {}
    server_raw = _map_section(raw, "servers", problems, NAME_RE, "server")
    for name, value in server_raw.items():
        server = _validate(Server, value, ("servers", name), problems)
        if server:
            servers[name] = server

    db_raw = raw.get("databases")
    if db_raw is None or db_raw == {}:
        problems.append(Problem(path=_path("databases"), message="is required and needs at least one database, e.g. {app: {owner: app-service, ...}}"))
    databases: dict[str, Database] = {}
    for name, value in _map_section(raw, "databases", problems, NAME_RE, "database").items():
        db = _validate(Database, value, ("databases", name), problems)
        if db is None:
            continue
        explicit = frozenset(db.model_fields_set)
        db = db.model_copy(
            update={
                "db_name": db.db_name or name,
                "env_var": db.env_var or f"{name.upper()}_DATABASE_URL",
                "replica_instance_class": db.replica_instance_class or db.instance_class,
                "connection_limit": db.connection_limit or DEFAULT_CONNECTION_LIMIT.get(platform or "docker"),
                **{k: getattr(db, k) or DEFAULT_ROLE_SETTINGS[k] for k in ROLE_SETTING_KEYS},
            }
        )
        if platform:
            # Defined-but-invalid tiers/servers already have their own problem: not "unknown" here.
            _check_database_platform(name, db, explicit, platform, merged_tiers, server_raw, problems)
        databases[name] = db

    _check_uniqueness(databases, servers, platform, problems)
    warnings: list[Problem] = []
    _check_mistakes(stack, platform, raw, databases, merged_tiers, tiers, problems, warnings)
    if platform == "aws":
        errors, advisories = major_upgrade_findings(databases, _path)
        problems.extend(Problem(path=p, message=m) for p, m in errors)
        warnings.extend(Problem(path=p, message=m) for p, m in advisories)
    if platform == "aws" and region:
        _check_rds_offerings(databases, region, problems)
    if platform:
        _check_connection_budget(databases, servers, problems, platform)
    if platform == "docker" and len(databases) > DOCKER_NETWORKS_WARN_ABOVE:
        # Every database gets one Docker network: an own container its own, a shared server one per tenant.
        warnings.append(Problem(path=_path("databases"), message=(
            f"this stack creates {len(databases)} Docker networks (one per database); the engine's default "
            f"address pools hold about {DOCKER_DEFAULT_POOL_NETWORKS} bridge networks in all, shared with every "
            "other network on the machine (compose projects too), and `up` fails with \"could not find an "
            "available, non-overlapping IPv4 address pool\" when they run out: widen `default-address-pools` "
            "in the daemon's daemon.json (docs/dev-stack.md)")))
    if platform == "docker":
        for name in servers:
            if not any(d.server == name for d in databases.values()):
                problems.append(Problem(path=_path("servers", name), message="no database uses this server; remove it or set server: " + name + " on a database"))

    network = None
    if platform == "aws" and raw.get("network") is not None:
        network = _validate(Network, raw["network"], ("network",), problems)

    dr_region = _check_dr_region(raw, platform, region, problems)

    protect = raw.get("protect", platform == "aws")
    if not isinstance(protect, bool):
        problems.append(Problem(path=_path("protect"), message=f"{protect!r} is not true or false"))
    keep_volumes = raw.get("keep_volumes", True)
    if not isinstance(keep_volumes, bool):
        problems.append(Problem(path=_path("keep_volumes"), message=f"{keep_volumes!r} is not true or false"))
    admin_tcp = raw.get("admin_tcp", False)
    if not isinstance(admin_tcp, bool):
        problems.append(Problem(path=_path("admin_tcp"), message=f"{admin_tcp!r} is not true or false"))
    elif admin_tcp and platform == "docker":
        warnings.append(Problem(path=_path("admin_tcp"), message=ADMIN_TCP_WARNING))

    if platform == "aws" and not region:
        problems.append(Problem(path="aws:region", message="is required on platform aws (without it the stack would "
                                "silently use the provider's default region); add `aws:region: eu-west-1` (your region) "
                                "to the stack file's config, or run `pulumi config set aws:region eu-west-1`"))
    if platform:
        for path, message in pack_agreement.check_stack(stack, platform, _path):
            problems.append(Problem(path=path, message=message))
        databases, servers = _check_settings(databases, servers, platform, problems, warnings)
        if isinstance(protect, bool) and isinstance(keep_volumes, bool):
            errors, advisories = pack_agreement.check_catalogue(platform, databases, servers, tiers, protect,
                                                                keep_volumes, _path)
            problems.extend(Problem(path=p, message=m) for p, m in errors)
            warnings.extend(Problem(path=p, message=m) for p, m in advisories)
    key_admins = _principals(raw, "key_admins", platform, problems)
    break_glass = _principals(raw, "break_glass_principals", platform, problems)
    deployers = _principals(raw, "deployers", platform, problems)
    problems.extend(Problem(path=p, message=m) for p, m in check_deployer_arns(deployers))
    problems.extend(Problem(path=p, message=m) for p, m in check_deployers_are_key_admins(deployers, key_admins))
    owner_principals: dict[str, tuple[str, ...]] = {}
    if platform == "aws":
        owners_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for name, db in sorted(databases.items()):
            owners_of[db.owner].append((name, db.auth))
        owner_principals, found = check_owner_principals(raw.get("owner_principals"), owners_of, deployers)
        problems.extend(Problem(path=p, message=m) for p, m in found)
    vault_lock = None
    if platform == "aws" and raw.get("backup_vault_lock") is not None:
        vault_lock = _validate(VaultLock, raw["backup_vault_lock"], ("backup_vault_lock",), problems)
        if vault_lock is not None:
            in_use = {db.tier for db in databases.values()}
            _check_vault_lock(vault_lock, {n: t for n, t in tiers.items() if n in in_use}, problems)
    flow_logs = _flow_logs(raw, network, problems)
    dr_endpoints = _dr_endpoints(raw, platform, problems)
    problems.extend(Problem(path=_path("databases", n, "proxy"), message=PROXY_NEEDS_IAM)
                    for n, db in databases.items() if getattr(db, "proxy", False) and db.auth != "iam")
    alerts, window_derivation = _alerts_and_windows(raw, platform, region, databases, tiers, problems, warnings)
    if platform == "aws":
        warnings.extend(restore_source_owner_warnings(stack, databases))

    if problems:
        raise CatalogueError(problems)
    return Catalogue(
        warnings=tuple(warnings),
        stack=stack,
        platform=platform,
        databases=dict(sorted(databases.items())),
        servers=dict(sorted(servers.items())),
        backup_tiers=tiers,
        network=network,
        region=region,
        dr_region=dr_region if platform == "aws" else None,
        protect=protect,
        keep_volumes=keep_volumes,
        admin_tcp=admin_tcp if platform == "docker" else False,
        key_admins=key_admins,
        break_glass_principals=break_glass,
        backup_vault_lock=vault_lock,
        flow_logs=flow_logs,
        deployers=deployers,
        dr_endpoints=dr_endpoints,
        owner_principals=owner_principals,
        alerts=alerts,
        window_derivation=window_derivation,
    )


def _dr_endpoints(raw: Mapping[str, Any], platform, problems: list[Problem]):
    """`bulkhead:dr_endpoints`: a list of {service: url} maps (aws:endpoints' shape), or None."""
    value = raw.get("dr_endpoints")
    if value is None or platform != "aws":
        return None
    shape = ('a list of {service: url} maps as in aws:endpoints, e.g. [{"backup": '
             '"https://backup.eu-central-1.amazonaws.com"}], or [] for the DR region\'s public endpoints')
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        problems.append(Problem(path=_path("dr_endpoints"), message=f"must be {shape}"))
        return None
    for i, entry in enumerate(value):
        for service, url in entry.items():
            if not isinstance(url, str) or not re.match(r"^https?://", url):
                problems.append(Problem(path=_path("dr_endpoints", i, service), message=f"{url!r} is not a URL; {shape}"))
    return tuple(dict(entry) for entry in value)


def _check_platform_keys(raw: Mapping[str, Any], platform, problems: list[Problem]) -> None:
    """Stack-level keys that belong to one platform only."""
    other_platform_keys = {"docker": AWS_ONLY_STACK_KEYS, "aws": DOCKER_ONLY_STACK_KEYS}
    for key in other_platform_keys.get(platform, ()):
        if raw.get(key) not in (None, {}):
            problems.append(Problem(path=_path(key), message=f"applies only to platform "
                                    f"{'aws' if platform == 'docker' else 'docker'}; remove it from this {platform} stack"))


def _load_tiers(raw: Mapping[str, Any], problems: list[Problem]) -> tuple[dict[str, Tier], dict[str, dict]]:
    """(valid tiers, every tier's merged raw settings): the defaults with bulkhead:backup_tiers over them."""
    tiers: dict[str, Tier] = {}
    merged_tiers = {k: dict(v) for k, v in DEFAULT_TIERS.items()}
    for name, value in _map_section(raw, "backup_tiers", problems, NAME_RE, "tier").items():
        if not isinstance(value, dict):
            problems.append(Problem(path=_path("backup_tiers", name), message="must be a map with schedule, retention_days, pitr_days, copy_to_dr"))
            continue
        merged = {**merged_tiers.get(name, {}), **value}
        # alarms merge key by key over the tier's defaults (critical's stricter ones stay unless replaced).
        if isinstance(value.get("alarms"), dict) and isinstance(merged_tiers.get(name, {}).get("alarms"), dict):
            merged["alarms"] = {**merged_tiers[name]["alarms"], **value["alarms"]}
        merged_tiers[name] = merged
    for name, value in merged_tiers.items():
        tier = _validate(Tier, value, ("backup_tiers", name), problems)
        if tier:
            if tier.retention_days < tier.pitr_days:
                problems.append(Problem(path=_path("backup_tiers", name, "retention_days"),
                                        message=f"{tier.retention_days} is shorter than pitr_days {tier.pitr_days}; "
                                        "keep backups at least as long as point-in-time recovery"))
            tiers[name] = tier
    return tiers, merged_tiers


def _check_dr_region(raw: Mapping[str, Any], platform, region, problems: list[Problem]):
    dr_region = raw.get("dr_region")
    if dr_region is not None and platform == "aws":
        if not isinstance(dr_region, str) or not re.fullmatch(REGION_RE, dr_region):
            problems.append(Problem(path=_path("dr_region"), message=f"{dr_region!r} is not an AWS region name like eu-west-1"))
        elif region and dr_region == region:
            problems.append(Problem(path=_path("dr_region"), message=f"{dr_region} is the stack's own region (aws:region); pick another region so backups survive a regional outage"))
    return dr_region


def _check_mistakes(stack: str, platform, raw: Mapping[str, Any], databases: dict[str, Database],
                    merged_tiers: Mapping[str, Any], tiers: Mapping[str, Tier], problems: list[Problem],
                    warnings: list[Problem]) -> None:
    """Issue 21's checks (components/catalogue/checks.py): values a server would take but nobody means."""
    def add(into: list[Problem], found) -> None:
        into.extend(Problem(path=p, message=m) for p, m in found)

    for name, db in databases.items():
        add(warnings, checks.unit_less_role_settings(_path("databases", name), db.role_settings()))
        add(problems, checks.process_env_var(_path("databases", name), db.env_var, name))
    add(warnings, checks.env_var_of_another_database(databases, lambda n: f"{n.upper()}_DATABASE_URL"))
    pack = pack_agreement.thresholds()
    if platform and pack.expected_platform(stack) != "aws":  # else platform-matches-stack refuses it already
        add(warnings, checks.production_name_on_docker(stack, platform, pack.STACK_NAME_SEPARATORS))
    dr_region = raw.get("dr_region") if isinstance(raw.get("dr_region"), str) else None
    written = raw.get("backup_tiers") if isinstance(raw.get("backup_tiers"), dict) else {}
    errors, advisories = checks.dr_copy_without_region(databases, tiers, written, dr_region, platform)
    add(problems, errors)
    add(warnings, advisories)


def restore_source_owner_warnings(stack: str, databases: Mapping[str, Database]) -> list[Problem]:
    """`restore_from` whose source is another owner's database of this stack (its instance, by identifier
    or ARN, for a point in time; one of its final snapshots `<identifier>-final-<hex>`): the new database's
    owner gets that owner's data. Said, not refused: docs/prod-stack.md's runbook restores for "the
    service that will read the copy" on purpose (rev-ops review of issue 24)."""
    identifiers = {aws_name(stack, n, max_length=54): n for n in databases}  # rds_postgres.instance_identifier
    out = []
    for name, db in databases.items():
        r = db.restore_from
        if r is None:
            continue
        if r.point_in_time is not None:
            source = r.point_in_time.source.rsplit(":", 1)[-1]
        else:
            source = re.sub(r"-final-[0-9a-f]+$", "", (r.snapshot or "").rsplit(":", 1)[-1])
        other = identifiers.get(source)
        if other is not None and other != name and databases[other].owner != db.owner:
            out.append(Problem(path=_path("databases", name, "restore_from"), message=(
                f"restores {other}, owned by {databases[other].owner}, into a database of {db.owner}: "
                f"{db.owner} reads {databases[other].owner}'s data; make sure that is meant, or set owner: "
                f"{databases[other].owner}")))
    return out


def _alerts_and_windows(raw: Mapping[str, Any], platform, region, databases: Mapping[str, Database],
                        tiers: Mapping[str, Tier], problems: list[Problem], warnings: list[Problem]):
    """`bulkhead:alerts` and `bulkhead:window_derivation`, and the windows RDS would refuse (issue 24)."""
    if platform != "aws":
        return None, 1
    alerts = None
    if raw.get("alerts") is not None:
        alerts = _validate(Alerts, raw["alerts"], ("alerts",), problems)
    if alerts is not None and alerts.topic_arn is not None:
        if alerts.emails or alerts.https:
            problems.append(Problem(path=_path("alerts", "topic_arn"), message="with an existing topic the stack creates "
                                    "none, so emails and https have nothing to subscribe to; subscribe them to that topic "
                                    "or remove topic_arn"))
        topic_region = re.fullmatch(SNS_TOPIC_ARN_RE, alerts.topic_arn)[1]
        if region and topic_region != region:
            problems.append(Problem(path=_path("alerts", "topic_arn"), message=f"is in {topic_region}, not the stack's "
                                    f"region {region}; CloudWatch alarms and RDS event subscriptions publish only to a "
                                    "topic of their own region"))
    elif alerts is None or not (alerts.emails or alerts.https):
        warnings.append(Problem(path=_path("alerts"), message="no subscriber: alarms and RDS events reach the stack's "
                                "topic and nobody is told; add emails, https endpoints or a topic_arn"))
    derivation = raw.get("window_derivation", windows.DEFAULT_DERIVATION)
    if isinstance(derivation, bool) or derivation not in windows.DERIVATIONS:
        problems.append(Problem(path=_path("window_derivation"), message=f"{derivation!r} is not a window derivation; use "
                                "1 (staggered by name, the default) or 0 (the old 03:00-04:00 / sun:05:00-sun:06:00 for all)"))
        derivation = windows.DEFAULT_DERIVATION
    requests = {n: windows.WindowRequest(owner=d.owner, schedule=tiers[d.tier].schedule if d.tier in tiers else "",
                                         backup_window=d.backup_window, maintenance_window=d.maintenance_window)
                for n, d in databases.items()}
    derived = windows.derive(requests, derivation)
    for name, w in derived.items():
        where = _path("databases", name)
        if windows.windows_overlap(w.backup, w.maintenance):
            key = "maintenance_window" if not w.maintenance_derived else "backup_window"
            problems.append(Problem(path=f"{where}.{key}", message=f"backup window {w.backup} meets maintenance window "
                                    f"{w.maintenance}; RDS refuses windows that overlap: move one"))
        db = databases[name]
        if db.tier in tiers and not w.backup_derived:
            busy = windows.backup_busy_minutes(tiers[db.tier].schedule)
            if windows.daily_minutes(w.backup) & busy:
                warnings.append(Problem(path=f"{where}.backup_window", message=f"{w.backup} meets the AWS Backup "
                                        f"schedule of tier {db.tier} ({tiers[db.tier].schedule}, jobs start up to 60 minutes "
                                        "after); the snapshot and the automated backup would compete"))
    for name, db in databases.items():
        if db.restore_from is not None and db.restore_from.point_in_time is not None:
            warnings.append(Problem(path=_path("databases", name, "restore_from", "point_in_time"), message="RDS restores "
                                    "a point in time under the source's KMS key (RestoreDBInstanceToPointInTime takes no "
                                    "key), so this database's storage shares the source's key until you move it: snapshot "
                                    "it and restore that snapshot into a database of its own (docs/prod-stack.md \"Restoring\")"))
    for owner, names in sorted(_by_owner(databases).items()):
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if windows.daily_minutes(derived[a].backup) & windows.daily_minutes(derived[b].backup):
                    warnings.append(Problem(path=_path("databases", b, "backup_window"), message=f"{derived[b].backup} "
                                            f"meets the backup window of {a}, another database of {owner}"))
                if windows.weekly_minutes(derived[a].maintenance) & windows.weekly_minutes(derived[b].maintenance):
                    warnings.append(Problem(path=_path("databases", b, "maintenance_window"), message=f"{derived[b].maintenance} "
                                            f"meets the maintenance window of {a}, another database of {owner}: both "
                                            "may restart at once"))
    return alerts, derivation


def _by_owner(databases: Mapping[str, Database]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for name, db in sorted(databases.items()):
        out[db.owner].append(name)
    return out


def alarm_thresholds(db: Database, tier: Tier) -> Optional[AlarmThresholds]:
    """The database's alarm thresholds: its tier's, with its own `alarms` keys over them; None when off."""
    if not db.alarms.enabled:
        return None
    return tier.alarms.model_copy(update={k: getattr(db.alarms, k) for k in db.alarms.model_fields_set if k != "enabled"})


FLOW_LOG_CHOICES = ("REJECT", "ALL", "none")


def _flow_logs(raw: Mapping[str, Any], network, problems: list[Problem]) -> str:
    """`bulkhead:flow_logs`: REJECT (default), ALL or none; a stack-created VPC only."""
    value = raw.get("flow_logs")
    if value is None:
        return "REJECT"
    if value not in FLOW_LOG_CHOICES:
        problems.append(Problem(path=_path("flow_logs"), message=f"{value!r} is not one of {', '.join(FLOW_LOG_CHOICES)}; "
                                "REJECT records refused connections (the default), ALL every flow, none turns it off"))
        return "REJECT"
    if network is not None and value != "none" and "flow_logs" in raw:
        problems.append(Problem(path=_path("flow_logs"), message="applies to the VPC the stack creates; with "
                                "bulkhead:network the network's owner runs its flow logs: remove it"))
    return value


def _principals(raw: Mapping[str, Any], key: str, platform, problems: list[Problem]) -> tuple[str, ...]:
    """A list of IAM principal ARNs (`bulkhead:key_admins`, `bulkhead:break_glass_principals`)."""
    value = raw.get(key)
    if platform != "aws" or value is None:
        return ()
    if not isinstance(value, list):
        problems.append(Problem(path=_path(key), message="must be a list of IAM role, user or account-root ARNs, "
                                "e.g. [arn:aws:iam::123456789012:role/db-admins]"))
        return ()
    good = []
    for index, arn in enumerate(value):
        if not isinstance(arn, str) or not re.fullmatch(PRINCIPAL_ARN_RE, arn):
            problems.append(Problem(path=_path(key, index), message=f"{arn!r} is not an IAM principal ARN; use "
                                    "arn:aws:iam::<account>:role/<name>, :user/<name> or :root"))
        elif arn in good:
            problems.append(Problem(path=_path(key, index), message=f"{arn} is listed twice; remove one"))
        else:
            good.append(arn)
    return tuple(good)


def _check_vault_lock(lock: VaultLock, tiers: Mapping[str, Tier], problems: list[Problem]) -> None:
    # A locked vault refuses recovery points whose lifecycle falls outside the lock's range.
    if lock.max_retention_days is not None and lock.max_retention_days < lock.min_retention_days:
        problems.append(Problem(path=_path("backup_vault_lock", "max_retention_days"),
                                message=f"{lock.max_retention_days} is below min_retention_days {lock.min_retention_days}; raise it"))
    for name, tier in sorted(tiers.items()):
        if tier.retention_days < lock.min_retention_days:
            problems.append(Problem(path=_path("backup_tiers", name, "retention_days"),
                                    message=f"{tier.retention_days} is below bulkhead:backup_vault_lock.min_retention_days "
                                    f"{lock.min_retention_days}; the locked vault would refuse these recovery points"))
        if lock.max_retention_days is not None and tier.retention_days > lock.max_retention_days:
            problems.append(Problem(path=_path("backup_tiers", name, "retention_days"),
                                    message=f"{tier.retention_days} is above bulkhead:backup_vault_lock.max_retention_days "
                                    f"{lock.max_retention_days}; the locked vault would refuse these recovery points"))


def _check_database_platform(name: str, db: Database, explicit: frozenset, platform: str, tiers, servers, problems: list[Problem]) -> None:
    wrong = AWS_ONLY_DATABASE_KEYS if platform == "docker" else DOCKER_ONLY_DATABASE_KEYS
    other = "aws" if platform == "docker" else "docker"
    for key in wrong:
        if key in explicit:
            problems.append(Problem(path=_path("databases", name, key), message=f"applies only to platform {other}; remove it from this {platform} stack"))
    if db.tier not in tiers:
        problems.append(Problem(path=_path("databases", name, "tier"), message=f"unknown tier {db.tier!r}; use one of {', '.join(sorted(tiers))} or define it under bulkhead:backup_tiers"))
    if platform == "docker":
        if db.server is not None:
            if db.server not in servers:
                known = ", ".join(sorted(servers)) or "none defined"
                problems.append(Problem(path=_path("databases", name, "server"), message=f"unknown server {db.server!r} (servers: {known}); define it under bulkhead:servers or remove server"))
            for key in ("port", "memory_mb", "cpus", "engine_version", "parameters"):
                if key in explicit:
                    problems.append(Problem(path=_path("databases", name, key), message=f"this database sits on server {db.server!r}; set {key} on bulkhead:servers.{db.server} instead"))
        elif db.port is None:
            problems.append(Problem(path=_path("databases", name, "port"), message="is required for a database with its own container; pick a free host port, e.g. 5433, or set server"))
    if platform == "aws" and db.restore_from is not None and "db_name" not in explicit:
        problems.append(Problem(path=_path("databases", name, "db_name"), message="is required with restore_from: the "
                                "restored instance holds the source's database, so name it here (the source's db_name, "
                                "e.g. db_name: billing); bulkhead's role of that name then owns it"))
    if platform == "aws" and db.max_storage_gb < db.storage_gb:
        problems.append(Problem(path=_path("databases", name, "max_storage_gb"), message=f"{db.max_storage_gb} is below storage_gb {db.storage_gb}; raise it so storage can autoscale"))


def _check_uniqueness(databases: dict[str, Database], servers: dict[str, Server], platform, problems: list[Problem]) -> None:
    if platform == "docker":
        ports: dict[int, str] = {}
        for name, server in servers.items():
            ports.setdefault(server.port, _path("servers", name))
        for name, db in databases.items():
            if db.port is None or db.server is not None:
                continue
            here = _path("databases", name)
            if db.port in ports:
                problems.append(Problem(path=f"{here}.port", message=f"port {db.port} is already used by {ports[db.port]}; choose another port"))
            else:
                ports[db.port] = here
        # Servers colliding with each other.
        seen: dict[int, str] = {}
        for name, server in servers.items():
            if server.port in seen:
                problems.append(Problem(path=_path("servers", name, "port"), message=f"port {server.port} is already used by bulkhead:servers.{seen[server.port]}; choose another port"))
            else:
                seen[server.port] = name

    # db_name must be unique where databases share a server (docker) and, to keep
    # connection strings unambiguous, across the stack everywhere.
    names: dict[str, str] = {}
    env: dict[tuple[str, str], str] = {}
    identifiers: dict[str, str] = {}
    if platform == "aws":
        # RDS identifiers and AWS names turn `_` into `-`: `a_b` and `a__b` would be one instance.
        for name in databases:
            ident = aws_name(name)
            if ident in identifiers:
                problems.append(Problem(path=_path("databases", name), message=f"becomes the AWS name {ident!r}, as bulkhead:databases.{identifiers[ident]} does; rename one of them"))
            else:
                identifiers[ident] = name
    for name, db in databases.items():
        if is_reserved_name(db.db_name):
            key = "db_name" if db.db_name != name else None
            problems.append(Problem(path=_path("databases", name, *([key] if key else [])),
                                    message=f"{db.db_name!r} is reserved by PostgreSQL or RDS; choose another name (set db_name)"))
            continue
        # On aws each database is an instance of its own, so two may hold a database of the same name
        # (connection strings differ by host): a restored copy keeps the source's db_name next to it
        # (restore_from, docs/prod-stack.md "Restoring"), also once restore_from is removed (issue 24).
        if db.db_name in names and platform != "aws":
            problems.append(Problem(path=_path("databases", name, "db_name"), message=f"db_name {db.db_name!r} is already used by bulkhead:databases.{names[db.db_name]}; give each database its own db_name"))
        else:
            names[db.db_name] = name
        key = (db.owner, db.env_var)
        if key in env:
            problems.append(Problem(path=_path("databases", name, "env_var"), message=f"{db.owner} already reads {db.env_var} for bulkhead:databases.{env[key]}; give this database another env_var"))
        else:
            env[key] = name


def _check_rds_offerings(databases: dict[str, Database], region: str, problems: list[Problem]) -> None:
    """Engine versions and instance classes RDS offers for PostgreSQL in the stack's region
    (AWS's lists as cfn-lint ships them: components/catalogue/offerings.py)."""
    source = aws_offerings.data_source()
    try:
        aws_offerings.engine_versions(region)
    except KeyError:
        problems.append(Problem(path="aws:region", message=f"{region!r} is not a region RDS lists ({source}); check the "
                                f"region name, or refresh the table with tools/generate_rds_offerings.py"))
        return
    for name, db in databases.items():
        version = db.engine_version
        if not aws_offerings.offers_engine_version(region, version):
            nearest = ", ".join(aws_offerings.nearest_engine_versions(region, version))
            problems.append(Problem(path=_path("databases", name, "engine_version"),
                                    message=f"{version!r} is not offered by RDS for PostgreSQL in {region} ({source}); "
                                    f"use one of the nearest offered: {nearest}"))
            version = str(db.major)  # still check the classes, against the major
        keys = [("instance_class", db.instance_class)]
        if db.replicas and db.replica_instance_class != db.instance_class:
            keys.append(("replica_instance_class", db.replica_instance_class))
        for key, value in keys:
            if value not in aws_offerings.instance_classes(region, version):
                nearest = ", ".join(aws_offerings.nearest_instance_classes(region, value, version))
                problems.append(Problem(path=_path("databases", name, key),
                                        message=f"{value!r} is not offered by RDS for PostgreSQL {version} in {region} "
                                        f"({source}); use one of the nearest offered: {nearest}"))


def _check_engine_version(version: str, platform: str, path: str, problems: list[Problem]) -> None:
    """A pinned minor must be released (settings table's released minors) and, on docker, have an image tag."""
    major_text, _, minor_text = version.partition(".")
    if not minor_text:
        return
    major, minor = int(major_text), int(minor_text)
    if minor_text != str(minor):
        problems.append(Problem(path=path, message=f'{version!r} has a leading zero; write "{major}.{minor}"'))
        return
    latest = pg_settings.latest_minor(major)
    if latest is not None and minor > latest:
        problems.append(Problem(path=path, message=(
            f"PostgreSQL {version} has not been released (the newest {major} is {major}.{latest}, per "
            f'{pg_settings.minors_source(major)}); use "{major}" for the newest or a released minor such as '
            f'"{major}.{latest}"')))
        return
    first_image = pg_settings.first_image_minor(major)
    if platform == "docker" and first_image is not None and minor < first_image:
        problems.append(Problem(path=path, message=(
            f"there is no image postgres:{version}-bookworm (the bookworm images of {major} start at "
            f'{major}.{first_image}); use "{major}" or a minor from {major}.{first_image} to {major}.{latest}')))


def _check_settings(databases: dict[str, Database], servers: dict[str, Server], platform: str,
                    problems: list[Problem], warnings: list[Problem]):
    """Versions and `parameters` of every database and server; parameters rewritten into the platform's form."""
    checked_dbs: dict[str, Database] = {}
    for name, db in databases.items():
        _check_engine_version(db.engine_version, platform, _path("databases", name, "engine_version"), problems)
        if platform == "docker" and db.server is not None:
            checked_dbs[name] = db  # its settings are the server's
            continue
        values = _check_parameter_map(db.parameters, db.major, platform, ("databases", name),
                                      db.memory_mb if platform == "docker" else None, problems, warnings,
                                      instance_class=db.instance_class if platform == "aws" else None)
        checked_dbs[name] = db.model_copy(update={"parameters": values})
    checked_servers: dict[str, Server] = {}
    for name, server in servers.items():
        _check_engine_version(server.engine_version, platform, _path("servers", name, "engine_version"), problems)
        values = _check_parameter_map(server.parameters, server.major, platform, ("servers", name),
                                      server.memory_mb, problems, warnings)
        checked_servers[name] = server.model_copy(update={"parameters": values})
    return checked_dbs, checked_servers


def _check_parameter_map(parameters: dict[str, str], major: int, platform: str, where: tuple,
                         memory_mb: Optional[int], problems: list[Problem], warnings: list[Problem],
                         instance_class: Optional[str] = None) -> dict[str, str]:
    _, note = pg_settings.resolve(major)
    if note and parameters:
        warnings.append(Problem(path=_path(*where, "engine_version"), message=note))
    checked = pg_parameters.check_parameters(parameters, major, platform, _path(*where, "parameters"))
    problems.extend(Problem(path=f.path, message=f.message) for f in checked.problems)
    warnings.extend(Problem(path=f.path, message=f.message) for f in checked.warnings)
    unit_of = lambda name: getattr(pg_settings.setting(major, name), "unit", None)  # noqa: E731
    warnings.extend(Problem(path=p, message=m) for p, m in checks.unit_less_parameters(
        _path(*where, "parameters"), {k: v for k, v in parameters.items() if k in checked.values}, unit_of))
    if instance_class is not None:
        errors, advisories = checks.shared_buffers_on_rds(_path(*where), instance_class, checked.bytes.get("shared_buffers"))
        problems.extend(Problem(path=p, message=m) for p, m in errors)
        warnings.extend(Problem(path=p, message=m) for p, m in advisories)
    if memory_mb is not None and not checked.problems:
        errors, advisories = pg_parameters.memory_findings(checked, memory_mb, major, _path(*where))
        problems.extend(Problem(path=f.path, message=f.message) for f in errors)
        warnings.extend(Problem(path=f.path, message=f.message) for f in advisories)
    return dict(sorted(checked.values.items()))


def _check_connection_budget(databases: dict[str, Database], servers: dict[str, Server], problems: list[Problem],
                             platform: str = "docker") -> None:
    """Each server's max_connections covers every tenant's connection_limit plus the reserved
    slots, so one tenant at its limit never locks the others (or the admin) out. On aws only where
    max_connections is set: RDS's default follows the instance's memory."""
    hosts: list[tuple[tuple, Mapping[str, str], dict[str, Database]]] = []
    for name, db in databases.items():
        if db.server is None:
            hosts.append((("databases", name), db.parameters, {name: db}))
    for name, server in servers.items():
        hosts.append((("servers", name), server.parameters, {n: d for n, d in databases.items() if d.server == name}))
    for path, parameters, tenants in hosts:
        if not tenants or (platform == "aws" and "max_connections" not in parameters):
            continue
        try:
            max_connections = int(parameters.get("max_connections", DEFAULT_MAX_CONNECTIONS))
            reserved = int(parameters.get("superuser_reserved_connections", DEFAULT_SUPERUSER_RESERVED)) + int(
                parameters.get("reserved_connections", 0)
            )
        except ValueError:
            continue  # not a number: the parameter's own validation reports it
        if platform == "aws":
            # One tenant per instance, and RDS keeps its own slots for rdsadmin: the limit itself must fit.
            reserved = 0
        limits = {n: d.connection_limit or 0 for n, d in sorted(tenants.items())}
        needed = sum(limits.values()) + reserved
        if max_connections < needed:
            where = "max_connections" if "max_connections" in parameters else f"max_connections (PostgreSQL's default {DEFAULT_MAX_CONNECTIONS})"
            listed = " + ".join(f"{n} {v}" for n, v in limits.items())
            problems.append(
                Problem(
                    path=_path(*path, "parameters", "max_connections"),
                    message=f"{where} {max_connections} is below the connection_limit of its databases ({listed})"
                    f" plus {reserved} reserved slots = {needed}; raise max_connections to at least {needed}"
                    " or lower connection_limit",
                )
            )
