"""Why the init does not rely on superuser_reserved_connections (issue 22), shown on a real server.

A connection holds its slot from the start-up packet on, before it authenticates; the reserved
slots are checked only after authentication. So a tenant that opens connections to its own
database and never answers the SCRAM challenge (tests/support/slots.py: no password needed) takes
the superuser's reserved slots as well, and the admin over the unix socket is refused. This is
why components/dev/files/start.sh runs the init on a server without TCP first.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from components.dev.container import ADMIN_USER, pg_hba_conf
from components.postgres.role_sql import RoleSpec
from tests.support.postgres import start_postgres
from tests.support.slots import Flood

APP = RoleSpec("app", "app", connection_limit=5)


def test_pre_auth_connections_take_the_superusers_reserved_slots() -> None:
    params = {"max_connections": "10", "superuser_reserved_connections": "3", "authentication_timeout": "30s"}
    with start_postgres(params, hba_conf=pg_hba_conf([APP])) as pg:
        with pg.admin() as conn:
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'app-pw'")
            conn.execute("CREATE DATABASE app OWNER app")
        # without the flood, the admin gets in over the socket
        with pg.admin() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        flood = Flood(pg.port, "app", "app", n=14).start()
        try:
            deadline = time.monotonic() + 30
            while flood.held < 10:
                assert time.monotonic() < deadline, (flood.held, pg.log()[-2000:])
                time.sleep(0.1)
            with pytest.raises(psycopg.OperationalError, match="too many clients already"):
                psycopg.connect(host=str(pg.socket_dir), port=pg.port, dbname="postgres", user=ADMIN_USER,
                                connect_timeout=5).close()
        finally:
            flood.stop()
        deadline = time.monotonic() + 30
        while True:  # once the flood ends, the slots come back at once
            try:
                with pg.admin() as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
