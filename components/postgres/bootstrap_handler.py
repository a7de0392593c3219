"""The bootstrap function's handler: create one service's login role inside its RDS database.

Runs in AWS Lambda (packaged by components/prod/rds_bootstrap.py with pg8000), and in
the tests against a real PostgreSQL server. No Pulumi here, and nothing from
the repository but `role_sql` (the generator the dev init uses too).

It reads the master credentials from this database's own secret (the only one
its IAM role may read), connects over TLS, refuses to run when the master's own
session was tampered with (settings attached to the master role, a session that
is not the master's), runs `role_sql.bootstrap_plan` (IAM login, RDS admin
flavour: every session hardened, `search_path = pg_catalog, pg_temp`, operators
schema-qualified) one statement at a time, and verifies the result. It never
logs or returns a password; every failure is a `BootstrapError` naming the
database and the cause.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from . import role_sql

ENV_SECRET_ARN = "BULKHEAD_SECRET_ARN"
ENV_DATABASE = "BULKHEAD_DATABASE"
# What this function was deployed for: the invocation input may not choose another database
# or role (the function runs as the master; anyone allowed lambda:InvokeFunction can call it).
ENV_DB_NAME = "BULKHEAD_DB_NAME"
ENV_ROLE = "BULKHEAD_ROLE"
# The rest of what the function does, also from its environment: the invocation's event is
# ignored entirely (anyone allowed lambda:InvokeFunction chooses the event, and the function
# runs as the master). Changing the environment is lambda:UpdateFunctionConfiguration, which
# `bulkhead audit` reports as drift.
ENV_CONNECTION_LIMIT = "BULKHEAD_CONNECTION_LIMIT"
ENV_ROLE_SETTINGS = "BULKHEAD_ROLE_SETTINGS"  # JSON object: setting name -> string
ENV_AUTH = "BULKHEAD_AUTH"  # "iam" (default) or "password"
ENV_LOGIN_SECRET_ARN = "BULKHEAD_LOGIN_SECRET_ARN"  # auth password: the login role's own secret
# Where Secrets Manager is, when its VPC endpoint has no private DNS (a given, possibly shared VPC:
# components/prod/vpc_endpoints.py): the endpoint's own https URL. The SDKs' standard name for it
# ("Service-specific endpoints", AWS SDKs and Tools Reference Guide: AWS_ENDPOINT_URL_<SERVICE ID>,
# "Secrets Manager" -> SECRETS_MANAGER); botocore reads it itself (botocore/configprovider.py
# ConfiguredEndpointProvider._get_service_env_var_name, checked in botocore 1.44.18), and
# secrets_client passes it explicitly too, so a runtime whose boto3 predates service-specific
# endpoints cannot silently ignore it: the package ships no boto3 (lambda_archive DISTRIBUTIONS is
# pg8000 only), so it is the python3.13 runtime's, whose version "depends on the runtime version
# and your AWS Region" (Lambda developer guide, "Runtime-included SDK versions").
ENV_SECRETS_ENDPOINT_URL = "AWS_ENDPOINT_URL_SECRETS_MANAGER"
# Optional: a CA bundle to verify the server with (the tests' self-signed server).
ENV_SSL_ROOT_CERT = "BULKHEAD_SSL_ROOT_CERT"
# How long a refused login is retried: RDS applies a new master password asynchronously.
ENV_AUTH_RETRY_SECONDS = "BULKHEAD_AUTH_RETRY_SECONDS"
DEFAULT_AUTH_RETRY_SECONDS = 240
SQLSTATE_INVALID_PASSWORD = "28P01"
SQLSTATE_INVALID_AUTHORIZATION = "28000"

log = logging.getLogger("bulkhead.bootstrap")
log.setLevel(logging.INFO)


class BootstrapError(Exception):
    """A failure with a message fit for the deployment log: database and cause, never a secret."""


AUTH_METHODS = ("iam", "password")


@dataclass(frozen=True)
class RoleRequest:
    """What the function does, read from its environment (`from_environment`): never from the
    invocation's event, which whoever may invoke the function chooses."""

    database: str  # catalogue name
    db_name: str
    role: str
    connection_limit: int
    master_password_version: int = 0  # only re-runs the invocation; the handler does not use it
    settings: dict = field(default_factory=dict)  # role-level settings (role_sql.RoleSpec.settings)
    auth: str = "iam"
    login_secret_arn: Optional[str] = None  # auth password: the login role's own secret

    def to_event(self) -> dict:
        return asdict(self)

    @classmethod
    def from_event(cls, event: Any, source: str = "the invocation input") -> "RoleRequest":
        """Validate a request's fields (the tests' and `from_environment`'s shape)."""
        if not isinstance(event, dict):
            raise BootstrapError(f"{source} is not a JSON object; redeploy with bulkhead")
        missing = [k for k in ("database", "db_name", "role", "connection_limit") if k not in event]
        if missing:
            raise BootstrapError(f"{source} lacks {', '.join(missing)}; redeploy with bulkhead")
        for key in ("db_name", "role"):
            if not isinstance(event[key], str) or not role_sql.NAME_RE.match(event[key]):
                raise BootstrapError(f"{source}'s {key} is not a PostgreSQL name ({role_sql.NAME_RE.pattern})")
        limit, (low, high) = event["connection_limit"], role_sql.CONNECTION_LIMIT_RANGE
        if isinstance(limit, bool) or not isinstance(limit, int) or not low <= limit <= high:
            raise BootstrapError(f"{source}'s connection_limit must be a whole number {low}..{high}")
        settings = event.get("settings") or {}
        if not isinstance(settings, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in settings.items()):
            raise BootstrapError(f"{source}'s settings must map setting names to strings")
        auth = event.get("auth") or "iam"
        if auth not in AUTH_METHODS:
            raise BootstrapError(f"{source}'s auth must be one of {', '.join(AUTH_METHODS)}")
        login_secret_arn = event.get("login_secret_arn") or None
        if auth == "password" and not login_secret_arn:
            raise BootstrapError(f"{source} has auth password but no login secret ARN; redeploy with bulkhead")
        return cls(
            database=str(event["database"]),
            db_name=event["db_name"],
            role=event["role"],
            connection_limit=limit,
            master_password_version=int(event.get("master_password_version") or 0),
            settings=dict(sorted(settings.items())),
            auth=auth,
            login_secret_arn=login_secret_arn if auth == "password" else None,
        )

    @classmethod
    def from_environment(cls, environ: Any = None) -> "RoleRequest":
        """The request the function was deployed with: its environment variables only."""
        environ = os.environ if environ is None else environ
        source = "the function's environment"
        missing = [k for k in (ENV_DATABASE, ENV_DB_NAME, ENV_ROLE, ENV_CONNECTION_LIMIT) if not environ.get(k)]
        if missing:
            raise BootstrapError(f"{source} lacks {', '.join(missing)}; redeploy with bulkhead")
        try:
            limit = int(environ[ENV_CONNECTION_LIMIT])
            settings = json.loads(environ.get(ENV_ROLE_SETTINGS) or "{}")
        except ValueError:
            raise BootstrapError(f"{source}: {ENV_CONNECTION_LIMIT} must be a whole number and {ENV_ROLE_SETTINGS} "
                                 f"a JSON object; redeploy with bulkhead") from None
        return cls.from_event({
            "database": environ[ENV_DATABASE], "db_name": environ[ENV_DB_NAME], "role": environ[ENV_ROLE],
            "connection_limit": limit, "settings": settings, "auth": environ.get(ENV_AUTH) or "iam",
            "login_secret_arn": environ.get(ENV_LOGIN_SECRET_ARN),
        }, source)


def function_environment(*, database: str, db_name: str, role: str, connection_limit: int, settings: dict,
                         master_secret_arn: Any, auth: str = "iam", login_secret_arn: Any = None,
                         secrets_endpoint_url: Any = None) -> dict:
    """The function's environment variables (the deployment sets them, `audit` compares them)."""
    variables = {
        ENV_SECRET_ARN: master_secret_arn,
        ENV_DATABASE: database,
        ENV_DB_NAME: db_name,
        ENV_ROLE: role,
        ENV_CONNECTION_LIMIT: str(connection_limit),
        ENV_ROLE_SETTINGS: json.dumps(dict(sorted(settings.items())), sort_keys=True),
    }
    if auth == "password":
        variables[ENV_AUTH] = "password"
        variables[ENV_LOGIN_SECRET_ARN] = login_secret_arn
    if secrets_endpoint_url is not None:
        variables[ENV_SECRETS_ENDPOINT_URL] = secrets_endpoint_url
    return variables


def is_secrets_endpoint_url(url: Any, region: Optional[str]) -> bool:
    """An interface endpoint's Regional name for Secrets Manager in `region` (PrivateLink guide,
    "DNS hostnames": vpce-<id>.<service>.<region>.vpce.amazonaws.com), as https, nothing else."""
    import re

    if not isinstance(url, str) or not region:
        return False
    return re.fullmatch(r"https://vpce-[0-9a-z]+-[0-9a-z]+\.secretsmanager\." + re.escape(region)
                        + r"\.vpce\.amazonaws\.com(\.cn)?", url) is not None


def secrets_client(environ: Any = None):
    """boto3's Secrets Manager client, at the endpoint URL of the function's environment if set."""
    import boto3  # in the Lambda runtime; imported late so tests can pass a moto client

    environ = os.environ if environ is None else environ
    return boto3.client("secretsmanager", endpoint_url=environ.get(ENV_SECRETS_ENDPOINT_URL) or None)


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
        client = secrets_client()
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


def read_login_password(secret_arn: str, database: str, client=None) -> str:
    """auth password: the login role's own secret (JSON with `password`, as the master's)."""
    if client is None:
        client = secrets_client()
    try:
        value = client.get_secret_value(SecretId=secret_arn)
        password = json.loads(value.get("SecretString") or "")["password"]
    except (ValueError, KeyError, TypeError):
        raise BootstrapError(f"database {database}: its login secret {secret_arn} is not the JSON bulkhead writes "
                             f"(username, password)") from None
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise BootstrapError(f"database {database}: cannot read its login secret {secret_arn} ({code}); check the "
                             f"function's role") from None
    if not isinstance(password, str) or len(password) < 16:
        raise BootstrapError(f"database {database}: its login secret {secret_arn} holds no usable password")
    return password


def _ssl_context() -> ssl.SSLContext:
    root = os.environ.get(ENV_SSL_ROOT_CERT)
    if root:
        context = ssl.create_default_context(cafile=root)
        context.check_hostname = False  # the tests' server certificate names no host
        return context
    # rds.force_ssl=1 refuses plain connections. No RDS CA bundle is packaged, so the
    # certificate is not verified; the server is authenticated by SCRAM with channel binding
    # instead (`_scram_only_connection`): only a server holding the master's verifier completes
    # it, and the binding to the certificate we saw defeats a relay.
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


# AuthenticationOk / SASL / SASLContinue / SASLFinal (PostgreSQL protocol, "Message Formats").
_AUTH_OK, _AUTH_SASL, _AUTH_SASL_CONTINUE, _AUTH_SASL_FINAL = 0, 10, 11, 12
SCRAM_CHANNEL_BINDING = "SCRAM-SHA-256-PLUS"


class AuthenticationRefused(Exception):
    """The server asked for a login method the bootstrap refuses."""


def _scram_only_connection():
    """pg8000's Connection, refusing every login but SCRAM-SHA-256-PLUS run to its end.

    pg8000 answers AuthenticationCleartextPassword with the password itself and MD5 with a
    replayable hash (pg8000/core.py handle_AUTHENTICATION_REQUEST), and accepts
    AuthenticationOk at any point. Over an unverified TLS channel a server in the middle could
    ask for either. RDS for PostgreSQL 14+ stores the master password as SCRAM (default
    password_encryption, RDS user guide "Using SCRAM for PostgreSQL password encryption") and
    offers SCRAM-SHA-256-PLUS over TLS (PostgreSQL 11+, "SASL Authentication")."""
    import pg8000.native

    class ScramOnlyConnection(pg8000.native.Connection):
        _bulkhead_server_proved = False

        def handle_AUTHENTICATION_REQUEST(self, data, context):
            code = struct.unpack("!i", data[:4])[0]
            if code == _AUTH_SASL:
                offered = [m.decode("ascii", "replace") for m in data[4:-2].split(b"\x00")]
                if SCRAM_CHANNEL_BINDING not in offered:
                    raise AuthenticationRefused(f"the server offers {', '.join(offered) or 'no mechanism'}, "
                                                f"not {SCRAM_CHANNEL_BINDING}")
            elif code == _AUTH_OK:
                if not self._bulkhead_server_proved:
                    raise AuthenticationRefused("the server accepted the login without SCRAM proving it knows "
                                                "the master's verifier")
            elif code not in (_AUTH_SASL_CONTINUE, _AUTH_SASL_FINAL):
                raise AuthenticationRefused(f"the server asks for login method {code}, not {SCRAM_CHANNEL_BINDING}")
            super().handle_AUTHENTICATION_REQUEST(data, context)
            if code == _AUTH_SASL_FINAL:  # scramp checked the server signature (raises otherwise)
                self._bulkhead_server_proved = True

    return ScramOnlyConnection


def connect(creds: MasterCredentials, db_name: str, database: str, retry_seconds: float,
            sleep: Callable[[float], None] = time.sleep):
    """A pg8000 connection as the master to `db_name`; a refused login is retried for `retry_seconds`."""
    import pg8000.native
    from scramp import ScramException  # a server signature that does not verify, among others

    deadline = time.monotonic() + retry_seconds
    delay = 2.0
    while True:
        try:
            return _scram_only_connection()(
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
        except (AuthenticationRefused, ScramException) as exc:
            raise BootstrapError(f"database {database}: refusing the master login to {creds.host}:{creds.port}: "
                                 f"{exc}; the password is sent only by SCRAM with channel binding (PostgreSQL 14+, "
                                 f"password_encryption scram-sha-256)") from None
        except (OSError, pg8000.native.InterfaceError) as exc:
            raise BootstrapError(f"database {database}: cannot reach {creds.host}:{creds.port} "
                                 f"({type(exc).__name__}: {exc}); check the function's security group and the "
                                 f"database group's rule for it") from None


# Settings that, attached to the master role, would run its statements somewhere else.
TAMPER_SETTINGS = frozenset({"search_path", "role", "session_authorization"})
_MASTER_SETTINGS = (
    "SELECT d.datname, s.setconfig FROM pg_catalog.pg_db_role_setting s"
    " JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.setrole"
    " LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.setdatabase"
    " WHERE r.rolname OPERATOR(pg_catalog.=) pg_catalog.session_user()"
)
_SESSION = "SELECT pg_catalog.session_user()::text, pg_catalog.current_user()::text, pg_catalog.current_setting('search_path')"
_ROLE_STATE = (
    "SELECT r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolinherit, r.rolreplication,"
    " r.rolbypassrls, r.rolconnlimit, (r.rolpassword IS NOT NULL),"
    " pg_catalog.pg_has_role(r.oid, 'rds_iam', 'MEMBER') FROM pg_catalog.pg_authid r"
    " WHERE r.rolname OPERATOR(pg_catalog.=) :role"
)
_ROLE_STATE_NO_AUTHID = _ROLE_STATE.replace("(r.rolpassword IS NOT NULL)", "NULL").replace("pg_authid", "pg_roles")
_OWNER = ("SELECT pg_catalog.pg_get_userbyid(datdba)::text FROM pg_catalog.pg_database"
          " WHERE datname OPERATOR(pg_catalog.=) :db")


def _check_master_session(conn, request: RoleRequest, master: str) -> None:
    """Refuse a master session someone has tampered with: bulkhead attaches no settings to the
    master, and the session must be the master's own (no SET ROLE, SESSION AUTHORIZATION)."""
    rows = conn.run(_MASTER_SETTINGS)
    found = sorted({c.split("=", 1)[0] + (f" (in {d})" if d else "") for d, cfg in rows for c in cfg or []
                    if c.split("=", 1)[0] in TAMPER_SETTINGS})
    if found:
        raise BootstrapError(f"database {request.database}: the master role {master} carries settings bulkhead never "
                             f"sets ({', '.join(found)}): the instance was tampered with; reset them "
                             f"(ALTER ROLE {master} RESET ALL, and IN DATABASE ... RESET ALL) and run again")
    session_user, current_user, search_path = conn.run(_SESSION)[0]
    if session_user != master or current_user != master:
        raise BootstrapError(f"database {request.database}: the session runs as {current_user} (login {session_user}), "
                             f"not as the master {master}; refusing to run")
    if search_path.replace(" ", "") != "pg_catalog,pg_temp":
        raise BootstrapError(f"database {request.database}: search_path is {search_path!r} after hardening; refusing to run")


_PRIVILEGED = ("SELECT rolsuper, rolreplication, rolbypassrls FROM pg_catalog.pg_roles"
               " WHERE rolname OPERATOR(pg_catalog.=) :role")


def _refuse_privileged_role(conn, request: RoleRequest) -> None:
    """PostgreSQL lets only superusers alter a SUPERUSER/REPLICATION/BYPASSRLS role, and the RDS
    master is none: say so before the ALTER fails with a less helpful message."""
    rows = conn.run(_PRIVILEGED, role=request.role)
    if rows and any(rows[0]):
        held = [name for name, on in zip(("SUPERUSER", "REPLICATION", "BYPASSRLS"), rows[0]) if on]
        raise BootstrapError(f"database {request.database}: role {request.role} has {', '.join(held)}, which bulkhead "
                             f"never grants and the RDS master cannot remove; a superuser must run ALTER ROLE "
                             f"{request.role} NO{' NO'.join(held)}, then run again")


# Event triggers fire on the master's DDL in that database (every run does some: role_sql
# in_database_statements, the adoption below) and run their function as the master, the session user
# (PostgreSQL docs, "Event Triggers": ddl_command_start/end fire for ALTER, GRANT, REVOKE...). A
# restored database may bring one (AWS DMS's documented awsdms_intercept_ddl is made by the master);
# RDS lets rds_superuser create them, PostgreSQL only a superuser. One whose function a non-superuser
# other than the master owns (the tenant's role) would run that role's code as the master.
_FOREIGN_EVENT_TRIGGERS = (
    "SELECT e.evtname::pg_catalog.text, p.oid::pg_catalog.regprocedure::pg_catalog.text,"
    " pg_catalog.pg_get_userbyid(p.proowner)::pg_catalog.text"
    " FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) e.evtfoid"
    " JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) p.proowner"
    " WHERE e.evtenabled OPERATOR(pg_catalog.<>) 'D' AND NOT o.rolsuper"
    " AND o.rolname OPERATOR(pg_catalog.<>) pg_catalog.session_user() ORDER BY 1"
)


def _refuse_foreign_event_triggers(conn, request: RoleRequest, db_name: str) -> None:
    """Before any statement in `db_name`: no enabled event trigger may run a function that another
    non-superuser role owns (it would run as the master on this run's DDL)."""
    rows = conn.run(_FOREIGN_EVENT_TRIGGERS)
    if rows:
        listed = "; ".join(f"{name} runs {fn} owned by {owner}" for name, fn, owner in rows)
        raise BootstrapError(f"database {request.database}: in database {db_name}, event trigger {listed}: its code "
                             f"would run as the master on this run's statements; as the master, drop the trigger "
                             f"or ALTER EVENT TRIGGER <name> DISABLE (after reading the function), then run again")


def _role_state(conn, role: str) -> Optional[dict]:
    try:
        rows = conn.run(_ROLE_STATE, role=role)
    except Exception:  # pg_authid is superuser-only (RDS's master cannot read it)
        rows = conn.run(_ROLE_STATE_NO_AUTHID, role=role)
    if not rows:
        return None
    keys = ("login", "superuser", "createdb", "createrole", "inherit", "replication", "bypassrls",
            "connection_limit", "has_password", "rds_iam")
    return dict(zip(keys, rows[0]))


def adopt_master_objects_statement(role_i: str) -> str:
    """In the tenant's database: hand what the master owns there to the service's role (issue 24).

    A database restored from a snapshot or a point in time (`restore_from`) comes with the source's data;
    where that data belongs to the master (a break-glass session created it, or the source predates its
    role), the service could not use it. Schemas, tables, views, sequences not owned by a column, and
    routines move to the role (not an event trigger's function: it runs as the master on the master's DDL,
    `_refuse_foreign_event_triggers`); an extension's members stay (pg_depend deptype 'e': the extension owns
    them). Runs as the master, which owns them, on the hardened session (every name qualified)."""
    not_system = ("n.nspname OPERATOR(pg_catalog.!~) '^pg_' AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'")
    not_extension = ("NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) {cls}::pg_catalog.regclass"
                     " AND d.objid OPERATOR(pg_catalog.=) {oid} AND d.deptype OPERATOR(pg_catalog.=) 'e')")
    me = "(SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER)"
    role = role_sql.quote_literal(role_i)
    return (
        "DO $bulkhead$ DECLARE r record; BEGIN"
        f" FOR r IN SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspowner OPERATOR(pg_catalog.=) {me}"
        f" AND {not_system} AND {not_extension.format(cls=chr(39) + 'pg_catalog.pg_namespace' + chr(39), oid='n.oid')} LOOP"
        f" EXECUTE pg_catalog.format('ALTER SCHEMA %I OWNER TO %s', r.nspname, {role}); END LOOP;"
        " FOR r IN SELECT c.oid::pg_catalog.regclass::pg_catalog.text AS obj, c.relkind FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
        f" WHERE c.relowner OPERATOR(pg_catalog.=) {me} AND c.relkind OPERATOR(pg_catalog.=) ANY ('{{r,p,v,m,f,S}}'::pg_catalog.\"char\"[])"
        f" AND {not_system} AND {not_extension.format(cls=chr(39) + 'pg_catalog.pg_class' + chr(39), oid='c.oid')}"
        # A sequence a column owns (serial: deptype a, identity: i) follows its table.
        " AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
        " AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog.\"char\"[])) LOOP"
        " EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %s', CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'"
        " WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.obj,"
        f" {role}); END LOOP;"
        " FOR r IN SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS fn FROM pg_catalog.pg_proc p"
        " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace"
        f" WHERE p.proowner OPERATOR(pg_catalog.=) {me} AND {not_system}"
        # An event trigger's function stays the master's: the trigger runs it as whoever does DDL,
        # the master included (every bootstrap run); the role could otherwise rewrite it (rev-ops review).
        " AND NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger e WHERE e.evtfoid OPERATOR(pg_catalog.=) p.oid)"
        f" AND {not_extension.format(cls=chr(39) + 'pg_catalog.pg_proc' + chr(39), oid='p.oid')} LOOP"
        f" EXECUTE pg_catalog.format('ALTER ROUTINE %s OWNER TO %s', r.fn, {role}); END LOOP;"
        " END $bulkhead$"
    )


def bootstrap(request: RoleRequest, creds: MasterCredentials, retry_seconds: float = DEFAULT_AUTH_RETRY_SECONDS,
              sleep: Callable[[float], None] = time.sleep, login_password: Optional[str] = None) -> dict:
    """Run the role SQL for `request` as the master; return what the role and database now are.
    auth password: `login_password` is set as a SCRAM verifier computed here, so the statement
    (which RDS may log) never carries the password."""
    try:
        spec = role_sql.RoleSpec(db_name=request.db_name, role=request.role,
                                 connection_limit=request.connection_limit, settings=request.settings)
        if request.auth == "password":
            if not login_password:
                raise ValueError("auth password needs the login password from the login secret")
            login = role_sql.PasswordLogin(role_sql.quote_literal(role_sql.scram_sha256_verifier(login_password)))
        else:
            login = role_sql.IamLogin()
        plan = role_sql.bootstrap_plan(spec, login, role_sql.ADMIN_RDS)
    except ValueError as exc:
        raise BootstrapError(f"database {request.database}: {exc}") from None
    connections: dict[str, Any] = {}
    try:
        for step in plan:
            conn = connections.get(step.database)
            if conn is None:
                conn = connections[step.database] = connect(creds, step.database, request.database, retry_seconds, sleep)
                for sql in role_sql.hardened_session_statements():
                    conn.run(sql)
                _check_master_session(conn, request, creds.username)
                _refuse_foreign_event_triggers(conn, request, step.database)
                if step.database == role_sql.MAINTENANCE_DATABASE:
                    _refuse_privileged_role(conn, request)
            if step.skip_if and conn.run(step.skip_if):
                continue
            conn.run(step.sql)
        # Issue 24 (restore_from): data the master owns in the tenant's database becomes the role's.
        connections[request.db_name].run(adopt_master_objects_statement(role_sql.quote_ident(request.role)))
        maintenance = connections[role_sql.MAINTENANCE_DATABASE]
        state = _role_state(maintenance, request.role)
        owner = maintenance.run(_OWNER, db=request.db_name)[0][0]
    except BootstrapError:
        raise
    except Exception as exc:
        raise BootstrapError(f"database {request.database}: creating role {request.role} failed: "
                             f"{_pg_message(exc)}") from None
    finally:
        for conn in connections.values():
            try:
                conn.close()
            except Exception:
                pass
    wanted = {"login": True, "superuser": False, "createdb": False, "createrole": False, "inherit": False,
              "replication": False, "bypassrls": False, "connection_limit": request.connection_limit,
              "rds_iam": request.auth == "iam"}
    wrong = sorted(k for k, v in wanted.items() if (state or {}).get(k) != v)
    # has_password is None where pg_authid cannot be read (RDS's master): then not checked.
    if state is not None and state.get("has_password") is not None and state["has_password"] != (request.auth == "password"):
        wrong.append("password")
    if state is None or wrong or owner != request.role:
        raise BootstrapError(f"database {request.database}: after the run, role {request.role} is not as specified "
                             f"({', '.join(wrong) or 'owner ' + str(owner) if state else 'missing'}); investigate by hand")
    return {"database": request.database, "db_name": request.db_name, "role": request.role, "owner": owner,
            "attributes": {k: state[k] for k in wanted}}


def handler(event, context=None) -> dict:
    """Lambda entry point. `event` is ignored: whoever may invoke the function chooses it,
    while the environment is part of the deployment (and `bulkhead audit` checks it)."""
    del event, context
    request = RoleRequest.from_environment()
    secret_arn = os.environ.get(ENV_SECRET_ARN)
    if not secret_arn:
        raise BootstrapError(f"database {request.database}: {ENV_SECRET_ARN} is not set on the function; redeploy")
    retry = float(os.environ.get(ENV_AUTH_RETRY_SECONDS, DEFAULT_AUTH_RETRY_SECONDS))
    creds = read_master_secret(secret_arn, request.database)
    password = None
    if request.auth == "password":
        password = read_login_password(request.login_secret_arn, request.database)
    result = bootstrap(request, creds, retry, login_password=password)
    log.info("database %s: role %s is in place", request.database, request.role)
    return result
