"""A checkout in a private (0700) directory, as root: the server account cannot enter it, yet the
suite's server helper and the settings generator run its servers (issue 26).

PostgreSQL will not run as root, so as root every server binary runs as an unprivileged account
(tools/pg_account.py). A venv inside a 0700 directory (root's home in most container images) holds
pgserver's bundled 16, out of that account's reach: exec fails with EACCES. The servers here are
copies of the real ones, laid out as in their install, inside such a directory.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
from pathlib import Path

import pytest

from components.catalogue import settings as pg_settings
from tests.support.postgres import find_pg_bindir, server_os_user, start_postgres
from tests.support.program import ROOT
from tools import generate_pg_settings as gen
from tools import pg_account


def _private_dir(tmp_path: Path) -> Path:
    priv = tmp_path / "priv"
    priv.mkdir()
    os.chmod(priv, 0o700)
    return priv


def _copy_install(bindir: Path, under: Path) -> Path:
    """The install of `bindir` copied under `under` with its own layout (bin, share, modules and
    its own shared libraries relative to each other, as PostgreSQL and the loader find them);
    returns the copy's bin dir."""
    dirs = pg_account.install_dirs(bindir)
    wanted = [dirs["bindir"], dirs["sharedir"], dirs["pkglibdir"]]
    if dirs["libdir"].is_relative_to(dirs["bindir"].parent):
        wanted.append(dirs["libdir"])
    wanted += pg_account._private_library_dirs(dirs["bindir"])  # pgserver's libpq: site-packages/pgserver.libs
    wanted = [d for d in wanted if not any(d != o and d.is_relative_to(o) for o in wanted)]
    prefix = Path(os.path.commonpath([str(d) for d in wanted]))
    for d in wanted:
        shutil.copytree(d, under / d.relative_to(prefix), symlinks=True)
    return under / dirs["bindir"].relative_to(prefix)


def _out_of_reach(bindir: Path) -> None:
    """As root the copy really is out of the server account's reach (the failure this is about)."""
    account = server_os_user()
    if account is not None:
        assert not pg_account.can_run(bindir, account), f"{bindir} is reachable by {account.name}; the test proves nothing"
        with pytest.raises(PermissionError):
            pg_account.run([str(bindir / "postgres"), "--version"], account, cwd="/", capture_output=True)


def test_the_server_helper_starts_a_server_from_a_checkout_in_a_0700_directory(tmp_path, monkeypatch):
    checkout = _private_dir(tmp_path) / "checkout"
    bindir = _copy_install(find_pg_bindir(), checkout / ".venv" / "pg")
    _out_of_reach(bindir)
    monkeypatch.setenv("BULKHEAD_PG_BINDIR", str(bindir))
    monkeypatch.chdir(checkout)
    with start_postgres() as server:
        with server.admin() as conn:
            assert conn.execute("SELECT current_setting('ssl')").fetchone()[0] == "on"
        with server.admin() as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
        if server.os_user is not None:
            # run from a copy outside the private directory; the user's directory is as it was
            assert not server.bindir.is_relative_to(tmp_path)
            assert pg_account.can_run(server.bindir, server.os_user)
    assert (tmp_path / "priv").stat().st_mode & 0o777 == 0o700


def test_the_generator_reads_pgserver_bundled_16_from_a_venv_in_a_0700_directory(tmp_path, monkeypatch):
    """The settings table's 16 comes from pgserver's build inside the venv (the test that failed)."""
    bundled = next((b for b, source in gen._server_candidates() if source.startswith("pgserver")), None)
    assert bundled is not None, "pgserver is not installed in this venv; make setup installs it (requirements-dev.txt)"
    site = _private_dir(tmp_path) / "checkout" / ".venv" / "lib" / "python3" / "site-packages"
    bindir = _copy_install(bundled, site)
    assert bindir == site / "pgserver" / "pginstall" / "bin"
    _out_of_reach(bindir)
    monkeypatch.chdir(tmp_path / "priv" / "checkout")
    table = json.loads(pg_settings.TABLE_PATH.read_text(encoding="utf-8"))["majors"]["16"]["settings"]
    with gen.cluster(bindir) as c:
        live = {row["name"]: row for row in c.pg_settings()}
        assert c.probe("synchronous_commit", "yes") == (True, "on")
        assert c.probe("work_mem", "4mb")[0] is False
    assert sorted(set(live) ^ set(table)) == []
    assert live["work_mem"]["min_val"] == str(table["work_mem"]["min"])


def test_no_account_to_run_the_server_says_what_to_provide(monkeypatch):
    monkeypatch.setattr(pg_account.os, "geteuid", lambda: 0)
    monkeypatch.delenv(pg_account.ACCOUNT_ENV, raising=False)
    monkeypatch.setattr(pg_account, "_exists", lambda name: False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no useradd
    with pytest.raises(pg_account.AccountError) as info:
        pg_account.server_account()
    message = str(info.value)
    assert "no unprivileged account" in message and "creating `pgserver` failed (useradd not found)" in message
    assert "set BULKHEAD_PG_OS_USER" in message and "install Debian's postgresql package" in message


def test_an_account_that_is_root_is_refused(monkeypatch):
    monkeypatch.setattr(pg_account.os, "geteuid", lambda: 0)
    monkeypatch.setenv(pg_account.ACCOUNT_ENV, "root")
    with pytest.raises(pg_account.AccountError, match="is root; PostgreSQL will not run as root: set BULKHEAD_PG_OS_USER"):
        pg_account.server_account()


# ---------------------------------------------------------------- one helper runs binaries as the account

_SPAWNERS = {"run", "Popen", "call", "check_call", "check_output"}


def runs_as_another_account(source: str) -> list[int]:
    """Lines of subprocess calls that switch user themselves (user=/group= or a `**` of a helper's kwargs)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        owner = getattr(node.func, "value", None)
        if name not in _SPAWNERS or not (isinstance(owner, ast.Name) and owner.id == "subprocess"):
            continue
        for kw in node.keywords:
            if kw.arg in ("user", "group", "preexec_fn") or (kw.arg is None and isinstance(kw.value, ast.Call)):
                lines.append(node.lineno)
                break
    return lines


def test_the_guard_sees_a_subprocess_call_that_switches_user():
    assert runs_as_another_account("import subprocess\nsubprocess.run(['initdb'], user=999)\n") == [2]
    assert runs_as_another_account("import subprocess\nsubprocess.Popen(['postgres'], **as_user(u))\n") == [2]
    assert runs_as_another_account("import subprocess\nsubprocess.run(['ls'], cwd='/')\n") == []


def test_every_run_as_the_server_account_goes_through_pg_account():
    """The next test that runs a server as another account uses tools/pg_account.py (which copies an
    unreachable install), not its own subprocess call."""
    helper = Path(ROOT, "tools", "pg_account.py")
    offenders = []
    for top in ("tools", "tests", "bulkhead", "components", "bench", "policies"):
        for path in sorted(Path(ROOT, top).rglob("*.py")):
            if path == helper or ".venv" in path.parts:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{n}" for n in runs_as_another_account(path.read_text(encoding="utf-8"))]
    assert offenders == [], "run PostgreSQL as the server account with tools/pg_account.py run/popen"
