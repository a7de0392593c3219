"""Init of a bulkhead PostgreSQL container (DESIGN section 4, Docker).

Plain functions, no Pulumi: the Docker component uploads what these return into
the official `postgres:<major>-bookworm` image.

* `start_script` goes to `START_SCRIPT_PATH` and is the container's entrypoint: it
  runs the image's `docker-entrypoint.sh`, and on EVERY start, once the final
  server is up, runs `init_sql` as the admin over the unix socket.
* `init_script` is the same init as a standalone bash script (what the image's
  /docker-entrypoint-initdb.d would run). The container no longer uploads it:
  initdb.d runs only when the data directory is empty, and the volume is kept.
* `pg_hba_conf` goes to `HBA_PATH` and is selected with `-c hba_file=...`.
* `pg_ident_conf` goes to `IDENT_PATH` and is selected with `-c ident_file=...`.
* `server_flags` is the container's argument list after `postgres`.

Why on every start: the volume outlives the container (`keep_volumes`), so after
`pulumi destroy` + `pulumi up` the container comes with NEW generated passwords
for a cluster that still has the OLD ones, and a database added to a shared
server arrives in a container whose data directory already exists. Re-applying
the idempotent init at each start converges the cluster to the catalogue: roles
and databases are created when missing, every password (the admin's too) is set
to the one in the container's environment.

The admin reaches the socket by `peer` authentication (OS users root and
postgres, via pg_ident.conf), so the init works even when the kept cluster
still has an old admin password.

Separation of services is enforced twice (defence in depth): pg_hba only lets a
role in over TLS to its *own* database, and the CONNECT privilege on every
database is revoked from PUBLIC and granted to the owning role only. Either
layer alone keeps roles apart; a mistake in one is caught by the other.

Passwords never appear in anything generated here, nor on a command line: psql
reads them from the container's environment into variables (`\set pw_<role>
`printenv VAR``, the admin's from $POSTGRES_PASSWORD), and the SQL refers to them
as `:'pw_<role>'`, which psql quotes as a literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

ADMIN_USER = "bulkhead_admin"  # custom admin, never `postgres`
HBA_PATH = "/etc/bulkhead/pg_hba.conf"  # uploaded into the container
IDENT_PATH = "/etc/bulkhead/pg_ident.conf"  # uploaded into the container
START_SCRIPT_PATH = "/etc/bulkhead/start.sh"  # uploaded; the container's entrypoint
# Where the image's initdb.d would take the init script. NOT uploaded any more
# (see the module docstring); kept so that callers can check it stays absent.
INIT_SCRIPT_PATH = "/docker-entrypoint-initdb.d/10-bulkhead-init.sh"
# Touched by `start_script` once the init has run on this start; the healthcheck needs it.
READY_FILE = "/var/run/postgresql/bulkhead-ready"
# The image's entrypoint, on PATH in the official image.
IMAGE_ENTRYPOINT = "docker-entrypoint.sh"
# pg_ident.conf map under which OS users may log in as the admin over the socket (peer).
IDENT_MAP = "bulkhead"
# root: `start_script` (PID 1 of the container) and `docker exec`; postgres: the
# image's entrypoint after it drops privileges (its first-start setup uses psql).
ADMIN_OS_USERS = ("root", "postgres")
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"

# Where the image's servers (temporary init server and final server) put their unix socket.
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
DEFAULT_PORT = 5432

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
        "ident_file",
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

    Needs psql variables `pw_<role>` and `pw_bulkhead_admin` (see `init_script`),
    and a superuser session (the admin). Safe to re-run on an
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
        # The kept volume may hold an older admin password (destroy + up makes a new one):
        # the container's $POSTGRES_PASSWORD is the one that counts.
        "-- the admin's password (from $POSTGRES_PASSWORD)",
        "\\set VERBOSITY terse",
        f"ALTER ROLE {quote_ident(ADMIN_USER)} WITH PASSWORD :'{_psql_var(ADMIN_USER)}';",
        "\\set VERBOSITY default",
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


def _require_passwords(roles: Sequence[RoleSpec]) -> list[str]:
    """bash lines failing loudly (naming the variable, never a value) when a password is unset or empty."""
    lines = [': "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD (password of the admin) must be set}"']
    for spec in _unique_roles(roles):
        lines.append(
            f': "${{{spec.password_env}:?{spec.password_env} (password of role {spec.role}) must be set}}"'
        )
    return lines


def _psql_init(roles: Sequence[RoleSpec], connect: Sequence[str], indent: str = "") -> list[str]:
    """bash lines running `init_sql(roles)` with psql; `connect` are the (already quoted) connection options.

    Passwords go to psql as variables that psql itself reads from the environment
    (`\\set pw `printenv VAR``), not as `-v` arguments: a command line is visible
    to anyone who can run `ps` or `docker top`. The SQL is a quoted heredoc, so
    bash expands nothing in it.
    """
    lines = [
        f"{indent}PGHOSTADDR= psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --quiet \\",
        f"{indent}  {' '.join(connect)} \\",
        f"{indent}  <<'{_HEREDOC_END}'",
        f"\\set {_psql_var(ADMIN_USER)} `printenv POSTGRES_PASSWORD`",
    ]
    for spec in _unique_roles(roles):
        lines.append(f"\\set {_psql_var(spec.role)} `printenv {spec.password_env}`")
    lines += [init_sql(roles), _HEREDOC_END]
    return lines


def _socket_dir_lines() -> list[str]:
    return [
        'bulkhead_socket_dir="${PGHOST:-' + DEFAULT_SOCKET_DIR + '}"',
        'case "$bulkhead_socket_dir" in /*) ;; *) bulkhead_socket_dir=' + DEFAULT_SOCKET_DIR + " ;; esac",
    ]


def init_script(roles: Sequence[RoleSpec]) -> str:
    """bash script that feeds `init_sql(roles)` to psql, as /docker-entrypoint-initdb.d would run it.

    Not uploaded to the container any more (`start_script` runs the same SQL on
    every start); kept as the standalone form of the init, e.g. to re-apply it
    by hand. Works both executed and sourced (the entrypoint sources
    non-executable *.sh files). It connects like the entrypoint's own
    `docker_process_sql`: as $POSTGRES_USER to $POSTGRES_DB over the unix socket
    ($PGHOST when that is a directory, else /var/run/postgresql).
    """
    roles = _validated(roles)
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by bulkhead (components/postgres_init.py): creates each database's",
        "# login role and database and keeps roles apart. Idempotent; safe to re-run.",
        "set -Eeo pipefail",
        ': "${POSTGRES_USER:?POSTGRES_USER must be set}"',
        *_require_passwords(roles),
        *_socket_dir_lines(),
        *_psql_init(
            roles,
            ['--host "$bulkhead_socket_dir"', '--username "$POSTGRES_USER"', '--dbname "${POSTGRES_DB:-$POSTGRES_USER}"'],
        ),
        "",
    ]
    return "\n".join(lines)


def ping_database(roles: Sequence[RoleSpec]) -> str:
    """Database for `pg_isready -U ADMIN_USER` probes over TCP: one pg_hba admits the admin to.

    pg_isready hangs up at the password prompt, which the server does not log;
    a pair pg_hba rejects (the admin to `postgres`) logs two FATAL lines per probe.
    """
    roles = _validated(roles)
    return roles[0].db_name if roles else "postgres"  # validated: a plain word, safe in a shell


def start_script(roles: Sequence[RoleSpec]) -> str:
    """bash script, the container's entrypoint (`bash START_SCRIPT_PATH postgres <flags>`).

    1. Removes the ready marker ($BULKHEAD_READY_FILE, default `READY_FILE`).
    2. Runs the image's `docker-entrypoint.sh "$@"` in the background (first
       start: initdb, temporary server, then the final server; later starts: just
       the final server) and forwards SIGTERM/SIGINT to it.
    3. Waits until the FINAL server accepts TCP on 127.0.0.1:$PGPORT (default
       5432). The entrypoint's temporary init server listens on no TCP
       (`listen_addresses=''`), so this never runs the init against it.
    4. Runs `init_sql(roles)` as the admin over the unix socket ($PGHOST when
       that is a directory, else /var/run/postgresql) with peer authentication,
       so an old admin password in a kept volume does not lock it out.
    5. Touches the ready marker; the container's healthcheck requires it.
    6. Waits for the server and exits with its status: 0 after a SIGTERM/SIGINT
       shutdown (postgres exits 0 from smart/fast shutdown); in the rare race
       where the server is reaped while `wait` is interrupted by the signal, the
       status of the interrupted wait, 143 (SIGTERM) or 130 (SIGINT).

    If the init fails (and no stop was asked for) it stops the server and exits
    1, so the container does not report healthy with stale passwords. A missing
    password variable fails before the server is started. With a first argument
    that is neither `postgres` nor a flag, it just execs the image's entrypoint.
    """
    roles = _validated(roles)
    ping_db = ping_database(roles)
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by bulkhead (components/postgres_init.py): the container's entrypoint.",
        "# The image runs /docker-entrypoint-initdb.d only when the data directory is empty,",
        "# but the volume is kept across `pulumi destroy`/`up` and across container",
        "# replacements, so the (idempotent) init runs here, on every start, once the final",
        "# server is up: passwords follow the environment, added databases get created.",
        "set -Eeo pipefail",
        "",
        'case "${1:-}" in',
        "  postgres | -*) ;;",
        f'  *) exec {IMAGE_ENTRYPOINT} "$@" ;;  # not the server (e.g. a shell): nothing to init',
        "esac",
        "",
        "bulkhead_log() { printf 'bulkhead start.sh: %s\\n' \"$*\" >&2; }",
        "",
        'bulkhead_ready_file="${BULKHEAD_READY_FILE:-' + READY_FILE + '}"',
        "# A restarted container keeps its filesystem: the marker of the last start must go.",
        'rm -f -- "$bulkhead_ready_file"',
        "# Fail before starting anything when a password is missing (names only, never values).",
        *_require_passwords(roles),
        'bulkhead_port="${PGPORT:-' + str(DEFAULT_PORT) + '}"',
        *_socket_dir_lines(),
        "",
        "bulkhead_server_pid=",
        "bulkhead_stopping=",
        "bulkhead_forward() {",
        "  bulkhead_stopping=$1",
        '  if [ -n "$bulkhead_server_pid" ]; then kill -s "$1" "$bulkhead_server_pid" 2>/dev/null || true; fi',
        "}",
        "trap 'bulkhead_forward TERM' TERM",
        "trap 'bulkhead_forward INT' INT",
        "",
        "# Waits for the server; returns its exit status. A trapped signal interrupts",
        "# `wait` (status > 128) while the server is still shutting down: wait again.",
        "bulkhead_wait_server() {",
        "  local rc again",
        "  while :; do",
        '    rc=0; wait "$bulkhead_server_pid" || rc=$?',
        '    if [ "$rc" -gt 128 ] && kill -0 "$bulkhead_server_pid" 2>/dev/null; then continue; fi',
        '    if [ "$rc" -gt 128 ]; then  # reaped meanwhile: its own status, if bash still has it',
        '      again=0; wait "$bulkhead_server_pid" 2>/dev/null || again=$?',
        '      [ "$again" -eq 127 ] || rc=$again',
        "    fi",
        '    return "$rc"',
        "  done",
        "}",
        "",
        "bulkhead_finish() {",
        "  local status=0",
        "  bulkhead_wait_server || status=$?",
        '  rm -f -- "$bulkhead_ready_file"',
        '  exit "$status"',
        "}",
        "",
        f'{IMAGE_ENTRYPOINT} "$@" &',
        "bulkhead_server_pid=$!",
        '[ -z "$bulkhead_stopping" ] || kill -s "$bulkhead_stopping" "$bulkhead_server_pid" 2>/dev/null || true',
        "",
        "# The final server: TCP on 127.0.0.1 (the temporary init server has no TCP).",
        "# The admin and this database pass pg_hba, so the probe leaves no FATAL in the log.",
        f'until pg_isready -q -h 127.0.0.1 -p "$bulkhead_port" -U {ADMIN_USER} -d {ping_db} -t 5; do',
        '  if [ -n "$bulkhead_stopping" ] || ! kill -0 "$bulkhead_server_pid" 2>/dev/null; then',
        "    bulkhead_finish  # stopped, or the server failed to start: its status",
        "  fi",
        "  sleep 0.2",
        "done",
        '[ -z "$bulkhead_stopping" ] || bulkhead_finish',
        "",
        'bulkhead_log "server is up; applying roles, databases and passwords"',
        "bulkhead_init() {",
        *_psql_init(
            roles,
            ['--host "$bulkhead_socket_dir"', '--port "$bulkhead_port"', f"--username {ADMIN_USER}", "--dbname postgres"],
            indent="  ",
        ),
        "}",
        "bulkhead_init_rc=0",
        "bulkhead_init || bulkhead_init_rc=$?",
        'if [ "$bulkhead_init_rc" -ne 0 ]; then',
        '  [ -z "$bulkhead_stopping" ] || bulkhead_finish  # init cut short by a stop: not an error',
        '  bulkhead_log "init FAILED (psql exit $bulkhead_init_rc); stopping the server"',
        '  kill -s TERM "$bulkhead_server_pid" 2>/dev/null || true',
        "  bulkhead_wait_server || true",
        "  exit 1",
        "fi",
        'touch -- "$bulkhead_ready_file"',
        'bulkhead_log "ready"',
        "bulkhead_finish",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------- pg_hba


def pg_hba_conf(roles: Sequence[RoleSpec]) -> str:
    """pg_hba.conf: TLS + scram only, and each role only to its own database.

    Over TCP, layer 1 of 2 (layer 2 is the CONNECT privilege in `init_sql`): even if a
    privilege were granted by mistake, pg_hba refuses a role at any database
    but its own, and refuses plain-TCP connections altogether.
    """
    roles = _validated(roles)
    lines = [
        "# Generated by bulkhead (components/postgres_init.py). First match wins.",
        "# TYPE   DATABASE  USER  ADDRESS  METHOD",
        "# unix socket inside the container. The admin: peer, for the OS users pg_ident.conf",
        "# maps (root: start.sh's init; postgres: the image's first-start setup), so a kept",
        "# volume's old admin password cannot lock the init out. Everyone else: scram.",
        f"local all {_hba_quote(ADMIN_USER)} peer map={IDENT_MAP}",
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


def pg_ident_conf(os_users: Sequence[str] = ADMIN_OS_USERS) -> str:
    """pg_ident.conf: map `IDENT_MAP` lets each of `os_users` log in as the admin (peer, unix socket only)."""
    lines = [
        "# Generated by bulkhead (components/postgres_init.py).",
        "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME",
    ]
    for user in dict.fromkeys(os_users):
        if not isinstance(user, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$", user):
            raise ValueError(f"OS user {user!r} cannot be written into pg_ident.conf")
        lines.append(f'{IDENT_MAP} "{user}" {_hba_quote(ADMIN_USER)}')
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------- flags


def server_flags(
    parameters: Mapping[str, str],
    cert_file: str = SNAKEOIL_CERT,
    key_file: str = SNAKEOIL_KEY,
    hba_file: str = HBA_PATH,
    ident_file: str = IDENT_PATH,
) -> list[str]:
    """Arguments after `postgres`: TLS, our pg_hba and pg_ident, scram, then the catalogue's parameters (sorted)."""
    flags = [
        "-c", "ssl=on",
        "-c", f"ssl_cert_file={cert_file}",
        "-c", f"ssl_key_file={key_file}",
        "-c", f"hba_file={hba_file}",
        "-c", f"ident_file={ident_file}",
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
