"""`bulkhead:admin_tcp` on a real server: the admin's password over TLS refused without it (issue 22:
socket only), admitted with it; plain TCP refused either way; the tenants' lines unchanged.

Here the server listens on 127.0.0.1, whose loopback subnet is `samenet` for it, as a container's
Docker network is for the container (the real engine: tests/docker/test_docker_engine.py)."""

from __future__ import annotations

from components.dev.container import ADMIN_USER, RoleSpec, pg_hba_conf
from tests.support.postgres import HBA_REJECT, assert_init_ok, refusal, start_postgres

ROLES = [RoleSpec("alpha", "alpha"), RoleSpec("beta", "beta")]
PASSWORDS = {"alpha": "alpha-Pa55word-x", "beta": "beta-Pa55word-y"}


def test_the_admin_over_tls_only_with_admin_tcp():
    with start_postgres() as pg:
        assert_init_ok(pg.run_init_script(ROLES, PASSWORDS))
        pg.set_hba(pg_hba_conf(ROLES))  # the default
        assert HBA_REJECT in refusal(pg, "postgres", ADMIN_USER, pg.admin_password)

        pg.set_hba(pg_hba_conf(ROLES, admin_tcp=True))
        with pg.connect("postgres", ADMIN_USER, pg.admin_password) as conn:
            assert conn.execute("SELECT rolsuper, ssl FROM pg_roles, pg_stat_ssl WHERE rolname = current_user"
                                " AND pid = pg_backend_pid()").fetchone() == (True, True)
        with pg.connect("alpha", ADMIN_USER, pg.admin_password) as conn:  # every database, for a GUI
            assert conn.execute("SELECT current_database()").fetchone() == ("alpha",)
        # never without TLS, and never with a wrong password
        assert HBA_REJECT in refusal(pg, "postgres", ADMIN_USER, pg.admin_password, sslmode="disable")
        assert "password authentication failed" in refusal(pg, "postgres", ADMIN_USER, "not-the-password")
        # the tenants are where they were: their own database only
        with pg.connect("alpha", "alpha", PASSWORDS["alpha"]) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("alpha",)
        assert HBA_REJECT in refusal(pg, "beta", "alpha", PASSWORDS["alpha"])
