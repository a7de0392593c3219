"""Every `-c` flag of every dev container, on a real PostgreSQL server.

The containers' `command` comes from the dev plan (Pulumi.dev.yaml under the mock
runtime). Each container's flags, exactly as planned, are given to a real server
started by `start_postgres` (tests/postgres/test_postgres_isolation.py); only the three
flags that name files inside the image (`ssl_cert_file`, `ssl_key_file`,
`hba_file`) are replaced by the helper's local files, and the hba file is the very
content the container uploads. An invalid setting name or value in the stack file
makes postgres refuse to start, which fails that container's test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from bulkhead.offline.mock_runtime import ProgramRun
from bulkhead.offline.stack_config import load_catalogue_for
from components.dev.container import HBA_PATH, IDENT_PATH, TLS_CERT, TLS_KEY
from tests.support.program import ROOT, run_stack
from tests.support.postgres import PgServer, PostgresStartError, has_ssl, start_postgres

from policies.bulkhead_types import CONTAINER
# Flags naming files inside the image -> the helper's local file for it.
IN_CONTAINER_FILES = {
    "ssl_cert_file": TLS_CERT,
    "ssl_key_file": TLS_KEY,
    "hba_file": HBA_PATH,
    "ident_file": IDENT_PATH,
}


def _dev_components() -> list[str]:
    """Component names of the dev stack, from Pulumi.dev.yaml: own databases and shared servers."""
    cat = load_catalogue_for(ROOT, "dev")
    own = [name for name, db in cat.databases.items() if db.server is None]
    return sorted(own + [f"server-{name}" for name in cat.servers])


COMPONENTS = _dev_components()


def _container(run: ProgramRun, comp: str):
    found = [r for r in run.by_type(CONTAINER) if r.name == f"{comp}-postgres"]
    assert len(found) == 1, f"no single container for {comp}: {[r.name for r in run.by_type(CONTAINER)]}"
    return found[0]


def _settings(command: list[str]) -> list[tuple[str, str]]:
    """`postgres -c a=b ...` -> [(a, b), ...] in order, asserting the shape."""
    assert command[0] == "postgres", command
    rest = command[1:]
    assert len(rest) % 2 == 0 and rest[0::2] == ["-c"] * (len(rest) // 2), command
    out = []
    for item in rest[1::2]:
        name, sep, value = item.partition("=")
        assert sep and name and value, f"malformed flag {item!r}"
        out.append((name, value))
    return out


def _hba_upload(ctr) -> str:
    (hba,) = [u["content"] for u in ctr.inputs["uploads"] if u["file"] == HBA_PATH]
    return hba


def _local_flags(settings: list[tuple[str, str]]) -> list[str]:
    """The planned flags minus those naming in-image files (the helper sets its local ones)."""
    flags: list[str] = []
    for name, value in settings:
        if name in IN_CONTAINER_FILES:
            assert value == IN_CONTAINER_FILES[name], f"{name} points at {value}, not the image's file"
            continue
        flags += ["-c", f"{name}={value}"]
    return flags


def _start(ctr):
    settings = _settings(ctr.inputs["command"])
    assert {n for n, _ in settings} >= set(IN_CONTAINER_FILES) | {"ssl"}
    return settings, start_postgres(None, hba_conf=_hba_upload(ctr), extra_flags=_local_flags(settings))


def _expected_value(server: PgServer, name: str, value: str) -> str:
    local = {"ssl_cert_file": str(server.cert_file), "ssl_key_file": str(server.key_file), "hba_file": str(server.hba_path),
             "ident_file": str(server.ident_path)}
    return local.get(name, value)


def _row(conn: Any, name: str) -> tuple[str, str, str, str]:
    row = conn.execute(
        "SELECT current_setting(name), setting, coalesce(unit, ''), source FROM pg_settings WHERE name = %s", (name,)
    ).fetchone()
    assert row is not None, f"{name} is not a setting of this server"
    return row


def _ssl_servers() -> list[str]:
    """Bin dirs of every server of the settings table built with SSL (the containers run ssl=on)."""
    from tools.generate_pg_settings import find_servers

    return [str(bindir) for _, (bindir, _) in sorted(find_servers().items()) if has_ssl(bindir)]


SSL_SERVERS = _ssl_servers()


def test_the_flags_are_tried_on_several_majors():
    # 13 (bullseye), 15 (bookworm), 17 (trixie); pgserver's 16 has no SSL (its settings are probed instead,
    # tests/postgres/test_catalog_params.py).
    assert len(SSL_SERVERS) >= 3, SSL_SERVERS


@pytest.mark.parametrize("bindir", SSL_SERVERS, ids=lambda b: Path(b).parent.name)
@pytest.mark.parametrize("comp", COMPONENTS)
def test_container_flags_start_a_real_server(dev_run, comp, bindir, monkeypatch):
    monkeypatch.setenv("BULKHEAD_PG_BINDIR", bindir)
    ctr = _container(dev_run, comp)
    settings, server_cm = _start(ctr)
    with server_cm as server:
        # Every planned flag is on the server's command line and is the last word for its
        # setting there (postgres applies `-c` flags in order, the last one wins).
        assert server.flags[0::2] == ["-c"] * (len(server.flags) // 2)
        effective = dict(f.partition("=")[::2] for f in server.flags[1::2])
        assert {n: effective.get(n) for n, _ in settings} == {n: _expected_value(server, n, v) for n, v in settings}
        with server.admin() as conn:
            for name, value in settings:
                shown, raw, unit, source = _row(conn, name)
                want = _expected_value(server, name, value)
                assert want in (shown, raw), f"{name}: planned {want!r}, server has {shown!r} ({raw}{unit})"
                assert source in ("command line", "override"), f"{name} not set from the command line: {source}"
            assert conn.execute("SHOW ssl").fetchone()[0] == "on"
            assert conn.execute("SHOW password_encryption").fetchone()[0] == "scram-sha-256"
            # the container's own pg_hba.conf loads without an error line
            errors = conn.execute("SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL").fetchall()
            assert errors == []
            rules = conn.execute("SELECT count(*) FROM pg_hba_file_rules").fetchone()[0]
            assert rules >= 4
        assert "FATAL" not in server.log()


def _bad_work_mem(config: dict) -> None:
    config["bulkhead:databases"]["app"]["parameters"]["work_mem"] = "8XB"


def _unknown_setting(config: dict) -> None:
    config["bulkhead:servers"]["shared"]["parameters"]["wrok_mem"] = "8MB"


@pytest.mark.parametrize(
    "edit, path, fix, flag, fragment",
    [
        pytest.param(_bad_work_mem, "bulkhead:databases.app.parameters.work_mem", "one of the units B, kB, MB, GB, TB",
                     "work_mem=8XB", 'invalid value for parameter "work_mem"', id="bad-value"),
        pytest.param(_unknown_setting, "bulkhead:servers.shared.parameters.wrok_mem", "did you mean work_mem?",
                     "wrok_mem=8MB", 'unrecognized configuration parameter "wrok_mem"', id="unknown-name"),
    ],
)
def test_invalid_setting_in_stack_file_fails(edit, path, fix, flag, fragment):
    # The catalogue refuses it before any resource, from the settings table ...
    with pytest.raises(pulumi.RunError) as err:
        run_stack("dev", edit=edit)
    line = next(l for l in str(err.value).splitlines() if l.startswith(path))
    assert fix in line, line
    # ... and the real server refuses the same flag, so the table and the server agree.
    with pytest.raises(PostgresStartError) as info:
        with start_postgres(None, extra_flags=["-c", flag]):
            pass
    assert fragment in info.value.log
