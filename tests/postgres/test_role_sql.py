"""components/postgres/role_sql.py: the statements, and what they do on a real PostgreSQL server.

The server is the one tests/postgres/test_postgres_isolation.py starts (Debian's PostgreSQL,
SSL on). The statements run the way the prod Lambda runs them (pg8000): one at a time,
autocommit, through a driver (psycopg here), no psql. Two admins: the bootstrap
superuser (dev) and an RDS-like admin (CREATEROLE CREATEDB, not a superuser, like the
RDS master), so the `rds_superuser` flavour is proven to need no superuser power.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from components.postgres import role_sql
from components.postgres.role_sql import (
    ADMIN_RDS,
    ADMIN_SUPERUSER,
    IamLogin,
    PasswordLogin,
    RoleSpec,
    bootstrap_plan,
    quote_literal,
    scram_sha256_verifier,
)
from tests.support.postgres import ADMIN_USER, PgServer, start_postgres, trap_sql

HBA = "\n".join(
    [
        f'local all "{ADMIN_USER}" peer map=bulkhead',
        "local all all scram-sha-256",
        "hostssl all all 127.0.0.1/32 scram-sha-256",
        "host all all all reject",
        "",
    ]
)
RDS_ADMIN, RDS_ADMIN_PASSWORD = "rds_like_master", "master-pw-1"
SETTINGS = {"statement_timeout": "5min", "idle_in_transaction_session_timeout": "10min", "temp_file_limit": "1GB"}
RDS_SETTINGS = {k: v for k, v in SETTINGS.items() if k != "temp_file_limit"}

# ---------------------------------------------------------------------------------- pure


def test_role_statements_exact_superuser_password() -> None:
    spec = RoleSpec("app", "app", connection_limit=7, settings={"statement_timeout": "5min"})
    assert role_sql.role_statements(spec, PasswordLogin("'secret'")) == [
        "DO $bulkhead$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'app')"
        ' THEN CREATE ROLE "app" NOLOGIN; END IF; END $bulkhead$',
        'ALTER ROLE "app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS'
        " CONNECTION LIMIT 7",
        'ALTER ROLE "app" RESET ALL',
        "ALTER ROLE \"app\" SET statement_timeout = '5min'",
        "SET password_encryption = 'scram-sha-256'",
        "ALTER ROLE \"app\" WITH PASSWORD 'secret'",
    ]


def test_role_statements_rds_iam_has_no_superuser_only_clause() -> None:
    out = role_sql.role_statements(RoleSpec("app", "app"), IamLogin(), ADMIN_RDS)
    alter = [s for s in out if s.startswith('ALTER ROLE "app" WITH LOGIN')]
    assert alter == ['ALTER ROLE "app" WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 20']
    assert 'GRANT "app" TO CURRENT_USER' in out
    assert out[-2:] == ['ALTER ROLE "app" WITH PASSWORD NULL', 'GRANT rds_iam TO "app"']
    assert not any("SUPERUSER" in s and s.startswith("ALTER") for s in out)


@pytest.mark.parametrize("admin", [ADMIN_SUPERUSER, ADMIN_RDS])
@pytest.mark.parametrize("login", [PasswordLogin("'x'"), IamLogin()])
def test_plan_is_plain_sql_with_qualified_operators(admin, login) -> None:
    settings = SETTINGS if admin == ADMIN_SUPERUSER else RDS_SETTINGS
    steps = bootstrap_plan(RoleSpec("billing", "billing", 5, settings), login, admin)
    for step in steps:
        for sql in (step.sql, step.skip_if or ""):
            assert "\\" not in sql and ":'" not in sql and "\n" not in sql, sql
            # every comparison goes through OPERATOR(pg_catalog.=), never a bare `=`
            assert not re.search(r"\b(WHERE|AND|OR)\s+[\w.]+\s*=", sql), sql
    in_db = [s for s in steps if s.database == "billing"]
    assert in_db[0].sql == "SET search_path = pg_catalog, pg_temp"
    assert [s.skip_if for s in steps if s.skip_if] == [
        "SELECT 1 FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) 'billing'"
    ]
    # CREATE DATABASE comes after the role exists and before the ownership statements.
    sqls = [s.sql for s in steps]
    create = sqls.index('CREATE DATABASE "billing" TEMPLATE template1')
    assert create > max(i for i, s in enumerate(sqls) if s.startswith('ALTER ROLE "billing" WITH'))
    # in the new database first (still the admin's), then handed to its owner
    assert [s.database for s in steps[create + 1 :]] == ["billing"] * len(in_db) + ["postgres"] * 4
    assert sqls[-4] == 'ALTER DATABASE "billing" OWNER TO "billing"'


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"db_name": "Bad", "role": "bad"}, "database name 'Bad' must match"),
        ({"db_name": "ok", "role": "pg_signal"}, "role name 'pg_signal' is reserved"),
        ({"db_name": "ok", "role": "rds_x"}, "role name 'rds_x' is reserved"),
        ({"db_name": "template1", "role": "ok"}, "database name 'template1' is reserved"),
        ({"db_name": "ok", "role": "ok", "connection_limit": 0}, "connection_limit 0 must be a whole number 1-10000"),
        ({"db_name": "ok", "role": "ok", "connection_limit": 10001}, "connection_limit 10001 must be"),
        ({"db_name": "ok", "role": "ok", "connection_limit": True}, "connection_limit True must be"),
        ({"db_name": "ok", "role": "ok", "settings": {"Work-Mem": "1"}}, "setting name 'Work-Mem' is not"),
        ({"db_name": "ok", "role": "ok", "settings": {"work_mem": "1\n2"}}, "setting 'work_mem' needs a non-empty"),
        ({"db_name": "ok", "role": "ok", "settings": {"work_mem": 4}}, "setting 'work_mem' needs a non-empty"),
    ],
)
def test_role_spec_refuses_bad_input(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RoleSpec(**kwargs)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: PasswordLogin(""), "password_sql must be a non-empty"),
        (lambda: PasswordLogin("'a'\n;DROP"), "password_sql must be a single line"),
        (lambda: role_sql.role_statements(RoleSpec("a", "a"), IamLogin(), "root"), "admin must be one of"),
        (
            lambda: role_sql.role_statements(RoleSpec("a", "a", settings={"temp_file_limit": "1GB"}), IamLogin(), ADMIN_RDS),
            "parameter group",
        ),
        (lambda: role_sql.role_statements(RoleSpec("a", "a"), "pw"), "login must be PasswordLogin or IamLogin"),
        (lambda: role_sql.check_unique([RoleSpec("a", "a"), RoleSpec("a", "b")]), "database 'a' is listed twice"),
        (lambda: role_sql.check_unique([RoleSpec("a", "r"), RoleSpec("b", "r")]), "role 'r' would own both"),
    ],
)
def test_refusals(call, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize(
    "value, expected",
    [("plain", "'plain'"), ("it's", "'it''s'"), ("back\\slash", "E'back\\\\slash'"), ("", "''")],
)
def test_quote_literal(value, expected) -> None:
    assert quote_literal(value) == expected


def test_scram_verifier_is_deterministic_for_a_salt_and_refuses_non_ascii() -> None:
    one = scram_sha256_verifier("pw", salt=b"0123456789abcdef")
    assert one == scram_sha256_verifier("pw", salt=b"0123456789abcdef")
    assert one.startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$")
    assert scram_sha256_verifier("pw") != scram_sha256_verifier("pw")  # random salt
    with pytest.raises(ValueError, match="non-empty ASCII"):
        scram_sha256_verifier("wörd")


# ---------------------------------------------------------------------- real server


def run_plan(conn: psycopg.Connection, connect_db, steps) -> None:
    """Execute a bootstrap plan as the Lambda does: per database one autocommit session."""
    sessions = {"postgres": conn}
    try:
        for step in steps:
            session = sessions.get(step.database) or sessions.setdefault(step.database, connect_db(step.database))
            if step.skip_if and session.execute(step.skip_if).fetchall():
                continue
            session.execute(step.sql)
    finally:
        for name, session in sessions.items():
            if name != "postgres":
                session.close()


@pytest.fixture(scope="module")
def server():
    with start_postgres({}, hba_conf=HBA) as pg:
        with pg.admin() as conn:
            conn.execute(
                f"CREATE ROLE {RDS_ADMIN} LOGIN CREATEROLE CREATEDB PASSWORD {quote_literal(RDS_ADMIN_PASSWORD)}"
            )
            conn.execute("CREATE ROLE rds_iam NOLOGIN")  # what RDS provides; granted by the master
        yield pg


def superuser_bootstrap(pg: PgServer, spec: RoleSpec, password: str) -> None:
    login = PasswordLogin(quote_literal(scram_sha256_verifier(password)))
    with pg.admin() as conn:
        run_plan(conn, pg.admin, bootstrap_plan(spec, login, ADMIN_SUPERUSER))


def rds_admin(pg: PgServer, db: str = "postgres") -> psycopg.Connection:
    return pg.connect(db, RDS_ADMIN, RDS_ADMIN_PASSWORD)


def role_row(pg: PgServer, role: str) -> tuple:
    with pg.admin() as conn:
        return conn.execute(
            "SELECT r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolinherit, r.rolreplication,"
            " r.rolbypassrls, r.rolconnlimit, coalesce(r.rolconfig, '{}'), a.rolpassword IS NULL"
            " FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = %s",
            (role,),
        ).fetchone()


def test_superuser_plan_creates_exactly_the_catalogued_role(server: PgServer) -> None:
    spec = RoleSpec("shop", "shop", connection_limit=3, settings=SETTINGS)
    superuser_bootstrap(server, spec, "shop-pw")
    assert role_row(server, "shop") == (
        True, False, False, False, False, False, False, 3,
        ["idle_in_transaction_session_timeout=10min", "statement_timeout=5min", "temp_file_limit=1GB"], False,
    )  # fmt: skip
    with server.connect("shop", "shop", "shop-pw") as conn:
        conn.execute("CREATE TABLE public.t (x int)")
        assert conn.execute("SHOW temp_file_limit").fetchone() == ("1GB",)
        # The tenant cannot raise its own temp_file_limit (superuser-only setting).
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET temp_file_limit = -1")
    with server.admin() as conn:
        owner, acl = conn.execute(
            "SELECT pg_get_userbyid(datdba), datacl::text FROM pg_database WHERE datname = 'shop'"
        ).fetchone()
        assert owner == "shop" and "=Tc/" not in acl.replace("shop=", "")  # no PUBLIC entry
    with server.admin("shop") as conn:
        nspacl = conn.execute("SELECT nspowner::regrole::text, nspacl::text FROM pg_namespace WHERE nspname='public'").fetchone()
    assert nspacl[0] == "shop" and not any(e.startswith("=") for e in nspacl[1].strip("{}").split(","))


def test_rerun_is_idempotent_and_converges_after_drift(server: PgServer) -> None:
    spec = RoleSpec("drift", "drift", connection_limit=4, settings={"statement_timeout": "1min"})
    superuser_bootstrap(server, spec, "pw-1")
    with server.admin() as conn:
        conn.execute('ALTER ROLE "drift" SUPERUSER CREATEDB CONNECTION LIMIT 500')
        conn.execute('ALTER ROLE "drift" SET work_mem = \'1GB\'')
        conn.execute('GRANT CONNECT ON DATABASE "drift" TO PUBLIC')
    superuser_bootstrap(server, spec, "pw-2")
    assert role_row(server, "drift")[:9] == (True, False, False, False, False, False, False, 4, ["statement_timeout=1min"])
    with server.connect("drift", "drift", "pw-2"):
        pass
    with server.admin() as conn:
        assert conn.execute("SELECT has_database_privilege('public', 'drift', 'CONNECT')").fetchone() == (False,)


def test_rds_flavour_runs_as_a_non_superuser_admin(server: PgServer) -> None:
    spec = RoleSpec("orders", "orders", connection_limit=9, settings=RDS_SETTINGS)
    with rds_admin(server) as conn:
        run_plan(conn, lambda db: rds_admin(server, db), bootstrap_plan(spec, IamLogin(), ADMIN_RDS))
    row = role_row(server, "orders")
    assert row == (
        True, False, False, False, False, False, False, 9,
        ["idle_in_transaction_session_timeout=10min", "statement_timeout=5min"], True,
    )  # fmt: skip
    with server.admin() as conn:
        assert conn.execute("SELECT pg_has_role('orders', 'rds_iam', 'MEMBER')").fetchone() == (True,)
        assert conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname='orders'").fetchone() == ("orders",)
    with server.admin("orders") as conn:
        assert conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname='public'").fetchone() == ("orders",)


def test_superuser_flavour_would_fail_for_a_non_superuser(server: PgServer) -> None:
    """Why the RDS flavour differs: PostgreSQL refuses NOSUPERUSER etc. from a non-superuser."""
    statements = role_sql.role_statements(RoleSpec("nosuper", "nosuper"), IamLogin(), ADMIN_SUPERUSER)
    with rds_admin(server) as conn:
        conn.execute(statements[0])
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="superuser"):
            conn.execute(statements[1])


def test_rds_guard_refuses_a_role_made_superuser_by_hand(server: PgServer) -> None:
    with server.admin() as conn:
        conn.execute('CREATE ROLE "elevated" SUPERUSER')
    statements = role_sql.role_statements(RoleSpec("elevated", "elevated"), IamLogin(), ADMIN_RDS)
    with rds_admin(server) as conn:
        with pytest.raises(psycopg.Error) as excinfo:
            for sql in statements:
                conn.execute(sql)
    assert "superuser" in str(excinfo.value).lower()


def test_trapped_tenant_database_gains_nothing(server: PgServer) -> None:
    spec = RoleSpec("tenant", "tenant")
    superuser_bootstrap(server, spec, "tenant-pw")
    with server.connect("tenant", "tenant", "tenant-pw") as conn:
        conn.execute(trap_sql("tenant"))
        conn.execute("ALTER DATABASE tenant SET search_path = trap, pg_catalog, public")
    # Control: the trap works against an unhardened, unqualified statement (the old init's).
    with server.admin("tenant") as conn:
        conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")
    assert role_row(server, "tenant")[1] is True, "the trap must fire on an unqualified '='"
    with server.admin() as conn:
        conn.execute('ALTER ROLE "tenant" NOSUPERUSER')
    with server.connect("tenant", "tenant", "tenant-pw") as conn:
        conn.execute("ALTER DATABASE tenant SET default_transaction_read_only = on")
        conn.execute("ALTER DATABASE tenant SET lock_timeout = '1ms'")
    # Ours: the whole plan again, in-database statements included.
    superuser_bootstrap(server, spec, "tenant-pw")
    assert role_row(server, "tenant")[1] is False


def test_hardened_session_undoes_database_settings(server: PgServer) -> None:
    superuser_bootstrap(server, RoleSpec("ro", "ro"), "ro-pw")
    with server.admin() as conn:
        conn.execute("ALTER DATABASE ro SET default_transaction_read_only = on")
        conn.execute("ALTER DATABASE ro SET statement_timeout = '1s'")
        conn.execute("ALTER DATABASE ro SET search_path = public")
    with server.admin("ro") as conn:
        for sql in role_sql.hardened_session_statements():
            conn.execute(sql)
        shown = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("search_path", "default_transaction_read_only", "statement_timeout", "lock_timeout")
        }
        conn.execute("CREATE TEMP TABLE writable (x int)")  # not read-only any more
    assert shown == {
        "search_path": "pg_catalog, pg_temp",
        "default_transaction_read_only": "off",
        "statement_timeout": "1min",
        "lock_timeout": "10s",
    }
