"""One connection with one Python client, the URL from $URL: prints `OK <current_user> <ssl>` or fails.

Run as a process of its own (`python -m tests.support.client_probe DRIVER`), on the host or in a
container on the database's network, by tests/docker/test_clients.py. DRIVER is an `env --driver`
form: psycopg, asyncpg, sqlalchemy+asyncpg, sqlalchemy+psycopg. sqlalchemy+asyncpg reads its CA
from $PGSSLROOTCERT, as `env` writes it.
"""

from __future__ import annotations

import asyncio
import os
import sys

QUERY = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


def psycopg_probe(url: str) -> tuple:
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(QUERY).fetchone()


async def asyncpg_probe(url: str) -> tuple:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        return tuple(await conn.fetchrow(QUERY))
    finally:
        await conn.close()


def sqlalchemy_probe(url: str) -> tuple:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, poolclass=__import__("sqlalchemy.pool", fromlist=["NullPool"]).NullPool)
    with engine.connect() as conn:
        return tuple(conn.execute(text(QUERY)).one())


async def sqlalchemy_async_probe(url: str) -> tuple:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return tuple((await conn.execute(text(QUERY))).one())
    finally:
        await engine.dispose()


def main(driver: str) -> int:
    url = os.environ["URL"]
    try:
        if driver == "psycopg":
            row = psycopg_probe(url)
        elif driver == "asyncpg":
            row = asyncio.run(asyncpg_probe(url))
        elif driver == "sqlalchemy+psycopg":
            row = sqlalchemy_probe(url)
        elif driver == "sqlalchemy+asyncpg":
            row = asyncio.run(sqlalchemy_async_probe(url))
        else:
            print(f"unknown driver {driver}", file=sys.stderr)
            return 2
    except Exception as exc:  # the refusal is the result: its type and message, never the URL
        print(f"FAILED {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    print(f"OK {row[0]} {str(row[1]).lower()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
