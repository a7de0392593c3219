"""Init of a bulkhead PostgreSQL container (DESIGN section 4, Docker).

Plain functions, no Pulumi: the Docker component uploads what these return into
the official `postgres:<major>-bookworm` image.

* `init_script` goes to `/docker-entrypoint-initdb.d/`; it runs `init_sql` with psql.
* `pg_hba_conf` goes to `HBA_PATH` and is selected with `-c hba_file=...`.
* `server_flags` is the container's argument list after `postgres`.

Separation of services is enforced twice (defence in depth): pg_hba only lets a
role in over TLS to its *own* database, and the CONNECT privilege on every
database is revoked from PUBLIC and granted to the owning role only. Either
layer alone keeps roles apart; a mistake in one is caught by the other.

Passwords never appear in anything generated here: the init script passes them
from the container's environment to psql as variables (`-v pw_<role>=...`), and
the SQL refers to them as `:'pw_<role>'`, which psql quotes as a literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

ADMIN_USER = "bulkhead_admin"  # custom admin, never `postgres`
HBA_PATH = "/etc/bulkhead/pg_hba.conf"  # uploaded into the container
INIT_SCRIPT_PATH = "/docker-entrypoint-initdb.d/10-bulkhead-init.sh"
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"

# Where the image's temporary init server listens (unix socket only).
DEFAULT_SOCKET_DIR = "/var/run/postgresql"

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ENV_VAR_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
PARAMETER_RE = re.compile(r"^[a-z][a-z0-9_.]{0,62}$")

# Settings `server_flags` owns (plus the ones the container/catalogue owns):
# a catalogue parameter must never switch off TLS or swap the pg_hba.
MANAGED_PARAMETERS = frozenset(
    {
        "ssl",
        "ssl_cert_file",
        "ssl_key_file",
        "hba_file",
        "password_encryption",
        "listen_addresses",
        "port",
        "data_directory",
    }
)
# Names that must never become a service's login role.
RESERVED_ROLES = frozenset({ADMIN_USER, "postgres", "public", "none", "current_user", "current_role", "session_user"})
# Databases that always exist in a cluster; a service database cannot be one of them.
SYSTEM_DATABASES = ("postgres", "template1")
RESERVED_DATABASES = frozenset({*SYSTEM_DATABASES, "template0"})

_HEREDOC_END = "BULKHEAD_SQL"


@dataclass(frozen=True)
class RoleSpec:
    db_name: str  # PostgreSQL database name, ^[a-z][a-z0-9_]{0,62}$
    role: str  # its login role (the owner), same charset
    password_env: str  # name of the container env var holding the role's password


# --------------------------------------------------------------------- quoting


def quote_ident(name: str) -> str:
    """SQL identifier, always double-quoted (like PostgreSQL's quote_ident, but unconditional)."""
    if "\x00" in name:
        raise ValueError("an identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """SQL string literal for a server with standard_conforming_strings=on (the default since 9.1)."""
    if "\x00" in value:
        raise ValueError("a string literal cannot contain NUL")
    return "'" + value.replace("'", "''") + "'"


def _hba_quote(name: str) -> str:
    # Quoted, a name is never read as an hba keyword (`all`, `sameuser`,
    # `replication`, `+group`, `@file`); validated names contain no quote.
    if not NAME_RE.match(name):
        raise ValueError(f"{name!r} cannot be written into pg_hba.conf")
    return f'"{name}"'


# ------------------------------------------------------------------ validation


def password_env_for(db_name: str) -> str:
    """Container env var holding the password of the role owning `db_name`."""
    _check_name(db_name, "database name")
    return f"BULKHEAD_PASSWORD_{db_name.upper()}"


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"{what} {name!r} must match {NAME_RE.pattern}")


def _psql_var(role: str) -> str:
    # Lower case, so it can never collide with psql's own (upper case) variables.
    return f"pw_{role}"


def _validated(roles: Sequence[RoleSpec]) -> list[RoleSpec]:
    roles = list(roles)
    seen_db: set[str] = set()
    env_of: dict[str, str] = {}
    for spec in roles:
        if not isinstance(spec, RoleSpec):
            raise TypeError(f"expected RoleSpec, got {spec!r}")
        _check_name(spec.db_name, "database name")
        _check_name(spec.role, "role name")
        if not isinstance(spec.password_env, str) or not ENV_VAR_RE.match(spec.password_env):
            raise ValueError(f"password env var {spec.password_env!r} must match {ENV_VAR_RE.pattern}")
        if spec.db_name in seen_db:
            raise ValueError(f"database {spec.db_name!r} is listed twice")
        if spec.db_name in RESERVED_DATABASES:
            raise ValueError(f"database name {spec.db_name!r} is reserved by PostgreSQL")
        if spec.role in RESERVED_ROLES or spec.role.startswith("pg_"):
            raise ValueError(f"role name {spec.role!r} is reserved (admin, postgres or pg_*)")
        if env_of.setdefault(spec.role, spec.password_env) != spec.password_env:
            raise ValueError(
                f"role {spec.role!r} has two password env vars ({env_of[spec.role]} and {spec.password_env});"
                " one role has one password"
            )
        seen_db.add(spec.db_name)
    return roles


def _unique_roles(roles: Sequence[RoleSpec]) -> list[RoleSpec]:
    out: dict[str, RoleSpec] = {}
    for spec in roles:
        out.setdefault(spec.role, spec)
    return list(out.values())


# ------------------------------------------------------------------------- SQL


def init_sql(roles: Sequence[RoleSpec]) -> str:
    """psql script creating each database's login role and database, idempotently.

    Needs psql variables `pw_<role>` (see `init_script`). Safe to re-run on an
    existing cluster: roles and databases are created only when missing, and
    everything else (attributes, password, ownership, privileges) is re-applied,
    so the cluster converges to what the catalogue says.
    """
    roles = _validated(roles)
    names = {s.role for s in roles}
    out: list[str] = [
        "-- Generated by bulkhead (components/postgres_init.py). Idempotent.",
        "-- Keep passwords out of the server log whatever the catalogue's log settings.",
        "SET log_statement = 'none';",
        "SET log_min_duration_statement = -1;",
        "SET log_min_error_statement = 'panic';",
        "SET password_encryption = 'scram-sha-256';",
        "",
    ]

    for spec in _unique_roles(roles):
        role_i, role_l = quote_ident(spec.role), quote_literal(spec.role)
        out += [
            f"-- login role {spec.role} (password from ${spec.password_env})",
            f"SELECT {quote_literal('CREATE ROLE ' + role_i)}",
            f"  WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {role_l})",
            "\\gexec",
            # terse: an error must not echo the statement (with the password) to the log
            "\\set VERBOSITY terse",
            f"ALTER ROLE {role_i} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
            f" NOREPLICATION NOBYPASSRLS PASSWORD :'{_psql_var(spec.role)}';",
            "\\set VERBOSITY default",
            "",
        ]

    for spec in roles:
        db_i, db_l, role_i = quote_ident(spec.db_name), quote_literal(spec.db_name), quote_ident(spec.role)
        out += [
            f"-- database {spec.db_name}, owned by {spec.role}",
            f"SELECT {quote_literal(f'CREATE DATABASE {db_i} OWNER {role_i}')}",
            f"  WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = {db_l})",
            "\\gexec",
            f"ALTER DATABASE {db_i} OWNER TO {role_i};",
            "",
        ]

    # Layer 2 of 2 (layer 1 is pg_hba_conf): nobody but a database's owner holds
    # CONNECT/TEMPORARY on it, so a role that got past pg_hba is still refused.
    out += ["-- Only a database's owner may connect to it; nobody may connect to the system databases."]
    for db in SYSTEM_DATABASES:
        out.append(f"REVOKE CONNECT, TEMPORARY ON DATABASE {quote_ident(db)} FROM PUBLIC;")
    for spec in roles:
        db_i = quote_ident(spec.db_name)
        out.append(f"REVOKE CONNECT, TEMPORARY ON DATABASE {db_i} FROM PUBLIC;")
        others = sorted(names - {spec.role})
        if others:  # converge: undo any grant made by hand to another service's role
            out.append(
                f"REVOKE ALL ON DATABASE {db_i} FROM {', '.join(quote_ident(r) for r in others)};"
            )
        out.append(f"GRANT CONNECT, TEMPORARY ON DATABASE {db_i} TO {quote_ident(spec.role)};")
    known = ", ".join(quote_literal(d) for d in [*SYSTEM_DATABASES, *(s.db_name for s in roles)])
    out += [
        "-- any other database on this server (e.g. the image's $POSTGRES_DB), template0 aside",
        "SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', datname)",
        f"  FROM pg_catalog.pg_database WHERE datname <> 'template0' AND datname NOT IN ({known})",
        "  ORDER BY datname",
        "\\gexec",
        "",
    ]

    for spec in roles:
        role_i = quote_ident(spec.role)
        has_public = "WHERE EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'public')"
        out += [
            f"-- inside {spec.db_name}: the public schema is the owner's alone",
            f"\\connect {quote_ident(spec.db_name)}",
            f"SELECT {quote_literal('ALTER SCHEMA public OWNER TO ' + role_i)} {has_public}",
            "\\gexec",
            f"SELECT 'REVOKE ALL ON SCHEMA public FROM PUBLIC' {has_public}",
            "\\gexec",
            "",
        ]

    sql = "\n".join(out)
    assert _HEREDOC_END not in sql.splitlines()
    return sql


def init_script(roles: Sequence[RoleSpec]) -> str:
    """bash script for /docker-entrypoint-initdb.d that feeds `init_sql(roles)` to psql.

    Works both executed and sourced (the entrypoint sources non-executable
    *.sh files). It connects like the entrypoint's own `docker_process_sql`: as
    $POSTGRES_USER to $POSTGRES_DB over the unix socket ($PGHOST when that is a
    directory, else /var/run/postgresql), authenticating with the $PGPASSWORD
    the entrypoint exports.
    """
    roles = _validated(roles)
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by bulkhead (components/postgres_init.py): creates each database's",
        "# login role and database and keeps roles apart. Idempotent; safe to re-run.",
        "set -Eeo pipefail",
        ': "${POSTGRES_USER:?POSTGRES_USER must be set}"',
    ]
    for spec in _unique_roles(roles):
        lines.append(
            f': "${{{spec.password_env}:?{spec.password_env} (password of role {spec.role}) must be set}}"'
        )
    lines += [
        'bulkhead_socket_dir="${PGHOST:-' + DEFAULT_SOCKET_DIR + '}"',
        'case "$bulkhead_socket_dir" in /*) ;; *) bulkhead_socket_dir=' + DEFAULT_SOCKET_DIR + " ;; esac",
        "PGHOSTADDR= psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --quiet \\",
        '  --host "$bulkhead_socket_dir" --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \\',
    ]
    for spec in _unique_roles(roles):
        lines.append(f'  -v {_psql_var(spec.role)}="${spec.password_env}" \\')
    lines += [
        f"  <<'{_HEREDOC_END}'",
        init_sql(roles),
        _HEREDOC_END,
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------- pg_hba


def pg_hba_conf(roles: Sequence[RoleSpec]) -> str:
    """pg_hba.conf: TLS + scram only, and each role only to its own database.

    Layer 1 of 2 (layer 2 is the CONNECT privilege in `init_sql`): even if a
    privilege were granted by mistake, pg_hba refuses a role at any database
    but its own, and refuses plain-TCP connections altogether.
    """
    roles = _validated(roles)
    lines = [
        "# Generated by bulkhead (components/postgres_init.py). First match wins.",
        "# TYPE   DATABASE  USER  ADDRESS  METHOD",
        "# unix socket inside the container (the image's init uses it with $PGPASSWORD)",
        "local all all scram-sha-256",
        "# each database: its owning role (and the admin), over TLS only",
    ]
    for spec in roles:
        users = f"{_hba_quote(spec.role)},{_hba_quote(ADMIN_USER)}"
        for net in ("0.0.0.0/0", "::/0"):
            lines.append(f"hostssl {_hba_quote(spec.db_name)} {users} {net} scram-sha-256")
    lines += [
        "# everything else: any other role/database pair, and any TCP without TLS",
        "hostssl all all all reject",
        "host all all all reject",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------- flags


def server_flags(
    parameters: Mapping[str, str],
    cert_file: str = SNAKEOIL_CERT,
    key_file: str = SNAKEOIL_KEY,
    hba_file: str = HBA_PATH,
) -> list[str]:
    """Arguments after `postgres`: TLS, our pg_hba, scram, then the catalogue's parameters (sorted)."""
    flags = [
        "-c", "ssl=on",
        "-c", f"ssl_cert_file={cert_file}",
        "-c", f"ssl_key_file={key_file}",
        "-c", f"hba_file={hba_file}",
        "-c", "password_encryption=scram-sha-256",
    ]  # fmt: skip
    for key in sorted(parameters):
        value = parameters[key]
        if not isinstance(key, str) or not PARAMETER_RE.match(key):
            raise ValueError(f"parameter name {key!r} is not a PostgreSQL setting name")
        if key in MANAGED_PARAMETERS:
            raise ValueError(f"parameter {key!r} is managed by bulkhead and cannot be overridden")
        value = str(value)
        if not value or any(c in value for c in "\n\r\x00"):
            raise ValueError(f"parameter {key!r} needs a non-empty single-line value")
        flags += ["-c", f"{key}={value}"]
    return flags
