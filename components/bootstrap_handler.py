"""The bootstrap function's handler: create one service's login role inside its RDS database.

Runs in AWS Lambda (packaged by components/rds_bootstrap.py with pg8000), and in
the tests against a real PostgreSQL server. No Pulumi here, and nothing from
the repository but `role_sql` (the generator the dev init uses too).

It reads the master credentials from this database's own secret (the only one
its IAM role may read), connects over TLS, pins `search_path` before anything
else, refuses to run when the instance's own role settings were tampered with,
applies the role SQL in one transaction and verifies the result. It never logs
or returns a password; every failure is a `BootstrapError` naming the database
and the cause.
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

ENV_SECRET_ARN = "BULKHEAD_SECRET_ARN"
ENV_DATABASE = "BULKHEAD_DATABASE"
# Optional: a CA bundle to verify the server with (the tests' self-signed server).
ENV_SSL_ROOT_CERT = "BULKHEAD_SSL_ROOT_CERT"
# How long a refused login is retried: RDS applies a new master password asynchronously.
ENV_AUTH_RETRY_SECONDS = "BULKHEAD_AUTH_RETRY_SECONDS"
DEFAULT_AUTH_RETRY_SECONDS = 240
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_CONNECTION_LIMIT = 10000
SQLSTATE_INVALID_PASSWORD = "28P01"
SQLSTATE_INVALID_AUTHORIZATION = "28000"

log = logging.getLogger("bulkhead.bootstrap")
log.setLevel(logging.INFO)


class BootstrapError(Exception):
    """A failure with a message fit for the deployment log: database and cause, never a secret."""


@dataclass(frozen=True)
class RoleRequest:
    """The invocation's input (no secret in it: it is in the plan and the Lambda logs)."""

    database: str  # catalogue name
    db_name: str
    role: str
    connection_limit: int
    master_password_version: int

    def to_event(self) -> dict:
        return asdict(self)

    @classmethod
    def from_event(cls, event: Any) -> "RoleRequest":
        if not isinstance(event, dict):
            raise BootstrapError("the invocation input is not a JSON object; redeploy with bulkhead")
        missing = [k for k in ("database", "db_name", "role", "connection_limit", "master_password_version") if k not in event]
        if missing:
            raise BootstrapError(f"the invocation input lacks {', '.join(missing)}; redeploy with bulkhead")
        for key in ("db_name", "role"):
            if not isinstance(event[key], str) or not NAME_RE.match(event[key]):
                raise BootstrapError(f"the invocation input's {key} is not a PostgreSQL name ({NAME_RE.pattern})")
        limit = event["connection_limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or not -1 <= limit <= MAX_CONNECTION_LIMIT:
            raise BootstrapError(f"the invocation input's connection_limit must be a whole number -1..{MAX_CONNECTION_LIMIT}")
        return cls(
            database=str(event["database"]),
            db_name=event["db_name"],
            role=event["role"],
            connection_limit=limit,
            master_password_version=int(event["master_password_version"]),
        )


@dataclass(frozen=True)
class MasterCredentials:
    host: str
    port: int
    username: str
    password: str
    dbname: Optional[str]

    def __repr__(self) -> str:  # never in a traceback or a log line
        return f"MasterCredentials(host={self.host!r}, port={self.port}, username={self.username!r}, password=***)"


def read_master_secret(secret_arn: str, database: str, client=None) -> MasterCredentials:
    """The JSON secret (RDS's shape: engine, host, port, username, password, dbname, ...)."""
    if client is None:
        import boto3  # in the Lambda runtime; imported late so tests can pass a moto client

        client = boto3.client("secretsmanager")
    try:
        value = client.get_secret_value(SecretId=secret_arn)
    except Exception as exc:  # botocore's ClientError and connection errors
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise BootstrapError(f"database {database}: cannot read its master secret {secret_arn} ({code}); check the "
                             f"function's role and the VPC's route to Secrets Manager") from None
    try:
        data = json.loads(value.get("SecretString") or "")
        creds = MasterCredentials(host=str(data["host"]), port=int(data.get("port", 5432)),
                                  username=str(data["username"]), password=str(data["password"]),
                                  dbname=data.get("dbname"))
    except (ValueError, KeyError, TypeError):
        raise BootstrapError(f"database {database}: its master secret {secret_arn} is not the JSON bulkhead writes "
                             f"(host, port, username, password, dbname)") from None
    return creds


def _ssl_context() -> ssl.SSLContext:
    root = os.environ.get(ENV_SSL_ROOT_CERT)
    if root:
        context = ssl.create_default_context(cafile=root)
        context.check_hostname = False  # the tests' server certificate names no host
        return context
    # rds.force_ssl=1 refuses plain connections; without a bundled RDS CA the channel is
    # encrypted but unauthenticated inside the VPC, and SCRAM never sends the password itself.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _sqlstate(exc: Exception) -> Optional[str]:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], dict):
        return args[0].get("C")
    return None


def _pg_message(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], dict):
        return f"{args[0].get('M', 'error')} (SQLSTATE {args[0].get('C', '?')})"
    return type(exc).__name__


def connect(creds: MasterCredentials, db_name: str, database: str, retry_seconds: float,
            sleep: Callable[[float], None] = time.sleep):
    """A pg8000 connection as the master to `db_name`; a refused login is retried for `retry_seconds`."""
    import pg8000.native

    deadline = time.monotonic() + retry_seconds
    delay = 2.0
    while True:
        try:
            return pg8000.native.Connection(
                user=creds.username, password=creds.password, host=creds.host, port=creds.port,
                database=db_name, ssl_context=_ssl_context(), timeout=30, application_name="bulkhead-bootstrap",
            )
        except pg8000.native.DatabaseError as exc:
            auth = _sqlstate(exc) in (SQLSTATE_INVALID_PASSWORD, SQLSTATE_INVALID_AUTHORIZATION)
            if auth and time.monotonic() + delay < deadline:
                log.info("database %s: login refused, the new master password may still be applying; retrying", database)
                sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            raise BootstrapError(f"database {database}: the master login to {creds.host}:{creds.port}/{db_name} "
                                 f"failed: {_pg_message(exc)}") from None
        except (OSError, pg8000.native.InterfaceError) as exc:
            raise BootstrapError(f"database {database}: cannot reach {creds.host}:{creds.port} "
                                 f"({type(exc).__name__}: {exc}); check the function's security group and the "
                                 f"database group's rule for it") from None


def bootstrap(request: RoleRequest, creds: MasterCredentials, retry_seconds: float = DEFAULT_AUTH_RETRY_SECONDS,
              sleep: Callable[[float], None] = time.sleep) -> dict:
    """Apply the role SQL to `request.db_name` as the master; return what the role now is."""
    from . import role_sql

    conn = connect(creds, request.db_name, request.database, retry_seconds, sleep)
    try:
        return role_sql.apply_service_role(conn, request, creds.username, BootstrapError)
    except BootstrapError:
        raise
    except Exception as exc:
        raise BootstrapError(f"database {request.database}: creating role {request.role} failed: "
                             f"{_pg_message(exc)}") from None
    finally:
        try:
            conn.close()
        except Exception:
            pass


def handler(event, context=None) -> dict:
    """Lambda entry point."""
    request = RoleRequest.from_event(event)
    secret_arn = os.environ.get(ENV_SECRET_ARN)
    if not secret_arn:
        raise BootstrapError(f"database {request.database}: {ENV_SECRET_ARN} is not set on the function; redeploy")
    retry = float(os.environ.get(ENV_AUTH_RETRY_SECONDS, DEFAULT_AUTH_RETRY_SECONDS))
    creds = read_master_secret(secret_arn, request.database)
    result = bootstrap(request, creds, retry)
    log.info("database %s: role %s is in place", request.database, request.role)
    return result
