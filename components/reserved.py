"""Names PostgreSQL, RDS and bulkhead keep for themselves: the one rule, used by the catalogue (a
database and its login role may not take one) and the dev init SQL (a service role may not be one).

Like CloudNativePG's IsRoleReserved (internal/management/controller/roles/roles.go): a fixed set plus
the `pg_` prefix PostgreSQL reserves for its own roles (https://www.postgresql.org/docs/current/
predefined-roles.html) and `rds_` for RDS's (rds_superuser, rds_iam, ...). The names and prefixes are
role_sql's, which the bootstrap Lambda enforces on RDS (components/postgres ships whole in its archive
and imports nothing outside it), plus bulkhead's own admin.
"""

from __future__ import annotations

from components.postgres.role_sql import MAINTENANCE_DATABASE, RESERVED_ROLE_NAMES, RESERVED_ROLE_PREFIXES
from policies.bulkhead_types import ADMIN_USER

RESERVED_ROLES = frozenset({*RESERVED_ROLE_NAMES, ADMIN_USER})
# Databases that always exist in a cluster; a service database cannot be one of them.
SYSTEM_DATABASES = (MAINTENANCE_DATABASE, "template1")
RESERVED_DATABASES = frozenset({*SYSTEM_DATABASES, "template0"})


def is_reserved_role(name: str) -> bool:
    """True if a service's login role may not be called `name`."""
    return name in RESERVED_ROLES or name.startswith(RESERVED_ROLE_PREFIXES)


def is_reserved_name(name: str) -> bool:
    """True if a service database (whose login role has the same name) may not be called `name`."""
    return is_reserved_role(name) or name in RESERVED_DATABASES
