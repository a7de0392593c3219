"""`psql`, `reset`, `dump`, `restore` on a real PostgreSQL server built by the dev container's
init: a shared dev server (auth, app, worker) and a second stack's server (auth) to restore into.
Every DSN comes from the outputs through `dsn`, with hostile passwords."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bulkhead.commands.split import Relation, set_text_form, table_checksum
from tests.support.day2 import ROOT, bulkhead, connect_as, dev_server, objects_by_owner, outputs_for, run_sql_file, url

SEED = """
CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(10, 2), tags text[], seen timestamptz);
CREATE TABLE notes (id serial PRIMARY KEY, item_id bigint REFERENCES items(id), body text);
CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10;
CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM items';
INSERT INTO items (name, price, tags, seen)
  SELECT 'item ' || i || E' \\'q\\' ü', i / 7.0, ARRAY['a', NULL], TIMESTAMPTZ '2024-01-01 00:00+00' + i * INTERVAL '1 min'
  FROM generate_series(1, 2500) i;
INSERT INTO notes (item_id, body) SELECT 1 + i % 2500, repeat('n', i % 30) FROM generate_series(1, 700) i;
"""


@pytest.fixture(scope="module")
def dev():
    with dev_server(["auth", "app", "worker"]) as (server, passwords):
        yield server, passwords


@pytest.fixture(scope="module")
def staging():
    with dev_server(["auth"]) as (server, passwords):
        yield server, passwords


@pytest.fixture
def dev_outputs(dev, tmp_path):
    server, passwords = dev
    return outputs_for(server, passwords, tmp_path / "dev.json")


def _empty(server, passwords, name):
    with connect_as(server, name, passwords[name]) as conn:
        conn.execute("DROP OWNED BY CURRENT_USER CASCADE")
        conn.execute("CREATE SCHEMA IF NOT EXISTS public")
        conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")


def _seed(server, passwords, name):
    _empty(server, passwords, name)
    run_sql_file(server, name, passwords[name], SEED)


def _checksums(server, name, password):
    with connect_as(server, name, password) as conn:
        set_text_form(conn)
        return {t: table_checksum(conn, Relation(0, "public", t, "r")) for t in ("items", "notes")}


# --- psql --------------------------------------------------------------------

def test_psql_runs_through_the_dsn_as_the_owner(dev, dev_outputs):
    server, passwords = dev
    result = bulkhead("psql", "--database", "app", "--outputs", dev_outputs, "--", "-XAtc",
                      "select current_user || ' ' || current_database() || ' ' || "
                      "(select ssl from pg_stat_ssl where pid = pg_backend_pid())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "app app true"
    assert passwords["app"] not in result.stdout + result.stderr


def test_psql_returns_psqls_exit_code_and_hides_the_password_from_ps(dev, dev_outputs):
    server, passwords = dev
    # psql sees its own command line: the conninfo it was given has no password
    result = bulkhead("psql", "--database", "auth", "--outputs", dev_outputs, "--", "-XAtc",
                      "select 1/0")
    assert result.returncode == 1 and "division by zero" in result.stderr
    from bulkhead.pgtools import load_target

    target = load_target("auth", dev_outputs, None)
    assert "password" not in target.dsn.conninfo and target.dsn.password == passwords["auth"]


@pytest.mark.parametrize("argv, env, code, fragment", [
    (["--database", "nope"], {}, 2, "no database 'nope' in the stack outputs; databases: app, auth, worker"),
    (["--database", "auth", "--admin"], {}, 2, "databases.auth.container is missing from the outputs"),
    (["--database", "auth"], {"BULKHEAD_PG_BINDIR": "/nonexistent"}, 2,
     "`psql` is not installed here (BULKHEAD_PG_BINDIR=/nonexistent); install the PostgreSQL client programs"),
])
def test_psql_refusals(dev_outputs, argv, env, code, fragment):
    result = bulkhead("psql", *argv, "--outputs", dev_outputs, env=env)
    assert result.returncode == code and fragment in result.stderr and "Traceback" not in result.stderr


# --- reset -------------------------------------------------------------------

def test_reset_empties_exactly_one_database_of_a_shared_server(dev, dev_outputs):
    server, passwords = dev
    for name in ("auth", "app", "worker"):
        _seed(server, passwords, name)
    before = {n: _checksums(server, n, passwords[n]) for n in ("app", "worker")}
    result = bulkhead("reset", "--database", "auth", "--stack", "dev", "--outputs", dev_outputs, "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("reset auth: dropped ") and "empty public schema owned by auth" in result.stdout
    with connect_as(server, "auth", passwords["auth"]) as conn:
        assert objects_by_owner(conn) == []
        assert conn.execute("SELECT pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace "
                            "WHERE nspname = 'public'").fetchone() == ("auth", "{auth=UC/auth}")
        conn.execute("CREATE TABLE again (x int)")  # the owner can use its database again
    assert {n: _checksums(server, n, passwords[n]) for n in ("app", "worker")} == before
    # the separation the init made still holds: app still cannot reach auth
    with pytest.raises(Exception, match="pg_hba.conf rejects|permission denied"):
        server.connect("auth", "app", passwords["app"]).close()


def test_reset_without_yes_and_without_a_terminal_changes_nothing(dev, dev_outputs):
    server, passwords = dev
    _seed(server, passwords, "worker")
    result = bulkhead("reset", "--database", "worker", "--stack", "dev", "--outputs", dev_outputs, stdin="worker\n")
    assert result.returncode == 2
    assert "there is no terminal to confirm on: nothing was changed; pass --yes" in result.stderr
    assert "reset drops every object of worker in database worker (worker on 127.0.0.1:" in result.stderr
    assert "of stack dev: 3200 rows in 2 tables" in result.stderr
    assert _checksums(server, "worker", passwords["worker"])["items"][0] == 2500


def test_reset_asks_on_a_terminal_for_the_database_name(dev, dev_outputs):
    """Without --yes, on a terminal: a wrong answer changes nothing, the database's name goes ahead."""
    import pty

    server, passwords = dev
    _seed(server, passwords, "worker")
    for answer, code in (("app", 2), ("worker", 0)):
        controller, terminal = pty.openpty()
        try:
            os.write(controller, f"{answer}\n".encode())
            result = subprocess.run([sys.executable, "-m", "bulkhead", "reset", "--database", "worker", "--stack", "dev",
                                     "--outputs", dev_outputs], cwd=ROOT, stdin=terminal, capture_output=True,
                                    text=True, timeout=120)
        finally:
            os.close(terminal)
            os.close(controller)
        assert result.returncode == code, result.stderr
        assert "Type the database name (worker) to continue:" in result.stderr
        if code == 2:
            assert "not confirmed; nothing was changed" in result.stderr
            assert _checksums(server, "worker", passwords["worker"])["items"][0] == 2500
        else:
            assert result.stdout.startswith("reset worker: dropped ")


def test_reset_drops_what_others_put_in_the_owners_schema_and_reports_the_rest(dev, dev_outputs):
    server, passwords = dev
    _seed(server, passwords, "worker")
    with server.admin("worker") as conn:
        conn.execute("CREATE TABLE public.admin_made (x int)")  # in the owner's schema: goes with it
        conn.execute("CREATE SCHEMA admin_schema CREATE TABLE kept (x int)")  # the admin's own schema: stays
    try:
        result = bulkhead("reset", "--database", "worker", "--stack", "dev", "--outputs", dev_outputs, "--yes")
        assert result.returncode == 1
        assert ("but 2 of other roles remain: relation admin_schema.kept (owner bulkhead_admin), "
                "schema admin_schema (owner bulkhead_admin); drop them as their owner") in result.stderr
        with server.admin("worker") as conn:
            assert conn.execute("SELECT to_regclass('public.admin_made')").fetchone() == (None,)
    finally:
        with server.admin("worker") as conn:
            conn.execute("DROP SCHEMA IF EXISTS admin_schema CASCADE")


def test_reset_refuses_an_aws_stack_before_reading_any_secret(dev, tmp_path):
    server, passwords = dev
    path = outputs_for(server, passwords, tmp_path / "prod.json", platform="aws", stack="prod")
    # no secret_arn, no AWS: were a DSN made, `dsn` would fail with another message
    result = bulkhead("reset", "--database", "auth", "--stack", "prod", "--outputs", path, "--yes")
    assert result.returncode == 2, result.stderr
    assert ("error: reset is for dev (docker) stacks; auth on stack prod is an RDS database: restore it from a "
            "backup instead") in result.stderr


# --- dump and restore ------------------------------------------------------------

def test_dump_then_restore_into_another_stack_round_trips_every_row(dev, staging, dev_outputs, tmp_path):
    server, passwords = dev
    _seed(server, passwords, "auth")
    st_server, st_passwords = staging
    _empty(st_server, st_passwords, "auth")
    st_outputs = outputs_for(st_server, st_passwords, tmp_path / "staging.json", stack="staging")
    dump = tmp_path / "auth.dump"

    result = bulkhead("dump", "--database", "auth", "--outputs", dev_outputs, "--out", str(dump))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.startswith(f"dumped auth (auth on 127.0.0.1) to {dump}: 2 tables")
    assert not os.path.exists(f"{dump}.partial")

    result = bulkhead("restore", "--database", "auth", "--outputs", st_outputs, str(dump))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("all owned by auth") and result.stdout.count("\n") == 1
    assert _checksums(st_server, "auth", st_passwords["auth"]) == _checksums(server, "auth", passwords["auth"])
    with connect_as(st_server, "auth", st_passwords["auth"]) as conn:
        owners = {owner for _, owner in objects_by_owner(conn)}
        assert owners == {"auth"}
        assert conn.execute("SELECT item_count()").fetchone() == (2500,)
        assert conn.execute("SELECT nextval('items_id_seq')").fetchone() == (2501,)

    # not empty now: refused without --clean, replaced with it
    result = bulkhead("restore", "--database", "auth", "--outputs", st_outputs, str(dump))
    assert result.returncode == 2 and "database auth is not empty" in result.stderr and "pass --clean" in result.stderr
    result = bulkhead("restore", "--database", "auth", "--outputs", st_outputs, str(dump), "--clean", "--yes")
    assert result.returncode == 0, result.stderr
    assert _checksums(st_server, "auth", st_passwords["auth"])["items"][0] == 2500

    # dump never overwrites
    result = bulkhead("dump", "--database", "auth", "--outputs", dev_outputs, "--out", str(dump))
    assert result.returncode == 2 and "exists; dump never overwrites a file" in result.stderr


def test_restore_of_a_foreign_dump_lands_owned_by_the_owner_and_grants_nothing(dev, dev_outputs, tmp_path):
    """A dump from another source (owned by someone else, with grants to other roles)."""
    server, passwords = dev
    _empty(server, passwords, "worker")
    _seed(server, passwords, "app")
    with connect_as(server, "app", passwords["app"]) as conn:
        conn.execute("GRANT SELECT ON items TO worker")
    dump = tmp_path / "app.dump"
    assert bulkhead("dump", "--database", "app", "--outputs", dev_outputs, "--out", str(dump)).returncode == 0
    result = bulkhead("restore", "--database", "worker", "--outputs", dev_outputs, str(dump), "--from-untrusted")
    assert result.returncode == 0, result.stderr
    assert "left out 1 entries of code from app: FUNCTION public item_count()" in result.stderr
    with connect_as(server, "worker", passwords["worker"]) as conn:
        assert {owner for _, owner in objects_by_owner(conn)} == {"worker"}
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relacl IS NOT NULL AND relnamespace = "
                            "'public'::regnamespace").fetchone() == (0,)


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_text("not a dump"), "is not a pg_dump custom-format archive"),
    (lambda p: None, "does not exist or is not a file"),
])
def test_restore_refuses_what_is_not_an_archive(dev_outputs, tmp_path, make, fragment):
    path = tmp_path / "x.dump"
    make(path)
    result = bulkhead("restore", "--database", "worker", "--outputs", dev_outputs, str(path))
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr


def test_restore_failure_changes_nothing(dev, dev_outputs, tmp_path):
    """A dump whose objects cannot all be created (an extension the owner may not create) is rolled back."""
    server, passwords = dev
    _empty(server, passwords, "worker")
    _seed(server, passwords, "app")
    with server.admin("app") as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS file_fdw")  # untrusted: only a superuser may create it
    try:
        dump = tmp_path / "app.dump"
        assert bulkhead("dump", "--database", "app", "--outputs", dev_outputs, "--out", str(dump)).returncode == 0
        result = bulkhead("restore", "--database", "worker", "--outputs", dev_outputs, str(dump), "--from-untrusted")
        assert result.returncode == 1
        assert "pg_restore failed" in result.stderr and "nothing was changed" in result.stderr
        with connect_as(server, "worker", passwords["worker"]) as conn:
            assert objects_by_owner(conn) == []
    finally:
        with server.admin("app") as conn:
            conn.execute("DROP EXTENSION file_fdw")


# --- the URLs of every driver, against this server ---------------------------------

def _run_async(coroutine_function):
    """asyncio.run in a thread of its own: in the main thread it would leave no event loop behind,
    and the Pulumi mock runtime of later tests in this worker needs one."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function())).result()


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg", "sqlalchemy+asyncpg", "sqlalchemy+psycopg"])
def test_each_driver_connects_over_tls_with_its_url(dev, driver):

    from bulkhead.drivers import driver_url

    server, passwords = dev
    link = driver_url(url(server, "app", passwords["app"]), driver)
    query = "select current_user, (select ssl from pg_stat_ssl where pid = pg_backend_pid())"
    if driver == "psycopg":
        import psycopg

        with psycopg.connect(link) as conn:
            row = conn.execute(query).fetchone()
    elif driver == "asyncpg":
        import asyncpg

        async def go():
            conn = await asyncpg.connect(link)
            try:
                return tuple(await conn.fetchrow(query))
            finally:
                await conn.close()
        row = _run_async(go)
    elif driver == "sqlalchemy+asyncpg":
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        async def go():
            engine = create_async_engine(link)
            try:
                async with engine.connect() as conn:
                    return tuple((await conn.execute(text(query))).one())
            finally:
                await engine.dispose()
        row = _run_async(go)
    else:
        from sqlalchemy import create_engine, text

        engine = create_engine(link)
        with engine.connect() as conn:
            row = tuple(conn.execute(text(query)).one())
        engine.dispose()
    assert row == ("app", True)


def test_day2_verbs_start_without_heavy_imports():
    code = ("import sys; from bulkhead.cli import build_parser; [build_parser(v) for v in "
            "('psql', 'reset', 'dump', 'restore', 'split')]; "
            "heavy = {'pulumi', 'pulumi_policy', 'grpc', 'pydantic', 'boto3', 'psycopg', 'yaml', 'components'}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_dsn_admin_on_a_dev_database_is_refused(dev, dev_outputs):
    """The day-2 verbs get --admin from `dsn` itself; on docker there is no break-glass login to give."""
    result = bulkhead("dsn", "--database", "app", "--outputs", dev_outputs, "--admin")
    assert result.returncode == 2 and result.stdout == ""
    assert "a dev database has no break-glass login in the outputs" in result.stderr
    assert "Traceback" not in result.stderr


