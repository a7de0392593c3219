"""What the day-2 verbs (psql, reset, dump, restore, split) share: one database's DSN,
the PostgreSQL client programs, and connections that keep passwords off command lines.

A database's DSN comes from bulkhead/connection.py, the same function `dsn` prints: whatever
it learns (the IAM token of the service role on aws, `--admin` break-glass) every verb gets.

Passwords never go on a command line (`ps` shows those to every user of the machine):
a client program gets the DSN without its password and the password in `PGPASSWORD`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from . import PROJECT_DIR
from .errors import UserError
from .connection import database_url
from .outputs_source import database, load_outputs

CLIENT_HINT = ("install the PostgreSQL client programs (Debian/Ubuntu: apt-get install postgresql-client; "
               "macOS: brew install libpq) or set BULKHEAD_PG_BINDIR to the directory holding them")
# Objects every database has and nobody owns in the sense of "the service's data".
SYSTEM_SCHEMAS_SQL = "('pg_catalog', 'information_schema', 'pg_toast')"


def client_program(name: str) -> str:
    """Path of psql/pg_dump/pg_restore: from $BULKHEAD_PG_BINDIR when set (and only there),
    else PATH, else the newest Debian install (/usr/lib/postgresql/<major>/bin)."""
    explicit = os.environ.get("BULKHEAD_PG_BINDIR")
    if explicit:
        candidates = [Path(explicit) / name]
    else:
        on_path = shutil.which(name)
        candidates = [Path(on_path)] if on_path else []
        candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                             key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
                             reverse=True)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    where = f" (BULKHEAD_PG_BINDIR={explicit})" if explicit else ""
    raise UserError(f"`{name}` is not installed here{where}; {CLIENT_HINT}")


@dataclass(frozen=True)
class Dsn:
    """A connection string split in two: what may be shown and passed on argv, and the password."""

    conninfo: str  # key=value form without the password
    password: Optional[str]
    user: str
    host: str
    dbname: str

    def env(self) -> dict[str, str]:
        """Environment for a client program: the password (if any) in PGPASSWORD, nothing else changed."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self, **kwargs):
        import psycopg

        try:
            return psycopg.connect(self.conninfo, password=self.password, connect_timeout=15, **kwargs)
        except psycopg.OperationalError as exc:
            # libpq's messages name host, port and user, never the password.
            raise UserError(f"cannot connect to database {self.dbname} on {self.host} as {self.user}: "
                            f"{' '.join(str(exc).split())}") from None

    def describe(self) -> str:
        return f"{self.dbname} on {self.host} as {self.user}"


def split_dsn(url: str, what: str) -> Dsn:
    """Parse a libpq URL or key=value string (libpq's own parser, through psycopg)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except ProgrammingError:
        # Never echo the string: it may hold a password.
        raise UserError(f"{what} is not a PostgreSQL connection string (postgresql://user@host:port/db?sslmode=require "
                        f"or 'host=... dbname=...')") from None
    password = params.pop("password", None)
    user = str(params.get("user") or os.environ.get("PGUSER") or "")
    host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
    dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or user)
    return Dsn(make_conninfo(**params), None if password is None else str(password), user, host, dbname)


@contextlib.contextmanager
def outputs_file(path: Optional[str]) -> Iterator[Optional[str]]:
    """`--outputs` as a path that can be read more than once (stdin is copied to a private file)."""
    if path != "-":
        yield path
        return
    fd, tmp = tempfile.mkstemp(prefix="bulkhead-outputs-", suffix=".json")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(sys.stdin.read())
        yield tmp
    finally:
        os.unlink(tmp)


@dataclass(frozen=True)
class Target:
    """One catalogue database as the day-2 verbs see it: its outputs entry and its DSN."""

    name: str
    entry: dict
    dsn: Dsn

    @property
    def platform(self) -> str:
        return str(self.entry.get("platform"))

    @property
    def owner_role(self) -> str:
        """The service's own login role (`username` in the outputs): what every object must belong to."""
        role = self.entry.get("username")
        if not isinstance(role, str) or not role:
            raise UserError(f"databases.{self.name}.username is missing from the outputs; is the stack current?")
        return role


def load_target(name: str, outputs: Optional[str], stack: Optional[str], admin: bool = False,
                loaded: Optional[dict] = None) -> Target:
    """The database's outputs entry and DSN (from `dsn`, which also refuses `--admin` on dev databases)."""
    outputs_data = loaded if loaded is not None else load_outputs(outputs, stack, cwd=PROJECT_DIR)
    entry = database(outputs_data, name)
    url = database_url(outputs_data, name, stack, admin=admin)
    dsn = split_dsn(url, f"the DSN of database {name}")
    return Target(name, entry, dsn)


def warn_if_not_service_role(target: Target) -> None:
    role = target.entry.get("username")
    if role and target.dsn.user and target.dsn.user != role:
        print(f"warning: connecting to {target.name} as {target.dsn.user}, not as the service role {role}: "
              f"break-glass access; every statement runs with that login's rights", file=sys.stderr)


def user_objects(conn) -> list[tuple[str, str, str]]:
    """(kind, qualified name, owner) of every object a user made in the connected database:
    relations, functions, types, schemas (but `public`) and extensions (not their members)."""
    rows = conn.execute(f"""
        WITH ext_members AS (
            SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'
        )
        SELECT 'relation', format('%I.%I', n.nspname, c.relname), pg_catalog.pg_get_userbyid(c.relowner)
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN {SYSTEM_SCHEMAS_SQL} AND n.nspname NOT LIKE 'pg_temp%'
           AND n.nspname NOT LIKE 'pg_toast_temp%'
           AND NOT EXISTS (SELECT FROM ext_members e WHERE e.classid = 'pg_catalog.pg_class'::regclass
                                                      AND e.objid = c.oid)
        UNION ALL
        SELECT 'function', format('%I.%I', n.nspname, p.proname), pg_catalog.pg_get_userbyid(p.proowner)
          FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname NOT IN {SYSTEM_SCHEMAS_SQL}
           AND NOT EXISTS (SELECT FROM ext_members e WHERE e.classid = 'pg_catalog.pg_proc'::regclass
                                                      AND e.objid = p.oid)
        UNION ALL
        SELECT 'type', format('%I.%I', n.nspname, t.typname), pg_catalog.pg_get_userbyid(t.typowner)
          FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname NOT IN {SYSTEM_SCHEMAS_SQL} AND t.typtype IN ('e', 'd', 'r', 'm')
           AND NOT EXISTS (SELECT FROM ext_members e WHERE e.classid = 'pg_catalog.pg_type'::regclass
                                                      AND e.objid = t.oid)
        UNION ALL
        SELECT 'schema', format('%I', n.nspname), pg_catalog.pg_get_userbyid(n.nspowner)
          FROM pg_catalog.pg_namespace n
         WHERE n.nspname NOT IN {SYSTEM_SCHEMAS_SQL} AND n.nspname <> 'public'
           AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
        UNION ALL
        SELECT 'extension', format('%I', x.extname), pg_catalog.pg_get_userbyid(x.extowner)
          FROM pg_catalog.pg_extension x WHERE x.extname <> 'plpgsql'
        ORDER BY 1, 2
    """).fetchall()
    return [(str(k), str(n), str(o)) for k, n, o in rows]


def summarise(objects: list[tuple[str, str, str]], limit: int = 8) -> str:
    shown = ", ".join(f"{kind} {name} (owner {owner})" for kind, name, owner in objects[:limit])
    more = f" and {len(objects) - limit} more" if len(objects) > limit else ""
    return shown + more


# --- shared by the day-2 verbs -----------------------------------------------------

VERSION_HINT = ("the client is older than the server: install the client of the server's major version "
                "(Debian/Ubuntu: apt-get install postgresql-client-<major>) or set BULKHEAD_PG_BINDIR")


def row_count(conn) -> tuple[int, int]:
    """(rows, tables) of every table a user made in the connected database: what a reset or a
    restore --clean is about to destroy. Exact counts (count(*)); dev databases are small."""
    from psycopg import sql

    tables = conn.execute(f"""
        SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN {SYSTEM_SCHEMAS_SQL}
           AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
           AND NOT (c.relkind = 'm' AND NOT c.relispopulated)
         ORDER BY 1, 2""").fetchall()
    total = 0
    for schema, table in tables:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        try:
            total += int(conn.execute(query).fetchone()[0])
        except Exception:  # noqa: BLE001 - not readable by this role: counted as unknown, not fatal
            pass
    return total, len(tables)


def describe_for_confirmation(conn, target: Target, stack: Optional[str]) -> str:
    """`database worker (worker on 127.0.0.1:5433, container bulkhead-dev-x) of stack dev: 2500 rows in 2 tables`."""
    rows, tables = row_count(conn)
    port = target.entry.get("port")
    where = f"{target.dsn.host}:{port}" if port else target.dsn.host
    container = target.entry.get("container")
    where += f", container {container}" if container else ""
    of_stack = f" of stack {stack}" if stack else ""
    return (f"database {target.name} ({target.dsn.dbname} on {where}){of_stack}: {rows} rows in {tables} tables")


def confirm(what: str, name: str) -> None:
    if not sys.stdin.isatty():
        raise UserError(f"{what}, which cannot be undone, and there is no terminal to confirm on: nothing was "
                        f"changed; pass --yes")
    print(f"{what}. Type the database name ({name}) to continue: ", end="", file=sys.stderr, flush=True)
    try:
        answer = input().strip()
    except EOFError:
        answer = ""
    if answer != name:
        raise UserError("not confirmed; nothing was changed")



def client_error(program: str, stderr: str) -> str:
    text = " ".join(stderr.strip().split())[-600:] or "no message"
    if "server version mismatch" in text:
        text += f"; {VERSION_HINT}"
    return f"{program} failed: {text}"


def run_client(argv: list[str], target: Target, counting: tuple[str, ...]) -> tuple[int, int, str]:
    """Run a client program with --verbose: counted progress lines on stderr (one line per object
    would drown the terminal), everything else passed through. (exit code, count, other stderr)."""
    proc = subprocess.Popen(argv, env=target.dsn.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    count, other = 0, []
    tty = sys.stderr.isatty()
    assert proc.stderr is not None
    for line in proc.stderr:
        if any(marker in line for marker in counting):
            count += 1
            if tty:
                print(f"\r{os.path.basename(argv[0])}: {count} objects", end="", file=sys.stderr, flush=True)
        elif ": warning: " in line or ": error: " in line or "ERROR" in line or "FATAL" in line or other:
            other.append(line)
    code = proc.wait()
    if tty and count:
        print(file=sys.stderr)
    return code, count, "".join(other)

