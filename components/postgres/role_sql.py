"""One source of truth for what a service may do in its database: the role SQL.

Pure functions, no Pulumi, no project imports (the prod bootstrap Lambda ships this
file on its own). They return ordered, plain SQL statements: no psql meta-commands
(`\\gexec`, `\\connect`, `:'var'`), so psql (dev start wrapper) and pg8000 (prod
bootstrap Lambda) run the very same text. Run them one statement at a time in
autocommit mode (psql's default; pg8000: `conn.autocommit = True`): CREATE DATABASE
cannot run inside a transaction, and a tenant's `default_transaction_read_only` is
undone by a SET that must take effect before the next statement's transaction.

Where each group runs (see `bootstrap_plan`, which strings them together):

1. `role_statements`: as the admin, in the maintenance database (`postgres`): the
   login role created when missing, its attributes set to exactly LOGIN NOSUPERUSER
   NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS, its CONNECTION LIMIT,
   its role-level settings reset then set, and its login method (password or IAM).
2. `database_exists_query` / `create_database_statement`: the caller runs the
   CREATE only when the query returns no row (CREATE DATABASE has no IF NOT EXISTS
   and cannot run in a DO block or a transaction).
3. `in_database_statements`: connected to the service's own database, which the
   tenant owns and so controls (`ALTER DATABASE mine SET search_path = trap, ...`,
   its own schemas, functions and operators). The session is hardened first
   (`hardened_session_statements`): `search_path = pg_catalog, pg_temp`, then an
   explicit safe value for every setting a tenant can attach to its database or role
   (RESET would restore the tenant's value: the database's settings ARE the session
   default), and every operator and function is schema-qualified (CVE-2018-1058 and
   the "secure schema usage pattern" of PostgreSQL's docs, ddl-schemas-patterns: an
   unqualified `=` or function call resolves through search_path, and the owner of a
   database can put its own schema first). Prefer running this group once, right
   after the database is created, when there is nothing of the tenant's in it yet.
4. `ownership_statements`: maintenance database again: the database owned by the
   role, CONNECT/TEMPORARY revoked from PUBLIC and granted to the owner, the role's
   per-database settings reset.

Admin flavours: `ADMIN_SUPERUSER` (dev: the container's bootstrap superuser) and
`ADMIN_RDS` (prod: the RDS master, a member of `rds_superuser`, NOT a superuser).
PostgreSQL lets only superusers name SUPERUSER, REPLICATION or BYPASSRLS in ALTER
ROLE, even to switch them off (tested on a real server in tests/postgres/test_role_sql.py:
"must be superuser to alter superuser roles or change superuser attribute"), so the
RDS flavour leaves those three out of the ALTER and checks them with a guard that
fails loudly if any is on. A non-superuser can give a database to a role (ALTER
DATABASE ... OWNER TO) only as a member of that role, so the RDS flavour grants the
role to CURRENT_USER (which also lets it manage the role's `public` schema later).
`temp_file_limit` is a superuser-context setting (PGC_SUSET: which is why a tenant
cannot raise it); only the superuser flavour can set it per role: on RDS it belongs
in the instance's parameter group (one database per instance there).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Literal, Mapping, Optional, Sequence, Union

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SETTING_NAME_RE = re.compile(r"^[a-z][a-z0-9_.]{0,62}$")

ADMIN_SUPERUSER = "superuser"
ADMIN_RDS = "rds_superuser"
AdminKind = Literal["superuser", "rds_superuser"]
ADMIN_KINDS = (ADMIN_SUPERUSER, ADMIN_RDS)

CONNECTION_LIMIT_RANGE = (1, 10000)
# Role-level settings only a superuser may set (PGC_SUSET).
SUPERUSER_ONLY_SETTINGS = frozenset({"temp_file_limit"})
# Roles a service may never be: PostgreSQL's, RDS's and the SQL keywords that name roles.
RESERVED_ROLE_NAMES = frozenset(
    {"postgres", "public", "none", "current_user", "current_role", "session_user", "rdsadmin", "user", "all"}
)
RESERVED_ROLE_PREFIXES = ("pg_", "rds_")
MAINTENANCE_DATABASE = "postgres"

# Dollar-quote tag of the DO blocks; never appears in a validated name or literal.
_DOLLAR = "$bulkhead$"


# --------------------------------------------------------------------- quoting


def quote_ident(name: str) -> str:
    """SQL identifier, always double-quoted (like PostgreSQL's quote_ident, but unconditional)."""
    if "\x00" in name:
        raise ValueError("an identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """SQL string literal; valid whatever `standard_conforming_strings` says (no backslash is
    ever emitted unescaped: the E'' form is used when the value holds one)."""
    if "\x00" in value:
        raise ValueError("a string literal cannot contain NUL")
    body = value.replace("'", "''")
    if "\\" in body:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def scram_sha256_verifier(password: str, salt: Optional[bytes] = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677, as
    pg_authid.rolpassword holds it). Sent as `PASSWORD '<verifier>'`, the server never sees
    the plaintext, so no statement log can show it. No SASLprep: use ASCII passwords."""
    if not password or not password.isascii():
        raise ValueError("the password must be non-empty ASCII (no SASLprep here)")
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# ----------------------------------------------------------------------- specs


@dataclass(frozen=True)
class RoleSpec:
    """One service database and its login role (the owner)."""

    db_name: str  # ^[a-z][a-z0-9_]{0,62}$
    role: str  # same charset; not reserved (pg_*, rds_*, postgres, ...)
    connection_limit: int = 20  # the role's CONNECTION LIMIT, 1-10000
    settings: Mapping[str, str] = field(default_factory=dict)  # role-level GUCs, e.g. statement_timeout: "5min"

    def __post_init__(self) -> None:
        _check_name(self.db_name, "database name")
        _check_name(self.role, "role name")
        if self.db_name in ("postgres", "template0", "template1"):
            raise ValueError(f"database name {self.db_name!r} is reserved by PostgreSQL")
        if self.role in RESERVED_ROLE_NAMES or self.role.startswith(RESERVED_ROLE_PREFIXES):
            raise ValueError(f"role name {self.role!r} is reserved (postgres, public, pg_*, rds_*, ...)")
        low, high = CONNECTION_LIMIT_RANGE
        if isinstance(self.connection_limit, bool) or not isinstance(self.connection_limit, int) or not (
            low <= self.connection_limit <= high
        ):
            raise ValueError(f"connection_limit {self.connection_limit!r} must be a whole number {low}-{high}")
        for key, value in self.settings.items():
            if not isinstance(key, str) or not SETTING_NAME_RE.match(key):
                raise ValueError(f"setting name {key!r} is not a PostgreSQL setting name")
            if not isinstance(value, str) or not value or any(c in value for c in "\n\r\x00"):
                raise ValueError(f"setting {key!r} needs a non-empty single-line string value")


@dataclass(frozen=True)
class PasswordLogin:
    """Password (scram) login. `password_sql` is the SQL expression of the password, which
    the caller supplies: e.g. `quote_literal(scram_sha256_verifier(pw))` (pg8000), or a
    psql variable `:'pw_app'` (dev). Utility statements such as ALTER ROLE take no bind
    parameters, so a driver placeholder (`%s`, `$1`) does not work here."""

    password_sql: str

    def __post_init__(self) -> None:
        if not isinstance(self.password_sql, str) or not self.password_sql.strip():
            raise ValueError("password_sql must be a non-empty SQL expression")
        if any(c in self.password_sql for c in "\n\r\x00"):
            raise ValueError("password_sql must be a single line")


@dataclass(frozen=True)
class IamLogin:
    """RDS IAM login: `GRANT rds_iam TO <role>`, and no password at all (PASSWORD NULL)."""


Login = Union[PasswordLogin, IamLogin]


@dataclass(frozen=True)
class Step:
    """One statement of `bootstrap_plan`: run `sql` connected to `database`, unless
    `skip_if` (a query) returns a row."""

    database: str
    sql: str
    skip_if: Optional[str] = None


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"{what} {name!r} must match {NAME_RE.pattern}")


def _check_admin(admin: str) -> None:
    if admin not in ADMIN_KINDS:
        raise ValueError(f"admin must be one of {', '.join(ADMIN_KINDS)}, not {admin!r}")


def _eq(column: str, value: str) -> str:
    # Schema-qualified operator: never resolved through search_path (CVE-2018-1058).
    return f"{column} OPERATOR(pg_catalog.=) {quote_literal(value)}"


def _do(body: str) -> str:
    return f"DO {_DOLLAR} BEGIN {body} END {_DOLLAR}"


# --------------------------------------------------------------------- session


# Settings a tenant can attach to its database or role (ALTER DATABASE/ROLE ... SET) that
# would change what the admin's statements do, and the value they get. Bounded timeouts,
# not 0: a tenant holding a lock must make the init report a problem, not hang it.
SAFE_SESSION_SETTINGS: tuple[tuple[str, str], ...] = (
    ("default_transaction_read_only", "off"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_deferrable", "off"),
    ("statement_timeout", "60s"),
    ("lock_timeout", "10s"),
    ("idle_in_transaction_session_timeout", "0"),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("transform_null_equals", "off"),
    ("exit_on_error", "off"),
    ("check_function_bodies", "on"),
    ("default_tablespace", ""),
    ("temp_tablespaces", ""),
    ("client_min_messages", "warning"),
)
# Settings that exist only from some major on (SET of an unknown name is an error):
# set through pg_settings, so one statement works on every major.
SAFE_VERSIONED_SETTINGS: tuple[tuple[str, str], ...] = (
    ("idle_session_timeout", "0"),  # 14+
    ("transaction_timeout", "0"),  # 17+
)


def hardened_session_statements() -> list[str]:
    """Statements that start every admin session in a database a tenant may control."""
    out = [
        "SET search_path = pg_catalog, pg_temp",
        # A database can carry `role` (ALTER DATABASE d SET role = ...): back to the login role.
        "SET SESSION AUTHORIZATION DEFAULT",
        "SET ROLE NONE",
    ]
    out += [f"SET {name} = {quote_literal(value)}" for name, value in SAFE_SESSION_SETTINGS]
    names = ", ".join(quote_literal(name) for name, _ in SAFE_VERSIONED_SETTINGS)
    cases = " ".join(
        f"WHEN {quote_literal(name)} THEN {quote_literal(value)}" for name, value in SAFE_VERSIONED_SETTINGS
    )
    out.append(
        f"SELECT pg_catalog.set_config(s.name, CASE s.name {cases} END, false)"
        f" FROM pg_catalog.pg_settings s WHERE s.name OPERATOR(pg_catalog.=) ANY (ARRAY[{names}])"
    )
    return out


# For an interactive admin (`bulkhead psql --admin`): the same protections as startup options
# (libpq `options`, PGOPTIONS), which take precedence over a database's and a role's settings
# (PostgreSQL docs, "Setting Parameters": settings from the connection request override
# ALTER DATABASE/ROLE ... SET). `role=none` undoes a database's `SET role`. A person at the prompt
# may wait for a lock and needs to see notices: no timeouts, notices shown.
ADMIN_PROMPT_OVERRIDES = {"statement_timeout": "0", "lock_timeout": "0", "client_min_messages": "notice"}


def admin_session_options() -> str:
    """PGOPTIONS for an admin session in a tenant's database: `-c search_path=pg_catalog,pg_temp ...`."""
    settings = [("search_path", "pg_catalog,pg_temp"), ("role", "none")]
    settings += [(name, ADMIN_PROMPT_OVERRIDES.get(name, value)) for name, value in SAFE_SESSION_SETTINGS]

    def escape(value: str) -> str:
        # libpq's `options`: a backslash escapes a space or a backslash (libpq docs, "options").
        return value.replace("\\", "\\\\").replace(" ", "\\ ")

    return " ".join(f"-c {name}={escape(value)}" for name, value in settings)


def reset_database_settings_statement(spec: RoleSpec) -> str:
    """From the maintenance database: drop every setting attached to the tenant's database
    (`ALTER DATABASE mine SET search_path = trap, ...`). Such a setting is applied to every
    session in that database, the admin's too, so a tenant could aim an admin's unqualified
    operator at its own function; resetting it on every init leaves no trap behind a restart."""
    return f"ALTER DATABASE {quote_ident(spec.db_name)} RESET ALL"


# ------------------------------------------------------------------------ role


def role_statements(spec: RoleSpec, login: Login, admin: AdminKind = ADMIN_SUPERUSER) -> list[str]:
    """Group 1, in the maintenance database: the role, exactly as the catalogue says."""
    _check_admin(admin)
    role_i, role = quote_ident(spec.role), spec.role
    out = [
        _do(
            f"IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE {_eq('rolname', role)}) THEN"
            f" CREATE ROLE {role_i} NOLOGIN; END IF;"
        )
    ]
    if admin == ADMIN_SUPERUSER:
        out.append(
            f"ALTER ROLE {role_i} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
            f" NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {spec.connection_limit}"
        )
    else:
        # Only a superuser may name SUPERUSER/REPLICATION/BYPASSRLS; check them instead.
        out.append(
            f"ALTER ROLE {role_i} WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT {spec.connection_limit}"
        )
        out.append(
            _do(
                f"IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE {_eq('rolname', role)}"
                " AND (rolsuper OR rolreplication OR rolbypassrls)) THEN"
                f" RAISE EXCEPTION {quote_literal(f'role {role} has SUPERUSER, REPLICATION or BYPASSRLS; a superuser must remove it')};"
                " END IF;"
            )
        )
        # Needed to make it a database's owner (CREATE DATABASE ... OWNER, ALTER DATABASE ... OWNER TO).
        out.append(f"GRANT {role_i} TO CURRENT_USER")
    out.append(f"ALTER ROLE {role_i} RESET ALL")
    for key in sorted(spec.settings):
        if admin == ADMIN_RDS and key in SUPERUSER_ONLY_SETTINGS:
            raise ValueError(
                f"setting {key!r} can only be set per role by a superuser; on RDS set it in the"
                " instance's parameter group instead"
            )
        out.append(f"ALTER ROLE {role_i} SET {key} = {quote_literal(spec.settings[key])}")
    if isinstance(login, PasswordLogin):
        out.append("SET password_encryption = 'scram-sha-256'")
        out.append(f"ALTER ROLE {role_i} WITH PASSWORD {login.password_sql}")
        if admin == ADMIN_RDS:
            # A member of rds_iam can log in with IAM tokens only (RDS user guide, "Creating a
            # database account using IAM authentication"): a role switched from iam to password
            # leaves it. REVOKE of a role not granted is only a warning.
            out.append(f"REVOKE rds_iam FROM {role_i}")
    elif isinstance(login, IamLogin):
        # RDS user guide, UsingWithRDS.IAMDBAuth.DBAccounts: "CREATE USER db_userx; GRANT rds_iam
        # TO db_userx;" as the master. Not verified here: rds_iam with a NOINHERIT role.
        out.append(f"ALTER ROLE {role_i} WITH PASSWORD NULL")
        out.append(f"GRANT rds_iam TO {role_i}")
    else:
        raise TypeError(f"login must be PasswordLogin or IamLogin, not {login!r}")
    return out


# -------------------------------------------------------------------- database


def database_exists_query(spec: RoleSpec) -> str:
    """Returns one row when the database exists: run `create_database_statement` only when it returns none."""
    return f"SELECT 1 FROM pg_catalog.pg_database WHERE {_eq('datname', spec.db_name)}"


def create_database_statement(spec: RoleSpec) -> str:
    """CREATE DATABASE from template1 (outside any transaction or DO block). Owned by the
    admin until `ownership_statements` hands it over: on 15+ that lets a non-superuser
    admin (the RDS master) fix the `public` schema first (`in_database_statements`)."""
    return f"CREATE DATABASE {quote_ident(spec.db_name)} TEMPLATE template1"


def ownership_statements(spec: RoleSpec, admin: AdminKind = ADMIN_SUPERUSER) -> list[str]:
    """Group 3, in the maintenance database, after the database exists: owner and who may connect."""
    _check_admin(admin)
    db_i, role_i = quote_ident(spec.db_name), quote_ident(spec.role)
    return [
        f"ALTER DATABASE {db_i} OWNER TO {role_i}",
        f"REVOKE CONNECT, TEMPORARY ON DATABASE {db_i} FROM PUBLIC",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db_i} TO {role_i}",
        # The tenant may attach settings to itself in its database; the admin's role settings win.
        f"ALTER ROLE {role_i} IN DATABASE {db_i} RESET ALL",
    ]


def in_database_statements(spec: RoleSpec, admin: AdminKind = ADMIN_SUPERUSER) -> list[str]:
    """Group 4, connected to `spec.db_name`: the `public` schema is the owner's alone.

    Starts with `hardened_session_statements()`; every name below is qualified."""
    _check_admin(admin)
    role_i = quote_ident(spec.role)
    schema = _do(
        f"IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE {_eq('nspname', 'public')}) THEN"
        f" ALTER SCHEMA public OWNER TO {role_i};"
        " REVOKE ALL ON SCHEMA public FROM PUBLIC;"
        " END IF;"
    )
    # As the admin, not as the owner: the owner is NOINHERIT, so on 15+ it does not get the
    # privileges of pg_database_owner (which owns `public` there) and could not do this.
    # The RDS master can: it owns the database until `ownership_statements` (first run),
    # and is a member of the owner role later (`role_statements`).
    return [*hardened_session_statements(), schema]


def bootstrap_plan(spec: RoleSpec, login: Login, admin: AdminKind = ADMIN_SUPERUSER) -> list[Step]:
    """Every statement, in order, with where it runs: what the prod Lambda executes."""
    maintenance = [*hardened_session_statements(), *role_statements(spec, login, admin)]
    steps = [Step(MAINTENANCE_DATABASE, sql) for sql in maintenance]
    steps.append(Step(MAINTENANCE_DATABASE, create_database_statement(spec), skip_if=database_exists_query(spec)))
    steps += [Step(spec.db_name, sql) for sql in in_database_statements(spec, admin)]
    steps += [Step(MAINTENANCE_DATABASE, sql) for sql in ownership_statements(spec, admin)]
    return steps


def check_unique(specs: Sequence[RoleSpec]) -> None:
    """Several databases on one server: each database once, and one role owns one database."""
    dbs: set[str] = set()
    roles: dict[str, str] = {}
    for spec in specs:
        if spec.db_name in dbs:
            raise ValueError(f"database {spec.db_name!r} is listed twice")
        dbs.add(spec.db_name)
        if spec.role in roles:
            raise ValueError(f"role {spec.role!r} would own both {roles[spec.role]!r} and {spec.db_name!r}")
        roles[spec.role] = spec.db_name


# ---------------------------------------------------------------- metadata (shared servers)

# What one tenant could read of the others on a shared server, through views and functions that
# PostgreSQL grants to PUBLIC in each database's own pg_catalog (a database's catalog is its own
# copy: a REVOKE holds in that database only, and databases created later copy template1's).
# Functions: the views call them with the caller's privileges (a view checks its tables as the view's
# owner but its functions as the user: PostgreSQL docs, CREATE VIEW, "Functions called in the view
# are treated the same as if they had been called directly from the query using the view"), so the
# functions are revoked too, or a tenant (its database's owner) could write the view again itself.
# * locks of every database (relation, mode, pid): pg_lock_status (no filter at all, lockfuncs.c),
#   pg_blocking_pids, pg_safe_snapshot_blocking_pids
# * per-database counters: pg_stat_get_db_* (commits, rows, sessions, temp bytes, deadlocks...)
# * progress of another database's VACUUM/ANALYZE/CREATE INDEX/COPY (its database, pid): pg_stat_get_progress_info
# * prepared transactions of every database (gid, owner, database): pg_prepared_xact
# * the size of the whole cluster: pg_tablespace_size is allowed for the current database's default
#   tablespace (dbsize.c calculate_tablespace_size), i.e. pg_default, which holds every database.
#   pg_database_size of another database is refused already (it needs CONNECT on it).
# NOT revoked, documented (docs/dev-stack.md): the other sessions' pid, database, user and application
# name (pg_stat_get_activity; PostgreSQL already hides their query, state, times and client address from
# a non-member of pg_read_all_stats: pgstatfuncs.c HAS_PGSTAT_PERMISSIONS): pg_stat_ssl and
# pg_stat_gssapi are built on that function, and clients read pg_stat_ssl for their own session to
# prove TLS server-side (tests/docker/test_clients.py: psycopg, asyncpg, pgjdbc, node-postgres), so
# revoking it breaks them; names in pg_roles and pg_database (shared catalogs read by psql \l, pg_dump
# and drivers' metadata calls); server-wide aggregates without a database or user (pg_stat_bgwriter,
# pg_stat_io, pg_stat_wal, pg_stat_slru); a tenant's own tables' statistics.
METADATA_FUNCTIONS = (
    "pg_lock_status",
    "pg_blocking_pids",
    "pg_safe_snapshot_blocking_pids",
    "pg_stat_get_progress_info",
    "pg_prepared_xact",
    "pg_tablespace_size",
    # review of issue 22: the lock graph again (whether a pid waits on given pids; C code over the lock
    # table, PUBLIC: src/backend/utils/adt/lockfuncs.c) and, 16+, another session's open subtransactions
    # (pgstatfuncs.c pg_stat_get_backend_subxact: no HAS_PGSTAT_PERMISSIONS check). No view uses either.
    "pg_isolation_test_session_is_blocked",
    "pg_stat_get_backend_subxact",
)
METADATA_FUNCTION_PREFIXES = ("pg_stat_get_db_",)
# The views over them (a clear "permission denied for view" instead of one for a function); those
# that do not exist on a major are skipped.
METADATA_VIEWS = (
    "pg_locks",
    "pg_stat_database",
    "pg_stat_database_conflicts",
    "pg_prepared_xacts",
)
METADATA_VIEW_PREFIXES = ("pg_stat_progress_",)


def _initial(oid: str, catalog: str, acl_column: str) -> str:
    """plpgsql: record the object's new ACL as its initial privileges (pg_init_privs, privtype 'i').

    Why: pg_dump writes the ACL of a pg_catalog object whenever it differs from what pg_init_privs
    says initdb left (pg_dump.c: system objects' ACLs are dumped against `pip.initprivs`, and against
    the default when the object has no row; initdb.c setup_privileges records only the objects
    whose ACL was not NULL). Without this, every tenant's `pg_dump` of its own database would carry
    `REVOKE ... ON FUNCTION pg_catalog.pg_lock_status() FROM PUBLIC` lines, which fail ("permission
    denied") when the tenant restores the dump on a shared server. pg_init_privs is per database, so
    this holds where the REVOKE does (and databases copied from template1 inherit both). A
    superuser may write a catalog with plain DML (only DDL on catalogs needs allow_system_table_mods)."""
    key = (f"objoid OPERATOR(pg_catalog.=) {oid} AND classoid OPERATOR(pg_catalog.=)"
           f" 'pg_catalog.{catalog}'::pg_catalog.regclass AND objsubid OPERATOR(pg_catalog.=) 0")
    return (
        f"DELETE FROM pg_catalog.pg_init_privs WHERE {key};"
        " INSERT INTO pg_catalog.pg_init_privs (objoid, classoid, objsubid, privtype, initprivs)"
        f" SELECT o.oid, 'pg_catalog.{catalog}'::pg_catalog.regclass, 0, 'i', o.{acl_column}"
        f" FROM pg_catalog.{catalog} o WHERE o.oid OPERATOR(pg_catalog.=) {oid};"
    )


def metadata_revoke_statements() -> list[str]:
    """As a superuser, connected to one database (each tenant database, and template1 so that databases
    created later start this way) of a server that hosts several tenants: PUBLIC loses the views and
    functions above in that database.
    One DO block, names looked up in the catalog (they vary by major); every operator qualified.
    Idempotent, and writes nothing once done. Not for RDS: the master does not own pg_catalog (and there one database is one
    instance, nobody to hide from)."""

    def any_of(column: str, names: Sequence[str], prefixes: Sequence[str]) -> str:
        listed = ", ".join(quote_literal(n) for n in names)
        starts = " OR ".join(f"pg_catalog.starts_with({column}::pg_catalog.text, {quote_literal(p)})" for p in prefixes)
        return f"({column} OPERATOR(pg_catalog.=) ANY (ARRAY[{listed}]::pg_catalog.name[]) OR {starts})"

    functions = (
        "FOR r IN SELECT p.oid::pg_catalog.regprocedure AS f FROM pg_catalog.pg_proc p"
        " WHERE p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace"
        f" AND {any_of('p.proname', METADATA_FUNCTIONS, METADATA_FUNCTION_PREFIXES)}"
        # only those PUBLIC still has: a later start writes nothing to the catalog
        " AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1 LOOP"
        " EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', r.f);"
        f" {_initial('r.f::pg_catalog.oid', 'pg_proc', 'proacl')} END LOOP;"
    )
    views = (
        "FOR r IN SELECT c.oid::pg_catalog.regclass AS v FROM pg_catalog.pg_class c"
        " WHERE c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace"
        f" AND c.relkind OPERATOR(pg_catalog.=) 'v' AND {any_of('c.relname', METADATA_VIEWS, METADATA_VIEW_PREFIXES)}"
        " AND pg_catalog.has_table_privilege('public', c.oid, 'SELECT') ORDER BY 1 LOOP"
        " EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM PUBLIC', r.v);"
        f" {_initial('r.v::pg_catalog.oid', 'pg_class', 'relacl')} END LOOP;"
    )
    return [f"DO {_DOLLAR} DECLARE r record; BEGIN {functions} {views} END {_DOLLAR}"]
