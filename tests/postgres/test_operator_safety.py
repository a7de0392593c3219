"""Issue 21: the operator verbs do not cost data by mistake, on a real PostgreSQL server built by the
dev container's init (tests/support/day2.py).

- every output-reading verb refuses outputs of another stack than its --stack, and changes nothing;
- reset / restore --clean without confirmation and without a terminal change nothing;
- restore refuses a dump of another database (its code would run as the target's owner), and
  `--from-untrusted` restores none of the dump's code;
- `psql --admin` on a dev database is not the tenant's tool, and the init removes what a tenant
  attached to its database."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from components.postgres.role_sql import admin_session_options
from tests.support.day2 import (bulkhead, connect_as, dev_server, outputs_for, role_specs, run_sql_file)
from tests.support.postgres import assert_init_ok, trap_sql

NAMES = ("auth", "app", "worker")
ROWS = "CREATE TABLE IF NOT EXISTS kept (id int PRIMARY KEY); INSERT INTO kept SELECT i FROM generate_series(1, 40) i ON CONFLICT DO NOTHING;"


@pytest.fixture(scope="module")
def dev():
    with dev_server(NAMES) as (server, passwords):
        yield server, passwords


def _count(server, passwords, name) -> int:
    with connect_as(server, name, passwords[name]) as conn:
        return conn.execute("SELECT count(*) FROM kept").fetchone()[0]


def _seed(server, passwords):
    for name in NAMES:
        run_sql_file(server, name, passwords[name], ROWS)


# --- --stack against the outputs' stack -------------------------------------------------------------

def _verbs(tmp: Path, dump: Path) -> dict[str, list[str]]:
    return {
        "psql": ["psql", "--database", "app", "--", "-Xc", "DELETE FROM kept"],
        "dsn": ["dsn", "--database", "app"],
        "env": ["env", "--service", "app-service"],
        "dump": ["dump", "--database", "app", "--out", str(tmp / "app-other.dump")],
        "restore": ["restore", "--database", "app", str(dump), "--clean", "--yes"],
        "reset": ["reset", "--database", "app", "--yes"],
    }


@pytest.mark.parametrize("verb", ["psql", "dsn", "env", "dump", "restore", "reset"])
def test_a_verb_given_another_stacks_outputs_refuses_and_changes_nothing(dev, tmp_path, verb):
    """The reproduction: `reset --database api --stack kanban-dev --outputs aisales-dev-outputs.json --yes`."""
    server, passwords = dev
    _seed(server, passwords)
    aisales = outputs_for(server, passwords, tmp_path / "aisales-dev-outputs.json", stack="aisales-dev",
                          project="aisales")
    dump = tmp_path / "app.dump"
    assert bulkhead("dump", "--database", "app", "--outputs", aisales, "--out", str(dump)).returncode == 0
    argv = _verbs(tmp_path, dump)[verb]
    result = bulkhead(*argv[:1], "--stack", "kanban-dev", "--outputs", aisales, *argv[1:])
    assert result.returncode == 2, result.stderr
    assert ("error: --stack kanban-dev does not match " in result.stderr
            and "those are the outputs of stack aisales-dev of project aisales; nothing was done. Pass --stack "
                "aisales-dev if you meant that stack" in result.stderr), result.stderr
    assert "Traceback" not in result.stderr and passwords["app"] not in result.stdout + result.stderr
    assert result.stdout == ""
    assert _count(server, passwords, "app") == 40
    assert not (tmp_path / "app-other.dump").exists()
    # the same command with the right --stack goes ahead (the refusal is the stack, nothing else)
    if verb in ("dsn", "env"):
        ok = bulkhead(*argv[:1], "--stack", "aisales-dev", "--outputs", aisales, *argv[1:])
        assert ok.returncode == 0, ok.stderr


def test_a_fully_qualified_stack_matches_and_old_outputs_warn(dev, tmp_path):
    server, passwords = dev
    path = outputs_for(server, passwords, tmp_path / "o.json", stack="kanban-dev")
    ok = bulkhead("dsn", "--database", "app", "--stack", "acme/kanban/kanban-dev", "--outputs", path)
    assert ok.returncode == 0, ok.stderr
    old = json.loads(Path(path).read_text())
    del old["stack"], old["project"]
    Path(path).write_text(json.dumps(old))
    result = bulkhead("dsn", "--database", "app", "--stack", "kanban-dev", "--outputs", path)
    assert result.returncode == 0
    assert "does not say which stack it belongs to" in result.stderr and "run `pulumi up` on stack kanban-dev" in result.stderr


# --- confirmation --------------------------------------------------------------------------------

def test_restore_clean_without_yes_and_without_a_terminal_changes_nothing(dev, tmp_path):
    server, passwords = dev
    _seed(server, passwords)
    outputs = outputs_for(server, passwords, tmp_path / "dev.json")
    dump = tmp_path / "worker.dump"
    assert bulkhead("dump", "--database", "worker", "--outputs", outputs, "--out", str(dump)).returncode == 0
    with connect_as(server, "worker", passwords["worker"]) as conn:
        conn.execute("INSERT INTO kept VALUES (1000)")
    result = bulkhead("restore", "--database", "worker", "--stack", "dev", "--outputs", outputs, str(dump), "--clean",
                      stdin="worker\n")
    assert result.returncode == 2
    assert ("restore --clean replaces the dump's objects in database worker (worker on 127.0.0.1:"
            f"{server.port}) of stack dev: 41 rows in 1 tables, which cannot be undone, and there is no terminal to "
            "confirm on: nothing was changed; pass --yes") in result.stderr
    assert _count(server, passwords, "worker") == 41
    with connect_as(server, "worker", passwords["worker"]) as conn:
        conn.execute("DELETE FROM kept WHERE id = 1000")


# --- restore trusts only the target's own dumps -----------------------------------------------------

HOSTILE = """
CREATE FUNCTION public.grab(v int) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  IF current_user <> 'app' THEN
    EXECUTE format('ALTER ROLE %I PASSWORD %L', current_user, 'stolen-by-app');
  END IF;
  RETURN true;
END $f$;
CREATE TABLE grabbed (v int CHECK (public.grab(v)));
INSERT INTO grabbed VALUES (1), (2);
"""


def _can_login(server, name, password) -> bool:
    try:
        server.connect(name, name, password).close()
        return True
    except psycopg.OperationalError:
        return False


def _empty(server, passwords, name):
    with connect_as(server, name, passwords[name]) as conn:
        conn.execute("DROP OWNED BY CURRENT_USER CASCADE")
        conn.execute("CREATE SCHEMA IF NOT EXISTS public")
        conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")


@pytest.fixture
def hostile_dump(dev, tmp_path):
    """app's dump with a CHECK constraint calling app's function, which changes the caller's password."""
    server, passwords = dev
    _empty(server, passwords, "app")
    _empty(server, passwords, "worker")
    run_sql_file(server, "app", passwords["app"], HOSTILE)
    outputs = outputs_for(server, passwords, tmp_path / "dev.json")
    dump = tmp_path / "app.dump"
    assert bulkhead("dump", "--database", "app", "--outputs", outputs, "--out", str(dump)).returncode == 0
    yield server, passwords, outputs, dump
    with server.admin() as conn:  # whatever happened, the fixture's passwords again
        conn.execute(f"ALTER ROLE worker PASSWORD '{passwords['worker'].replace(chr(39), chr(39) * 2)}'")
    _empty(server, passwords, "app")
    _empty(server, passwords, "worker")


def test_hostile_dump_reproduction_the_old_restore_ran_the_function_as_the_target(hostile_dump):
    """Without the fix: the restore's command line before issue 21 lets app log in as worker."""
    server, passwords, outputs, dump = hostile_dump
    old_argv = [str(server.bindir / "pg_restore"), "--no-owner", "--no-privileges", "--role=worker", "--exit-on-error",
                "--single-transaction", f"--dbname=host=127.0.0.1 port={server.port} dbname=worker user=worker "
                "sslmode=require", str(dump)]
    result = subprocess.run(old_argv, capture_output=True, text=True, env={**os.environ, "PGPASSWORD": passwords["worker"]})
    assert result.returncode == 0, result.stderr
    assert _can_login(server, "worker", "stolen-by-app")
    assert not _can_login(server, "worker", passwords["worker"])


def test_restore_refuses_a_dump_of_another_database_by_default(hostile_dump):
    server, passwords, outputs, dump = hostile_dump
    result = bulkhead("restore", "--database", "worker", "--outputs", outputs, str(dump))
    assert result.returncode == 2
    assert (f"error: {dump} is a dump of database app, not of worker: its functions, triggers and constraints would "
            "run as worker while it is restored") in result.stderr
    assert "pass --from-untrusted" in result.stderr
    assert _can_login(server, "worker", passwords["worker"]) and not _can_login(server, "worker", "stolen-by-app")
    with connect_as(server, "worker", passwords["worker"]) as conn:
        assert conn.execute("SELECT to_regclass('public.grabbed')").fetchone() == (None,)


def test_restore_from_untrusted_runs_none_of_the_dumps_code(hostile_dump):
    server, passwords, outputs, dump = hostile_dump
    result = bulkhead("restore", "--database", "worker", "--outputs", outputs, str(dump), "--from-untrusted")
    # the table needs the function it was not given: PostgreSQL refuses it, the transaction rolls back
    assert result.returncode == 1
    assert "function public.grab(integer) does not exist" in result.stderr
    assert "--from-untrusted left out the dump's code (FUNCTION public grab(integer))" in result.stderr
    assert "nothing was changed" in result.stderr
    assert _can_login(server, "worker", passwords["worker"]) and not _can_login(server, "worker", "stolen-by-app")
    with connect_as(server, "worker", passwords["worker"]) as conn:
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'grab'").fetchone() == (0,)


def test_restore_from_untrusted_leaves_out_triggers_and_keeps_the_data(dev, tmp_path):
    server, passwords = dev
    _empty(server, passwords, "app")
    _empty(server, passwords, "worker")
    run_sql_file(server, "app", passwords["app"], """
CREATE TABLE t (id int PRIMARY KEY, body text);
CREATE FUNCTION public.steal() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L', current_user, 'stolen-by-app'); RETURN NEW; END $f$;
COMMENT ON FUNCTION public.steal() IS 'fires on every insert';
CREATE TRIGGER steal BEFORE INSERT ON t FOR EACH ROW WHEN (current_user <> 'app') EXECUTE FUNCTION public.steal();
INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 25) i;
CREATE VIEW v AS SELECT id FROM t WHERE id > 20;
""")
    outputs = outputs_for(server, passwords, tmp_path / "dev.json")
    dump = tmp_path / "app.dump"
    assert bulkhead("dump", "--database", "app", "--outputs", outputs, "--out", str(dump)).returncode == 0
    result = bulkhead("restore", "--database", "worker", "--outputs", outputs, str(dump), "--from-untrusted")
    assert result.returncode == 0, result.stderr
    assert "left out 3 entries of code from app: FUNCTION public steal(), COMMENT public FUNCTION steal(), " \
           "TRIGGER public t steal" in result.stderr
    with connect_as(server, "worker", passwords["worker"]) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (25,)
        assert conn.execute("SELECT count(*) FROM v").fetchone() == (5,)
        conn.execute("INSERT INTO t VALUES (26, 'x')")  # no trigger: the password stays
    assert _can_login(server, "worker", passwords["worker"])
    _empty(server, passwords, "app")
    _empty(server, passwords, "worker")


# --- the admin path -------------------------------------------------------------------------------

FAKE_DOCKER = """#!{python}
# Test stand-in for `docker exec [-i] [-t] --env K=V CONTAINER CMD...`: records the argv, runs CMD
# here against the test server's unix socket (as the container's psql would reach its own).
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
assert args.pop(0) == "exec"
env = dict(os.environ)
while args[0].startswith("-"):
    flag = args.pop(0)
    if flag == "--env":
        key, _, value = args.pop(0).partition("=")
        env[key] = value
args.pop(0)  # the container
env["PGHOST"], env["PGPORT"] = os.environ["FAKE_DOCKER_PGHOST"], os.environ["FAKE_DOCKER_PGPORT"]
program = os.path.join(os.environ["FAKE_DOCKER_BINDIR"], args[0])
os.execve(program, [program, *args[1:]], env)
"""


def _fake_docker(tmp_path: Path, server) -> dict[str, str]:
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir()
    docker = bindir / "docker"
    docker.write_text(FAKE_DOCKER.replace("{python}", sys.executable))
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_DOCKER_LOG": str(tmp_path / "docker.log"),
            "FAKE_DOCKER_PGHOST": str(server.socket_dir), "FAKE_DOCKER_PGPORT": str(server.port),
            "FAKE_DOCKER_BINDIR": str(server.bindir)}


def _superuser(server, role) -> bool:
    with server.admin() as conn:
        return conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) %s",
                            (role,)).fetchone()[0]


def _database_settings(server, db) -> list:
    with server.admin() as conn:
        return conn.execute(
            "SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid "
            "OPERATOR(pg_catalog.=) s.setdatabase WHERE d.datname OPERATOR(pg_catalog.=) %s AND s.setrole "
            "OPERATOR(pg_catalog.=) 0", (db,)).fetchall()


QUERY = "SELECT count(*) FROM pg_roles WHERE rolname = 'nobody'"


def test_admin_trap(dev, tmp_path):
    server, passwords = dev
    _empty(server, passwords, "app")
    run_sql_file(server, "app", passwords["app"], trap_sql("app") + "ALTER DATABASE app SET search_path = trap, pg_catalog;")
    try:
        # reproduction: the README's `docker exec ... psql -U <admin> -d app` and an ordinary query
        with server.admin("app") as conn:
            conn.execute(QUERY)
        assert _superuser(server, "app"), "the trap did not fire: the reproduction is broken"
        with server.admin() as conn:
            conn.execute("ALTER ROLE app NOSUPERUSER")

        outputs = json.loads(Path(outputs_for(server, passwords, tmp_path / "dev.json")).read_text())
        outputs["databases"]["app"]["container"] = "bulkhead-dev-server-shared"
        path = tmp_path / "with-container.json"
        path.write_text(json.dumps(outputs))
        env = _fake_docker(tmp_path, server)
        result = bulkhead("psql", "--admin", "--database", "app", "--stack", "dev", "--outputs", str(path), "--",
                          "-XAtc", f"{QUERY}; SHOW search_path; SELECT current_user", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["0", "pg_catalog,pg_temp", "bulkhead_admin"]
        assert "warning: psql as the admin in app (container bulkhead-dev-server-shared)" in result.stderr
        assert not _superuser(server, "app")
        (argv,) = [json.loads(line) for line in Path(env["FAKE_DOCKER_LOG"]).read_text().splitlines()]
        assert argv == ["exec", "-i", "--env", f"PGOPTIONS={admin_session_options()}", "bulkhead-dev-server-shared",
                        "psql", "--no-psqlrc", "--username", "bulkhead_admin", "--dbname", "app",
                        "-XAtc", f"{QUERY}; SHOW search_path; SELECT current_user"]

        # the init (every container start) removes the setting the tenant attached to its database
        assert _database_settings(server, "app") != []
        assert_init_ok(server.run_init_script(role_specs(NAMES), passwords))
        assert _database_settings(server, "app") == []
        with server.admin("app") as conn:
            conn.execute(QUERY)
        assert not _superuser(server, "app")
    finally:
        with server.admin() as conn:
            conn.execute("ALTER ROLE app NOSUPERUSER")
            conn.execute("ALTER DATABASE app RESET ALL")
        _empty(server, passwords, "app")
