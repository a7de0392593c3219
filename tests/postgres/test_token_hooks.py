"""Prod: a fresh IAM token per new connection, with each Python client's own hook (docs/connecting.md).

An RDS IAM token lasts 15 minutes, so a pool must ask for a new one for every connection it
opens. Stand-in: a real local PostgreSQL (tests/support/postgres.py) and a token function that
sets the role's password to a new value on every call (as a new token would be) and returns it.
Each hook must call it once per new pooled connection, and every connection must log in with
the value just made: a hook that reused the first token (a static password, as a URL carries)
fails from the second connection on, which the first case of each test shows.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

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
