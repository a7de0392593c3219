"""What one tenant of a shared server can see of another (issue 22, item 5), on real servers.

Each attack is run twice on the same server: after an init without the metadata revokes (what
every bulkhead server did before: the attack works and names the other tenant's locks, counters or
the cluster's size), then after the real init has run again, as on the container's next start
(refused, also in a database created before the fix). What stays visible by design (the other
sessions' pid, database, user and application name: pg_stat_ssl, which clients read for their own
session, is built on the same function) is pinned too. Then what a tenant still needs keeps
working: psql's `\\l`, `\\du`, `\\dt`, `pg_dump` of its own database, its own tables'
statistics, TLS of its own session in pg_stat_ssl, and the admin sees everything.

Every major found with SSL (13 bullseye, 15 bookworm, 17 trixie: scripts/fetch-postgres-servers);
16 is covered by the real-engine tests' image (tests/docker).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from components.dev.container import RoleSpec, pg_hba_conf
from components.postgres import role_sql
from tests.support.postgres import assert_init_ok, has_ssl, start_postgres
from tools.generate_pg_settings import find_servers

ROLES = [RoleSpec("alpha", "alpha"), RoleSpec("beta", "beta")]
PASSWORDS = {"alpha": "alpha-Pa55word-x", "beta": "beta-Pa55word-y"}
BETA_APP = "beta-billing-worker"

# attack -> SQL run by tenant `alpha` in its own database; a row means the attack saw `beta`.
ATTACKS = {
    "sessions (pg_stat_activity)": "SELECT usename, datname, application_name FROM pg_stat_activity WHERE usename = 'beta'",
    "sessions (pg_stat_get_activity)": "SELECT a.pid FROM pg_stat_get_activity(NULL) a JOIN pg_roles r ON r.oid = a.usesysid WHERE r.rolname = 'beta'",
    "progress (pg_stat_get_progress_info)": "SELECT count(*) FROM pg_stat_get_progress_info('VACUUM')",
    "locks (pg_locks)": "SELECT mode FROM pg_locks WHERE database = (SELECT oid FROM pg_database WHERE datname = 'beta')",
    "locks (pg_lock_status)": "SELECT mode FROM pg_lock_status() WHERE database = (SELECT oid FROM pg_database WHERE datname = 'beta')",
    "counters (pg_stat_database)": "SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = 'beta'",
    "counters (pg_stat_get_db_*)": "SELECT pg_stat_get_db_xact_commit((SELECT oid FROM pg_database WHERE datname = 'beta'))",
    "conflicts (pg_stat_database_conflicts)": "SELECT datname FROM pg_stat_database_conflicts WHERE datname = 'beta'",
    "cluster size (pg_tablespace_size)": "SELECT pg_tablespace_size('pg_default')",
    "prepared transactions (pg_prepared_xacts)": "SELECT gid FROM pg_prepared_xacts",
}


def _ssl_servers() -> list[str]:
    return [str(bindir) for _, (bindir, _) in sorted(find_servers().items()) if has_ssl(bindir)]


SSL_SERVERS = _ssl_servers()


def test_several_majors_are_tried():
    assert len(SSL_SERVERS) >= 2, f"run scripts/fetch-postgres-servers: {SSL_SERVERS}"


def _attack(conn: psycopg.Connection, sql: str) -> str:
    try:
        rows = conn.execute(sql).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        return f"refused: {str(exc).splitlines()[0]}"
    return "SEEN" if rows and rows[0][0] is not None else "nothing"


def _tenant(pg, name: str, **kw) -> psycopg.Connection:
    return pg.connect(name, name, PASSWORDS[name], **kw)


def _busy_beta(pg) -> psycopg.Connection:
    """`beta` at work: a named session holding a lock in a transaction, commits behind it."""
    beta = _tenant(pg, "beta", autocommit=False)
    beta.execute(f"SET application_name = '{BETA_APP}'")
    beta.execute("CREATE TABLE IF NOT EXISTS invoices (id int)")
    beta.execute("INSERT INTO invoices SELECT generate_series(1, 10)")
    beta.commit()
    beta.execute("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
    return beta


def _psql(pg, *args: str, user: str = "alpha", program: str = "psql") -> subprocess.CompletedProcess:
    env = {"PATH": f"{pg.bindir}:{os.defpath}", "LC_ALL": "C", "HOME": str(pg.dir), "PGPASSWORD": PASSWORDS[user],
           "PGSSLMODE": "require", "PGCONNECT_TIMEOUT": "10"}
    base = ["-h", "127.0.0.1", "-p", str(pg.port), "-U", user, "-d", user]
    if program == "psql":
        base = ["--no-psqlrc", "-X", *base, "-v", "ON_ERROR_STOP=1"]
    return subprocess.run([str(Path(pg.bindir) / program), *base, *args], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("bindir", SSL_SERVERS, ids=lambda b: Path(b).parent.name)
def test_a_tenant_no_longer_sees_the_others_sessions_locks_and_counters(bindir, monkeypatch):
    monkeypatch.setenv("BULKHEAD_PG_BINDIR", bindir)
    with start_postgres() as pg:
        # Before: the init as it was (no metadata revokes). Both databases exist from here on.
        with monkeypatch.context() as before:
            before.setattr(role_sql, "metadata_revoke_statements", lambda: [])
            assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
        pg.set_hba(pg_hba_conf(ROLES))
        beta = _busy_beta(pg)
        try:
            with _tenant(pg, "alpha") as alpha:
                seen = {name: _attack(alpha, sql) for name, sql in ATTACKS.items()}
                # what it read: the other tenant's user, database and application name; query and address hidden
                row = alpha.execute("SELECT usename, datname, application_name, query, client_addr FROM pg_stat_activity"
                                    " WHERE usename = 'beta'").fetchone()
            expected_before = {name: "SEEN" for name in ATTACKS}
            expected_before["prepared transactions (pg_prepared_xacts)"] = "nothing"  # none prepared (max_prepared_transactions=0)
            assert seen == expected_before
            assert row == ("beta", "beta", BETA_APP, "<insufficient privilege>", None)

            # After: the real init, as the next start of the container runs it, on the same databases.
            assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
            with _tenant(pg, "alpha") as alpha:
                after = {name: _attack(alpha, sql) for name, sql in ATTACKS.items()}
            kept = {"sessions (pg_stat_activity)": "SEEN", "sessions (pg_stat_get_activity)": "SEEN"}
            refused = {k for k, v in after.items() if v.startswith("refused: permission denied for")}
            assert refused == set(ATTACKS) - set(kept), after
            assert {k: after[k] for k in kept} == kept  # documented: docs/dev-stack.md
            # the admin still sees everything
            with pg.admin("beta") as admin:
                assert admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                     (BETA_APP,)).fetchone()[0] == 1
                assert admin.execute("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock'"
                                     " AND database = (SELECT oid FROM pg_database WHERE datname = 'beta')").fetchone()[0] >= 1
            # a third run writes nothing to the catalog (the DO block revokes only what PUBLIC still has)
            with pg.admin("alpha") as admin:
                xmin = admin.execute("SELECT xmin::text FROM pg_class WHERE oid = 'pg_catalog.pg_locks'::regclass").fetchone()
            assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
            with pg.admin("alpha") as admin:
                assert admin.execute("SELECT xmin::text FROM pg_class WHERE oid = 'pg_catalog.pg_locks'::regclass").fetchone() == xmin
        finally:
            beta.close()


@pytest.mark.parametrize("bindir", SSL_SERVERS, ids=lambda b: Path(b).parent.name)
def test_a_tenant_keeps_what_clients_need(bindir, monkeypatch):
    monkeypatch.setenv("BULKHEAD_PG_BINDIR", bindir)
    with start_postgres() as pg:
        assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
        pg.set_hba(pg_hba_conf(ROLES))
        with _tenant(pg, "alpha") as alpha:
            alpha.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
            alpha.execute("INSERT INTO orders VALUES (1, 'first')")
            # its own tables' statistics and its own pid
            assert alpha.execute("SELECT relname FROM pg_stat_user_tables").fetchall() == [("orders",)]
            assert alpha.execute("SELECT pg_backend_pid() = %s", (alpha.info.backend_pid,)).fetchone() == (True,)
            # TLS of its own session, as the client matrix checks it (tests/docker/test_clients.py)
            assert alpha.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                                 ).fetchone() == ("alpha", True)
            # advisory locks (migration tools: Flyway, Alembic users, golang-migrate) work; only pg_locks is hidden
            assert alpha.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)
        listing = _psql(pg, "-c", r"\l", "-c", r"\du", "-c", r"\dt", "-c", r"\conninfo")
        assert listing.returncode == 0, listing.stderr
        assert "alpha" in listing.stdout and "orders" in listing.stdout
        dump = _psql(pg, "--schema-only", "--no-owner", program="pg_dump")
        assert dump.returncode == 0, dump.stderr
        assert "CREATE TABLE public.orders" in dump.stdout
        # and nothing of bulkhead's revokes: they are recorded as the catalog's initial privileges
        # (role_sql._initial), so a restore of this dump as the tenant has no REVOKE on pg_catalog to fail on
        assert [line for line in dump.stdout.splitlines() if "pg_catalog." in line and ("REVOKE" in line or "GRANT" in line)] == []
        # a database created after the init (a tenant added later) starts closed: template1 carries the revokes
        with pg.admin("template1") as admin:
            assert admin.execute("SELECT has_table_privilege('public', 'pg_catalog.pg_stat_database', 'SELECT'),"
                                 " has_function_privilege('public', 'pg_catalog.pg_lock_status()', 'EXECUTE')"
                                 ).fetchone() == (False, False)


def _beta_pid(conn: psycopg.Connection) -> int:
    return conn.info.backend_pid


@pytest.mark.parametrize("bindir", SSL_SERVERS, ids=lambda b: Path(b).parent.name)
def test_a_tenant_cannot_read_the_others_lock_waits_or_subtransactions(bindir, monkeypatch):
    """Review of issue 22: two routes around the revoked pg_locks/pg_blocking_pids. Without the fix
    `alpha` learns that beta's worker waits on beta's other session (the lock graph,
    pg_isolation_test_session_is_blocked: PUBLIC, reads the lock table in C) and, on 16+, how many
    subtransactions beta's session has open (pg_stat_get_backend_subxact: no permission check)."""
    monkeypatch.setenv("BULKHEAD_PG_BINDIR", bindir)
    with start_postgres() as pg:
        assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
        pg.set_hba(pg_hba_conf(ROLES))
        holder = _busy_beta(pg)  # ACCESS EXCLUSIVE on invoices, in a transaction
        holder.execute("SAVEPOINT a")
        holder.execute("INSERT INTO invoices VALUES (11)")
        waiter = _tenant(pg, "beta", autocommit=True)
        try:
            waiter.execute("SET application_name = 'beta-waiter'")
            waiter_pid = waiter.info.backend_pid
            blocked = threading.Thread(target=lambda: _swallow(waiter, "SELECT count(*) FROM invoices"), daemon=True)
            blocked.start()
            with pg.admin("beta") as admin:  # wait until the waiter really waits
                for _ in range(100):
                    if admin.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                     (waiter_pid,)).fetchone() == ("Lock",):
                        break
                    time.sleep(0.1)
            with _tenant(pg, "alpha") as alpha:
                lock_graph = _attack(alpha, f"SELECT NULLIF(pg_isolation_test_session_is_blocked({waiter_pid},"
                                            f" ARRAY[{_beta_pid(holder)}]), false)")
                has_subxact = alpha.execute("SELECT count(*) FROM pg_proc WHERE proname = 'pg_stat_get_backend_subxact'"
                                            ).fetchone()[0]
                subxacts = _attack(alpha, "SELECT NULLIF(max((pg_stat_get_backend_subxact(b)).subxact_count), 0)"
                                          " FROM pg_stat_get_backend_idset() b WHERE pg_stat_get_backend_userid(b) ="
                                          " (SELECT oid FROM pg_roles WHERE rolname = 'beta')") if has_subxact else None
            assert lock_graph.startswith("refused: permission denied for function"), lock_graph
            if has_subxact:
                assert subxacts.startswith("refused: permission denied for function"), subxacts
            # the admin still reads both
            with pg.admin("postgres") as admin:
                assert admin.execute("SELECT pg_isolation_test_session_is_blocked(%s, ARRAY[%s])",
                                     (waiter_pid, _beta_pid(holder))).fetchone() == (True,)
        finally:
            holder.close()
            waiter.close()


def _swallow(conn: psycopg.Connection, sql: str) -> None:
    try:
        conn.execute(sql)
    except psycopg.Error:
        pass
