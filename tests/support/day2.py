"""Shared by the day-2 verb tests (test_operate.py, test_split.py): a real PostgreSQL server
from test_postgres_isolation's `start_postgres`, initialised with the dev container's own init
(`components/dev/container.py` public functions), and the stack outputs a dev stack would print
for it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Mapping, Sequence
from urllib.parse import quote

import psycopg

from components.dev.container import RoleSpec, pg_hba_conf
from tests.support.postgres import PgServer, assert_init_ok, start_postgres

ROOT = Path(__file__).resolve().parent.parent.parent


def role_specs(names: Sequence[str]) -> tuple[RoleSpec, ...]:
    # the dev stack's naming (components/dev/docker_postgres.py role_name): the role is named after its database
    return tuple(RoleSpec(name, name) for name in names)


def hostile_password(name: str) -> str:
    return f"{name}-pw 'q' \"dq\" :v $HOME `id` @/?#&=+%ü"


@contextlib.contextmanager
def dev_server(names: Sequence[str]) -> Iterator[tuple[PgServer, dict[str, str]]]:
    """A shared dev server: one database and owner role per name, exactly as the container's init makes them."""
    roles = role_specs(names)
    passwords = {spec.role: hostile_password(spec.role) for spec in roles}
    with start_postgres({}, hba_conf=pg_hba_conf(roles)) as server:
        assert_init_ok(server.run_init_script(roles, passwords))
        yield server, passwords


def url(server: PgServer, name: str, password: str) -> str:
    return f"postgresql://{name}:{quote(password, safe='')}@127.0.0.1:{server.port}/{name}?sslmode=require"


def outputs_for(server: PgServer, passwords: Mapping[str, str], path: Path, platform: str = "docker") -> str:
    """The `databases` output of a dev stack whose databases live on `server` (docs/contract.md section 5)."""
    dbs = {}
    for name, password in passwords.items():
        dbs[name] = {
            "owner": f"{name}-service", "platform": platform, "host": "127.0.0.1", "port": server.port,
            "db_name": name, "username": name, "sslmode": "require", "env_var": f"{name.upper()}_DATABASE_URL",
            "tier": "standard", "reader_hosts": [], "password": password, "url": url(server, name, password),
        }
    path.write_text(json.dumps({"databases": dbs}))
    return str(path)


def connect_as(server: PgServer, name: str, password: str, **kw) -> psycopg.Connection:
    return server.connect(name, name, password, autocommit=True, **kw)


def run_sql_file(server: PgServer, name: str, password: str, sql: str) -> None:
    """psql -f as the database's own role, stopping at the first error."""
    result = subprocess.run(
        [str(server.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
         f"host=127.0.0.1 port={server.port} dbname={name} user={name} sslmode=require"],
        input=sql, text=True, capture_output=True, env={**os.environ, "PGPASSWORD": password}, timeout=120,
    )
    assert result.returncode == 0, result.stderr


def bulkhead(*argv: str, stdin: str | None = None, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m bulkhead ...` as a user runs it (child programs such as psql write to the real stdout)."""
    return subprocess.run([sys.executable, "-m", "bulkhead", *argv], cwd=ROOT, input=stdin, text=True,
                          capture_output=True, env={**os.environ, **(env or {})}, timeout=300)


def table_fingerprints(conn: psycopg.Connection) -> dict[str, str]:
    """md5 of each table's COPY output, in physical order and in key order: the bytes as stored, and the content."""
    tables = [r[0] for r in conn.execute(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1").fetchall()]
    out = {}
    for table in tables:
        digest = conn.execute(
            f"SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)), count(*), "
            f"md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) FROM {table} t").fetchone()
        out[table] = f"{digest[0]}/{digest[1]}/{digest[2]}"
    return out


def objects_by_owner(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1").fetchall()]
