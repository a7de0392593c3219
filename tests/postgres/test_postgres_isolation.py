"""The Docker init (components/dev/container.py) against a REAL PostgreSQL server.

One server per module: initdb with the `bulkhead_admin` superuser, a self-signed
certificate from openssl, our pg_hba and `server_flags`, then `init_script` run
with bash exactly as the image's entrypoint would. The tests then prove the
separation guarantee (docs/contract.md section 4): a role reaches its own database and
nothing else, over TLS only, and each of the two layers (pg_hba, CONNECT
privilege) holds on its own.

Which PostgreSQL: `$BULKHEAD_PG_BINDIR` if set, else the newest
/usr/lib/postgresql/<major>/bin (Debian's `postgresql` package), else `postgres`
on PATH, else pgserver's bundled binaries -- the first one built with SSL
(pgserver's wheels are built without it, so on a fresh Debian CI machine
`apt-get install postgresql` is needed). No PostgreSQL with SSL is an ERROR,
never a skip.

As root (PostgreSQL refuses to run as root) the server processes run as an
unprivileged OS user, like pgserver does: the existing `postgres` account
(Debian's package creates it), else `pgserver` (created with useradd, as
pgserver itself does), or `$BULKHEAD_PG_OS_USER`. Their files live in a private
directory under the system temp dir owned by that user, so nothing else's
permissions are loosened. As a non-root user everything runs as that user.

The admin reaches the unix socket by peer authentication (pg_hba_conf's first
rule); the helper's pg_ident.conf maps the container's OS users plus the OS user
of this test process and of the server to the admin.

Reusable from other tests: `start_postgres(parameters, hba_conf=...)`, `PgServer`,
`server_os_user`, `admin_os_users`, `free_port` and the `refusal` / `assert_init_ok` checks.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.dev.container import (
    ADMIN_USER,
    HBA_PATH,
    IDENT_MAP,
    IDENT_PATH,
    TLS_CERT,
    TLS_KEY,
    RoleSpec,
    init_script,
    pg_hba_conf,
    pg_ident_conf,
    quote_ident,
    quote_literal,
    secret_file,
    server_flags,
    server_sql,
    tenant_sql,
)

from tests.support.postgres import (BAD_PASSWORD, HBA_REJECT, NO_CONNECT_PRIVILEGE, PgServer, PostgresStartError,
                                    assert_init_ok, refusal, start_postgres)

# ----------------------------------------------------------------------------------------------
# The module's server: three databases of three owners
# ----------------------------------------------------------------------------------------------

LIMITS = {"auth": 5, "app": 20, "worker": 7}
SETTINGS = {"statement_timeout": "5min", "idle_in_transaction_session_timeout": "10min", "temp_file_limit": "1GB"}
ROLES = tuple(RoleSpec(name, name, LIMITS[name], SETTINGS) for name in ("auth", "app", "worker"))
OWNER = {spec.db_name: spec.role for spec in ROLES}
DBS = tuple(OWNER)
ROLE_NAMES = tuple(spec.role for spec in ROLES)
# Deliberately hostile: quotes, psql variable syntax, shell syntax, non-ASCII.
PASSWORDS = {
    "auth": "au'th\"pw -- ; DROP ROLE app;",
    "app": "p:'pw_app' :pw_auth $HOME `id` \\ \\\\ $(echo x)",
    "worker": "wörker ☃ -v ON_ERROR_STOP=0 \\gexec",
}
PARAMETERS = {"work_mem": "4MB", "log_min_duration_statement": "500", "max_connections": "50"}
FOREIGN_PAIRS = [(role, db) for role in ROLE_NAMES for db in DBS if OWNER[db] != role]



@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with start_postgres(PARAMETERS, hba_conf=pg_hba_conf(ROLES)) as server:
        server.init_result = server.run_init_script(ROLES, PASSWORDS)
        yield server


# ----------------------------------------------------------------------------------------------
# Pure functions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [("admin", "/etc/bulkhead/secrets/admin"), ("app", "/etc/bulkhead/secrets/role-app"),
     ("auth_v2", "/etc/bulkhead/secrets/role-auth_v2")],
)
def test_secret_file(name: str, expected: str) -> None:
    assert secret_file(name) == expected


@pytest.mark.parametrize("bad", ["App", "1app", "", "a-b", "a" * 64, 'x"; DROP', "../admin"])
def test_secret_file_refuses_bad_names(bad: str) -> None:
    with pytest.raises(ValueError):
        secret_file(bad)


def test_server_flags_exact() -> None:
    assert server_flags({"work_mem": "4MB", "max_connections": "50"}) == [
        "-c", "ssl=on",
        "-c", f"ssl_cert_file={TLS_CERT}",
        "-c", f"ssl_key_file={TLS_KEY}",
        "-c", f"hba_file={HBA_PATH}",
        "-c", f"ident_file={IDENT_PATH}",
        "-c", "password_encryption=scram-sha-256",
        "-c", "max_connections=50",
        "-c", "work_mem=4MB",
    ]  # fmt: skip
    assert server_flags({}, cert_file="/c", key_file="/k", hba_file="/h")[:8] == [
        "-c", "ssl=on", "-c", "ssl_cert_file=/c", "-c", "ssl_key_file=/k", "-c", "hba_file=/h",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "parameters",
    [{"ssl": "off"}, {"hba_file": "/tmp/x"}, {"ident_file": "/tmp/x"}, {"password_encryption": "md5"},
     {"listen_addresses": "*"},
     {"Work_Mem": "1MB"}, {"work_mem": ""}, {"work_mem": "1MB\nssl=off"}],
)  # fmt: skip
def test_server_flags_refuses_managed_or_malformed(parameters: dict) -> None:
    with pytest.raises(ValueError):
        server_flags(parameters)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: [RoleSpec("App", "app")], "database name 'App' must match"),
        (lambda: [RoleSpec("app", "app-svc")], "role name 'app-svc' must match"),
        (lambda: [RoleSpec("app", "app"), RoleSpec("app", "auth")], "database 'app' is listed twice"),
        (lambda: [RoleSpec("app", "x"), RoleSpec("auth", "x")], "role 'x' would own both"),
        (lambda: [RoleSpec("app", ADMIN_USER)], "role name 'bulkhead_admin' is reserved"),
        (lambda: [RoleSpec("app", "postgres")], "role name 'postgres' is reserved"),
        (lambda: [RoleSpec("app", "pg_monitor")], "role name 'pg_monitor' is reserved"),
        (lambda: [RoleSpec("template1", "t")], "database name 'template1' is reserved"),
        (lambda: [RoleSpec("postgres", "t")], "database name 'postgres' is reserved"),
    ],
)
def test_generators_refuse_bad_specs(make, message) -> None:
    for generate in (server_sql, init_script, pg_hba_conf):
        with pytest.raises(ValueError, match=message):
            generate(make())


def test_hba_order_and_methods() -> None:
    rules = [line.split() for line in pg_hba_conf(ROLES).splitlines() if line and not line.startswith("#")]
    assert rules[0] == ["local", "all", f'"{ADMIN_USER}"', "peer", f"map={IDENT_MAP}"]
    n = len(ROLES)
    # the socket like TCP: each role to its own database, nothing else
    assert rules[1 : 1 + n] == [["local", f'"{s.db_name}"', f'"{s.role}"', "scram-sha-256"] for s in ROLES]
    assert rules[1 + n] == ["local", "all", "all", "reject"]
    assert rules[-2:] == [["hostssl", "all", "all", "all", "reject"], ["host", "all", "all", "all", "reject"]]
    middle = rules[2 + n : -2]
    assert middle == [
        ["hostssl", f'"{s.db_name}"', f'"{s.role}","{ADMIN_USER}"', net, "scram-sha-256"]
        for s in ROLES
        for net in ("0.0.0.0/0", "::/0")
    ]
    methods = {rule[-1] for rule in rules[1:]}
    assert methods == {"scram-sha-256", "reject"}  # never trust / password / md5; peer for the admin only


def test_ident_maps_only_root_to_the_admin() -> None:
    rules = [line.split() for line in pg_ident_conf().splitlines() if line and not line.startswith("#")]
    assert rules == [[IDENT_MAP, '"root"', f'"{ADMIN_USER}"']]
    with pytest.raises(ValueError):
        pg_ident_conf(["root", "evil user"])


def test_sql_takes_passwords_from_files_through_psql_only() -> None:
    script = init_script(ROLES)
    for spec in ROLES:
        sql = tenant_sql(spec, ROLES)
        assert f"ALTER ROLE \"{spec.role}\" WITH PASSWORD :'bulkhead_pw';" in sql
        assert sql.index("SET password_encryption = 'scram-sha-256'") < sql.index("WITH PASSWORD")
        assert sql.index("SET log_statement = 'none'") < sql.index("WITH PASSWORD")
        assert f'\\set bulkhead_pw `cat "${{BULKHEAD_SECRETS_DIR:-/etc/bulkhead/secrets}}/role-{spec.db_name}"`' in script
    assert f"ALTER ROLE \"{ADMIN_USER}\" WITH PASSWORD :'bulkhead_pw';" in server_sql(ROLES)
    assert "printenv" not in script and "-v pw" not in script
    assert "PASSWORD=" not in script.replace("PGPASSWORD= psql", "")  # psql starts with PGPASSWORD emptied
    assert "PASSWORD '" not in script
    assert script.count("<<'BULKHEAD_SQL'") == 1 + len(ROLES)  # quoted heredocs: bash expands nothing in SQL
    assert "-v ON_ERROR_STOP=1" in script


# ----------------------------------------------------------------------------------------------
# The real server
# ----------------------------------------------------------------------------------------------


def test_server_started_with_flags_and_parameters(pg: PgServer) -> None:
    with pg.admin() as conn:
        settings_now = dict(conn.execute("SELECT name, setting FROM pg_settings").fetchall())
    assert settings_now["ssl"] == "on"
    assert settings_now["hba_file"] == str(pg.hba_path)
    assert settings_now["password_encryption"] == "scram-sha-256"
    assert settings_now["work_mem"] == "4096"  # kB
    assert settings_now["log_min_duration_statement"] == "500"
    assert settings_now["max_connections"] == "50"


def test_hba_file_loads_without_errors(pg: PgServer) -> None:
    with pg.admin() as conn:
        assert conn.execute("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL").fetchone() == (0,)


def test_init_script_first_run_is_clean(pg: PgServer) -> None:
    assert pg.init_result is not None
    assert_init_ok(pg.init_result)


@pytest.mark.parametrize("sourced", [False, True], ids=["executed", "sourced"])
def test_init_script_rerun_is_idempotent(pg: PgServer, sourced: bool) -> None:
    assert_init_ok(pg.run_init_script(ROLES, PASSWORDS, sourced=sourced))
    for spec in ROLES:
        with pg.connect(spec.db_name, spec.role, PASSWORDS[spec.role]) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == (spec.role, spec.db_name)


def test_missing_password_file_is_a_problem_for_that_database_only(pg: PgServer) -> None:
    try:
        result = pg.run_init_script(ROLES, {**PASSWORDS, "app": None, "auth": "auth-rotated"})
        assert result.returncode == 1
        assert "database app: password file /etc/bulkhead/secrets/role-app is missing or empty" in result.stderr
        with pg.connect("auth", "auth", "auth-rotated"):  # the others were still applied
            pass
    finally:  # whatever happened, put the module's server back
        assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))


def test_catalog_state(pg: PgServer) -> None:
    with pg.admin() as conn:
        for spec in ROLES:
            attrs = conn.execute(
                "SELECT a.rolcanlogin, a.rolsuper, a.rolcreatedb, a.rolcreaterole, a.rolinherit, a.rolreplication,"
                " a.rolbypassrls, a.rolpassword LIKE 'SCRAM-SHA-256$%%', a.rolconnlimit, r.rolconfig"
                " FROM pg_authid a JOIN pg_roles r ON r.oid = a.oid WHERE a.rolname = %s",
                [spec.role],
            ).fetchone()
            assert attrs == (
                True, False, False, False, False, False, False, True, LIMITS[spec.role],
                [f"{k}={v}" for k, v in sorted(SETTINGS.items())],
            ), spec.role  # fmt: skip
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [spec.db_name]
            ).fetchone()
            assert owner == (spec.role,)
        grants = conn.execute(
            """SELECT d.datname, coalesce(r.rolname, 'PUBLIC'), a.privilege_type
                 FROM pg_database d, aclexplode(d.datacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
                WHERE a.privilege_type IN ('CONNECT', 'TEMPORARY')"""
        ).fetchall()
    for db in (*DBS, "postgres", "template1"):
        holders = {(who, priv) for name, who, priv in grants if name == db and who != ADMIN_USER}
        expected = {(OWNER[db], "CONNECT"), (OWNER[db], "TEMPORARY")} if db in OWNER else set()
        assert holders == expected, db
    for db in DBS:
        with pg.admin(db) as conn:
            owner, public_acl = conn.execute(
                "SELECT pg_get_userbyid(nspowner),"
                " (SELECT count(*) FROM aclexplode(nspacl) WHERE grantee = 0)"
                " FROM pg_namespace WHERE nspname = 'public'"
            ).fetchone()
        assert (owner, public_acl) == (OWNER[db], 0), db


@pytest.mark.parametrize("role", ROLE_NAMES)
@pytest.mark.parametrize("db", DBS)
def test_only_the_owner_connects(pg: PgServer, role: str, db: str) -> None:
    if OWNER[db] == role:
        with pg.connect(db, role, PASSWORDS[role]) as conn:
            row = conn.execute(
                "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
        assert row == (role, db, True)
    else:
        assert HBA_REJECT in refusal(pg, db, role, PASSWORDS[role])


@contextlib.contextmanager
def layer1_open_on_the_socket(pg: PgServer) -> Iterator[None]:
    """pg_hba lets every role use the socket for any database: only layer 2 (CONNECT) is left."""
    pg.set_hba(pg_hba_conf(ROLES).replace("local all all reject", "local all all scram-sha-256"))
    try:
        yield
    finally:
        pg.set_hba(pg_hba_conf(ROLES))


@pytest.mark.parametrize("db", ["postgres", "template1"])
@pytest.mark.parametrize("role", ROLE_NAMES)
def test_no_role_reaches_system_databases(pg: PgServer, role: str, db: str) -> None:
    assert HBA_REJECT in refusal(pg, db, role, PASSWORDS[role])
    assert HBA_REJECT in refusal(pg, db, role, PASSWORDS[role], via_socket=True)
    with layer1_open_on_the_socket(pg):
        assert NO_CONNECT_PRIVILEGE in refusal(pg, db, role, PASSWORDS[role], via_socket=True)


@pytest.mark.parametrize("db", DBS)
def test_admin_reaches_every_service_database_over_tls(pg: PgServer, db: str) -> None:
    with pg.connect(db, ADMIN_USER, pg.admin_password) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_wrong_password_is_refused(pg: PgServer, role: str) -> None:
    db = next(d for d, owner in OWNER.items() if owner == role)
    assert BAD_PASSWORD in refusal(pg, db, role, PASSWORDS[role] + "x")
    other = next(r for r in ROLE_NAMES if r != role)
    assert BAD_PASSWORD in refusal(pg, db, role, PASSWORDS[other])


@pytest.mark.parametrize("user", [*ROLE_NAMES, ADMIN_USER])
def test_plain_tcp_is_refused_even_with_the_right_password(pg: PgServer, user: str) -> None:
    db = next((d for d, owner in OWNER.items() if owner == user), DBS[0])
    password = pg.admin_password if user == ADMIN_USER else PASSWORDS[user]
    message = refusal(pg, db, user, password, sslmode="disable")
    assert HBA_REJECT in message and "no encryption" in message


@pytest.mark.parametrize("role, db", FOREIGN_PAIRS)
def test_connect_privilege_alone_keeps_roles_apart(pg: PgServer, role: str, db: str) -> None:
    """Layer 2 without layer 1: a pg_hba that admits every role on the socket, CONNECT does not."""
    assert HBA_REJECT in refusal(pg, db, role, PASSWORDS[role], via_socket=True)  # layer 1, as shipped
    with layer1_open_on_the_socket(pg):
        assert NO_CONNECT_PRIVILEGE in refusal(pg, db, role, PASSWORDS[role], via_socket=True)
    with pg.connect(OWNER[db], OWNER[db], PASSWORDS[OWNER[db]], via_socket=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (db,)


@pytest.mark.parametrize("role, db", FOREIGN_PAIRS)
def test_pg_hba_alone_keeps_roles_apart(pg: PgServer, role: str, db: str) -> None:
    """Layer 1 without layer 2: CONNECT granted by mistake, pg_hba still refuses over TCP."""
    with pg.admin() as conn:
        conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {quote_ident(db)} TO {quote_ident(role)}")
        try:
            assert HBA_REJECT in refusal(pg, db, role, PASSWORDS[role])
            assert HBA_REJECT in refusal(pg, db, role, PASSWORDS[role], via_socket=True)
            with layer1_open_on_the_socket(pg):
                with pg.connect(db, role, PASSWORDS[role], via_socket=True) as leaked:  # proves the grant took
                    assert leaked.execute("SELECT current_user").fetchone() == (role,)
        finally:
            conn.execute(f"REVOKE CONNECT, TEMPORARY ON DATABASE {quote_ident(db)} FROM {quote_ident(role)}")


@pytest.mark.parametrize("db", DBS)
def test_owner_can_create_in_its_public_schema(pg: PgServer, db: str) -> None:
    with pg.connect(db, OWNER[db], PASSWORDS[OWNER[db]], autocommit=False) as conn:
        conn.execute("CREATE TABLE public.owned_here (id int)")
        conn.execute("CREATE SCHEMA owned_schema")
        conn.execute("CREATE TEMP TABLE scratch (id int)")
        conn.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE public.intruder (id int)",
        "CREATE SCHEMA intruder",
        "CREATE TEMP TABLE intruder (id int)",
        "SELECT * FROM public.owners_table",
    ],
)
@pytest.mark.parametrize("role, db", FOREIGN_PAIRS)
def test_foreign_role_inside_a_database_cannot_create_or_read(pg: PgServer, role: str, db: str, statement: str) -> None:
    """Even a session that got in (admin `SET ROLE`) has no rights in someone else's database."""
    with pg.admin(db) as conn:
        conn.autocommit = False
        try:
            conn.execute(f"SET ROLE {quote_ident(OWNER[db])}")
            conn.execute("CREATE TABLE public.owners_table (id int)")
            conn.execute(f"SET ROLE {quote_ident(role)}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        finally:
            conn.rollback()


def test_rerun_converges_after_drift(pg: PgServer) -> None:
    with pg.admin() as conn:
        conn.execute('ALTER ROLE "auth" CREATEDB CREATEROLE INHERIT')
        conn.execute('GRANT CONNECT ON DATABASE "app" TO "auth"')
        conn.execute('GRANT CONNECT ON DATABASE "app" TO PUBLIC')
        conn.execute('GRANT CONNECT ON DATABASE "postgres" TO PUBLIC')
        conn.execute('ALTER DATABASE "worker" OWNER TO "app"')
    assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
    test_catalog_state(pg)


def test_rerun_never_enters_an_existing_database(pg: PgServer) -> None:
    """Inside a tenant's database everything is the tenant's: the init only sets `public` up
    when it creates the database, so a later start runs nothing there (nothing to trap)."""
    with pg.admin("worker") as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    try:
        assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
        with pg.admin("worker") as conn:
            assert conn.execute(
                "SELECT has_schema_privilege('public', 'public', 'CREATE')"
            ).fetchone() == (True,)
    finally:
        with pg.admin("worker") as conn:
            conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def test_rerun_sets_a_new_password(pg: PgServer) -> None:
    new = {**PASSWORDS, "app": "rotated ' pw"}
    try:
        assert_init_ok(pg.run_init_script(ROLES, new))
        with pg.connect("app", "app", new["app"]):
            pass
        assert BAD_PASSWORD in refusal(pg, "app", "app", PASSWORDS["app"])
    finally:
        assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
    with pg.connect("app", "app", PASSWORDS["app"]):
        pass


def test_adding_a_database_to_an_existing_server(pg: PgServer) -> None:
    billing = RoleSpec("billing", "billing")
    roles = (*ROLES, billing)
    passwords = {**PASSWORDS, "billing": "b1lling"}
    try:
        pg.set_hba(pg_hba_conf(roles))
        assert_init_ok(pg.run_init_script(roles, passwords))
        with pg.connect("billing", "billing", "b1lling") as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("billing",)
        for spec in ROLES:
            assert HBA_REJECT in refusal(pg, "billing", spec.role, PASSWORDS[spec.role])
            assert HBA_REJECT in refusal(pg, "billing", spec.role, PASSWORDS[spec.role], via_socket=True)
            assert HBA_REJECT in refusal(pg, spec.db_name, "billing", "b1lling")
            with pg.connect(spec.db_name, spec.role, PASSWORDS[spec.role]):
                pass
    finally:
        pg.set_hba(pg_hba_conf(ROLES))


def test_init_errors_do_not_echo_passwords() -> None:
    """A failing ALTER ROLE ... PASSWORD prints the password neither to psql's stderr nor to the
    server log: passwordcheck (contrib) refuses a short password at exactly that statement."""
    secret = "s3cret"
    roles = (RoleSpec("orphan", "orphan"),)
    extra = ["-c", "shared_preload_libraries=passwordcheck", "-c", "log_statement=all"]
    with start_postgres({}, hba_conf=pg_hba_conf(roles), extra_flags=extra) as server:
        result = server.run_init_script(roles, {"orphan": secret})
        log = server.log()
    assert result.returncode == 1, result.stderr
    assert "database orphan:" in result.stderr and "password is too short" in result.stderr
    assert secret not in result.stdout + result.stderr + log


def test_planted_database_settings_do_not_stop_the_init(pg: PgServer) -> None:
    """The old init failed (and stopped the server) when `postgres` defaulted to read-only."""
    with pg.admin() as conn:
        conn.execute('ALTER DATABASE "postgres" SET default_transaction_read_only = on')
        conn.execute('ALTER DATABASE "postgres" SET search_path = public')
    try:
        assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
    finally:
        with pg.admin("template1") as conn:
            conn.execute('ALTER DATABASE "postgres" RESET ALL')


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"work_mem": "lots"}, 'invalid value for parameter "work_mem": "lots"'),
        ({"no_such_setting": "1"}, 'unrecognized configuration parameter "no_such_setting"'),
        ({"max_connections": "-5"}, 'outside the valid range for parameter "max_connections"'),
    ],
)
def test_invalid_setting_makes_postgres_refuse_to_start(parameters: dict, message: str) -> None:
    with pytest.raises(PostgresStartError) as excinfo:
        with start_postgres(parameters):
            pass
    assert message in excinfo.value.log


@settings(max_examples=60, deadline=None)
@given(text=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=15))
def test_quoting_round_trips_through_the_server(pg: PgServer, text: str) -> None:
    with pg.admin() as conn:
        cur = conn.execute(f"SELECT {quote_literal(text)} AS {quote_ident(text or 'x')}")
        assert cur.fetchone() == (text,)
        assert cur.description[0].name == (text or "x")
