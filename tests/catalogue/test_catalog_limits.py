"""Per-tenant limit keys of the catalogue: connection_limit and the role-level settings."""

from __future__ import annotations

import pytest

from components.catalogue.model import CatalogueError, load_catalogue
from tests.support.catalogue import adb, ddb, docker


def _load(raw: dict):
    # A stack each platform's name fits (platform-matches-stack), and the region aws requires.
    if raw.get("platform") == "aws":
        return load_catalogue(raw, "prod", region="eu-west-1")
    return load_catalogue(raw, "dev")


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(CatalogueError) as excinfo:
        _load(raw)
    return [str(p) for p in excinfo.value.problems]


def shared(n: int, **server) -> dict:
    dbs = {f"t{i}": {"owner": f"t{i}-service", "server": "shared"} for i in range(n)}
    return docker(dbs, servers={"shared": {"port": 5440, **server}})


@pytest.mark.parametrize(
    "raw, path, fragment",
    [
        (ddb(connection_limit=0), "bulkhead:databases.app.connection_limit", "0 is out of range"),
        (ddb(connection_limit=10001), "bulkhead:databases.app.connection_limit", "10001 is out of range"),
        (ddb(connection_limit="20"), "bulkhead:databases.app.connection_limit", "write it without quotes: connection_limit: 20"),
        (adb(connection_limit=True), "bulkhead:databases.app.connection_limit", "is not a whole number"),
        (ddb(statement_timeout="5 minutes"), "bulkhead:databases.app.statement_timeout",
         "'5 minutes' is not a duration; use milliseconds or a number with a unit (us, ms, s, min, h, d), e.g. '5min'"),
        (adb(idle_in_transaction_session_timeout="-1"), "bulkhead:databases.app.idle_in_transaction_session_timeout",
         "'-1' is not a duration"),
        (ddb(statement_timeout=1.5), "bulkhead:databases.app.statement_timeout", "1.5 is not a duration"),
        (ddb(temp_file_limit="2 GB"), "bulkhead:databases.app.temp_file_limit",
         "'2 GB' is not a size; use kilobytes or a number with a unit (kB, MB, GB, TB)"),
        (ddb(temp_file_limit="2gb"), "bulkhead:databases.app.temp_file_limit", "'2gb' is not a size"),
        (ddb(parameters={"max_connections": "30"}, connection_limit=28), "bulkhead:databases.app.parameters.max_connections",
         "max_connections 30 is below the connection_limit of its databases (app 28) plus 3 reserved slots = 31;"
         " raise max_connections to at least 31 or lower connection_limit"),
        (shared(5), "bulkhead:servers.shared.parameters.max_connections",
         "max_connections (PostgreSQL's default 100) 100 is below the connection_limit of its databases"
         " (t0 20 + t1 20 + t2 20 + t3 20 + t4 20) plus 3 reserved slots = 103"),
        (shared(2, parameters={"max_connections": "50", "superuser_reserved_connections": "5",
                               "reserved_connections": "6"}),
         "bulkhead:servers.shared.parameters.max_connections", "plus 11 reserved slots = 51"),
    ],
)
def test_limit_keys_refused_with_key_path(raw, path, fragment) -> None:
    found = problems_of(raw)
    assert any(p.startswith(path + ": ") and fragment in p for p in found), found


@pytest.mark.parametrize(
    "raw, name, expected",
    [
        (ddb(), "app", (20, {"statement_timeout": "5min", "idle_in_transaction_session_timeout": "10min",
                             "temp_file_limit": "2GB"})),
        (adb(), "app", (100, {"statement_timeout": "5min", "idle_in_transaction_session_timeout": "10min",
                              "temp_file_limit": "2GB"})),
        (ddb(connection_limit=5, statement_timeout=30000, idle_in_transaction_session_timeout="0",
             temp_file_limit=-1), "app",
         (5, {"statement_timeout": "30000", "idle_in_transaction_session_timeout": "0", "temp_file_limit": "-1"})),
        (shared(4), "t3", (20, {"statement_timeout": "5min", "idle_in_transaction_session_timeout": "10min",
                                "temp_file_limit": "2GB"})),
        (docker({"b": {"owner": "b-service", "server": "shared", "connection_limit": 90, "temp_file_limit": "512MB"}},
                servers={"shared": {"port": 5440}}), "b",
         (90, {"statement_timeout": "5min", "idle_in_transaction_session_timeout": "10min", "temp_file_limit": "512MB"})),
    ],
)
def test_limit_defaults_and_values(raw, name, expected) -> None:
    db = _load(raw).databases[name]
    assert (db.connection_limit, db.role_settings()) == expected


def test_budget_exactly_met_is_accepted() -> None:
    # 97 + 3 reserved = 100 = PostgreSQL's default max_connections
    load_catalogue(ddb(connection_limit=97), "dev")
    with pytest.raises(CatalogueError):
        load_catalogue(ddb(connection_limit=98), "dev")


def test_many_docker_networks_warn_with_their_count():
    """One Docker network per database: above DOCKER_NETWORKS_WARN_ABOVE, `plan` says how many and how to widen the pools."""
    from components.catalogue.model import DOCKER_NETWORKS_WARN_ABOVE

    def network_warnings(n: int) -> list[str]:
        return [str(w) for w in _load(shared(n, parameters={"max_connections": "1000"})).warnings if w.path == "bulkhead:databases"]

    assert network_warnings(DOCKER_NETWORKS_WARN_ABOVE) == []
    (warning,) = network_warnings(DOCKER_NETWORKS_WARN_ABOVE + 1)
    assert f"creates {DOCKER_NETWORKS_WARN_ABOVE + 1} Docker networks" in warning and "default-address-pools" in warning
