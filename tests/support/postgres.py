"""A real PostgreSQL server for the tests: find a build with SSL, initdb, start it with
bulkhead's flags and pg_hba, stop and delete it.

Which PostgreSQL: `$BULKHEAD_PG_BINDIR` if set, else the newest
/usr/lib/postgresql/<major>/bin (Debian's `postgresql` package), else `postgres`
on PATH, else pgserver's bundled binaries -- the first one built with SSL
(pgserver's wheels are built without it, so on a fresh Debian CI machine
`apt-get install postgresql` is needed). No PostgreSQL with SSL is an ERROR,
never a skip.

As root (PostgreSQL refuses to run as root) the server processes run as an
unprivileged OS user, like pgserver does: `$BULKHEAD_PG_OS_USER`, else the
existing `postgres` account (Debian's package creates it), else `pgserver`
(created with useradd, as pgserver itself does). Their files live in a private
directory under the system temp dir owned by that user, so nothing else's
permissions are loosened. As a non-root user everything runs as that user.
Everything run as that user goes through tools/pg_account.py (`server_bindir`,
`pg_account.run`/`popen`): a server it cannot reach (pgserver's, inside a
checkout in a 0700 directory) is run from a copy it can.

The admin reaches the unix socket by peer authentication (pg_hba_conf's first
rule); the helper's pg_ident.conf maps the container's OS users plus the OS user
of this test process and of the server to the admin.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

import psycopg
import pytest

from tools import pg_account
from tools.pg_account import Account
from components.dev.container import (
    ADMIN_OS_USERS,
    ADMIN_USER,
    RoleSpec,
    init_script,
    pg_hba_conf,
    pg_ident_conf,
    server_flags,
)

# What the server answers when a login is refused, by layer.
HBA_REJECT = "pg_hba.conf rejects connection"
BAD_PASSWORD = "password authentication failed"
NO_CONNECT_PRIVILEGE = "permission denied for database"
ADMIN_PASSWORD = "admin-Pa55 'with' \"quotes\""
START_TIMEOUT_S = 30.0

# ----------------------------------------------------------------------------------------------
# Finding PostgreSQL and running it (reusable)
# ----------------------------------------------------------------------------------------------


class PostgresStartError(RuntimeError):
    """postgres exited (or never became ready); `.log` has its output."""

    def __init__(self, message: str, log: str):
        super().__init__(f"{message}\n--- postgres log ---\n{log}")
        self.log = log


def _pgserver_bindir() -> Optional[Path]:
    # Located without importing pgserver (its import has side effects).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def has_ssl(bindir: Path) -> bool:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True).stdout
        return "--with-openssl" in out or "--with-ssl=openssl" in out
    out = subprocess.run(["ldd", str(bindir / "postgres")], capture_output=True, text=True).stdout
    return "libssl" in out


def _major(bindir: Path) -> int:
    try:
        return int(bindir.parent.name)
    except ValueError:
        return 0


def find_pg_bindir() -> Path:
    """bin directory of a PostgreSQL (initdb, postgres, psql) built with SSL; raises if none."""
    explicit = os.environ.get("BULKHEAD_PG_BINDIR")
    if explicit:
        candidates = [Path(explicit)]
    else:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True)
        on_path = shutil.which("postgres")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        bundled = _pgserver_bindir()
        if bundled:
            candidates.append(bundled)
    rejected = []
    for bindir in candidates:
        missing = [exe for exe in ("initdb", "postgres", "psql") if not (bindir / exe).is_file()]
        if missing:
            rejected.append(f"{bindir}: no {', '.join(missing)}")
        elif not has_ssl(bindir):
            rejected.append(f"{bindir}: built without SSL")
        else:
            return bindir
    raise RuntimeError(
        "no PostgreSQL server with SSL support found; the isolation tests need one "
        "(on Debian/Ubuntu: apt-get install -y postgresql; or set BULKHEAD_PG_BINDIR). "
        f"Tried: {rejected or 'nothing'}"
    )


_OsUser = Account  # the former name


def server_os_user() -> Optional[Account]:
    """The unprivileged account postgres runs as when we are root (None: run as ourselves);
    tools/pg_account.py, the one place that runs PostgreSQL binaries as another account."""
    return pg_account.server_account()


def server_bindir(bindir: Path, user: Optional[Account]) -> Path:
    """`bindir`, or a copy of its install the server's OS user can reach (a checkout in a 0700 directory)."""
    return pg_account.reachable_bindir(bindir, user)


def admin_os_users(server_user: Optional[Account]) -> list[str]:
    """OS users the helper's pg_ident.conf maps to the admin: the container's, this process's, the server's."""
    users = [*ADMIN_OS_USERS, pwd.getpwuid(os.geteuid()).pw_name]
    if server_user is not None:
        users.append(server_user.name)
    return list(dict.fromkeys(users))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_free_port = free_port  # the former name


@dataclass
class PgServer:
    bindir: Path
    dir: Path  # private, removed on exit
    data_dir: Path
    socket_dir: Path
    port: int
    admin_password: str
    hba_path: Path
    ident_path: Path
    cert_file: Path
    key_file: Path
    log_path: Path
    os_user: Optional[Account]
    flags: list[str] = field(default_factory=list)
    process: Optional[subprocess.Popen] = None
    init_result: Optional[subprocess.CompletedProcess] = None  # first run of the init script, if any

    # -- files the server reads must belong to its OS user
    def give(self, path: Path, mode: int = 0o600) -> None:
        os.chmod(path, mode)
        if self.os_user is not None:
            os.chown(path, self.os_user.uid, self.os_user.gid)

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> Path:
        path.write_text(text)
        self.give(path, mode)
        return path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- connections
    def connect(
        self,
        dbname: str,
        user: str,
        password: str,
        *,
        sslmode: str = "require",
        via_socket: bool = False,
        autocommit: bool = True,
    ) -> psycopg.Connection:
        host = str(self.socket_dir) if via_socket else "127.0.0.1"
        return psycopg.connect(
            host=host,
            port=self.port,
            dbname=dbname,
            user=user,
            password=password,
            sslmode="disable" if via_socket else sslmode,
            gssencmode="disable",
            connect_timeout=10,
            autocommit=autocommit,
        )

    def admin(self, dbname: str = "postgres") -> psycopg.Connection:
        """Superuser over the unix socket (pg_hba: peer, this OS user mapped to the admin)."""
        return self.connect(dbname, ADMIN_USER, self.admin_password, via_socket=True)

    def set_hba(self, text: str) -> None:
        self.write_file(self.hba_path, text)
        with self.admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.2)  # the postmaster reloads asynchronously on SIGHUP
            errors = conn.execute("SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL").fetchall()
        assert errors == [], f"pg_hba.conf has errors: {errors}"

    # -- the init script, as the container's start wrapper runs it
    def client_env(self, extra: Mapping[str, str] = {}) -> dict[str, str]:
        return {
            "PATH": f"{self.bindir}:{os.defpath}",
            "LC_ALL": "C",
            "HOME": str(self.dir),
            "PGHOST": str(self.socket_dir),
            "PGPORT": str(self.port),
            **extra,
        }

    def write_secrets(self, passwords: Mapping[str, str], admin_password: Optional[str] = None) -> Path:
        """A fresh secrets directory as the container gets it: `admin`, `role-<db>` (db == role here)."""
        secrets = self.dir / f"secrets-{time.monotonic_ns()}"
        secrets.mkdir(mode=0o700)
        files = {"admin": self.admin_password if admin_password is None else admin_password}
        files.update({f"role-{role}": pw for role, pw in passwords.items()})
        for name, value in files.items():
            if value is not None:
                (secrets / name).write_text(value)
                os.chmod(secrets / name, 0o400)
        return secrets

    def run_init_script(
        self, roles: Sequence[RoleSpec], passwords: Mapping[str, str], *, sourced: bool = False
    ) -> subprocess.CompletedProcess:
        """bash runs `init_script(roles)`; `passwords` maps role -> password (None: no file).

        sourced=True runs it with `.` inside a shell running `set -Eeo pipefail`, else it is executed.
        """
        script = self.write_file(self.dir / f"init-{time.monotonic_ns()}.sh", init_script(roles), 0o700)
        env = self.client_env({"BULKHEAD_SECRETS_DIR": str(self.write_secrets(passwords))})
        argv = ["bash", "-c", 'set -Eeo pipefail; . "$1"', "entrypoint", str(script)] if sourced else ["bash", str(script)]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=self.dir)


def _make_cert(server: PgServer) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-days", "2", "-subj", "/CN=localhost", "-keyout", str(server.key_file), "-out", str(server.cert_file),
        ],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    server.give(server.cert_file, 0o644)
    server.give(server.key_file, 0o600)  # postgres refuses a key readable by others


def _initdb(server: PgServer) -> None:
    pwfile = server.write_file(server.dir / "admin-password", server.admin_password + "\n")
    result = pg_account.run(
        [
            str(server.bindir / "initdb"), "-D", str(server.data_dir), "-U", ADMIN_USER, f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync",
        ],
        server.os_user, capture_output=True, text=True, cwd=server.dir, env={"PATH": os.defpath, "LC_ALL": "C"},
    )  # fmt: skip
    pwfile.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _wait_ready(server: PgServer) -> None:
    pidfile = server.data_dir / "postmaster.pid"
    deadline = time.monotonic() + START_TIMEOUT_S
    assert server.process is not None
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            raise PostgresStartError(f"postgres exited with {code} during start-up", server.log())
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            lines = []
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return
        time.sleep(0.05)
    raise PostgresStartError(f"postgres not ready after {START_TIMEOUT_S}s", server.log())


def _stop(server: PgServer) -> None:
    proc = server.process
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # fast shutdown
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def start_postgres(
    parameters: Mapping[str, str] | None = None,
    *,
    hba_conf: str | None = None,
    extra_flags: Sequence[str] = (),
    admin_password: str = ADMIN_PASSWORD,
) -> Iterator[PgServer]:
    """Fresh cluster + running server with `server_flags(parameters, <temp cert, key, hba>)`.

    Listens on 127.0.0.1:<free port> and a private unix socket dir. `hba_conf`
    defaults to `pg_hba_conf([])` (admin over the socket only). Raises
    `PostgresStartError` (with the server log) if postgres refuses to start, e.g.
    for an invalid setting. Stops the server and deletes everything on exit.
    """
    os_user = server_os_user()
    bindir = server_bindir(find_pg_bindir(), os_user)
    # Not pytest's tmp_path: it may be unreachable for the server's OS user
    # (root's is 0700) and too long for a unix socket path (~107 bytes).
    root = Path(tempfile.mkdtemp(prefix="bulkhead-pg-"))
    server = PgServer(
        bindir=bindir,
        dir=root,
        data_dir=root / "data",
        socket_dir=root / "sock",
        port=free_port(),
        admin_password=admin_password,
        hba_path=root / "pg_hba.conf",
        ident_path=root / "pg_ident.conf",
        cert_file=root / "server.crt",
        key_file=root / "server.key",
        log_path=root / "postgres.log",
        os_user=os_user,
    )
    try:
        server.give(root, 0o700)
        server.socket_dir.mkdir()
        server.give(server.socket_dir, 0o700)
        _make_cert(server)
        server.write_file(server.hba_path, hba_conf if hba_conf is not None else pg_hba_conf([]))
        server.write_file(server.ident_path, pg_ident_conf(admin_os_users(os_user)))
        _initdb(server)
        server.flags = [
            *server_flags(
                parameters or {},
                cert_file=str(server.cert_file),
                key_file=str(server.key_file),
                hba_file=str(server.hba_path),
                ident_file=str(server.ident_path),
            ),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"port={server.port}",
            "-c", f"unix_socket_directories={server.socket_dir}",
            *extra_flags,
        ]  # fmt: skip
        with open(server.log_path, "ab") as log:
            server.process = pg_account.popen(
                [str(bindir / "postgres"), "-D", str(server.data_dir), *server.flags], os_user,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                env={"PATH": os.defpath, "LC_ALL": "C"}, start_new_session=True,
            )  # fmt: skip
        _wait_ready(server)
        yield server
    finally:
        _stop(server)
        shutil.rmtree(root, ignore_errors=True)


def refusal(pg: PgServer, dbname: str, user: str, password: str, **kw) -> str:
    """The error text of a connection attempt that must fail."""
    with pytest.raises(psycopg.OperationalError) as excinfo:
        pg.connect(dbname, user, password, **kw).close()
    return str(excinfo.value)


def assert_init_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"init script failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    assert "ERROR" not in result.stderr, result.stderr


def trap_sql(role: str) -> str:
    """What a tenant plants in its own database: an `=` in its own schema that makes `role`
    superuser when a superuser's unqualified comparison resolves to it."""
    return f"""
CREATE SCHEMA trap;
CREATE FUNCTION trap.eq(name, name) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
    EXECUTE 'ALTER ROLE {role} SUPERUSER';
  END IF;
  RETURN $1 OPERATOR(pg_catalog.=) $2;
END $f$;
CREATE OPERATOR trap.= (LEFTARG = name, RIGHTARG = name, FUNCTION = trap.eq);
CREATE FUNCTION trap.set_config(text, text, boolean) RETURNS text LANGUAGE sql AS $f$ SELECT 'x' $f$;
"""
