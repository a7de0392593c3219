"""Init of a bulkhead PostgreSQL container (docs/contract.md section 4, Docker).

Plain functions, no Pulumi: the Docker component uploads what these return into a
`postgres:<major>` image (the official one, or the tests' look-alike built from
Debian's packages: scripts/build-test-images).

* `start_script` goes to `START_SCRIPT_PATH` and is the container's entrypoint (PID 1,
  root). On EVERY start it starts the server through the image's
  `docker-entrypoint.sh` and then applies the catalogue as the admin over the unix
  socket: roles, databases, passwords, limits (SQL from components/postgres/role_sql.py).
* `health_script` goes to `HEALTH_SCRIPT_PATH` and is the healthcheck: it opens no
  connection (so nothing in the server log, whatever `log_connections` says), it
  reads the wrapper's status file and the server's postmaster.pid, and prints the
  reason when unhealthy.
* `pg_hba_conf`, `pg_ident_conf`, `server_flags`: as their names say.

Why on every start: the volume outlives the container (`keep_volumes`), so after
`pulumi destroy` + `up` the container comes with NEW generated passwords for a
cluster that still has the OLD ones, and a database added to a shared server
arrives in a container whose data directory already exists.

Passwords: each is an upload of its own under `SECRETS_DIR` (root:root 0400, the
directory 0700, enforced again by the wrapper), never an environment variable. The
wrapper unsets POSTGRES_PASSWORD/PGPASSWORD before starting anything, so the server
process (and any code it runs: COPY ... PROGRAM, untrusted languages) inherits none;
psql reads each file itself (`\\set pw `cat FILE``) and the SQL refers to `:'pw'`.
The image's entrypoint requires a password only to initdb an empty data directory:
that first start runs with a random throwaway (a password nobody has), socket only,
and is stopped at once; the init then sets the real admin password.

A tenant's `public` schema is made the owner's once, when bulkhead creates the database
(from template1, whose `public` has no PUBLIC privileges either), before the tenant has
anything in it. On a server hosting several databases, every start also enters each tenant's
database, after resetting its settings and hardening the session, only to revoke the other
tenants' metadata (role_sql.metadata_revoke_statements: schema-qualified, writes nothing once done).
Everything else runs in the maintenance database `postgres`, which no tenant can connect
to or configure. Each tenant's part runs as its own psql session: a problem with one
(reported in the log and in the healthcheck's reason) never stops the server or the
other tenants' part.

Major version: the data directory is `<volume>/pg<major>` (a kept volume from
before this layout holds its cluster at the volume's root and keeps it there while
the major matches). A new major finds no cluster of its own, initialises an empty
one next to the old one, and says so in the log and the health output; the old
major's data is never touched, and setting `engine_version` back brings it back.
Moving data across majors is `bulkhead dump` on the old major, `restore` on the new.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

from components.postgres import role_sql
from components.postgres.role_sql import PasswordLogin, RoleSpec, quote_ident, quote_literal  # noqa: F401  (re-exported)
# The admin and the reserved names are defined once (policies/bulkhead_types.py, components/reserved.py).
from components.reserved import ADMIN_USER, SYSTEM_DATABASES, is_reserved_role  # noqa: F401

# Named in the comment heading every generated file. It keeps the module's name before the
# layout move, so that the container files stay byte-identical (a changed start.sh replaces
# every dev container on the next `up`).
GENERATOR = "components/postgres_init.py"
HBA_PATH = "/etc/bulkhead/pg_hba.conf"  # uploaded into the container
IDENT_PATH = "/etc/bulkhead/pg_ident.conf"  # uploaded into the container
START_SCRIPT_PATH = "/etc/bulkhead/start.sh"  # uploaded; the container's entrypoint
HEALTH_SCRIPT_PATH = "/etc/bulkhead/health.sh"  # uploaded; the container's healthcheck
SECRETS_DIR = "/etc/bulkhead/secrets"  # one upload per password, root:root 0400
SECRET_PERMISSIONS = "0400"
ADMIN_SECRET = "admin"
# The wrapper's status (root-owned: the server's OS user cannot fake a healthy state).
STATUS_DIR = "/run/bulkhead"
READY_FILE = f"{STATUS_DIR}/ready"
# Where the image mounts the data volume (the official image's VOLUME and PGDATA).
DATA_ROOT = "/var/lib/postgresql/data"
# The image's entrypoint, on PATH in the official image.
IMAGE_ENTRYPOINT = "docker-entrypoint.sh"
# pg_ident.conf map under which OS users may log in as the admin over the socket (peer).
IDENT_MAP = "bulkhead"
# Only root: the wrapper (PID 1) and `docker exec`. NOT `postgres`: that is the server's
# own OS user, so code running inside the server could reach the socket as it.
ADMIN_OS_USERS = ("root",)
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"
# The server's TLS pair, made by the wrapper on every start (openssl is in the official image:
# its Dockerfile installs postgresql-common, which Depends: ssl-cert, which Depends: openssl). NOT the snakeoil pair: that one is baked into the image, so
# every container of `postgres:N-bookworm` serves the same certificate with a key anyone
# can pull; SCRAM channel binding (tls-server-end-point, RFC 5929: a hash of the server's
# certificate) then matches on a relay holding that key, and `channel_binding=require`
# protects nothing. A pair of its own per container start makes the binding mean it.
TLS_DIR = f"{STATUS_DIR}/tls"
TLS_CERT = f"{TLS_DIR}/server.crt"
TLS_KEY = f"{TLS_DIR}/server.key"
# Where the pair components/dev/server_tls.py made for this container is uploaded: the key
# root-only with the passwords (SECRET_PERMISSIONS), the certificate public. The wrapper copies
# both into TLS_DIR for the server's OS user on every start (PostgreSQL refuses a key file
# others can read: be-secure-openssl.c check_ssl_key_file_permissions).
TLS_KEY_UPLOAD = f"{SECRETS_DIR}/tls-server.key"
TLS_CERT_UPLOAD = "/etc/bulkhead/tls/server.crt"

# Where the image's servers put their unix socket.
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
DEFAULT_PORT = 5432

NAME_RE = role_sql.NAME_RE
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

_HEREDOC_END = "BULKHEAD_SQL"
# psql variable holding the password being set (lower case: never one of psql's own).
_PW_VAR = "bulkhead_pw"


SCRAM_SALT_BYTES = 16  # PostgreSQL's own SCRAM_DEFAULT_SALT_LEN (src/include/common/scram-common.h)


def secret_content(password: str, salt: bytes) -> str:
    """What the container gets for a password: its SCRAM-SHA-256 verifier (role_sql), never the
    password. The init sends `ALTER ROLE ... PASSWORD '<verifier>'`, which PostgreSQL stores as
    is ("If the presented password string is already in MD5-encrypted or SCRAM-encrypted format,
    then it is stored as-is", CREATE ROLE docs), so no statement log, pg_stat_statements entry,
    file on the volume or process in the container ever holds the password itself.

    `salt`: random, drawn once and kept in the state (a `random.RandomId` per password,
    components/dev/docker_postgres.py), so the same password gives the same upload (an unchanged
    deployment does not replace the container) and the salt, which the server sends to anyone who
    starts a SCRAM login, says nothing about the password. (It was derived from the password
    before: an offline guess then cost one HMAC instead of 4096 PBKDF2 rounds.)"""
    if not isinstance(salt, bytes) or len(salt) < SCRAM_SALT_BYTES:
        raise ValueError(f"the SCRAM salt must be at least {SCRAM_SALT_BYTES} random bytes")
    return role_sql.scram_sha256_verifier(password, salt=salt)


def secret_file(name: str) -> str:
    """Upload path of a password: `admin`, or `role-<db_name>` for a database's login role."""
    if name != ADMIN_SECRET:
        _check_name(name, "database name")
        name = f"role-{name}"
    return f"{SECRETS_DIR}/{name}"


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"{what} {name!r} must match {NAME_RE.pattern}")


def _hba_quote(name: str) -> str:
    # Quoted, a name is never read as an hba keyword (`all`, `sameuser`,
    # `replication`, `+group`, `@file`); validated names contain no quote.
    if not NAME_RE.match(name):
        raise ValueError(f"{name!r} cannot be written into pg_hba.conf")
    return f'"{name}"'


def _validated(roles: Sequence[RoleSpec]) -> list[RoleSpec]:
    roles = list(roles)
    for spec in roles:
        if not isinstance(spec, RoleSpec):
            raise TypeError(f"expected RoleSpec, got {spec!r}")
        if is_reserved_role(spec.role):
            raise ValueError(f"role name {spec.role!r} is reserved (admin, postgres, pg_* or rds_*)")
    role_sql.check_unique(roles)
    return roles


# ------------------------------------------------------------------------- SQL

_QUIET_LOG = [
    # Keep passwords out of the server log whatever the catalogue's log settings.
    "SET log_statement = 'none'",
    "SET log_min_duration_statement = -1",
    "SET log_min_error_statement = 'panic'",
    # and out of pg_stat_statements when the catalogue preloads it (PGC_SUSET: the admin may; a
    # placeholder when the module is not loaded). The init sends SCRAM verifiers, never a password,
    # but a verifier is still what an offline guess is checked against.
    "SET pg_stat_statements.track = 'none'",
    "SET pg_stat_statements.track_utility = off",
]


def _sql(statements: Sequence[str]) -> list[str]:
    return [f"{s};" for s in statements]


def _shared(roles: Sequence[RoleSpec]) -> bool:
    """A server hosting several tenants: only there is there anyone to hide metadata from."""
    return len(roles) > 1


def server_sql(roles: Sequence[RoleSpec]) -> str:
    """psql script, the server-wide part of the init (as the admin, database `postgres`).

    Needs the psql variable `bulkhead_pw` (the admin's password). The admin's password,
    CONNECT/TEMPORARY on every non-service database revoked from PUBLIC, and template1's
    `public` schema closed, so every database created later starts closed too."""
    roles = _validated(roles)
    known = ", ".join(quote_literal(d) for d in [*SYSTEM_DATABASES, *(s.db_name for s in roles)])
    out = [
        f"-- Generated by bulkhead ({GENERATOR}): server-wide init. Idempotent.",
        *_sql(role_sql.hardened_session_statements()),
        *_sql(_QUIET_LOG),
        f"ALTER ROLE {quote_ident(ADMIN_USER)} WITH PASSWORD :'{_PW_VAR}';",
        "\\unset " + _PW_VAR,
        *[f"REVOKE CONNECT, TEMPORARY ON DATABASE {quote_ident(db)} FROM PUBLIC;" for db in SYSTEM_DATABASES],
        "-- any other database on this server (e.g. the image's $POSTGRES_DB), template0 aside",
        "SELECT pg_catalog.format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', datname)",
        "  FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.<>) 'template0'",
        f"  AND NOT datname OPERATOR(pg_catalog.=) ANY (ARRAY[{known}]::pg_catalog.name[]) ORDER BY datname",
        "\\gexec",
        # template1 is the admin's alone (no tenant can connect to it): databases copy it.
        "\\connect template1",
        *_sql(role_sql.hardened_session_statements()),
        "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
        # on a shared server its catalog hides the other tenants' locks, counters and sizes (role_sql),
        # so every database created later starts that way
        *(_sql(role_sql.metadata_revoke_statements()) if _shared(roles) else []),
        "",
    ]
    return "\n".join(out)


def tenant_sql(spec: RoleSpec, others: Sequence[RoleSpec] = ()) -> str:
    """psql script for one database of the server (as the admin, database `postgres`).

    Needs the psql variable `bulkhead_pw` (the role's password). Role statements and
    ownership from role_sql; the database created when missing and only then entered
    (its `public` schema made the owner's); grants by hand to the other tenants undone."""
    role_i, db_i = quote_ident(spec.role), quote_ident(spec.db_name)
    login = PasswordLogin(f":'{_PW_VAR}'")
    other_roles = ", ".join(quote_literal(o.role) for o in others if o.role != spec.role)
    out = [
        f"-- Generated by bulkhead ({GENERATOR}): database {spec.db_name}, role {spec.role}.",
        *_sql(role_sql.hardened_session_statements()),
        *_sql(_QUIET_LOG),
        *_sql(role_sql.role_statements(spec, login)),
        f"\\unset {_PW_VAR}",
        f"SELECT NOT EXISTS ({role_sql.database_exists_query(spec)}) AS bulkhead_create",
        "\\gset",
        "\\if :bulkhead_create",
        f"{role_sql.create_database_statement(spec)};",
        "\\endif",
        *_sql(role_sql.ownership_statements(spec)),
        f"{role_sql.reset_database_settings_statement(spec)};",
        # converge: undo any grant made by hand to another tenant's role (those that exist yet)
        *(
            [
                f"SELECT pg_catalog.format('REVOKE ALL ON DATABASE %I FROM %I', {quote_literal(spec.db_name)}, rolname)",
                f"  FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) ANY (ARRAY[{other_roles}]::pg_catalog.name[])",
                "  ORDER BY rolname",
                "\\gexec",
            ]
            if other_roles
            else []
        ),
        *(
            [
                # A shared server: entered on every start (after its settings were reset above, the
                # session hardened first), so that a database created before template1 carried the
                # metadata revokes gets them too; the DO block writes nothing once done
                # (role_sql.metadata_revoke_statements).
                f"\\connect {db_i}",
                *_sql(role_sql.hardened_session_statements()),
                "\\if :bulkhead_create",
                *_sql(role_sql.in_database_statements(spec)),
                "\\endif",
                *_sql(role_sql.metadata_revoke_statements()),
            ]
            if other_roles
            else [
                "\\if :bulkhead_create",
                f"\\connect {db_i}",
                *_sql(role_sql.in_database_statements(spec)),
                "\\endif",
            ]
        ),
        "",
    ]
    sql = "\n".join(out)
    assert _HEREDOC_END not in sql.splitlines() and role_i
    return sql


def _psql_run(secret: str, sql: str, indent: str = "  ") -> list[str]:
    """bash lines: run `sql` with psql as the admin; the password file read by psql itself.

    A quoted heredoc: bash expands nothing in the SQL. VERBOSITY terse: an error never
    echoes the statement (a password) to the log."""
    return [
        f"{indent}PGHOSTADDR= PGPASSWORD= psql -v ON_ERROR_STOP=1 -v VERBOSITY=terse --no-psqlrc --no-password \\",
        f'{indent}  --quiet --host "$bulkhead_socket_dir" --port "$bulkhead_port" --username {ADMIN_USER} \\',
        f"{indent}  --dbname postgres >/dev/null <<'{_HEREDOC_END}'",
        "\\set VERBOSITY terse",
        # psql runs the backquoted command itself: the password never passes through bash
        f'\\set {_PW_VAR} `cat "${{BULKHEAD_SECRETS_DIR:-{SECRETS_DIR}}}/{secret}"`',
        sql,
        _HEREDOC_END,
    ]


# ---------------------------------------------------------------------- scripts


def _init_lines(roles: Sequence[RoleSpec]) -> list[str]:
    """bash lines defining the init's parts, each its own psql session: `bulkhead_part_server`
    (`server_sql`) and `bulkhead_part_db_<db>` (`tenant_sql`), and the array `bulkhead_parts`
    naming them (`server`, `db_<db>`) in order. A part returns non-zero with its reason on
    stderr; parts are independent (the admin logs in by peer, not with its password), so a
    failed one can be retried alone. Needs $bulkhead_socket_dir, $bulkhead_port and
    $bulkhead_secrets_dir."""
    lines = [
        "bulkhead_part_server() {",
        *_psql_run(ADMIN_SECRET, server_sql(roles)),
        "}",
    ]
    names = ["server"]
    for spec in roles:
        secret = f'"$bulkhead_secrets_dir/role-{spec.db_name}"'
        lines += [
            f"bulkhead_part_db_{spec.db_name}() {{",
            f"  if [ ! -s {secret} ]; then",
            f"    echo 'password file {SECRETS_DIR}/role-{spec.db_name} is missing or empty' >&2; return 1",
            "  fi",
            *_psql_run(f"role-{spec.db_name}", tenant_sql(spec, roles)),
            "}",
        ]
        names.append(f"db_{spec.db_name}")
    lines += [
        f"bulkhead_parts=({' '.join(names)})",
        'bulkhead_part_label() { case "$1" in server) echo "server-wide init" ;; *) echo "database ${1#db_}" ;; esac; }',
    ]
    return lines


def init_script(roles: Sequence[RoleSpec]) -> str:
    """bash script applying the init to a running server, as `start_script` does after start-up
    (e.g. by hand: `docker exec CONTAINER bash` with this script). Exit 1 if any part failed
    (each failure printed, names only), after trying every part."""
    roles = _validated(roles)
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            f"# Generated by bulkhead ({GENERATOR}): the init, standalone.",
            "set -Eeo pipefail",
            "bulkhead_failed=",
            "bulkhead_problem() { printf 'bulkhead init: PROBLEM: %s\\n' \"$*\" >&2; bulkhead_failed=1; }",
            'bulkhead_secrets_dir="${BULKHEAD_SECRETS_DIR:-' + SECRETS_DIR + '}"',
            'bulkhead_port="${PGPORT:-' + str(DEFAULT_PORT) + '}"',
            'bulkhead_socket_dir="${PGHOST:-' + DEFAULT_SOCKET_DIR + '}"',
            'bulkhead_err="$(mktemp)"',
            "trap 'rm -f -- \"$bulkhead_err\"' EXIT",
            *_init_lines(roles),
            'for bulkhead_part in "${bulkhead_parts[@]}"; do',
            '  if ! "bulkhead_part_$bulkhead_part" 2>"$bulkhead_err"; then',
            '    bulkhead_problem "$(bulkhead_part_label "$bulkhead_part"): $(tr \'\\n\' \' \' < "$bulkhead_err")"',
            "  fi",
            "done",
            '[ -z "$bulkhead_failed" ] || exit 1',
            "",
        ]
    )


# The container's scripts are real files (components/dev/files/, checked by shellcheck) with
# @NAME@ placeholders for this module's constants and, in start.sh, @INIT@ for the per-database
# init lines. Filled in, they are byte-identical to what the module generated before (the golden
# test in tests/program/test_golden.py).
_FILES = Path(__file__).resolve().parent / "files"
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def _template(name: str) -> str:
    return (_FILES / name).read_text(encoding="utf-8")


def _fill(template: str, **extra: str) -> str:
    values = {"GENERATOR": GENERATOR, "IMAGE_ENTRYPOINT": IMAGE_ENTRYPOINT, "STATUS_DIR": STATUS_DIR,
              "SECRETS_DIR": SECRETS_DIR, "DATA_ROOT": DATA_ROOT, "DEFAULT_PORT": str(DEFAULT_PORT),
              "DEFAULT_SOCKET_DIR": DEFAULT_SOCKET_DIR, "ADMIN_SECRET": ADMIN_SECRET,
              "SNAKEOIL_CERT": SNAKEOIL_CERT, "SNAKEOIL_KEY": SNAKEOIL_KEY,
              "TLS_KEY_NAME": TLS_KEY_UPLOAD.rsplit("/", 1)[1], "TLS_CERT_UPLOAD": TLS_CERT_UPLOAD,
              "HBA_PATH": HBA_PATH, "ADMIN_USER": ADMIN_USER, **extra}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def start_script(roles: Sequence[RoleSpec]) -> str:
    """bash script, the container's entrypoint (`bash START_SCRIPT_PATH postgres <flags>`).

    1. Secrets root-only; POSTGRES_PASSWORD/PGPASSWORD unset; the admin's password
       file must exist (else exit 1 before anything starts).
    2. PGDATA: `$BULKHEAD_DATA_ROOT` (default DATA_ROOT) when it holds this major's
       cluster (the layout before per-major directories), else `<root>/pg<major>`.
    3. Empty PGDATA: the image's entrypoint initialises it with a throwaway password,
       socket only; the wrapper stops that server once it is up.
    4. The image's entrypoint, without any password in its environment, starts the
       final server; the wrapper waits until THAT process (its own child, by pid in
       postmaster.pid) accepts connections. SIGTERM/SIGINT (the image's STOPSIGNAL)
       are forwarded as received at any time.
    5. `server_sql`, then `tenant_sql` per database, each its own psql; failures are
       logged and written to the status file, and the server keeps running.
    6. `$BULKHEAD_STATUS_DIR/ready` written (the healthcheck's reason), then waits for
       the server and exits with its status.
    """
    roles = _validated(roles)
    return _fill(_template("start.sh"), INIT="\n".join(_init_lines(roles)))


def health_script() -> str:
    """bash script, the healthcheck: no connection to the server, so nothing in its log.

    Healthy: the wrapper finished the init on this start without problems, and the
    server it started says `ready` in postmaster.pid and is alive. The output (what
    `docker inspect` shows as the health log) says why not, or lists the notes."""
    return _fill(_template("health.sh"))


# ---------------------------------------------------------------------- pg_hba


def pg_hba_conf(roles: Sequence[RoleSpec], admin_tcp: bool = False) -> str:
    """pg_hba.conf: the admin by peer (root only) on the socket and nowhere else; every role
    only to its own database, scram, over the socket or TLS; everything else rejected.

    `admin_tcp` (stack key `bulkhead:admin_tcp`): the admin also with its password, scram over TLS,
    from `samenet` only: the subnets of the container's own Docker networks. A connection through
    the port published on the host's 127.0.0.1 reaches the container from its network's gateway
    (docker-proxy, or the engine's NAT: both inside that subnet); the LAN traffic an engine below 28
    forwards straight to container addresses (moby#45610) keeps its LAN source address and is refused.
    Containers on the server's networks (on a shared server, every tenant's) fall inside `samenet` too,
    so files/start.sh narrows the line to the default route's gateway `/32` on every start (review of
    issue 22: a tenant's container logged in as the admin with its password; the published port's
    traffic comes from that gateway). PostgreSQL docs, pg_hba.conf: "samenet to match any address in
    any subnet that the server is directly connected to".

    Layer 1 of 2 (layer 2 is the CONNECT privilege): even if a privilege were granted by
    mistake, pg_hba refuses a role at any database but its own, and plain TCP altogether."""
    roles = _validated(roles)
    lines = [
        f"# Generated by bulkhead ({GENERATOR}). First match wins.",
        "# TYPE   DATABASE  USER  ADDRESS  METHOD",
        "# unix socket: the admin by peer for the OS users pg_ident.conf maps (root only);",
        "# each role to its own database with its password, like the hostssl lines.",
        f"local all {_hba_quote(ADMIN_USER)} peer map={IDENT_MAP}",
    ]
    for spec in roles:
        lines.append(f"local {_hba_quote(spec.db_name)} {_hba_quote(spec.role)} scram-sha-256")
    # The admin has no network line: superuser only from inside the container (issue 22: with the
    # admin's password, superuser through 127.0.0.1). `bulkhead` verbs reach it by `docker exec`.
    lines += ["local all all reject"]
    if admin_tcp:
        lines += [
            "# bulkhead:admin_tcp: the admin with its password over TLS, from the container's own networks only",
            f"hostssl all {_hba_quote(ADMIN_USER)} samenet scram-sha-256",
        ]
    lines += ["# each database: its owning role, over TLS only"]
    for spec in roles:
        for net in ("0.0.0.0/0", "::/0"):
            lines.append(f"hostssl {_hba_quote(spec.db_name)} {_hba_quote(spec.role)} {net} scram-sha-256")
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
        f"# Generated by bulkhead ({GENERATOR}).",
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
    cert_file: str = TLS_CERT,
    key_file: str = TLS_KEY,
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
