"""The bootstrap function's handler run for real: a real PostgreSQL server, the master secret in moto.

The server is the one tests/postgres/test_postgres_isolation.py starts (Debian's PostgreSQL, SSL
on). The "master" is what RDS's master is: LOGIN CREATEROLE CREATEDB, not a superuser,
and `rds_iam` exists as RDS provides it. The handler reads the master secret from
moto's Secrets Manager, connects with pg8000 over TLS (verified against the server's
certificate) and runs role_sql's RDS plan. IAM tokens cannot be checked by a local
server, so to prove whom the role reaches the test gives it a password as the
superuser afterwards.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import boto3
import pytest
from moto import mock_aws

from components.postgres import bootstrap_handler
from components.prod import lambda_archive
from components.prod import rds_bootstrap
from components.postgres.bootstrap_handler import BootstrapError, RoleRequest
from components.postgres.role_sql import quote_literal
from tests.support.postgres import ADMIN_USER, PgServer, refusal, start_postgres

# Every unqualified `=` on names or text in the tenant's database runs the tenant's function
# as whoever is connected, and records who that was.
TRAP = """
CREATE TABLE public.hijacked (who text);
GRANT INSERT ON public.hijacked TO PUBLIC;
CREATE SCHEMA trap;
GRANT USAGE ON SCHEMA trap TO PUBLIC;
CREATE FUNCTION trap.eq(name, name) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO public.hijacked VALUES (current_user); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
CREATE OPERATOR trap.= (LEFTARG = name, RIGHTARG = name, FUNCTION = trap.eq);
CREATE FUNCTION trap.eqt(text, text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO public.hijacked VALUES (current_user); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.eqt);
CREATE FUNCTION trap.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO public.hijacked VALUES (current_user); RETURN 'x'; END $f$;
"""


def hijacked_by(pg: PgServer) -> list[str]:
    with pg.admin("tenant") as conn:
        conn.execute("SET search_path = pg_catalog, pg_temp")
        return [r[0] for r in conn.execute("SELECT who FROM public.hijacked")]

REGION = "eu-west-1"
MASTER, MASTER_PASSWORD = "rds_master", "Master0Password0Of0Forty0Characters00001"
HBA = "\n".join([
    f'local all "{ADMIN_USER}" peer map=bulkhead',
    "local all all scram-sha-256",
    "hostssl all all 127.0.0.1/32 scram-sha-256",
    "host all all all reject",
    "",
])
SETTINGS = {"idle_in_transaction_session_timeout": "10min", "statement_timeout": "5min"}


@pytest.fixture(scope="module")
def server():
    with start_postgres({}, hba_conf=HBA) as pg:
        with pg.admin() as conn:
            conn.execute(f"CREATE ROLE {MASTER} LOGIN CREATEROLE CREATEDB PASSWORD {quote_literal(MASTER_PASSWORD)}")
            conn.execute("CREATE ROLE rds_iam NOLOGIN")  # RDS has it; the master may grant it
            conn.execute(f"GRANT rds_iam TO {MASTER} WITH ADMIN OPTION")
        # RDS creates `db_name` at instance creation, owned by the master.
        with pg.connect("postgres", MASTER, MASTER_PASSWORD) as conn:
            for db in ("auth", "app", "tenant"):
                conn.execute(f'CREATE DATABASE "{db}"')
        yield pg


@pytest.fixture
def aws(monkeypatch, server):
    """moto Secrets Manager with each database's master secret, and the function's environment."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv(bootstrap_handler.ENV_SSL_ROOT_CERT, str(server.cert_file))
    monkeypatch.setenv(bootstrap_handler.ENV_AUTH_RETRY_SECONDS, "0")
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=REGION)

        def secret(db: str, **changes) -> str:
            value = {"engine": "postgres", "host": "127.0.0.1", "port": server.port, "username": MASTER,
                     "password": MASTER_PASSWORD, "dbname": db, "dbInstanceIdentifier": f"prod-{db}", **changes}
            arn = sm.create_secret(Name=f"bulkhead/prod/{db}/master-{len(sm.list_secrets()['SecretList'])}",
                                   SecretString=json.dumps(value))["ARN"]
            monkeypatch.setenv(bootstrap_handler.ENV_SECRET_ARN, arn)
            for key in (bootstrap_handler.ENV_DATABASE, bootstrap_handler.ENV_DB_NAME, bootstrap_handler.ENV_ROLE):
                monkeypatch.setenv(key, db)  # the function is deployed for this database
            monkeypatch.setenv(bootstrap_handler.ENV_CONNECTION_LIMIT, "25")
            monkeypatch.setenv(bootstrap_handler.ENV_ROLE_SETTINGS, json.dumps(SETTINGS))
            return arn

        yield secret


def event(db: str, **changes) -> dict:
    return {"database": db, "db_name": db, "role": db, "connection_limit": 25, "master_password_version": 1,
            "settings": SETTINGS, **changes}


def state(pg: PgServer, db: str) -> dict:
    """Everything the run decides, read as the superuser."""
    with pg.admin() as conn:
        role = conn.execute(
            "SELECT r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolinherit, r.rolreplication,"
            " r.rolbypassrls, r.rolconnlimit, coalesce(r.rolconfig, '{}'), a.rolpassword IS NULL"
            " FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = %s", (db,)).fetchone()
        owner, acl = conn.execute("SELECT pg_get_userbyid(datdba), datacl::text FROM pg_database WHERE datname = %s",
                                  (db,)).fetchone()
        member_of = [r[0] for r in conn.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s ORDER BY 1", (db,))]
        db_settings = conn.execute(
            "SELECT coalesce(array_agg(c ORDER BY c), '{}') FROM pg_db_role_setting s, unnest(s.setconfig) c "
            "WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = %s)", (db,)).fetchone()[0]
    with pg.admin(db) as conn:  # the tenant's own database: read it as the handler does, hardened
        conn.execute("SET search_path = pg_catalog, pg_temp")
        schema = conn.execute("SELECT nspowner::regrole::text, nspacl::text FROM pg_namespace "
                              "WHERE nspname OPERATOR(pg_catalog.=) 'public'").fetchone()
    return {"role": role, "owner": owner, "acl": acl, "member_of": member_of, "schema": schema, "db_settings": db_settings}


EXPECTED_ROLE = (True, False, False, False, False, False, False, 25,
                 ["idle_in_transaction_session_timeout=10min", "statement_timeout=5min"], True)


def test_first_run_creates_the_role_exactly(server, aws):
    aws("auth")
    result = bootstrap_handler.handler(event("auth"))
    assert result == {"database": "auth", "db_name": "auth", "role": "auth", "owner": "auth", "attributes": {
        "login": True, "superuser": False, "createdb": False, "createrole": False, "inherit": False,
        "replication": False, "bypassrls": False, "connection_limit": 25, "rds_iam": True}}
    now = state(server, "auth")
    # LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS, limit 25, no password (IAM)
    assert now["role"] == EXPECTED_ROLE
    assert now["owner"] == "auth" and now["member_of"] == ["rds_iam"]
    # CONNECT/TEMPORARY for the owner only: no PUBLIC entry (`=Tc/...`) in the ACL
    assert not any(e.startswith("=") for e in now["acl"].strip("{}").split(","))
    assert now["schema"][0] == "auth" and not any(e.startswith("=") for e in now["schema"][1].strip("{}").split(","))
    assert MASTER_PASSWORD not in json.dumps(result)


# What an invoker with nothing but lambda:InvokeFunction sent before the fix: the function
# took limit and settings from the event and left the service's role crippled.
HOSTILE_EVENTS = [
    pytest.param(event("app", connection_limit=1), id="limit"),
    pytest.param(event("app", settings={"default_transaction_read_only": "on", "statement_timeout": "1ms"}),
                 id="settings"),
    pytest.param(event("app", role="auth", db_name="auth", database="auth"), id="other-role-and-database"),
    pytest.param(event("app", master_password_version=99, auth="password"), id="version-and-auth"),
    pytest.param({"anything": "else"}, id="not-a-request"),
    pytest.param(None, id="no-event"),
]


@pytest.mark.parametrize("hostile", HOSTILE_EVENTS)
def test_the_event_is_ignored_entirely(server, aws, hostile):
    """Finding 2: everything the function does comes from its environment and the secret."""
    aws("app")
    bootstrap_handler.handler(event("app"))
    before = {db: state(server, db) for db in ("app", "auth")}
    result = bootstrap_handler.handler(hostile)
    assert result["role"] == "app" and result["attributes"]["connection_limit"] == 25
    after = {db: state(server, db) for db in ("app", "auth")}
    assert after == before
    assert after["app"]["role"] == EXPECTED_ROLE


def test_second_run_changes_nothing(server, aws):
    aws("auth")
    bootstrap_handler.handler(event("auth"))
    before = state(server, "auth")
    bootstrap_handler.handler(event("auth"))
    assert state(server, "auth") == before


def test_hand_changes_are_undone_and_a_trap_gains_nothing(server, aws):
    aws("tenant")
    bootstrap_handler.handler(event("tenant"))
    with server.admin() as conn:
        conn.execute('ALTER ROLE "tenant" CREATEDB CREATEROLE INHERIT CONNECTION LIMIT 500')
        conn.execute('ALTER ROLE "tenant" SET work_mem = \'1GB\'')
        conn.execute('GRANT CONNECT, TEMPORARY ON DATABASE "tenant" TO PUBLIC')
        conn.execute('GRANT CREATE ON SCHEMA public TO PUBLIC')
        conn.execute("ALTER ROLE tenant PASSWORD 'tenant-pw'")
    with server.admin("tenant") as conn:
        conn.execute('GRANT CREATE ON SCHEMA public TO PUBLIC')
    # The tenant (the database's owner) plants the shared-server trap in its own database.
    with server.connect("tenant", "tenant", "tenant-pw") as conn:
        conn.execute(TRAP)
        conn.execute("ALTER DATABASE tenant SET search_path = trap, pg_catalog, public")
    # Control: an unhardened, unqualified statement of the master falls into it.
    with server.connect("tenant", MASTER, MASTER_PASSWORD) as conn:
        conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")
    assert set(hijacked_by(server)) == {MASTER}, "the trap must catch an unqualified '='"
    with server.connect("tenant", "tenant", "tenant-pw") as conn:
        conn.execute("DELETE FROM public.hijacked")
        conn.execute("ALTER DATABASE tenant SET default_transaction_read_only = on")
        conn.execute("ALTER ROLE tenant IN DATABASE tenant SET statement_timeout = '1ms'")
        conn.execute("ALTER DATABASE tenant SET role = tenant")  # the master is a member: a login would become it
    with server.admin() as conn:
        conn.execute("ALTER ROLE tenant PASSWORD NULL")
    bootstrap_handler.handler(event("tenant"))
    assert hijacked_by(server) == [], "the handler never ran a tenant's function"
    now = state(server, "tenant")
    assert now["role"] == EXPECTED_ROLE, "attributes, limit and settings restored; the trap never ran as a superuser"
    assert not any(e.startswith("=") for e in now["acl"].strip("{}").split(","))
    assert not any(e.startswith("=") for e in now["schema"][1].strip("{}").split(","))


def test_a_role_made_superuser_by_hand_is_refused_clearly(server, aws):
    """The RDS master cannot touch a superuser role (only rdsadmin could have made one):
    the run stops with the cause and the database, and no password."""
    aws("app")
    bootstrap_handler.handler(event("app"))
    with server.admin() as conn:
        conn.execute('ALTER ROLE "app" SUPERUSER')
    try:
        with pytest.raises(BootstrapError) as excinfo:
            bootstrap_handler.handler(event("app"))
        message = str(excinfo.value)
        assert message.startswith("database app:") and "SUPERUSER" in message and MASTER_PASSWORD not in message
    finally:
        with server.admin() as conn:
            conn.execute('ALTER ROLE "app" NOSUPERUSER')
    bootstrap_handler.handler(event("app"))
    assert state(server, "app")["role"] == EXPECTED_ROLE


def test_the_role_reaches_its_own_database_only(server, aws):
    for db in ("auth", "app"):
        aws(db)
        bootstrap_handler.handler(event(db))
    with server.admin() as conn:  # stands in for an IAM token, which a local server cannot check
        conn.execute("ALTER ROLE auth PASSWORD 'auth-pw'")
    try:
        with server.connect("auth", "auth", "auth-pw") as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS public.mine (x int)")
            assert conn.execute("SELECT current_user").fetchone() == ("auth",)
        # Another service's database on the same server: CONNECT is its owner's alone.
        assert "permission denied for database" in refusal(server, "app", "auth", "auth-pw")
    finally:
        with server.admin() as conn:
            conn.execute("ALTER ROLE auth PASSWORD NULL")


def test_a_tampered_master_role_is_refused(server, aws):
    aws("auth")
    with server.admin() as conn:
        conn.execute(f"ALTER ROLE {MASTER} IN DATABASE auth SET search_path = public")
    try:
        with pytest.raises(BootstrapError, match=r"database auth: the master role rds_master carries settings .*search_path \(in auth\).*tampered"):
            bootstrap_handler.handler(event("auth"))
    finally:
        with server.admin() as conn:
            conn.execute(f"ALTER ROLE {MASTER} IN DATABASE auth RESET ALL")


@pytest.mark.parametrize("changes, cause", [
    ({"port": 1}, "cannot reach 127.0.0.1:1"),
    ({"password": "not-the-master-password"}, "the master login to 127.0.0.1"),
    ({"username": "nobody"}, "the master login to 127.0.0.1"),
])
def test_unreachable_or_refused_names_the_database_and_cause(server, aws, changes, cause):
    aws("auth", **changes)
    with pytest.raises(BootstrapError) as excinfo:
        bootstrap_handler.handler(event("auth"))
    message = str(excinfo.value)
    assert message.startswith("database auth: ") and cause in message
    assert MASTER_PASSWORD not in message and "not-the-master-password" not in message


def test_a_new_master_password_is_retried_until_rds_applies_it(server, aws):
    """RDS applies a changed master password asynchronously: the first logins may fail."""
    new = "Rotated0Password0Of0Forty0Characters00002"
    creds = bootstrap_handler.MasterCredentials("127.0.0.1", server.port, MASTER, new, "auth")
    waits = []

    def applied_after_one_wait(seconds):
        waits.append(seconds)
        with server.admin() as conn:
            conn.execute(f"ALTER ROLE {MASTER} PASSWORD {quote_literal(new)}")

    try:
        result = bootstrap_handler.bootstrap(RoleRequest.from_event(event("auth")), creds, retry_seconds=60,
                                             sleep=applied_after_one_wait)
        assert result["owner"] == "auth" and waits == [2.0]
        assert new not in repr(creds)
    finally:
        with server.admin() as conn:
            conn.execute(f"ALTER ROLE {MASTER} PASSWORD {quote_literal(MASTER_PASSWORD)}")


def test_missing_secret_is_a_clear_error(aws, monkeypatch):
    aws("auth")
    monkeypatch.setenv(bootstrap_handler.ENV_SECRET_ARN, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gone-AbCdEf")
    with pytest.raises(BootstrapError, match=r"database auth: cannot read its master secret .*ResourceNotFoundException"):
        bootstrap_handler.handler(event("auth"))


@pytest.mark.parametrize("bad, message", [
    ("not a map", "not a JSON object"),
    ({"database": "x"}, "lacks db_name, role, connection_limit"),
    (event("auth", auth="md5"), "auth must be one of iam, password"),
    (event("auth", auth="password"), "auth password but no login secret ARN"),
    (event("auth", role="Bad-Role"), "role is not a PostgreSQL name"),
    (event("auth", db_name="x;drop"), "db_name is not a PostgreSQL name"),
    (event("auth", connection_limit=0), "connection_limit must be a whole number 1..10000"),
    (event("auth", connection_limit=True), "connection_limit must be a whole number"),
    (event("auth", settings={"statement_timeout": 5}), "settings must map setting names to strings"),
])
def test_bad_invocation_input_is_refused(bad, message):
    with pytest.raises(BootstrapError, match=message):
        RoleRequest.from_event(bad)


def test_a_reserved_role_is_refused_before_connecting():
    creds = bootstrap_handler.MasterCredentials("127.0.0.1", 1, MASTER, "x", None)
    with pytest.raises(BootstrapError, match="database auth: role name 'rds_admin' is reserved"):
        bootstrap_handler.bootstrap(RoleRequest.from_event(event("auth", role="rds_admin")), creds)


# ------------------------------------------------------------------------------- the package


def test_package_is_deterministic_and_complete():
    first, second = rds_bootstrap.bootstrap_archive(), rds_bootstrap.bootstrap_archive()
    assert first.data == second.data and first.sha256_b64 == second.sha256_b64
    names = zipfile.ZipFile(io.BytesIO(first.data)).namelist()
    assert names == sorted(names)
    assert {"components/__init__.py", "components/postgres/bootstrap_handler.py", "components/postgres/role_sql.py",
            "pg8000/native.py", "scramp/core.py", "six.py"} <= set(names)
    assert not any(n.endswith((".pyc", ".so")) or "__pycache__" in n for n in names)
    # Only METADATA of each distribution (importlib.metadata.version reads it), no RECORD/INSTALLER.
    assert {n.rsplit("/", 1)[1] for n in names if ".dist-info/" in n} == {"METADATA"}
    assert not any(n.startswith("components/") and n not in (
        "components/__init__.py", "components/postgres/__init__.py", "components/postgres/bootstrap_handler.py",
        "components/postgres/role_sql.py") for n in names)
    assert {d.split("==")[0] for d in first.distributions} == {"pg8000", "scramp", "asn1crypto", "python-dateutil", "six"}
    for info in zipfile.ZipFile(io.BytesIO(first.data)).infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.external_attr == 0o100644 << 16


def test_package_hash_follows_the_code(tmp_path):
    root = tmp_path / "repo"
    (root / rds_bootstrap.PACKAGED_PACKAGE).mkdir(parents=True)
    package = os.path.join(rds_bootstrap.repository_root(), rds_bootstrap.PACKAGED_PACKAGE)
    for module in sorted(f"{rds_bootstrap.PACKAGED_PACKAGE}/{n}" for n in os.listdir(package) if n.endswith(".py")):
        (root / module).write_bytes(open(os.path.join(rds_bootstrap.repository_root(), module), "rb").read())
    same = rds_bootstrap.bootstrap_archive(str(root))
    assert same.sha256_b64 == rds_bootstrap.bootstrap_archive().sha256_b64
    (root / "components/postgres/role_sql.py").write_bytes((root / "components/postgres/role_sql.py").read_bytes() + b"\n# changed\n")
    assert rds_bootstrap.bootstrap_archive(str(root)).sha256_b64 != same.sha256_b64
    path = lambda_archive.write_archive(same, str(tmp_path / "build"), "bootstrap")
    assert open(path, "rb").read() == same.data
    assert lambda_archive.write_archive(same, str(tmp_path / "build"), "bootstrap") == path


def test_package_imports_on_its_own(tmp_path):
    """The handler and pg8000 import from the zip alone, as Lambda unpacks it (no repository, no venv)."""
    archive = rds_bootstrap.bootstrap_archive()
    target = tmp_path / "task"
    zipfile.ZipFile(io.BytesIO(archive.data)).extractall(target)
    code = ("import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p and p not in ('', '.')];"
            f"sys.path.insert(0, {str(target)!r});"
            "import components.postgres.bootstrap_handler as h, pg8000.native, scramp, dateutil;"
            "assert h.__file__.startswith(sys.path[0]); print(h.handler.__name__)")
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "handler", proc.stderr


@pytest.mark.parametrize("roots, message", [
    (["no-such-distribution-bulkhead"], "no-such-distribution-bulkhead is not installed"),
    (["psycopg-binary"], "ships native code"),
])
def test_package_refuses_what_lambda_cannot_run(roots, message):
    with pytest.raises(lambda_archive.ArchiveError, match=message):
        lambda_archive.build_archive({}, roots)


# ---------------------------------------------------------------- an impostor server
# The Lambda runs without the RDS CA bundle (certificate not verified), so a server in the
# middle could present any certificate and ask for any login method. It must learn nothing.

def _impostor(tmp_path, auth_request: bytes):
    """A TLS server on loopback that answers the startup with `auth_request` and records
    everything the client sends after it."""
    import socket
    import ssl
    import threading

    cert, key = tmp_path / "impostor.crt", tmp_path / "impostor.key"
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-days", "1", "-subj", "/CN=impostor", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    received = bytearray()

    def serve():
        try:
            conn, _ = listener.accept()
            conn.settimeout(5)
            assert conn.recv(8)[4:] == struct.pack("!i", 80877103)  # SSLRequest
            conn.sendall(b"S")
            with context.wrap_socket(conn, server_side=True) as tls:
                length = struct.unpack("!i", tls.recv(4))[0]
                tls.recv(length - 4)  # the startup message
                tls.sendall(b"R" + struct.pack("!i", len(auth_request) + 4) + auth_request)
                while chunk := tls.recv(4096):
                    received.extend(chunk)
        except (OSError, ssl.SSLError):
            pass
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], received, thread


@pytest.mark.parametrize("auth_request, refusal_text", [
    pytest.param(struct.pack("!i", 3), "login method 3", id="cleartext-password"),
    pytest.param(struct.pack("!i", 5) + b"salt", "login method 5", id="md5"),
    pytest.param(struct.pack("!i", 10) + b"SCRAM-SHA-256\x00\x00", "offers SCRAM-SHA-256, not SCRAM-SHA-256-PLUS",
                 id="scram-without-channel-binding"),
    pytest.param(struct.pack("!i", 0), "accepted the login without SCRAM", id="ok-without-any-challenge"),
])
def test_an_impostor_server_gets_no_password(tmp_path, monkeypatch, auth_request, refusal_text):
    """Without a CA bundle (as in Lambda) only SCRAM with channel binding is spoken."""
    monkeypatch.delenv(bootstrap_handler.ENV_SSL_ROOT_CERT, raising=False)
    port, received, thread = _impostor(tmp_path, auth_request)
    creds = bootstrap_handler.MasterCredentials("127.0.0.1", port, MASTER, MASTER_PASSWORD, "auth")
    with pytest.raises(BootstrapError) as excinfo:
        bootstrap_handler.connect(creds, "auth", "auth", retry_seconds=0)
    thread.join(10)
    assert MASTER_PASSWORD.encode() not in bytes(received)
    assert str(excinfo.value).startswith("database auth: refusing the master login") and refusal_text in str(excinfo.value)
    assert b"md5" not in bytes(received) and MASTER_PASSWORD not in str(excinfo.value)


def test_without_a_ca_bundle_the_real_server_is_reached_by_scram_with_channel_binding(server, monkeypatch):
    monkeypatch.delenv(bootstrap_handler.ENV_SSL_ROOT_CERT, raising=False)
    creds = bootstrap_handler.MasterCredentials("127.0.0.1", server.port, MASTER, MASTER_PASSWORD, "auth")
    conn = bootstrap_handler.connect(creds, "auth", "auth", retry_seconds=0)
    try:
        assert conn.run("SELECT pg_catalog.current_user()::text") == [[MASTER]]
        assert conn.auth.mechanism_name == "SCRAM-SHA-256-PLUS"
    finally:
        conn.close()


@pytest.mark.parametrize("changes", [{"role": "intruder"}, {"db_name": "app"},
                                     {"database": "app", "db_name": "app", "role": "app"}])
def test_the_function_acts_only_for_the_database_it_was_deployed_for(server, aws, changes):
    """It runs as the master: whoever may invoke it must not choose the role or the database."""
    aws("auth")
    result = bootstrap_handler.handler(event("auth", **changes))
    assert (result["database"], result["db_name"], result["role"]) == ("auth", "auth", "auth")
    with server.admin() as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'intruder'").fetchone() is None


def test_a_function_without_its_target_refuses_to_run(server, aws, monkeypatch):
    aws("auth")
    monkeypatch.delenv(bootstrap_handler.ENV_ROLE)
    with pytest.raises(BootstrapError, match="the function's environment lacks BULKHEAD_ROLE; redeploy"):
        bootstrap_handler.handler(event("auth"))


LOGIN_PASSWORD = "Login0Password0Of0Forty0Characters000003"


def test_auth_password_role_gets_its_own_scram_password_no_iam_and_its_limits(server, aws, monkeypatch):
    """auth: password: the role leaves rds_iam, its password comes from its own secret as a
    SCRAM verifier (the statement never carries it), limits and settings as for iam, and it
    reaches its own database only."""
    aws("app")
    bootstrap_handler.handler(None)  # first as iam: the role is a member of rds_iam
    assert state(server, "app")["member_of"] == ["rds_iam"]
    sm = boto3.client("secretsmanager", region_name=REGION)
    login_arn = sm.create_secret(Name="bulkhead/prod/app/login", SecretString=json.dumps(
        {"engine": "postgres", "username": "app", "password": LOGIN_PASSWORD}))["ARN"]
    monkeypatch.setenv(bootstrap_handler.ENV_AUTH, "password")
    monkeypatch.setenv(bootstrap_handler.ENV_LOGIN_SECRET_ARN, login_arn)
    result = bootstrap_handler.handler({"auth": "iam"})  # the event still decides nothing
    assert result["attributes"]["rds_iam"] is False and LOGIN_PASSWORD not in json.dumps(result)
    now = state(server, "app")
    assert now["member_of"] == [], "no IAM grant"
    assert now["role"][:9] == EXPECTED_ROLE[:9] and now["role"][9] is False  # limits, settings; a password
    with server.admin() as conn:
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'").fetchone()[0]
    assert verifier.startswith("SCRAM-SHA-256$4096:") and LOGIN_PASSWORD not in verifier
    with server.connect("app", "app", LOGIN_PASSWORD) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "app"
    # Back to iam: the password goes, the grant comes back.
    monkeypatch.delenv(bootstrap_handler.ENV_AUTH)
    bootstrap_handler.handler(None)
    assert state(server, "app")["role"] == EXPECTED_ROLE and state(server, "app")["member_of"] == ["rds_iam"]


def test_auth_password_with_an_unreadable_login_secret_is_clear(server, aws, monkeypatch):
    aws("app")
    monkeypatch.setenv(bootstrap_handler.ENV_AUTH, "password")
    monkeypatch.setenv(bootstrap_handler.ENV_LOGIN_SECRET_ARN,
                       "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gone-AbCdEf")
    with pytest.raises(BootstrapError, match=r"database app: cannot read its login secret .*ResourceNotFound"):
        bootstrap_handler.handler(None)


def test_the_secrets_client_calls_the_endpoint_url_of_its_environment(monkeypatch):
    """A given VPC's Secrets Manager endpoint has no private DNS (components/prod/vpc_endpoints.py):
    the function must call it by its own name, from AWS_ENDPOINT_URL_SECRETS_MANAGER, or its
    GetSecretValue goes to the public name, which the subnets cannot reach (the invocation times out)."""
    from botocore.awsrequest import AWSResponse

    url = "https://vpce-0a1b2c3d4e5f60718-abcdefgh.secretsmanager.eu-west-1.vpce.amazonaws.com"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # botocore would read the variable itself too; the handler must not depend on it (older runtimes)
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    sent = []

    def answer(request, **_):
        sent.append(request.url)
        body = json.dumps({"ARN": "arn", "Name": "n", "SecretString": json.dumps({
            "host": "db.example", "port": 5432, "username": "bulkhead_admin", "password": "x" * 40, "dbname": "app"})})
        return AWSResponse(request.url, 200, {}, type("Raw", (), {"stream": lambda self, **k: iter([body.encode()])})())

    for environ, expected in (({bootstrap_handler.ENV_SECRETS_ENDPOINT_URL: url}, url),
                              ({}, "https://secretsmanager.eu-west-1.amazonaws.com")):
        client = bootstrap_handler.secrets_client(environ)
        client.meta.events.register("before-send.secrets-manager.GetSecretValue", answer)
        creds = bootstrap_handler.read_master_secret("arn:aws:secretsmanager:eu-west-1:123456789012:secret:x", "app", client)
        assert creds.host == "db.example"
        assert sent[-1].startswith(expected + "/"), sent[-1]


def test_the_function_environment_carries_the_endpoint_url_only_when_given():
    base = dict(database="app", db_name="app", role="app", connection_limit=10, settings={}, master_secret_arn="arn")
    assert bootstrap_handler.ENV_SECRETS_ENDPOINT_URL not in bootstrap_handler.function_environment(**base)
    env = bootstrap_handler.function_environment(**base, secrets_endpoint_url="https://vpce-1-a.secretsmanager.r.vpce.amazonaws.com")
    assert env[bootstrap_handler.ENV_SECRETS_ENDPOINT_URL] == "https://vpce-1-a.secretsmanager.r.vpce.amazonaws.com"


@pytest.mark.parametrize("url,ok", [
    ("https://vpce-0a1b2c3d4e5f60718-abcdefgh.secretsmanager.eu-west-1.vpce.amazonaws.com", True),
    ("https://vpce-0a1b2c3d4e5f60718-abcdefgh-eu-west-1a.secretsmanager.eu-west-1.vpce.amazonaws.com", False),
    ("https://vpce-0a1b2c3d4e5f60718-abcdefgh.secretsmanager.us-east-1.vpce.amazonaws.com", False),
    ("http://vpce-0a1b2c3d4e5f60718-abcdefgh.secretsmanager.eu-west-1.vpce.amazonaws.com", False),
    ("https://vpce-0a1b2c3d4e5f60718-abcdefgh.secretsmanager.eu-west-1.vpce.amazonaws.com.evil.example", False),
    ("https://secretsmanager.eu-west-1.amazonaws.com", False),
])
def test_only_a_regional_secrets_manager_endpoint_name_is_accepted(url, ok):
    assert bootstrap_handler.is_secrets_endpoint_url(url, "eu-west-1") is ok


def test_a_restored_database_keeps_its_data_and_the_role_owns_what_the_master_owned(server, aws):
    """restore_from (issue 24): the instance comes with the source's data, here created by the master
    (as a break-glass session or a source without its role would leave it). After the run the service's
    role owns the database, its schema, tables, view, sequence and routine, and no row is lost; a
    second run changes nothing. Without the adoption step the table stayed the master's."""
    with server.connect("postgres", MASTER, MASTER_PASSWORD) as conn:
        conn.execute('CREATE DATABASE "ledger"')
    with server.connect("ledger", MASTER, MASTER_PASSWORD) as conn:
        conn.execute("CREATE SCHEMA books")
        conn.execute("CREATE TABLE books.entries (id serial PRIMARY KEY, amount int NOT NULL)")
        conn.execute("INSERT INTO books.entries (amount) SELECT g FROM generate_series(1, 42) g")
        conn.execute("CREATE VIEW books.big AS SELECT * FROM books.entries WHERE amount > 40")
        conn.execute("CREATE FUNCTION books.total() RETURNS bigint LANGUAGE sql AS 'SELECT sum(amount) FROM books.entries'")
    aws("ledger")
    result = bootstrap_handler.handler(event("ledger"))
    assert result["owner"] == "ledger"

    def owners():
        with server.admin("ledger") as conn:
            return dict(conn.execute(
                "SELECT 'schema', nspowner::regrole::text FROM pg_namespace WHERE nspname = 'books' UNION ALL "
                "SELECT relname, relowner::regrole::text FROM pg_class WHERE relnamespace = 'books'::regnamespace "
                "AND relkind IN ('r', 'v', 'S') UNION ALL "
                "SELECT proname, proowner::regrole::text FROM pg_proc WHERE pronamespace = 'books'::regnamespace").fetchall())

    assert owners() == {"schema": "ledger", "entries": "ledger", "big": "ledger", "entries_id_seq": "ledger",
                        "total": "ledger"}
    with server.admin("ledger") as conn:
        conn.execute("SET ROLE ledger")  # what the service can do now, as itself
        assert conn.execute("SELECT count(*), books.total() FROM books.entries").fetchone() == (42, 903)
        conn.execute("INSERT INTO books.entries (amount) VALUES (1)")
    before = (owners(), state(server, "ledger"))
    bootstrap_handler.handler(event("ledger"))
    assert (owners(), state(server, "ledger")) == before


def test_a_restored_event_trigger_function_stays_the_masters_and_never_runs_the_tenants_code_as_the_master(server, aws):
    """Review of issue 24's adoption (rev-ops): a restored database may hold an event trigger the master
    made with a function the master owns (AWS DMS's documented `awsdms_intercept_ddl` is one). Every run
    of the bootstrap does DDL there as the master (in_database_statements: ALTER SCHEMA public OWNER,
    REVOKE), which fires the trigger as the master. Adopting the function gave it to the service's role,
    which rewrote it and had its code run as the master on the next run (hijacked held the master's
    name). Now the function stays the master's: the role cannot rewrite it, and nothing runs as the
    master from the tenant's hand. (Locally the superuser creates the trigger: RDS lets rds_superuser do
    it, PostgreSQL only a superuser.)"""
    with server.connect("postgres", MASTER, MASTER_PASSWORD) as conn:
        conn.execute('CREATE DATABASE "ddlaudit"')
    with server.connect("ddlaudit", MASTER, MASTER_PASSWORD) as conn:
        conn.execute("CREATE TABLE public.hijacked (who text)")
        conn.execute("GRANT INSERT ON public.hijacked TO PUBLIC")
        conn.execute("CREATE FUNCTION public.intercept_ddl() RETURNS event_trigger LANGUAGE plpgsql AS "
                     "$f$ BEGIN NULL; END $f$")
    with server.admin("ddlaudit") as conn:
        conn.execute("CREATE EVENT TRIGGER intercept_ddl ON ddl_command_end EXECUTE FUNCTION public.intercept_ddl()")
    aws("ddlaudit")
    bootstrap_handler.handler(event("ddlaudit"))
    with server.admin("ddlaudit") as conn:
        owner = conn.execute("SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'intercept_ddl'").fetchone()[0]
        conn.execute("SET ROLE ddlaudit")  # the service, as itself: rewrite the trigger's function if it can
        try:
            conn.execute("CREATE OR REPLACE FUNCTION public.intercept_ddl() RETURNS event_trigger LANGUAGE plpgsql AS "
                         "$f$ BEGIN INSERT INTO public.hijacked VALUES (current_user); END $f$")
            rewritten = True
        except Exception:
            rewritten = False
    bootstrap_handler.handler(event("ddlaudit"))
    with server.admin("ddlaudit") as conn:
        hijacked = [r[0] for r in conn.execute("SELECT who FROM public.hijacked")]
    assert (owner, rewritten, hijacked) == (MASTER, False, [])


def test_an_event_trigger_running_the_tenants_function_is_refused_before_the_master_runs_anything(server, aws):
    """Review of issue 24 (rev-ops): a restored database whose event trigger runs a function the
    service's role owns (the source's tenant rewrote it, or a snapshot was made so). Without the check
    the run's DDL fired it and the role's code ran as the master (hijacked held the master's name).
    Now the run stops before any statement in that database, naming the trigger, the function, its
    owner and the fix, and nothing ran as the master."""
    with server.connect("postgres", MASTER, MASTER_PASSWORD) as conn:
        conn.execute('CREATE DATABASE "ddltrap"')
    aws("ddltrap")
    bootstrap_handler.handler(event("ddltrap"))  # the role exists and owns its database
    with server.admin("ddltrap") as conn:
        conn.execute("CREATE TABLE public.hijacked (who text)")
        conn.execute("GRANT INSERT ON public.hijacked TO PUBLIC")
        conn.execute("SET ROLE ddltrap")
        conn.execute("CREATE FUNCTION public.intercept_ddl() RETURNS event_trigger LANGUAGE plpgsql AS "
                     "$f$ BEGIN INSERT INTO public.hijacked VALUES (current_user); END $f$")
        conn.execute("RESET ROLE")
        conn.execute("CREATE EVENT TRIGGER intercept_ddl ON ddl_command_end EXECUTE FUNCTION public.intercept_ddl()")
    with pytest.raises(BootstrapError) as refused:
        bootstrap_handler.handler(event("ddltrap"))
    with server.admin("ddltrap") as conn:
        hijacked = [r[0] for r in conn.execute("SELECT who FROM public.hijacked")]
        conn.execute("ALTER EVENT TRIGGER intercept_ddl DISABLE")  # the fix the message gives
    assert hijacked == []
    assert "event trigger intercept_ddl runs public.intercept_ddl() owned by ddltrap" in str(refused.value)
    assert "ALTER EVENT TRIGGER <name> DISABLE" in str(refused.value)
    bootstrap_handler.handler(event("ddltrap"))  # disabled: the run goes through
