"""Prod: a fresh IAM token per new connection, with each Python client's own hook (docs/connecting.md).

An RDS IAM token lasts 15 minutes, so a pool must ask for a new one for every connection it
opens. Stand-in: a real local PostgreSQL (tests/support/postgres.py) and a token function that
sets the role's password to a new value on every call (as a new token would be) and returns it.
Each hook must call it once per new pooled connection, and every connection must log in with
the value just made: a hook that reused the first token (a static password, as a URL carries)
fails from the second connection on, which the first case of each test shows.

node-postgres and pgjdbc: the hooks exactly as docs/connecting.md shows them (taken from that page),
run by the real clients (npm `pg`, Debian's pgjdbc on the JDK; scripts/ensure-clients installs them),
calling the stand-in over HTTP. They call their hook when the server asks for the password, so their
stand-in hands out the token valid now and signs the next at once (TokensAtAuth).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from components.postgres.role_sql import quote_ident
from tests.support.day2 import dev_server

ROLE = "app"
POOL = 3


@pytest.fixture(scope="module")
def server():
    with dev_server([ROLE]) as (srv, _passwords):
        yield srv


class Tokens:
    """generate_db_auth_token's stand-in: each call a new password, the old one no longer valid."""

    def __init__(self, server):
        self.server, self.calls = server, 0

    def __call__(self) -> str:
        token = secrets.token_urlsafe(24)
        with self.server.admin() as admin:
            admin.execute(f"ALTER ROLE {quote_ident(ROLE)} PASSWORD {psycopg.sql.Literal(token).as_string(admin)}")
        self.calls += 1
        return token


def _params(server) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "user": ROLE, "dbname": ROLE, "sslmode": "require"}


def test_psycopg_connection_factory(server) -> None:
    tokens = Tokens(server)

    def connect() -> psycopg.Connection:  # the pool's factory: a token per connection
        return psycopg.connect(**_params(server), password=tokens(), autocommit=True)

    conns = [connect() for _ in range(POOL)]
    assert tokens.calls == POOL
    assert {c.execute("select current_user").fetchone()[0] for c in conns} == {ROLE}
    for c in conns:
        c.close()
    # the failing case: the first token reused for the next connection
    static = tokens()
    psycopg.connect(**_params(server), password=static).close()
    tokens()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**_params(server), password=static)


def test_sqlalchemy_do_connect_sync(server) -> None:
    from sqlalchemy import create_engine, event, text

    tokens = Tokens(server)
    engine = create_engine(f"postgresql+psycopg://{ROLE}@127.0.0.1:{server.port}/{ROLE}?sslmode=require",
                           pool_size=POOL, max_overflow=0)

    @event.listens_for(engine, "do_connect")
    def _token(dialect, _conn_rec, _cargs, cparams):
        cparams["password"] = tokens()

    conns = [engine.connect() for _ in range(POOL)]  # three pooled connections at once
    assert [c.execute(text("select current_user")).scalar() for c in conns] == [ROLE] * POOL
    for c in conns:
        c.close()
    assert tokens.calls == POOL
    engine.dispose()


def _run(coro_fn):
    with ThreadPoolExecutor(max_workers=1) as pool:  # a loop of its own (see test_operate.py)
        return pool.submit(lambda: asyncio.run(coro_fn())).result()


def test_asyncpg_password_coroutine(server) -> None:
    import asyncpg

    tokens = Tokens(server)

    async def password() -> str:
        return await asyncio.to_thread(tokens)

    async def go():
        pool = await asyncpg.create_pool(host="127.0.0.1", port=server.port, user=ROLE, database=ROLE, ssl="require",
                                         password=password, min_size=0, max_size=POOL)  # one connect per acquire
        try:
            conns = [await pool.acquire() for _ in range(POOL)]
            users = [await c.fetchval("select current_user") for c in conns]
            for c in conns:
                await pool.release(c)
            return users
        finally:
            await pool.close()

    assert _run(go) == [ROLE] * POOL
    assert tokens.calls == POOL


def test_sqlalchemy_do_connect_async(server) -> None:
    from sqlalchemy import event, text
    from sqlalchemy.ext.asyncio import create_async_engine

    tokens = Tokens(server)

    async def go():
        engine = create_async_engine(f"postgresql+asyncpg://{ROLE}@127.0.0.1:{server.port}/{ROLE}?ssl=require",
                                     pool_size=POOL, max_overflow=0)

        @event.listens_for(engine.sync_engine, "do_connect")
        def _token(dialect, _conn_rec, _cargs, cparams):
            cparams["password"] = tokens()

        try:
            conns = [await engine.connect() for _ in range(POOL)]
            users = [(await c.execute(text("select current_user"))).scalar() for c in conns]
            for c in conns:
                await c.close()
            return users
        finally:
            await engine.dispose()

    assert _run(go) == [ROLE] * POOL
    assert tokens.calls == POOL


# -- node-postgres and pgjdbc: the hooks exactly as docs/connecting.md shows them, run by the real
# client (npm `pg` in tests/docker/node, Debian's libpostgresql-jdbc-java; scripts/ensure-clients).
# The stand-in token function is reached over HTTP (each GET = one new token), so the JS and Java
# hooks call the same Tokens as the Python ones and the test counts the calls.

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "connecting.md"
NODE_DIR = REPO / "tests" / "docker" / "node"
PGJDBC_JAR = Path("/usr/share/java/postgresql.jar")


def doc_block(lang: str, marker: str) -> str:
    """The fenced ```lang block of docs/connecting.md that contains `marker`: the code the docs show."""
    blocks = re.findall(rf"```{lang}\n(.*?)```", DOCS.read_text(), flags=re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"docs/connecting.md: expected one ```{lang} block with {marker!r}"
    return found[0]


@contextmanager
def token_service(tokens: Tokens):
    """http://127.0.0.1:PORT/ answers every GET with tokens(): the token function the hooks call."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = tokens().encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # no request log in the test output
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


class TokensAtAuth(Tokens):
    """The stand-in for hooks the client calls when the server asks for the password (node-postgres
    `checkPgPass`, pgjdbc `AuthenticationPluginManager.withPassword` in doAuthentication): by then the
    backend has read the role's secret (PostgreSQL auth.c CheckPWChallengeAuth reads the SCRAM
    verifier before sending the SASL request), so a token minted inside the hook could never match.
    Each call returns the token valid now and signs the next one at once, which ends this one for
    every later login: a token reused by a second connection fails, as an expired IAM token does."""

    def __init__(self, server):
        super().__init__(server)
        self.current = Tokens.__call__(self)
        self.calls = 0

    def __call__(self) -> str:
        token = self.current
        self.current = Tokens.__call__(self)
        return token


NODE_HARNESS = """
const fs = require('fs');
const pg = require('pg');
const [host, port, user, database, RDS_CA, TOKEN_URL, N] = process.argv.slice(2);
async function token() { const r = await fetch(TOKEN_URL); return await r.text(); }
(async () => {
%s
  const clients = [];
  for (let i = 0; i < Number(N); i++) clients.push(await pool.connect());  // N connections at once
  const users = [];
  for (const c of clients) users.push((await c.query('SELECT current_user AS u, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]);
  clients.forEach(c => c.release());
  await pool.end();
  console.log(JSON.stringify(users));
})().catch(e => { console.error('FAILED ' + e.message); process.exit(1); });
"""


def _run_node(server, ca: Path, token_url: str, snippet: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "hook.js"
    script.write_text(NODE_HARNESS % snippet)
    return subprocess.run(["node", str(script), "localhost", str(server.port), ROLE, ROLE, str(ca), token_url,
                           str(POOL)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")})


def _server_ca(server, tmp_path: Path) -> Path:
    # The test server's certificate is self-signed for CN=localhost: it is its own CA (as the RDS bundle is the
    # CA of an RDS endpoint), so the hooks verify the server as the docs show (ca / sslrootcert).
    ca = tmp_path / "ca.pem"
    ca.write_text(server.cert_file.read_text())
    return ca


def test_node_postgres_password_function(server, tmp_path) -> None:
    assert (NODE_DIR / "node_modules" / "pg").is_dir(), "run scripts/ensure-clients (npm pg)"
    snippet = doc_block("js", "password: async () => token()")
    ca = _server_ca(server, tmp_path)
    tokens = TokensAtAuth(server)
    with token_service(tokens) as url:
        result = _run_node(server, ca, url, snippet, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"u": ROLE, "ssl": True}] * POOL
    assert tokens.calls == POOL
    # the failing case: a token taken once, as a string password (what a URL or .env would carry), after
    # the next one was signed (the first one expired)
    fixed = snippet.replace("password: async () => token()", "password: FIXED")
    assert fixed != snippet
    tokens = TokensAtAuth(server)
    with token_service(tokens) as url:
        result = _run_node(server, ca, url, "const FIXED = await token();\nawait token();\n" + fixed, tmp_path)
    assert result.returncode == 1 and "password authentication failed" in result.stderr, result.stderr


JAVA_HARNESS = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;

public class HookProbe {
    public static void main(String[] args) throws Exception {
        List<Connection> conns = new ArrayList<>();
        for (int i = 0; i < Integer.parseInt(args[1]); i++) conns.add(DriverManager.getConnection(args[0]));
        for (Connection c : conns) {
            ResultSet rs = c.createStatement().executeQuery(
                "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
            rs.next();
            System.out.println(rs.getString(1) + " " + rs.getBoolean(2));
            c.close();
        }
    }
}

class Tokens {  // the stand-in for RdsUtilities.generateAuthenticationToken: one GET, one new token
    static String token(String host, String port, String user) {
        try {
            HttpRequest req = HttpRequest.newBuilder(URI.create(System.getenv("TOKEN_URL"))).build();
            return HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString()).body();
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }
}
"""


def _run_java(classes: Path, url: str, token_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-cp", f"{PGJDBC_JAR}:{classes}", "HookProbe", url, str(POOL)],
                          capture_output=True, text=True, timeout=180, env={**os.environ, "TOKEN_URL": token_url})


def test_pgjdbc_authentication_plugin(server, tmp_path) -> None:
    assert PGJDBC_JAR.exists(), "run scripts/ensure-clients (libpostgresql-jdbc-java)"
    snippet = doc_block("java", "implements org.postgresql.plugin.AuthenticationPlugin")
    # The plugin is loaded by pgjdbc's own class loader (Class.forName), so it is compiled to a class
    # directory on the classpath, as the docs say.
    src, classes = tmp_path / "src", tmp_path / "classes"
    src.mkdir()
    (src / "RdsTokenPlugin.java").write_text(snippet)
    (src / "HookProbe.java").write_text(JAVA_HARNESS)
    compiled = subprocess.run(["javac", "-cp", str(PGJDBC_JAR), "-d", str(classes), str(src / "RdsTokenPlugin.java"),
                               str(src / "HookProbe.java")], capture_output=True, text=True, timeout=180)
    assert compiled.returncode == 0, compiled.stderr
    ca = _server_ca(server, tmp_path)
    # the URL of the docs' comment, for this server
    doc_url = re.search(r"// (jdbc:postgresql://\S+)", snippet).group(1)
    url = (doc_url.replace("HOST:5432", f"localhost:{server.port}").replace("DB?", f"{ROLE}?")
           .replace("user=USER", f"user={ROLE}").replace("RDS_CA", str(ca)))
    tokens = TokensAtAuth(server)
    with token_service(tokens) as token_url:
        result = _run_java(classes, url, token_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:POOL] == [f"{ROLE} true"] * POOL
    assert tokens.calls == POOL
    # the failing case: no plugin, a token taken once as the `password` property after the next one
    # was signed (the first one expired)
    tokens = TokensAtAuth(server)
    with token_service(tokens) as token_url:
        fixed = tokens()
        tokens()
        no_plugin = url.replace("&authenticationPluginClassName=RdsTokenPlugin", "") + "&password=" + quote(fixed, safe="")
        assert "authenticationPluginClassName" not in no_plugin
        result = _run_java(classes, no_plugin, token_url)
        assert tokens.calls == 2
    assert result.returncode != 0 and "password authentication failed" in result.stderr, result.stderr
