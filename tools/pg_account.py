"""Running PostgreSQL binaries as the unprivileged server account: the one place that does it.

PostgreSQL refuses to run as root ("root execution of the PostgreSQL server is not
permitted", src/backend/main/main.c check_root), so as root every initdb/postgres (and any
script that execs them) runs as an unprivileged OS account: `$BULKHEAD_PG_OS_USER`, else
`postgres` (Debian's package creates it), else `pgserver` (created with useradd, as pgserver
itself does when run as root). As any other user everything runs as that user (None here).

That account must reach the binaries. Debian's servers under /usr/lib/postgresql and the
fetched ones under /var/cache are world-readable, but pgserver's bundled build sits in the
venv inside the checkout, and a checkout in a private directory (root's 0700 home, the
common case in container images) is out of the account's reach: the exec fails with
EACCES. `reachable_bindir` then copies the install (bin, lib, share: PostgreSQL finds lib
and share relative to its bin directory, src/port/path.c make_relative_path) into a
temporary directory under the system temp dir, root-owned and world-readable, once per
process, and removes it at exit. Nothing of the user's own permissions is changed.

Used by tests/support/postgres.py (the tests' server helper and every test that runs a
server or a script as the account) and tools/generate_pg_settings.py.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

ACCOUNT_ENV = "BULKHEAD_PG_OS_USER"


class AccountError(RuntimeError):
    """No way to run PostgreSQL as an unprivileged account here; the message says what to provide."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def server_account() -> Optional[Account]:
    """The account PostgreSQL runs as when we are root (None: not root, run as ourselves)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(ACCOUNT_ENV)
    if not name:
        name = "postgres" if _exists("postgres") else "pgserver"
        if not _exists(name):
            _create(name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise AccountError(
            f"{ACCOUNT_ENV}={name!r} names no OS account; create it (useradd {name}) or unset {ACCOUNT_ENV}"
        ) from None
    if entry.pw_uid == 0:
        raise AccountError(f"OS account {name!r} is root; PostgreSQL will not run as root: set {ACCOUNT_ENV} to an unprivileged account")
    return Account(name, entry.pw_uid, entry.pw_gid)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _create(name: str) -> None:
    try:
        result = subprocess.run(["useradd", "-s", "/bin/bash", name], capture_output=True, text=True)
    except FileNotFoundError:
        result = None
    if result is None or result.returncode != 0:
        said = "useradd not found" if result is None else (result.stderr.strip() or f"useradd exited {result.returncode}")
        raise AccountError(
            "PostgreSQL will not run as root, and there is no unprivileged account to run it as: no `postgres` "
            f"account, and creating `{name}` failed ({said}). Provide one: install Debian's postgresql package "
            f"(it creates `postgres`), create an account (useradd {name}) and/or set {ACCOUNT_ENV} to an existing "
            "non-root account, or run the tests as a non-root user."
        )


def as_account(account: Optional[Account]) -> dict:
    """subprocess keyword arguments that run the child as `account` (none for None)."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def run(argv: Sequence[str], account: Optional[Account], **kw) -> subprocess.CompletedProcess:
    """subprocess.run as `account`."""
    return subprocess.run(list(argv), **as_account(account), **kw)


def popen(argv: Sequence[str], account: Optional[Account], **kw) -> subprocess.Popen:
    """subprocess.Popen as `account`."""
    return subprocess.Popen(list(argv), **as_account(account), **kw)


def can_run(bindir: Path, account: Optional[Account]) -> bool:
    """Can `account` exec this server and read its share directory (every parent traversable)?"""
    if account is None:
        return True
    share = install_dirs(bindir)["sharedir"]
    probe = ["sh", "-c", 'test -x "$1" && { [ ! -e "$2" ] || test -r "$2"; }', "probe", str(bindir / "postgres"), str(share)]
    # cwd "/": the child starts in our cwd, which the account may not be able to enter either.
    return subprocess.run(probe, cwd="/", capture_output=True, **as_account(account)).returncode == 0


def install_dirs(bindir: Path) -> dict[str, Path]:
    """Where this server's binaries, share files and modules are: pg_config's answer (relocated to where
    the install is now, as the server itself computes them), else the usual bin/lib/share siblings."""
    pg_config = bindir / "pg_config"
    names = ("bindir", "sharedir", "pkglibdir", "libdir")
    if pg_config.is_file():
        out = subprocess.run([str(pg_config), *(f"--{n}" for n in names)], capture_output=True, text=True)
        lines = out.stdout.splitlines()
        if out.returncode == 0 and len(lines) == len(names):
            return {n: Path(v) for n, v in zip(names, lines, strict=True)}
    root = bindir.parent
    return {"bindir": bindir, "sharedir": root / "share", "pkglibdir": root / "lib", "libdir": root / "lib"}


_SYSTEM_LIBS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")


def _private_library_dirs(bindir: Path) -> list[Path]:
    """Directories of the shared libraries the server's programs load from outside the system's
    (ldd, as we are: we can reach them)."""
    found: list[Path] = []
    for exe in ("postgres", "initdb", "psql"):
        if not (bindir / exe).is_file():
            continue
        out = subprocess.run(["ldd", str(bindir / exe)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            # "\tlibpq-084d956f.so.5.16 => /x/site-packages/pgserver.libs/libpq-084d956f.so.5.16 (0x...)"
            _, arrow, rest = line.partition("=> ")
            lib = rest.split(" (")[0].strip()
            if arrow and lib.startswith("/") and not any(lib.startswith(d + "/") for d in _SYSTEM_LIBS):
                found.append(Path(lib).resolve().parent)
    return list(dict.fromkeys(found))


_reachable: dict[tuple[Path, int], Path] = {}


def reachable_bindir(bindir: Path, account: Optional[Account]) -> Path:
    """`bindir`, or the bin dir of a copy of its install the account can reach (decided and copied once
    per process and account)."""
    bindir = Path(bindir)
    if account is None:
        return bindir
    key = (bindir, account.uid)
    if key not in _reachable:
        _reachable[key] = bindir if can_run(bindir, account) else _copy_install(bindir, account)
    return _reachable[key]


def _copy_install(bindir: Path, account: Account) -> Path:
    """Copy bin, share and modules (and the shared libraries if they belong to the install, as pgserver's
    do; Debian's are the system's) keeping their places relative to each other: postgres finds share and
    lib from its own path by the configured relative layout (src/port/path.c make_relative_path), and
    the dynamic loader finds pgserver's libpq through an $ORIGIN-relative RPATH (auditwheel puts the
    wheel's libraries in site-packages/pgserver.libs: $ORIGIN/../../../pgserver.libs)."""
    dirs = install_dirs(bindir)
    wanted = [dirs["bindir"], dirs["sharedir"], dirs["pkglibdir"]]
    if dirs["libdir"].is_relative_to(dirs["bindir"].parent):
        wanted.append(dirs["libdir"])
    wanted += _private_library_dirs(dirs["bindir"])
    wanted = [d for d in wanted if d.is_dir()]
    # nested ones (pkglibdir inside libdir) come with their parent
    wanted = [d for d in wanted if not any(d != o and d.is_relative_to(o) for o in wanted)]
    prefix = Path(os.path.commonpath([str(d) for d in wanted])) if len(wanted) > 1 else dirs["bindir"].parent
    dest = Path(tempfile.mkdtemp(prefix="bulkhead-pginstall-"))
    atexit.register(shutil.rmtree, dest, True)
    for d in dict.fromkeys(wanted):
        shutil.copytree(d, dest / d.relative_to(prefix), symlinks=True)
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            # root-owned, world-readable: the account reads and runs it, cannot change it
            path.chmod(mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0))
    new_bindir = dest / dirs["bindir"].relative_to(prefix)
    result = run([str(new_bindir / "postgres"), "--version"], account, cwd="/", capture_output=True, text=True)
    if result.returncode != 0 or not can_run(new_bindir, account):
        raise AccountError(
            f"the PostgreSQL server in {bindir} is out of reach of the OS account {account.name!r} it must run as "
            f"(a parent directory it cannot enter), and a copy of it did not run either "
            f"({result.stderr.strip() or 'postgres --version failed'}). Point BULKHEAD_PG_BINDIR (tests) or "
            f"BULKHEAD_PG_SERVERS (fetched servers) at a PostgreSQL installed where {account.name!r} can read it, "
            "e.g. apt-get install postgresql, and TMPDIR at a directory it can enter."
        )
    return new_bindir
