"""The settings table: regenerated from the real servers and compared, and its lookup API."""

from __future__ import annotations

import json

import pytest

from components.catalogue import settings as pg_settings
from tools import generate_pg_settings as gen

COMMITTED = json.loads(pg_settings.TABLE_PATH.read_text(encoding="utf-8"))
SERVERS = gen.find_servers()


@pytest.mark.parametrize("major", sorted(COMMITTED["majors"]))
def test_table_is_what_the_server_says(major: str) -> None:
    """Every generated major's server is here (make test fetches them) and says exactly what the table says."""
    assert int(major) in SERVERS, f"no PostgreSQL {major} server found; run scripts/fetch-postgres-servers"
    bindir, _ = SERVERS[int(major)]
    # Same major (a distribution's newer minor leaves the settings as they are; the settings must match).
    assert gen.server_version(bindir).split(".")[0] == COMMITTED["majors"][major]["server"].split(".")[0]
    live = gen.read_settings(bindir)
    table = COMMITTED["majors"][major]["settings"]
    assert sorted(set(live) ^ set(table)) == []
    changed = sorted(name for name in live if live[name] != table[name])
    assert changed == [], f"PostgreSQL {major}: {changed[:5]} differ; rerun tools/generate_pg_settings.py"


def test_dump_round_trips() -> None:
    assert json.loads(gen.dump(COMMITTED)) == COMMITTED


def test_the_generated_majors_are_the_ones_docs_configuration_names() -> None:
    assert pg_settings.generated_majors() == (13, 15, 16, 17)


@pytest.mark.parametrize(
    "major, name, context, method",
    [
        (16, "shared_buffers", "postmaster", "pending-reboot"),
        (16, "max_connections", "postmaster", "pending-reboot"),
        (16, "work_mem", "user", "immediate"),
        (15, "log_min_duration_statement", "superuser", "immediate"),
        (17, "log_connections", "superuser-backend", "immediate"),
        (13, "wal_level", "postmaster", "pending-reboot"),
        (14, "shared_preload_libraries", "postmaster", "pending-reboot"),  # 14: checked against 15
        (16, "rds.force_ssl", "sighup", "immediate"),
        (16, "rds.logical_replication", "postmaster", "pending-reboot"),
    ],
)
def test_context_and_apply_method(major: int, name: str, context: str, method: str) -> None:
    assert pg_settings.context(major, name) == context
    assert pg_settings.apply_method(major, name) == method


@pytest.mark.parametrize("major, name", [(16, "shared_buffer"), (13, "io_combine_limit"), (17, "vacuum_defer_cleanup_age")])
def test_unknown_setting_is_refused(major: int, name: str) -> None:
    with pytest.raises(pg_settings.UnknownSetting, match=f"'{name}' is not a PostgreSQL {major} setting"):
        pg_settings.context(major, name)


@pytest.mark.parametrize(
    "major, used, note",
    [
        (16, 16, None),
        (13, 13, None),
        (14, 15, "PostgreSQL 14 is not in the generated settings table; its settings are checked against PostgreSQL 15's"),
    ],
)
def test_missing_major_uses_the_nearest_with_a_note(major: int, used: int, note) -> None:
    assert pg_settings.resolve(major) == (used, note)


def test_released_minors_cover_every_supported_major() -> None:
    for major in pg_settings.SUPPORTED_MAJORS:
        assert pg_settings.latest_minor(major) is not None and pg_settings.minors_source(major)
    # The servers the table came from are released minors, by definition.
    for major in pg_settings.generated_majors():
        minor = int(pg_settings.source(major)["server"].split(".")[1])
        assert minor <= pg_settings.latest_minor(major)
