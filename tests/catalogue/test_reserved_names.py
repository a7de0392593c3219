"""Reserved names: one rule (components/reserved.py) for the catalogue and the dev init SQL. Before it,
three lists with different members: the catalogue refused `rdsadmin` and `rds_*`, the container did
not, and neither knew the other's additions."""

from __future__ import annotations

import pytest

from components.catalogue.model import CatalogueError, load_catalogue
from components.dev import container
from components.postgres.role_sql import RoleSpec
from components.reserved import ADMIN_USER, is_reserved_name, is_reserved_role
from tests.support.catalogue import ddb

RESERVED = [ADMIN_USER, "postgres", "public", "none", "current_user", "session_user", "rdsadmin", "user", "all",
            "pg_monitor", "rds_superuser", "rds_iam"]
FREE = ["app", "orders", "postgresql", "admin_app", "xpg_x", "template"]


@pytest.mark.parametrize("name", RESERVED + ["template0", "template1"])
def test_the_catalogue_refuses_a_reserved_db_name(name):
    assert is_reserved_name(name)
    with pytest.raises(CatalogueError) as excinfo:
        load_catalogue(ddb(db_name=name), "dev")
    assert any("is reserved" in str(p) for p in excinfo.value.problems)


@pytest.mark.parametrize("name", FREE)
def test_the_catalogue_takes_a_free_db_name(name):
    assert not is_reserved_name(name)
    load_catalogue(ddb(db_name=name), "dev")


@pytest.mark.parametrize("name", RESERVED)
def test_the_dev_init_refuses_what_the_catalogue_refuses(name):
    """The container's check and the catalogue's are the same rule (role_sql's RoleSpec already refuses
    all but the admin; the container adds bulkhead's admin)."""
    assert is_reserved_role(name)
    with pytest.raises(ValueError, match="is reserved"):
        container.server_sql([RoleSpec("app", name)])


@pytest.mark.parametrize("name", FREE)
def test_the_dev_init_takes_a_free_role(name):
    assert not is_reserved_role(name)
    assert container.server_sql([RoleSpec("app", name)])
